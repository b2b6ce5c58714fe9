using Berth.Linux.Seccomp;
using OciSeccomp = Berth.Oci.Runtime.Seccomp;

namespace Berth.Runtime.Seccomp;

/// <summary>
/// Compiles the OCI linux.seccomp section to a classic BPF program, with the semantics runc and
/// crun get from libseccomp:
/// <list type="bullet">
/// <item>seccomp_data.arch is checked first. The native ABI is always filtered; the listed ones are
/// added. Any other ABI gets KILL_THREAD (libseccomp's default bad-arch action), and so do x32
/// calls (nr with bit 30) when x32 is not listed, x86_64 calls when only x32 is.</item>
/// <item>Within an ABI a binary search over syscall-number ranges picks the rules, so a lookup
/// costs O(log n) jumps. Numbers without rules get defaultAction.</item>
/// <item>Rules whose action equals the default are dropped (crun does this). For one syscall an
/// unconditional rule wins over every conditional one, the first such rule over later ones
/// (libseccomp's rule database keeps the wider rule). Conditional rules are tried in profile
/// order, first match wins, and fall back to the default action.</item>
/// <item>A rule's args are ANDed. If one arg index appears twice, each arg becomes a rule of its
/// own (ORed), as runc and crun do because libseccomp refuses two checks of one argument.</item>
/// <item>64-bit ABIs compare all 64 bits as hi/lo halves; 32-bit ABIs (i386, x32, arm) compare the
/// low halves only, as libseccomp does. All comparisons are unsigned.</item>
/// <item>Names unknown on every filtered ABI are skipped and listed in
/// <see cref="SeccompProgram.SkippedSyscalls"/> (runc and crun skip them with a warning).</item>
/// </list>
/// </summary>
public static class SeccompCompiler
{
    /// <summary>The action for a task of an ABI the filter does not cover (libseccomp's default).</summary>
    public const uint BadArchAction = SeccompAbi.RET_KILL_THREAD;

    internal readonly record struct ArgCheck(int Index, CompareOp Op, ulong Value, ulong ValueTwo);

    internal sealed record Rule(uint Action, ArgCheck[] Checks);

    private sealed class SyscallRules(bool args32)
    {
        public readonly bool Args32 = args32;
        public uint? Unconditional;
        public readonly List<Rule> Conditional = [];
    }

    /// <summary>A run of syscall numbers [Lo, Hi] with one outcome: a plain return or a syscall's rules.</summary>
    private readonly record struct Segment(uint Lo, uint Hi, uint Ret, SyscallRules? Rules);

    /// <summary>
    /// Programs compiled from a spec object that is not changed afterwards (the sandbox reuses one
    /// profile object for every job of a batch worker): compiled once per object.
    /// </summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<OciSeccomp, SeccompProgram> s_frozen = new();

    /// <summary>Marks <paramref name="spec"/> as never changed again, so <see cref="Compile"/> may reuse its program.</summary>
    public static void Freeze(OciSeccomp spec) => s_frozen.TryAdd(spec, null!);

    public static SeccompProgram Compile(OciSeccomp spec, SeccompArch? native = null)
    {
        if (native is null && s_frozen.TryGetValue(spec, out var done))
        {
            if (done is not null) return done;
            var program = CompileNow(spec, null);
            s_frozen.AddOrUpdate(spec, program);
            return program;
        }
        return CompileNow(spec, native);
    }

    private static SeccompProgram CompileNow(OciSeccomp spec, SeccompArch? native)
    {
        var host = native ?? SeccompArchInfo.Native
            ?? throw new SeccompProfileException("berth has no syscall table for this machine's architecture");

        uint defaultAction = SeccompNames.Action(spec.DefaultAction, spec.DefaultErrnoRet, out var error)
            ?? throw new SeccompProfileException($"defaultAction: {error}");
        if (defaultAction == SeccompAbi.RET_USER_NOTIF)
            throw new SeccompProfileException("defaultAction: SCMP_ACT_NOTIFY cannot be the default action (execve itself would wait for the listener)");

        var (arches, skippedArches) = Architectures(spec, host);
        var flags = Flags(spec);
        var blocks = new Dictionary<uint, SortedDictionary<uint, SyscallRules>>();
        foreach (var arch in arches) blocks.TryAdd(arch.AuditArch(), []);

        var skipped = new List<string>();
        var rules = spec.Syscalls ?? [];
        for (int i = 0; i < rules.Count; i++)
        {
            var entry = rules[i];
            string where = $"syscalls[{i}] ({string.Join(", ", entry.Names ?? [])})";
            if (entry.Names is null || entry.Names.Count == 0) throw new SeccompProfileException($"{where}: no names");
            uint action = SeccompNames.Action(entry.Action, entry.ErrnoRet, out error)
                ?? throw new SeccompProfileException($"{where}: {error}");
            if (action == SeccompAbi.RET_USER_NOTIF && string.IsNullOrEmpty(spec.ListenerPath))
                throw new SeccompProfileException($"{where}: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath");
            var expanded = Expand(entry.Args, action, where);
            if (action == defaultAction) continue;

            foreach (var name in entry.Names)
            {
                bool known = false;
                foreach (var arch in arches)
                {
                    int nr = SyscallTable.Resolve(arch, name);
                    if (nr < 0) continue;
                    known = true;
                    var block = blocks[arch.AuditArch()];
                    if (!block.TryGetValue((uint)nr, out var target))
                        block[(uint)nr] = target = new SyscallRules(arch.Has32BitArgs());
                    foreach (var rule in expanded)
                    {
                        if (rule.Checks.Length == 0) target.Unconditional ??= rule.Action;
                        else target.Conditional.Add(rule);
                    }
                }
                if (!known && !skipped.Contains(name)) skipped.Add(name);
            }
        }

        var filter = Emit(host, arches, blocks, defaultAction);
        return new SeccompProgram(filter, flags, string.IsNullOrEmpty(spec.ListenerPath) ? null : spec.ListenerPath,
            spec.ListenerMetadata, skipped, skippedArches);
    }

    private static (List<SeccompArch> Arches, List<string> Skipped) Architectures(OciSeccomp spec, SeccompArch host)
    {
        var arches = new List<SeccompArch> { host };
        var skipped = new List<string>();
        var listed = spec.Architectures ?? [];
        for (int i = 0; i < listed.Count; i++)
        {
            if (!SeccompNames.Arch(listed[i], out var arch))
                throw new SeccompProfileException($"architectures[{i}]: unknown architecture \"{listed[i]}\"");
            if (arch is { } a && a.CanRunOn(host) && SyscallTable.Has(a))
            {
                if (!arches.Contains(a)) arches.Add(a);
            }
            else if (!skipped.Contains(listed[i])) skipped.Add(listed[i]);
        }
        return (arches, skipped);
    }

    private static uint Flags(OciSeccomp spec)
    {
        // Without a flags list crun asks for SPEC_ALLOW: seccomp then leaves the speculative-store
        // bypass mitigation to the system's policy instead of forcing it on the container.
        uint flags = spec.Flags is null ? SeccompAbi.FILTER_FLAG_SPEC_ALLOW : 0;
        for (int i = 0; i < (spec.Flags?.Count ?? 0); i++)
            flags |= SeccompNames.Flag(spec.Flags![i])
                ?? throw new SeccompProfileException($"flags[{i}]: unknown flag \"{spec.Flags[i]}\" (expected SECCOMP_FILTER_FLAG_TSYNC, LOG, SPEC_ALLOW or WAIT_KILLABLE_RECV)");
        if (!string.IsNullOrEmpty(spec.ListenerPath))
        {
            flags |= SeccompAbi.FILTER_FLAG_NEW_LISTENER;
            // The kernel refuses TSYNC with NEW_LISTENER unless a TSYNC failure reports as ESRCH.
            if ((flags & SeccompAbi.FILTER_FLAG_TSYNC) != 0) flags |= SeccompAbi.FILTER_FLAG_TSYNC_ESRCH;
        }
        return flags;
    }

    /// <summary>The rules one OCI entry stands for (see the class summary on repeated indexes).</summary>
    private static List<Rule> Expand(List<Oci.Runtime.SeccompArg>? args, uint action, string where)
    {
        if (args is null || args.Count == 0) return [new Rule(action, [])];
        var checks = new ArgCheck[args.Count];
        bool repeated = false;
        for (int j = 0; j < args.Count; j++)
        {
            var a = args[j];
            if (a.Index > 5) throw new SeccompProfileException($"{where}: args[{j}]: index {a.Index} is out of range (0-5)");
            var op = SeccompNames.Op(a.Op)
                ?? throw new SeccompProfileException($"{where}: args[{j}]: unknown op \"{a.Op}\" (expected SCMP_CMP_NE, LT, LE, EQ, GE, GT or MASKED_EQ)");
            checks[j] = new ArgCheck((int)a.Index, op, a.Value, a.ValueTwo);
            for (int k = 0; k < j; k++) repeated |= checks[k].Index == checks[j].Index;
        }
        return repeated ? checks.Select(c => new Rule(action, [c])).ToList() : [new Rule(action, checks)];
    }

    private static SockFilter[] Emit(SeccompArch host, List<SeccompArch> arches,
        Dictionary<uint, SortedDictionary<uint, SyscallRules>> blocks, uint defaultAction)
    {
        var e = new BpfEmitter();
        // Emitted back to front: the native ABI's block comes first in the program, right after the dispatch.
        var order = blocks.Keys.OrderBy(audit => audit == host.AuditArch() ? 0 : 1).ToList();
        var entries = new Dictionary<uint, int>();
        for (int i = order.Count - 1; i >= 0; i--)
        {
            var segments = Segments(order[i], host, arches, blocks[order[i]], defaultAction);
            int tree = EmitTree(e, segments, 0, segments.Count - 1, defaultAction);
            entries[order[i]] = e.LoadWord(SeccompAbi.DataNrOffset, tree);
        }
        int next = e.Ret(BadArchAction);
        for (int i = order.Count - 1; i >= 0; i--)
            next = e.Jump(Bpf.JEQ, order[i], entries[order[i]], next);
        int entry = e.LoadWord(SeccompAbi.DataArchOffset, next);
        if (e.Count > Bpf.MaxInstructions)
            throw new SeccompProfileException($"the filter needs {e.Count} instructions, more than the kernel's limit of {Bpf.MaxInstructions}");
        return e.ToProgram(entry);
    }

    /// <summary>Splits the nr space of one AUDIT_ARCH value into runs with one outcome each.</summary>
    private static List<Segment> Segments(uint audit, SeccompArch host, List<SeccompArch> arches,
        SortedDictionary<uint, SyscallRules> syscalls, uint defaultAction)
    {
        var segments = new List<Segment>();
        var abis = Enum.GetValues<SeccompArch>().Where(a => a.CanRunOn(host) && a.AuditArch() == audit)
            .OrderBy(a => a.NrRange().Low);
        foreach (var abi in abis)
        {
            var (low, high) = abi.NrRange();
            uint baseline = arches.Contains(abi) ? defaultAction : BadArchAction;
            ulong cur = low;
            foreach (var (nr, rules) in syscalls)
            {
                if (nr < low || nr > high) continue;
                if (nr > cur) Add(segments, new Segment((uint)cur, nr - 1, baseline, null));
                Add(segments, rules.Unconditional is { } u || rules.Conditional.Count == 0
                    ? new Segment(nr, nr, rules.Unconditional ?? defaultAction, null)
                    : new Segment(nr, nr, 0, rules));
                cur = (ulong)nr + 1;
            }
            if (cur <= high) Add(segments, new Segment((uint)cur, high, baseline, null));
        }
        return segments;

        static void Add(List<Segment> list, Segment s)
        {
            if (list.Count > 0 && list[^1] is { Rules: null } prev && s.Rules is null && prev.Ret == s.Ret && prev.Hi + 1 == s.Lo)
                list[^1] = prev with { Hi = s.Hi };
            else
                list.Add(s);
        }
    }

    /// <summary>A balanced binary search over segment boundaries; A holds seccomp_data.nr.</summary>
    private static int EmitTree(BpfEmitter e, List<Segment> segments, int from, int to, uint defaultAction)
    {
        if (from == to)
            return segments[from].Rules is { } rules ? EmitRules(e, rules, defaultAction) : e.Ret(segments[from].Ret);
        int mid = (from + to + 1) / 2;
        int high = EmitTree(e, segments, mid, to, defaultAction);
        int low = EmitTree(e, segments, from, mid - 1, defaultAction);
        return e.Jump(Bpf.JGE, segments[mid].Lo, high, low);
    }

    private static int EmitRules(BpfEmitter e, SyscallRules rules, uint defaultAction)
    {
        int next = e.Ret(defaultAction);
        for (int i = rules.Conditional.Count - 1; i >= 0; i--)
        {
            var rule = rules.Conditional[i];
            int entry = e.Ret(rule.Action);
            for (int j = rule.Checks.Length - 1; j >= 0; j--)
                entry = EmitCheck(e, rule.Checks[j], entry, next, rules.Args32);
            next = entry;
        }
        return next;
    }

    /// <summary>Tests one argument; 64-bit values as two 32-bit halves, high half first.</summary>
    private static int EmitCheck(BpfEmitter e, ArgCheck c, int onTrue, int onFalse, bool args32)
    {
        uint lo = (uint)c.Value, hi = (uint)(c.Value >> 32);
        uint loOffset = SeccompAbi.ArgOffset(c.Index, high: false), hiOffset = SeccompAbi.ArgOffset(c.Index, high: true);
        return c.Op switch
        {
            CompareOp.Equal => Equal(onTrue, onFalse),
            CompareOp.NotEqual => Equal(onFalse, onTrue),
            CompareOp.Greater => Above(Bpf.JGT, onTrue, onFalse),
            CompareOp.GreaterOrEqual => Above(Bpf.JGE, onTrue, onFalse),
            CompareOp.Less => Above(Bpf.JGE, onFalse, onTrue),
            CompareOp.LessOrEqual => Above(Bpf.JGT, onFalse, onTrue),
            CompareOp.MaskedEqual => Masked(onTrue, onFalse),
            _ => throw new ArgumentOutOfRangeException(nameof(c)),
        };

        int Equal(int t, int f)
        {
            int low = e.LoadWord(loOffset, e.Jump(Bpf.JEQ, lo, t, f));
            if (args32) return low;
            return e.LoadWord(hiOffset, e.Jump(Bpf.JEQ, hi, low, f));
        }

        // (arg > value) for JGT, (arg >= value) for JGE: decided by the high half unless it is equal.
        int Above(ushort op, int t, int f)
        {
            int low = e.LoadWord(loOffset, e.Jump(op, lo, t, f));
            if (args32) return low;
            int highEqual = e.Jump(Bpf.JEQ, hi, low, f);
            return e.LoadWord(hiOffset, e.Jump(Bpf.JGT, hi, t, highEqual));
        }

        // libseccomp's MASKED_EQ: (arg & value) == valueTwo.
        int Masked(int t, int f)
        {
            uint dataLo = (uint)c.ValueTwo, dataHi = (uint)(c.ValueTwo >> 32);
            int low = e.LoadWord(loOffset, e.Stmt(Bpf.ALU | Bpf.AND | Bpf.K, lo, e.Jump(Bpf.JEQ, dataLo, t, f)));
            if (args32) return low;
            return e.LoadWord(hiOffset, e.Stmt(Bpf.ALU | Bpf.AND | Bpf.K, hi, e.Jump(Bpf.JEQ, dataHi, low, f)));
        }
    }
}

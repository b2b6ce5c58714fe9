using Berth.Linux.Seccomp;
using Berth.Oci.Runtime;
using OciSeccomp = Berth.Oci.Runtime.Seccomp;

namespace Berth.Runtime.Tests.Seccomp;

/// <summary>
/// The documented semantics of a profile, evaluated directly (no BPF), to check compiled
/// programs against on many inputs.
/// </summary>
internal static class SeccompOracle
{
    public static uint Evaluate(OciSeccomp spec, SeccompArch native, uint audit, uint nr, ulong[] args)
    {
        var arches = new HashSet<SeccompArch> { native };
        foreach (var name in spec.Architectures ?? [])
        {
            var n = name.Replace("SCMP_ARCH_", "").ToUpperInvariant();
            SeccompArch? a = n switch { "X86_64" => SeccompArch.X86_64, "X86" => SeccompArch.X86, "X32" => SeccompArch.X32, "AARCH64" => SeccompArch.Aarch64, _ => null };
            if (a is { } x && x.CanRunOn(native)) arches.Add(x);
        }
        SeccompArch? abi = audit switch
        {
            SeccompAbi.AUDIT_ARCH_X86_64 when native == SeccompArch.X86_64 => (nr & SeccompAbi.X32_SYSCALL_BIT) != 0 ? SeccompArch.X32 : SeccompArch.X86_64,
            SeccompAbi.AUDIT_ARCH_I386 when native == SeccompArch.X86_64 => SeccompArch.X86,
            SeccompAbi.AUDIT_ARCH_AARCH64 when native == SeccompArch.Aarch64 => SeccompArch.Aarch64,
            _ => null,
        };
        if (abi is not { } sub || !arches.Contains(sub)) return SeccompAbi.RET_KILL_THREAD;

        uint def = Action(spec.DefaultAction, spec.DefaultErrnoRet);
        uint? unconditional = null;
        var conditional = new List<(uint Action, List<SeccompArg> Args)>();
        foreach (var rule in spec.Syscalls ?? [])
        {
            uint act = Action(rule.Action, rule.ErrnoRet);
            if (act == def) continue;
            if (!rule.Names.Any(n => SyscallTable.Resolve(sub, n) is int r && r >= 0 && (uint)r == nr)) continue;
            if (rule.Args is null || rule.Args.Count == 0) { unconditional ??= act; continue; }
            bool repeated = rule.Args.GroupBy(a => a.Index).Any(g => g.Count() > 1);
            if (repeated) conditional.AddRange(rule.Args.Select(a => (act, new List<SeccompArg> { a })));
            else conditional.Add((act, rule.Args));
        }
        if (unconditional is { } u) return u;
        bool narrow = sub.Has32BitArgs();
        foreach (var (act, checks) in conditional)
            if (checks.All(c => Matches(c, narrow ? (uint)args[c.Index] : args[c.Index], narrow)))
                return act;
        return def;
    }

    private static bool Matches(SeccompArg c, ulong arg, bool narrow)
    {
        ulong v = narrow ? (uint)c.Value : c.Value, v2 = narrow ? (uint)c.ValueTwo : c.ValueTwo;
        return c.Op switch
        {
            "SCMP_CMP_EQ" => arg == v,
            "SCMP_CMP_NE" => arg != v,
            "SCMP_CMP_LT" => arg < v,
            "SCMP_CMP_LE" => arg <= v,
            "SCMP_CMP_GT" => arg > v,
            "SCMP_CMP_GE" => arg >= v,
            "SCMP_CMP_MASKED_EQ" => (arg & v) == v2,
            _ => throw new ArgumentException(c.Op),
        };
    }

    public static uint Action(string name, uint? errno) => name switch
    {
        "SCMP_ACT_KILL" or "SCMP_ACT_KILL_THREAD" => 0,
        "SCMP_ACT_KILL_PROCESS" => 0x80000000,
        "SCMP_ACT_TRAP" => 0x00030000,
        "SCMP_ACT_ERRNO" => 0x00050000 | (errno ?? 1),
        "SCMP_ACT_TRACE" => 0x7ff00000 | (errno ?? 1),
        "SCMP_ACT_LOG" => 0x7ffc0000,
        "SCMP_ACT_ALLOW" => 0x7fff0000,
        "SCMP_ACT_NOTIFY" => 0x7fc00000,
        _ => throw new ArgumentException(name),
    };
}

using Berth.Linux.Seccomp;

namespace Berth.Runtime.Seccomp;

/// <summary>
/// Builds a classic BPF program back to front. Every seccomp jump goes forward, so when an
/// instruction is emitted all of its targets already exist and their distance is known: a
/// conditional jump whose target is more than 255 instructions away goes through a BPF_JA
/// trampoline placed right after it. Labels are positions counted from the end of the program.
/// </summary>
internal sealed class BpfEmitter
{
    // Reuse an earlier "ret" only while it is this close; farther ones would need trampolines.
    private const int RetReuseWindow = 192;

    private readonly List<SockFilter> _reversed = [];
    private readonly Dictionary<uint, int> _rets = [];

    public int Count => _reversed.Count;

    /// <summary>The label of the most recently emitted instruction (the next one in program order).</summary>
    public int Last => _reversed.Count - 1;

    public int Ret(uint action)
    {
        if (_rets.TryGetValue(action, out int at) && Count - at - 1 <= RetReuseWindow) return at;
        _reversed.Add(SockFilter.Stmt(Bpf.RET | Bpf.K, action));
        return _rets[action] = Last;
    }

    /// <summary>A non-jump instruction that falls through to <paramref name="next"/>.</summary>
    public int Stmt(ushort code, uint k, int next)
    {
        if (next != Last) Ja(next);
        _reversed.Add(SockFilter.Stmt(code, k));
        return Last;
    }

    public int LoadWord(uint offset, int next) => Stmt(Bpf.LD | Bpf.W | Bpf.ABS, offset, next);

    /// <summary>A conditional jump "if (A op k) goto onTrue else goto onFalse".</summary>
    public int Jump(ushort op, uint k, int onTrue, int onFalse)
    {
        if (onTrue == onFalse)
        {
            if (onTrue != Last) Ja(onTrue);
            return Last; // the test decides nothing
        }
        if (Distance(onTrue) > Bpf.MaxConditionalJump) onTrue = Ja(onTrue);
        if (Distance(onFalse) > Bpf.MaxConditionalJump) onFalse = Ja(onFalse);
        if (Distance(onTrue) > Bpf.MaxConditionalJump) onTrue = Ja(onTrue);
        _reversed.Add(SockFilter.Jump((ushort)(Bpf.JMP | op | Bpf.K), k, (byte)Distance(onTrue, Count), (byte)Distance(onFalse, Count)));
        return Last;
    }

    public int Ja(int target)
    {
        _reversed.Add(SockFilter.Stmt(Bpf.JMP | Bpf.JA, (uint)Distance(target)));
        return Last;
    }

    /// <summary>Offset from a new instruction at <paramref name="from"/> (default: the next one emitted) to <paramref name="target"/>.</summary>
    private int Distance(int target, int? from = null) => (from ?? Count) - target - 1;

    /// <summary>The program in execution order; <paramref name="entry"/> must be the first instruction.</summary>
    public SockFilter[] ToProgram(int entry)
    {
        if (entry != Last) throw new InvalidOperationException("the program entry must be the last emitted instruction");
        var program = _reversed.ToArray();
        Array.Reverse(program);
        return program;
    }
}

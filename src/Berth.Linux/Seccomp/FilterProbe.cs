namespace Berth.Linux.Seccomp;

/// <summary>
/// Asks a seccomp classic-BPF program what it does with one system call before loading it: used to
/// check that extra calls the runtime adds under a container's filter (the exec stub's read, close,
/// write, exit_group and execveat; docs/adr/0013) pass untouched.
/// </summary>
public static class FilterProbe
{
    private const uint ActionMask = 0xffff0000;

    /// <summary>
    /// True when the program returns SECCOMP_RET_ALLOW for <paramref name="nr"/> on <paramref name="arch"/>
    /// after reading nothing but the syscall number and the arch: the verdict then holds for any
    /// arguments and any caller. A program that looks at arguments or the instruction pointer on the
    /// way, or uses an instruction this probe does not know, gets false.
    /// </summary>
    public static bool AllowsRegardlessOfArgs(ReadOnlySpan<SockFilter> program, uint arch, uint nr)
    {
        uint a = 0;
        int pc = 0;
        while ((uint)pc < (uint)program.Length)
        {
            var ins = program[pc++];
            switch (ins.Code)
            {
                case Bpf.LD | Bpf.W | Bpf.ABS:
                    if (ins.K == SeccompAbi.DataNrOffset) a = nr;
                    else if (ins.K == SeccompAbi.DataArchOffset) a = arch;
                    else return false;
                    break;
                case Bpf.ALU | Bpf.AND | Bpf.K: a &= ins.K; break;
                case Bpf.JMP | Bpf.JA: pc += (int)ins.K; break;
                case Bpf.JMP | Bpf.JEQ | Bpf.K: pc += a == ins.K ? ins.Jt : ins.Jf; break;
                case Bpf.JMP | Bpf.JGT | Bpf.K: pc += a > ins.K ? ins.Jt : ins.Jf; break;
                case Bpf.JMP | Bpf.JGE | Bpf.K: pc += a >= ins.K ? ins.Jt : ins.Jf; break;
                case Bpf.JMP | Bpf.JSET | Bpf.K: pc += (a & ins.K) != 0 ? ins.Jt : ins.Jf; break;
                case Bpf.RET | Bpf.K: return (ins.K & ActionMask) == SeccompAbi.RET_ALLOW;
                default: return false;
            }
        }
        return false;
    }
}

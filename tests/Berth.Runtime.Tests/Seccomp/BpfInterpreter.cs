using System.Buffers.Binary;
using Berth.Linux.Seccomp;

namespace Berth.Runtime.Tests.Seccomp;

/// <summary>
/// Runs a seccomp classic-BPF program against one seccomp_data, as the kernel would, counting
/// the instructions executed. Checks what the kernel's verifier checks first.
/// </summary>
internal static class BpfInterpreter
{
    public readonly record struct Outcome(uint Action, int Steps);

    public static Outcome Run(SockFilter[] program, uint arch, uint nr, params ulong[] args) =>
        Run(program, arch, nr, 0x7fff_0000_1000, args);

    public static Outcome Run(SockFilter[] program, uint arch, uint nr, ulong ip, ulong[] args)
    {
        Span<byte> data = stackalloc byte[SeccompAbi.DataSize];
        data.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(data, nr);
        BinaryPrimitives.WriteUInt32LittleEndian(data[4..], arch);
        BinaryPrimitives.WriteUInt64LittleEndian(data[8..], ip);
        for (int i = 0; i < args.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(data[(16 + 8 * i)..], args[i]);

        uint a = 0;
        int pc = 0, steps = 0;
        while (true)
        {
            if (pc >= program.Length) throw new InvalidOperationException($"fell off the program at {pc}");
            var ins = program[pc++];
            steps++;
            switch (ins.Code)
            {
                case Bpf.LD | Bpf.W | Bpf.ABS:
                    if (ins.K % 4 != 0 || ins.K + 4 > SeccompAbi.DataSize) throw new InvalidOperationException($"bad load offset {ins.K}");
                    a = BinaryPrimitives.ReadUInt32LittleEndian(data[(int)ins.K..]);
                    break;
                case Bpf.ALU | Bpf.AND | Bpf.K: a &= ins.K; break;
                case Bpf.JMP | Bpf.JA: pc += (int)ins.K; break;
                case Bpf.JMP | Bpf.JEQ | Bpf.K: pc += a == ins.K ? ins.Jt : ins.Jf; break;
                case Bpf.JMP | Bpf.JGT | Bpf.K: pc += a > ins.K ? ins.Jt : ins.Jf; break;
                case Bpf.JMP | Bpf.JGE | Bpf.K: pc += a >= ins.K ? ins.Jt : ins.Jf; break;
                case Bpf.JMP | Bpf.JSET | Bpf.K: pc += (a & ins.K) != 0 ? ins.Jt : ins.Jf; break;
                case Bpf.RET | Bpf.K: return new Outcome(ins.K, steps);
                default: throw new InvalidOperationException($"unsupported opcode 0x{ins.Code:x} at {pc - 1}");
            }
        }
    }

    /// <summary>The static checks of the kernel's bpf_check_classic that apply to these programs.</summary>
    public static void Verify(SockFilter[] program)
    {
        Assert.InRange(program.Length, 1, Bpf.MaxInstructions);
        for (int pc = 0; pc < program.Length; pc++)
        {
            var ins = program[pc];
            bool jump = (ins.Code & 0x07) == Bpf.JMP;
            if (!jump) continue;
            if (ins.Code == (Bpf.JMP | Bpf.JA))
                Assert.True(pc + 1 + (long)ins.K < program.Length, $"ja out of range at {pc}");
            else
                Assert.True(pc + 1 + Math.Max(ins.Jt, ins.Jf) < program.Length, $"jump out of range at {pc}");
        }
        Assert.Equal(Bpf.RET | Bpf.K, program[^1].Code);
    }
}

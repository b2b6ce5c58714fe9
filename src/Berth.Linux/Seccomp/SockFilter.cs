using System.Runtime.InteropServices;

namespace Berth.Linux.Seccomp;

/// <summary>One classic BPF instruction (struct sock_filter, 8 bytes), as seccomp(2) takes it.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct SockFilter(ushort Code, byte Jt, byte Jf, uint K)
{
    public static SockFilter Stmt(ushort code, uint k) => new(code, 0, 0, k);
    public static SockFilter Jump(ushort code, uint k, byte jt, byte jf) => new(code, jt, jf, k);

    public override string ToString() => $"{{ 0x{Code:x2}, {Jt}, {Jf}, 0x{K:x8} }}";
}

/// <summary>Classic BPF opcodes (linux/bpf_common.h) used by seccomp filters.</summary>
public static class Bpf
{
    // instruction classes
    public const ushort LD = 0x00, ALU = 0x04, JMP = 0x05, RET = 0x06;
    // ld size and mode
    public const ushort W = 0x00, ABS = 0x20;
    // alu / jmp operations
    public const ushort AND = 0x50, JA = 0x00, JEQ = 0x10, JGT = 0x20, JGE = 0x30, JSET = 0x40;
    // operand source
    public const ushort K = 0x00;

    /// <summary>The kernel's limit on filter length (BPF_MAXINSNS).</summary>
    public const int MaxInstructions = 4096;
    /// <summary>Conditional jump offsets are 8 bits; longer jumps go through BPF_JA.</summary>
    public const int MaxConditionalJump = 255;
}

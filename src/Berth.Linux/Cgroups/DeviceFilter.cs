namespace Berth.Linux.Cgroups;

/// <summary>One eBPF instruction (struct bpf_insn).</summary>
public readonly record struct BpfInsn(byte Code, byte Dst, byte Src, short Off, int Imm)
{
    /// <summary>The 8 bytes the kernel reads: code, dst|src&lt;&lt;4, off (LE), imm (LE).</summary>
    public void WriteTo(Span<byte> dest)
    {
        dest[0] = Code;
        dest[1] = (byte)((Dst & 0xF) | (Src << 4));
        System.Buffers.Binary.BinaryPrimitives.WriteInt16LittleEndian(dest[2..], Off);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(dest[4..], Imm);
    }
}

/// <summary>
/// Builds the BPF_PROG_TYPE_CGROUP_DEVICE program that enforces a device rule list on cgroup v2
/// (v2 has no devices.allow/deny files). The program sees struct bpf_cgroup_dev_ctx
/// { u32 access_type (access &lt;&lt; 16 | type); u32 major; u32 minor; } and returns 1 to allow, 0 to deny.
///
/// Semantics, chosen to match what the same list does on v1:
/// - an 'a' rule resets everything before it and sets the default verdict (the v1 kernel does the
///   same whatever its major/minor/access say); without one the default is allow, like a fresh v1
///   cgroup under an unrestricted parent;
/// - after that, the last rule that matches decides: an allow rule matches when it grants every
///   access bit requested, a deny rule when it covers any of them.
/// </summary>
public static class DeviceFilter
{
    // uapi/linux/bpf.h
    public const int DevBlock = 1, DevChar = 2;
    public const int AccMknod = 1, AccRead = 2, AccWrite = 4;

    internal const byte LdxMemW = 0x61, Alu32AndK = 0x54, Alu32RshK = 0x74, Alu32MovX = 0xbc,
        Alu64MovK = 0xb7, JeqK = 0x15, JneK = 0x55, JsetK = 0x45, Exit = 0x95;

    // Registers after the prologue: r2 device type, r3 requested access, r4 major, r5 minor; r1 is scratch.
    private const byte R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5;

    public static IReadOnlyList<BpfInsn> Generate(IReadOnlyList<DeviceRule> rules)
    {
        int start = 0;
        bool defaultAllow = true;
        for (int i = 0; i < rules.Count; i++)
        {
            Check(rules[i]);
            if (rules[i].Type == 'a') { start = i + 1; defaultAllow = rules[i].Allow; }
        }

        var prog = new List<BpfInsn>
        {
            new(LdxMemW, R2, R1, 0, 0),
            new(Alu32AndK, R2, 0, 0, 0xFFFF),
            new(LdxMemW, R3, R1, 0, 0),
            new(Alu32RshK, R3, 0, 0, 16),
            new(LdxMemW, R4, R1, 4, 0),
            new(LdxMemW, R5, R1, 8, 0),
        };
        for (int i = rules.Count - 1; i >= start; i--) EmitRule(prog, rules[i]);
        prog.Add(new(Alu64MovK, R0, 0, 0, defaultAllow ? 1 : 0));
        prog.Add(new(Exit, 0, 0, 0, 0));
        return prog;
    }

    /// <summary>"if the rule matches, return its verdict"; every test jumps past the return when it fails.</summary>
    private static void EmitRule(List<BpfInsn> prog, DeviceRule rule)
    {
        var block = new List<BpfInsn>();
        var jumps = new List<int>(); // indexes in block of jumps to the block's end
        void JumpOut(byte code, byte reg, int imm) { jumps.Add(block.Count); block.Add(new(code, reg, 0, 0, imm)); }

        JumpOut(JneK, R2, rule.Type == 'b' ? DevBlock : DevChar); // 'a' never reaches here
        if (rule.Major >= 0) JumpOut(JneK, R4, (int)rule.Major);
        if (rule.Minor >= 0) JumpOut(JneK, R5, (int)rule.Minor);
        int access = AccessBits(rule.Access);
        if (access != 7)
        {
            if (rule.Allow)
                JumpOut(JsetK, R3, ~access & 7); // asks for something the rule does not grant
            else
            {
                block.Add(new(Alu32MovX, R1, R3, 0, 0));
                block.Add(new(Alu32AndK, R1, 0, 0, access));
                JumpOut(JeqK, R1, 0); // asks for nothing the rule denies
            }
        }
        block.Add(new(Alu64MovK, R0, 0, 0, rule.Allow ? 1 : 0));
        block.Add(new(Exit, 0, 0, 0, 0));
        foreach (var j in jumps) block[j] = block[j] with { Off = (short)(block.Count - j - 1) };
        prog.AddRange(block);
    }

    public static int AccessBits(string access)
    {
        int bits = 0;
        foreach (var c in access)
            bits |= c switch
            {
                'r' => AccRead,
                'w' => AccWrite,
                'm' => AccMknod,
                _ => throw new CgroupException($"cgroup: device access \"{access}\" may only contain r, w and m"),
            };
        return bits;
    }

    private static void Check(DeviceRule rule)
    {
        if (rule.Type is not ('a' or 'b' or 'c'))
            throw new CgroupException($"cgroup: device rule \"{rule.V1Line}\": type must be a, b or c");
        if (rule.Major > int.MaxValue || rule.Minor > int.MaxValue)
            throw new CgroupException($"cgroup: device rule \"{rule.V1Line}\": number out of range");
        if (rule.Type != 'a' && AccessBits(rule.Access) == 0)
            throw new CgroupException($"cgroup: device rule \"{rule.V1Line}\": empty access");
    }

    /// <summary>The program as the byte array BPF_PROG_LOAD takes.</summary>
    public static byte[] Encode(IReadOnlyList<BpfInsn> prog)
    {
        var bytes = new byte[prog.Count * 8];
        for (int i = 0; i < prog.Count; i++) prog[i].WriteTo(bytes.AsSpan(i * 8, 8));
        return bytes;
    }
}

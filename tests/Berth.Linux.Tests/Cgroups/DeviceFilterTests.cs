using Berth.Linux.Cgroups;
using Xunit;

namespace Berth.Linux.Tests.Cgroups;

public class DeviceFilterTests
{
    private static readonly DeviceRule DenyAll = new(false, 'a', -1, -1, "rwm");
    private static readonly DeviceRule AllowAll = new(true, 'a', -1, -1, "rwm");

    // What runc-style runtimes allow by default, after the spec's deny-all.
    private static readonly DeviceRule[] Defaults =
    [
        DenyAll,
        new(true, 'c', -1, -1, "m"), new(true, 'b', -1, -1, "m"),
        new(true, 'c', 1, 3, "rwm"), new(true, 'c', 1, 5, "rwm"), new(true, 'c', 1, 7, "rwm"),
        new(true, 'c', 1, 8, "rwm"), new(true, 'c', 1, 9, "rwm"), new(true, 'c', 5, 0, "rwm"),
        new(true, 'c', 5, 2, "rwm"), new(true, 'c', 136, -1, "rwm"),
    ];

    [Theory]
    [InlineData('c', 1, 3, "rw", true)]
    [InlineData('c', 1, 3, "m", true)]
    [InlineData('c', 136, 7, "rw", true)]
    [InlineData('c', 5, 2, "rwm", true)]
    [InlineData('b', 8, 0, "r", false)]
    [InlineData('b', 8, 0, "m", true)]
    [InlineData('c', 10, 200, "rw", false)]
    [InlineData('c', 10, 200, "m", true)]
    [InlineData('c', 1, 4, "r", false)]
    public void Default_list(char type, int major, int minor, string access, bool allowed) =>
        Assert.Equal(allowed, Run(Defaults, type, major, minor, access));

    [Fact]
    public void Empty_list_allows_everything() => Assert.True(Run([], 'b', 8, 0, "rwm"));

    [Fact]
    public void Deny_all_denies_everything()
    {
        Assert.False(Run([DenyAll], 'c', 1, 3, "r"));
        Assert.False(Run([DenyAll], 'b', 8, 0, "m"));
    }

    [Fact]
    public void A_type_all_rule_resets_what_came_before()
    {
        Assert.False(Run([new(true, 'c', 1, 3, "rwm"), DenyAll], 'c', 1, 3, "r"));
        Assert.True(Run([new(false, 'c', 1, 3, "rwm"), AllowAll], 'c', 1, 3, "r"));
    }

    [Fact]
    public void Deny_rules_under_allow_all_cover_any_requested_bit()
    {
        DeviceRule[] rules = [AllowAll, new(false, 'c', 1, 3, "w")];
        Assert.True(Run(rules, 'c', 1, 3, "r"));
        Assert.False(Run(rules, 'c', 1, 3, "w"));
        Assert.False(Run(rules, 'c', 1, 3, "rw"));
        Assert.True(Run(rules, 'b', 1, 3, "rw"));
    }

    [Fact]
    public void Allow_rules_must_grant_every_requested_bit()
    {
        DeviceRule[] rules = [DenyAll, new(true, 'c', 1, 3, "r")];
        Assert.True(Run(rules, 'c', 1, 3, "r"));
        Assert.False(Run(rules, 'c', 1, 3, "rw"));
        Assert.False(Run(rules, 'c', 1, 3, "m"));
    }

    [Fact]
    public void The_last_matching_rule_wins()
    {
        DeviceRule[] rules = [DenyAll, new(true, 'c', -1, -1, "rwm"), new(false, 'c', 1, 3, "rwm")];
        Assert.False(Run(rules, 'c', 1, 3, "r"));
        Assert.True(Run(rules, 'c', 1, 5, "r"));
        Assert.False(Run(rules, 'b', 1, 5, "r"));
    }

    [Fact]
    public void Program_shape_is_what_the_verifier_accepts()
    {
        var prog = DeviceFilter.Generate(Defaults);
        for (int i = 0; i < prog.Count; i++)
        {
            var insn = prog[i];
            if ((insn.Code & 0x07) == 0x05 && insn.Code != DeviceFilter.Exit)
            {
                Assert.True(insn.Off >= 0, $"backward jump at {i}");
                Assert.True(i + 1 + insn.Off < prog.Count, $"jump out of the program at {i}");
            }
        }
        Assert.Equal(DeviceFilter.Exit, prog[^1].Code);
        Assert.All(Reachable(prog), r => Assert.True(r)); // the verifier rejects dead code
    }

    [Fact]
    public void Encoding_matches_struct_bpf_insn()
    {
        var bytes = DeviceFilter.Encode(DeviceFilter.Generate([new(true, 'c', 1, 3, "rwm")]));
        Assert.Equal(new byte[] { 0x61, 0x12, 0, 0, 0, 0, 0, 0 }, bytes[..8]);                  // r2 = *(u32 *)(r1 + 0)
        Assert.Equal(new byte[] { 0x61, 0x15, 8, 0, 0, 0, 0, 0 }, bytes[40..48]);               // r5 = *(u32 *)(r1 + 8)
        Assert.Equal(new byte[] { 0x55, 0x02, 4, 0, 2, 0, 0, 0 }, bytes[48..56]);               // if r2 != CHAR goto +4
        Assert.Equal(new byte[] { 0x95, 0, 0, 0, 0, 0, 0, 0 }, bytes[^8..]);
    }

    [Theory]
    [InlineData('x', "rwm")]
    [InlineData('c', "rwz")]
    [InlineData('c', "")]
    public void Bad_rules_are_refused(char type, string access) =>
        Assert.Throws<CgroupException>(() => DeviceFilter.Generate([new(true, type, 1, 3, access)]));

    private static bool Run(IReadOnlyList<DeviceRule> rules, char type, int major, int minor, string access) =>
        Interpret(DeviceFilter.Generate(rules), type == 'b' ? DeviceFilter.DevBlock : DeviceFilter.DevChar,
            DeviceFilter.AccessBits(access), (uint)major, (uint)minor) switch
        {
            1 => true,
            0 => false,
            var v => throw new InvalidOperationException($"program returned {v}"),
        };

    /// <summary>
    /// Executes the handful of opcodes the generator may emit, on the context the kernel passes
    /// (struct bpf_cgroup_dev_ctx). Anything else fails the test.
    /// </summary>
    private static ulong Interpret(IReadOnlyList<BpfInsn> prog, int devType, int access, uint major, uint minor)
    {
        const ulong CtxPointer = 0xC7C7_0000_0000;
        uint[] ctx = [(uint)(access << 16 | devType), major, minor];
        var reg = new ulong[11];
        var written = new bool[11];
        reg[1] = CtxPointer;
        written[1] = true;
        ulong Src(int r) => written[r] ? reg[r] : throw new InvalidOperationException($"r{r} read before written");
        void Set(int r, ulong v) { reg[r] = v; written[r] = true; }
        for (int pc = 0, steps = 0; pc < prog.Count; pc++, steps++)
        {
            Assert.True(steps < 10_000);
            var i = prog[pc];
            ulong imm = (ulong)(long)i.Imm;
            switch (i.Code)
            {
                case DeviceFilter.LdxMemW:
                    Assert.Equal(CtxPointer, Src(i.Src));
                    Assert.True(i.Off is 0 or 4 or 8);
                    Set(i.Dst, ctx[i.Off / 4]);
                    break;
                case DeviceFilter.Alu32AndK: Set(i.Dst, (uint)(Src(i.Dst) & imm)); break;
                case DeviceFilter.Alu32RshK: Set(i.Dst, (uint)Src(i.Dst) >> i.Imm); break;
                case DeviceFilter.Alu32MovX: Set(i.Dst, (uint)Src(i.Src)); break;
                case DeviceFilter.Alu64MovK: Set(i.Dst, imm); break;
                case DeviceFilter.JeqK: if (Src(i.Dst) == imm) pc += i.Off; break;
                case DeviceFilter.JneK: if (Src(i.Dst) != imm) pc += i.Off; break;
                case DeviceFilter.JsetK: if ((Src(i.Dst) & imm) != 0) pc += i.Off; break;
                case DeviceFilter.Exit: return Src(0);
                default: throw new InvalidOperationException($"unexpected opcode 0x{i.Code:x2} at {pc}");
            }
        }
        throw new InvalidOperationException("fell off the end of the program");
    }

    private static bool[] Reachable(IReadOnlyList<BpfInsn> prog)
    {
        var seen = new bool[prog.Count];
        var work = new Stack<int>([0]);
        while (work.Count > 0)
        {
            int pc = work.Pop();
            if (pc >= prog.Count || seen[pc]) continue;
            seen[pc] = true;
            var code = prog[pc].Code;
            if (code == DeviceFilter.Exit) continue;
            if ((code & 0x07) == 0x05) work.Push(pc + 1 + prog[pc].Off);
            work.Push(pc + 1);
        }
        return seen;
    }
}

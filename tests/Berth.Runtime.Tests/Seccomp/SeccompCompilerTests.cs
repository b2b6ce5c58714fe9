using Berth.Linux.Seccomp;
using Berth.Oci.Runtime;
using Berth.Runtime.Seccomp;
using OciSeccomp = Berth.Oci.Runtime.Seccomp;
using static Berth.Linux.Seccomp.SeccompAbi;

namespace Berth.Runtime.Tests.Seccomp;

public class SeccompCompilerTests
{
    internal static OciSeccomp Profile(string defaultAction, params SeccompSyscall[] rules) =>
        new() { DefaultAction = defaultAction, Syscalls = [.. rules] };

    internal static SeccompSyscall Rule(string action, string name, uint? errno = null, params SeccompArg[] args) =>
        new() { Names = [name], Action = action, ErrnoRet = errno, Args = args.Length == 0 ? null : [.. args] };

    internal static SeccompArg Arg(uint index, string op, ulong value, ulong valueTwo = 0) =>
        new() { Index = index, Op = op, Value = value, ValueTwo = valueTwo };

    internal static uint Nr(string name, SeccompArch arch = SeccompArch.X86_64) => (uint)SyscallTable.Resolve(arch, name);

    internal static SockFilter[] Compile(OciSeccomp spec, SeccompArch native = SeccompArch.X86_64)
    {
        var program = SeccompCompiler.Compile(spec, native).Filter;
        BpfInterpreter.Verify(program);
        return program;
    }

    private static uint Run(SockFilter[] program, string name, params ulong[] args) =>
        BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, Nr(name), args).Action;

    [Theory]
    [InlineData("SCMP_ACT_KILL", null, RET_KILL_THREAD)]
    [InlineData("SCMP_ACT_KILL_THREAD", null, RET_KILL_THREAD)]
    [InlineData("SCMP_ACT_KILL_PROCESS", null, RET_KILL_PROCESS)]
    [InlineData("SCMP_ACT_TRAP", null, RET_TRAP)]
    [InlineData("SCMP_ACT_ERRNO", null, RET_ERRNO | 1)]
    [InlineData("SCMP_ACT_ERRNO", 38u, RET_ERRNO | 38)]
    [InlineData("SCMP_ACT_TRACE", null, RET_TRACE | 1)]
    [InlineData("SCMP_ACT_TRACE", 7u, RET_TRACE | 7)]
    [InlineData("SCMP_ACT_LOG", null, RET_LOG)]
    [InlineData("SCMP_ACT_NOTIFY", null, RET_USER_NOTIF)]
    public void EveryActionAsRule(string action, uint? errno, uint expected)
    {
        var spec = Profile("SCMP_ACT_ALLOW", Rule(action, "mkdir", errno));
        spec.ListenerPath = action == "SCMP_ACT_NOTIFY" ? "/run/agent.sock" : null;
        var program = Compile(spec);
        Assert.Equal(expected, Run(program, "mkdir"));
        Assert.Equal(RET_ALLOW, Run(program, "read"));
    }

    [Theory]
    [InlineData("SCMP_ACT_KILL", null, RET_KILL_THREAD)]
    [InlineData("SCMP_ACT_KILL_PROCESS", null, RET_KILL_PROCESS)]
    [InlineData("SCMP_ACT_TRAP", null, RET_TRAP)]
    [InlineData("SCMP_ACT_ERRNO", null, RET_ERRNO | 1)]
    [InlineData("SCMP_ACT_ERRNO", 38u, RET_ERRNO | 38)]
    [InlineData("SCMP_ACT_TRACE", 3u, RET_TRACE | 3)]
    [InlineData("SCMP_ACT_LOG", null, RET_LOG)]
    public void EveryActionAsDefault(string action, uint? errno, uint expected)
    {
        var spec = Profile(action, Rule("SCMP_ACT_ALLOW", "read"));
        spec.DefaultErrnoRet = errno;
        var program = Compile(spec);
        Assert.Equal(expected, Run(program, "mkdir"));
        Assert.Equal(expected, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, 5000).Action);
        Assert.Equal(RET_ALLOW, Run(program, "read"));
    }

    [Fact]
    public void DefaultAllowWithNoRulesIsTiny()
    {
        var program = Compile(Profile("SCMP_ACT_ALLOW"));
        Assert.True(program.Length <= 8, $"{program.Length} instructions");
        Assert.Equal(RET_ALLOW, Run(program, "mount"));
    }

    public static readonly ulong[] Probes =
    [
        0, 1, 5, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0004, 0x1_0000_0005, 0x1_0000_0006,
        0x1_ffff_ffff, 0x2_0000_0005, 0x8000_0000_0000_0000, ulong.MaxValue, 0x0000_0000_1000_0005,
    ];

    public static TheoryData<string, ulong> OpsAndValues()
    {
        var data = new TheoryData<string, ulong>();
        foreach (var op in new[] { "SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GE", "SCMP_CMP_GT" })
            foreach (var v in new ulong[] { 5, 0x1_0000_0005, 0xffff_ffff, 0, ulong.MaxValue })
                data.Add(op, v);
        return data;
    }

    [Theory]
    [MemberData(nameof(OpsAndValues))]
    public void EveryOpOn64BitValues(string op, ulong value)
    {
        var spec = Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", "ioctl", 99, Arg(1, op, value)));
        var program = Compile(spec);
        foreach (var probe in Probes.Concat([value, value - 1, value + 1]))
        {
            ulong[] args = [3, probe, 0, 0, 0, 0];
            uint expected = SeccompOracle.Evaluate(spec, SeccompArch.X86_64, AUDIT_ARCH_X86_64, Nr("ioctl"), args);
            Assert.Equal(expected, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, Nr("ioctl"), args).Action);
        }
        // sanity of the oracle itself on one case per op
        bool hit = op switch
        {
            "SCMP_CMP_EQ" => true, "SCMP_CMP_LE" => true, "SCMP_CMP_GE" => true, _ => false,
        };
        Assert.Equal(hit ? RET_ERRNO | 99 : RET_ALLOW, Run(program, "ioctl", 3, value));
    }

    [Fact]
    public void HighHalfDecidesWhenLowHalvesAgree()
    {
        var program = Compile(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", "ioctl", 1, Arg(0, "SCMP_CMP_EQ", 0x1_0000_0005))));
        Assert.Equal(RET_ERRNO | 1, Run(program, "ioctl", 0x1_0000_0005));
        Assert.Equal(RET_ALLOW, Run(program, "ioctl", 5)); // same low half
        Assert.Equal(RET_ALLOW, Run(program, "ioctl", 0x2_0000_0005));
    }

    [Fact]
    public void MaskedEqualComparesBothHalves()
    {
        var spec = Profile("SCMP_ACT_ALLOW",
            Rule("SCMP_ACT_ERRNO", "clone", 1, Arg(0, "SCMP_CMP_MASKED_EQ", 0xff00_0000_00ff, 0x1200_0000_0034)));
        var program = Compile(spec);
        Assert.Equal(RET_ERRNO | 1, Run(program, "clone", 0x1200_0000_0034));
        Assert.Equal(RET_ERRNO | 1, Run(program, "clone", 0x12ff_ffff_ff34));
        Assert.Equal(RET_ALLOW, Run(program, "clone", 0x1300_0000_0034));
        Assert.Equal(RET_ALLOW, Run(program, "clone", 0x1200_0000_0035));
        // podman's older clone rule: allowed unless a namespace flag is set
        var ns = Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", "clone", null, Arg(0, "SCMP_CMP_MASKED_EQ", 0x7E020000, 0)));
        var p2 = Compile(ns);
        Assert.Equal(RET_ALLOW, Run(p2, "clone", 0x11 /* SIGCHLD */));
        Assert.Equal(RET_ERRNO | 1, Run(p2, "clone", 0x10000000 /* CLONE_NEWUSER */));
    }

    [Fact]
    public void ArgsOfOneRuleAreAnded()
    {
        var spec = Profile("SCMP_ACT_ALLOW",
            Rule("SCMP_ACT_ERRNO", "socket", 22, Arg(0, "SCMP_CMP_EQ", 16), Arg(2, "SCMP_CMP_EQ", 9)));
        var program = Compile(spec);
        Assert.Equal(RET_ERRNO | 22, Run(program, "socket", 16, 3, 9));
        Assert.Equal(RET_ALLOW, Run(program, "socket", 16, 3, 0));
        Assert.Equal(RET_ALLOW, Run(program, "socket", 2, 1, 9));
    }

    [Fact]
    public void RulesForOneSyscallAreOred()
    {
        var spec = Profile("SCMP_ACT_ERRNO",
            Rule("SCMP_ACT_ALLOW", "personality", null, Arg(0, "SCMP_CMP_EQ", 0)),
            Rule("SCMP_ACT_ALLOW", "personality", null, Arg(0, "SCMP_CMP_EQ", 8)),
            Rule("SCMP_ACT_ALLOW", "personality", null, Arg(0, "SCMP_CMP_EQ", 0xffffffff)));
        var program = Compile(spec);
        Assert.Equal(RET_ALLOW, Run(program, "personality", 0));
        Assert.Equal(RET_ALLOW, Run(program, "personality", 8));
        Assert.Equal(RET_ALLOW, Run(program, "personality", 0xffffffff));
        Assert.Equal(RET_ERRNO | 1, Run(program, "personality", 0x20000));
        Assert.Equal(RET_ERRNO | 1, Run(program, "personality", 0x1_0000_0000));
    }

    [Fact]
    public void RepeatedArgIndexBecomesSeparateRules()
    {
        // runc and crun add each arg as a rule of its own when an index repeats: GE 10 or LE 2.
        var spec = Profile("SCMP_ACT_ALLOW",
            Rule("SCMP_ACT_ERRNO", "setpriority", 1, Arg(0, "SCMP_CMP_GE", 10), Arg(0, "SCMP_CMP_LE", 2)));
        var program = Compile(spec);
        Assert.Equal(RET_ERRNO | 1, Run(program, "setpriority", 11));
        Assert.Equal(RET_ERRNO | 1, Run(program, "setpriority", 1));
        Assert.Equal(RET_ALLOW, Run(program, "setpriority", 5));
    }

    [Fact]
    public void UnconditionalRuleWinsOverConditionalOnes()
    {
        var spec = Profile("SCMP_ACT_ERRNO",
            Rule("SCMP_ACT_ERRNO", "socket", 22, Arg(0, "SCMP_CMP_EQ", 16)),
            Rule("SCMP_ACT_ALLOW", "socket"),
            Rule("SCMP_ACT_KILL", "socket"));
        var program = Compile(spec);
        Assert.Equal(RET_ALLOW, Run(program, "socket", 16));
        Assert.Equal(RET_ALLOW, Run(program, "socket", 2));
    }

    [Fact]
    public void RuleWithTheDefaultActionIsDropped()
    {
        var with = Compile(Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ERRNO", "read"), Rule("SCMP_ACT_ALLOW", "write")));
        var without = Compile(Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", "write")));
        Assert.Equal(without, with);
    }

    [Fact]
    public void UnknownNamesAreSkippedAndReported()
    {
        var spec = Profile("SCMP_ACT_ERRNO", new SeccompSyscall { Names = ["read", "no_such_call", "_llseek"], Action = "SCMP_ACT_ALLOW" });
        var result = SeccompCompiler.Compile(spec, SeccompArch.X86_64);
        Assert.Equal(["no_such_call", "_llseek"], result.SkippedSyscalls);
        Assert.Equal(RET_ALLOW, Run(result.Filter, "read"));

        // _llseek exists on i386: known once that ABI is filtered, like libseccomp's pseudo-numbers
        spec.Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"];
        result = SeccompCompiler.Compile(spec, SeccompArch.X86_64);
        Assert.Equal(["no_such_call"], result.SkippedSyscalls);
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(result.Filter, AUDIT_ARCH_I386, Nr("_llseek", SeccompArch.X86)).Action);
    }

    [Fact]
    public void OtherArchitecturesGetKillThread()
    {
        var program = Compile(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", "mkdir")));
        Assert.Equal(RET_KILL_THREAD, BpfInterpreter.Run(program, AUDIT_ARCH_I386, 3).Action);
        Assert.Equal(RET_KILL_THREAD, BpfInterpreter.Run(program, AUDIT_ARCH_AARCH64, 56).Action);
        Assert.Equal(RET_KILL_THREAD, BpfInterpreter.Run(program, 0x12345678, 0).Action);
        // x32 calls are x86_64's AUDIT_ARCH with bit 30: not listed, so bad arch too
        Assert.Equal(RET_KILL_THREAD, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, Nr("read", SeccompArch.X32)).Action);
    }

    [Fact]
    public void ListedCompatArchitecturesUseTheirOwnNumbers()
    {
        var spec = Profile("SCMP_ACT_ERRNO", new SeccompSyscall { Names = ["read", "socketcall", "mkdir"], Action = "SCMP_ACT_ALLOW" },
            Rule("SCMP_ACT_ERRNO", "getpid", 77, Arg(0, "SCMP_CMP_EQ", 0xffff_ffff_ffff_ff9c)));
        spec.Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
        var program = Compile(spec);
        uint i386Read = Nr("read", SeccompArch.X86), x32Read = Nr("read", SeccompArch.X32);
        Assert.Equal(3u, i386Read);
        Assert.Equal(X32_SYSCALL_BIT, x32Read);
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(program, AUDIT_ARCH_I386, i386Read).Action);
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(program, AUDIT_ARCH_I386, Nr("socketcall", SeccompArch.X86)).Action);
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, x32Read).Action);
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, Nr("mkdir", SeccompArch.X32)).Action);
        // i386's nr 3 is read; x86_64's nr 3 is close: not allowed
        Assert.Equal(RET_ERRNO | 1, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, 3).Action);
        Assert.Equal(RET_ERRNO | 1, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 3).Action);
        Assert.Equal(RET_ERRNO | 1, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 5000).Action);
        // 32-bit ABIs compare the low half only (the kernel passes 32-bit args); x86_64 all 64 bits
        Assert.Equal(RET_ERRNO | 77, BpfInterpreter.Run(program, AUDIT_ARCH_I386, Nr("getpid", SeccompArch.X86), 0xffff_ff9c).Action);
        Assert.Equal(RET_ERRNO | 77, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, Nr("getpid", SeccompArch.X32), 0xffff_ff9c).Action);
        Assert.Equal(RET_ERRNO | 1, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, Nr("getpid"), 0xffff_ff9c).Action);
        Assert.Equal(RET_ERRNO | 77, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, Nr("getpid"), 0xffff_ffff_ffff_ff9c).Action);
    }

    [Fact]
    public void OnlyX32ListedStillFiltersNativeAndX32()
    {
        var spec = Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", "read"));
        spec.Architectures = ["SCMP_ARCH_X32"];
        var program = Compile(spec);
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, 0).Action);
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT).Action);
    }

    [Fact]
    public void Aarch64Filter()
    {
        var spec = Profile("SCMP_ACT_ERRNO", new SeccompSyscall { Names = ["openat", "read", "arm_fadvise64_64"], Action = "SCMP_ACT_ALLOW" });
        spec.Architectures = ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS"];
        var result = SeccompCompiler.Compile(spec, SeccompArch.Aarch64);
        BpfInterpreter.Verify(result.Filter);
        Assert.Equal(["SCMP_ARCH_ARM", "SCMP_ARCH_MIPS"], result.SkippedArchitectures);
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(result.Filter, AUDIT_ARCH_AARCH64, 56).Action);
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(result.Filter, AUDIT_ARCH_AARCH64, 63).Action);
        Assert.Equal(RET_ERRNO | 1, BpfInterpreter.Run(result.Filter, AUDIT_ARCH_AARCH64, 57).Action);
        Assert.Equal(RET_KILL_THREAD, BpfInterpreter.Run(result.Filter, AUDIT_ARCH_ARM, 3).Action);
        Assert.Equal(RET_KILL_THREAD, BpfInterpreter.Run(result.Filter, AUDIT_ARCH_X86_64, 0).Action);
    }

    [Theory]
    [InlineData(null, FILTER_FLAG_SPEC_ALLOW)]
    [InlineData("", 0u)]
    [InlineData("SECCOMP_FILTER_FLAG_TSYNC,SECCOMP_FILTER_FLAG_LOG", FILTER_FLAG_TSYNC | FILTER_FLAG_LOG)]
    [InlineData("SECCOMP_FILTER_FLAG_SPEC_ALLOW,SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", FILTER_FLAG_SPEC_ALLOW | FILTER_FLAG_WAIT_KILLABLE_RECV)]
    public void Flags(string? flags, uint expected)
    {
        var spec = Profile("SCMP_ACT_ALLOW");
        spec.Flags = flags is null ? null : flags.Split(',', StringSplitOptions.RemoveEmptyEntries).ToList();
        var result = SeccompCompiler.Compile(spec, SeccompArch.X86_64);
        Assert.Equal(expected, result.Flags);
        Assert.False(result.HasListener);
    }

    [Fact]
    public void ListenerPathAsksForANotifyFd()
    {
        var spec = Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_NOTIFY", "mount"));
        spec.ListenerPath = "/run/agent.sock";
        spec.ListenerMetadata = "meta";
        spec.Flags = ["SECCOMP_FILTER_FLAG_TSYNC"];
        var result = SeccompCompiler.Compile(spec, SeccompArch.X86_64);
        Assert.True(result.HasListener);
        Assert.Equal(FILTER_FLAG_TSYNC | FILTER_FLAG_TSYNC_ESRCH | FILTER_FLAG_NEW_LISTENER, result.Flags);
        Assert.Equal("/run/agent.sock", result.ListenerPath);
        Assert.Equal("meta", result.ListenerMetadata);
    }
}

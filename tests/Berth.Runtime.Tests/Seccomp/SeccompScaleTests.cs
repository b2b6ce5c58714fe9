using Berth.Linux.Seccomp;
using Berth.Oci.Runtime;
using Berth.Runtime.Seccomp;
using OciSeccomp = Berth.Oci.Runtime.Seccomp;
using static Berth.Linux.Seccomp.SeccompAbi;
using static Berth.Runtime.Tests.Seccomp.SeccompCompilerTests;

namespace Berth.Runtime.Tests.Seccomp;

/// <summary>Large profiles: the program fits the kernel's limit and a lookup costs O(log n) instructions.</summary>
public class SeccompScaleTests
{

    private static int Log2Ceil(int n) => n <= 1 ? 0 : 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(n - 1));

    /// <summary>Max instructions run for any nr of each ABI the profile covers.</summary>
    private static int MaxSteps(SockFilter[] program, IEnumerable<(uint Audit, uint Nr)> inputs) =>
        inputs.Max(i => BpfInterpreter.Run(program, i.Audit, i.Nr, [0, 0, 0, 0, 0, 0]).Steps);

    private static IEnumerable<(uint, uint)> X86Inputs()
    {
        for (uint nr = 0; nr < 600; nr++)
        {
            yield return (AUDIT_ARCH_X86_64, nr);
            yield return (AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | nr);
            yield return (AUDIT_ARCH_I386, nr);
        }
        yield return (AUDIT_ARCH_X86_64, uint.MaxValue);
        yield return (AUDIT_ARCH_X86_64, 0x3fff_ffff);
    }

    [Fact]
    public void PodmanDefaultProfileIsSmallAndLogarithmic()
    {
        var spec = SeccompProfiles.Resolve(SeccompProfiles.Default, PodmanDefaultCaps, SeccompArch.X86_64)!;
        var result = SeccompCompiler.Compile(spec, SeccompArch.X86_64);
        BpfInterpreter.Verify(result.Filter);
        Assert.True(result.Filter.Length < 1024, $"{result.Filter.Length} instructions");
        int names = spec.Syscalls!.Sum(s => s.Names.Count);
        Assert.True(names > 350, $"{names} names");
        // three ABIs, each a binary search: arch dispatch (<= 4) + load + tree depth + leaf
        int steps = MaxSteps(result.Filter, X86Inputs().Where(i => i.Item2 != Nr("personality") && i.Item2 != Nr("socket")));
        Assert.True(steps <= 4 + 1 + 2 * Log2Ceil(names) + 1, $"a plain lookup took {steps} instructions");
        Assert.True(steps <= 16, $"a plain lookup took {steps} instructions");
    }

    internal static readonly string[] PodmanDefaultCaps =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
        "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
    ];

    /// <summary>400 syscalls with alternating actions, so no ranges merge: the worst case for the tree.</summary>
    private static OciSeccomp Generated(int count, bool withArgs)
    {
        var rules = new List<SeccompSyscall>();
        var random = new Random(42);
        string[] actions = ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRAP", "SCMP_ACT_KILL_PROCESS"];
        int made = 0;
        for (int nr = 0; made < count && nr < 5000; nr++)
        {
            var arch = made % 2 == 0 ? SeccompArch.X86_64 : SeccompArch.X86;
            string? name = NamesByNumber(arch).GetValueOrDefault(nr % 460);
            if (name is null) continue;
            var rule = new SeccompSyscall { Names = [name], Action = actions[made % actions.Length] };
            if (withArgs && made % 3 == 0)
            {
                rule.Action = "SCMP_ACT_ERRNO";
                rule.ErrnoRet = (uint)(made % 100 + 2);
                rule.Args = [new SeccompArg { Index = (uint)random.Next(6), Op = "SCMP_CMP_GT", Value = (ulong)random.NextInt64() },
                             new SeccompArg { Index = (uint)random.Next(6), Op = "SCMP_CMP_MASKED_EQ", Value = 0xffff_0000_ffff, ValueTwo = 0x1234_0000_0042 }];
            }
            rules.Add(rule);
            made++;
        }
        var spec = new OciSeccomp { DefaultAction = "SCMP_ACT_ERRNO", DefaultErrnoRet = 38, Syscalls = rules };
        spec.Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
        return spec;
    }

    private static readonly Dictionary<SeccompArch, Dictionary<int, string>> _byNumber = [];

    /// <summary>Number -> name for an ABI, from the names any ABI knows (the generated tables are name -> number).</summary>
    internal static Dictionary<int, string> NamesByNumber(SeccompArch arch)
    {
        if (_byNumber.TryGetValue(arch, out var map)) return map;
        map = [];
        foreach (var name in CandidateNames())
        {
            int nr = SyscallTable.Resolve(arch, name);
            if (nr >= 0) map.TryAdd(nr & 0x3fff_ffff, name);
        }
        return _byNumber[arch] = map;
    }

    private static IEnumerable<string> CandidateNames()
    {
        var text = File.ReadAllText(Path.Combine(RepoRoot(), "src/Berth.Linux/Seccomp/SyscallTable.X86_64.g.cs"))
            + File.ReadAllText(Path.Combine(RepoRoot(), "src/Berth.Linux/Seccomp/SyscallTable.Aarch64.g.cs"));
        return System.Text.RegularExpressions.Regex.Matches(text, "\"(\\w+)\" =>").Select(m => m.Groups[1].Value).Distinct();
    }

    internal static string RepoRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "berth.slnx"))) dir = Path.GetDirectoryName(dir);
        return dir ?? throw new InvalidOperationException("repository root not found");
    }

    [Fact]
    public void FourHundredSyscallsFitAndStayLogarithmic()
    {
        var spec = Generated(400, withArgs: false);
        var result = SeccompCompiler.Compile(spec, SeccompArch.X86_64);
        BpfInterpreter.Verify(result.Filter);
        Assert.Empty(result.SkippedSyscalls);
        Assert.True(result.Filter.Length < Bpf.MaxInstructions, $"{result.Filter.Length} instructions");
        int steps = MaxSteps(result.Filter, X86Inputs());
        // ~200 syscalls per ABI, none mergeable: depth ~ log2(400 segments) + trampolines
        Assert.True(steps <= 4 + 1 + 2 * Log2Ceil(800) + 1, $"a lookup took {steps} instructions");
        foreach (var (audit, nr) in X86Inputs())
            Assert.True(SeccompOracle.Evaluate(spec, SeccompArch.X86_64, audit, nr, new ulong[6])
                == BpfInterpreter.Run(result.Filter, audit, nr, new ulong[6]).Action, $"arch 0x{audit:x} nr 0x{nr:x}");
    }

    [Fact]
    public void LongJumpsMatchTheOracleOnRandomInputs()
    {
        var spec = Generated(400, withArgs: true);
        var result = SeccompCompiler.Compile(spec, SeccompArch.X86_64);
        BpfInterpreter.Verify(result.Filter);
        Assert.True(result.Filter.Length > 1000, "the program must be long enough to need BPF_JA trampolines");
        Assert.Contains(result.Filter, i => i.Code == (Bpf.JMP | Bpf.JA));
        var random = new Random(7);
        ulong[] interesting = [0, 0x42, 0x1234_0000_0042, 0x1234_0042_0042, ulong.MaxValue, 0x8000_0000_0000_0000];
        foreach (var (audit, nr) in X86Inputs())
        {
            for (int k = 0; k < 4; k++)
            {
                var args = Enumerable.Range(0, 6).Select(_ => random.Next(3) == 0 ? (ulong)random.NextInt64() * 2 : interesting[random.Next(interesting.Length)]).ToArray();
                Assert.Equal(SeccompOracle.Evaluate(spec, SeccompArch.X86_64, audit, nr, args),
                    BpfInterpreter.Run(result.Filter, audit, nr, args).Action);
            }
        }
    }

    [Fact]
    public void TooLargeAProgramIsRejected()
    {
        var rules = new List<SeccompSyscall>();
        foreach (var name in NamesByNumber(SeccompArch.X86_64).Values.Take(300))
            rules.Add(new SeccompSyscall
            {
                Names = [name], Action = "SCMP_ACT_ALLOW",
                Args = [.. Enumerable.Range(0, 6).Select(i => new SeccompArg { Index = (uint)i, Op = "SCMP_CMP_LT", Value = 1ul << 40 })],
            });
        var spec = new OciSeccomp { DefaultAction = "SCMP_ACT_ERRNO", Syscalls = rules };
        var ex = Assert.Throws<SeccompProfileException>(() => SeccompCompiler.Compile(spec, SeccompArch.X86_64));
        Assert.Contains("4096", ex.Message);
    }
}

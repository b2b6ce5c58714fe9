using Berth.Linux.Seccomp;
using Berth.Oci.Seccomp;
using Berth.Runtime.Seccomp;
using static Berth.Linux.Seccomp.SeccompAbi;
using static Berth.Runtime.Tests.Seccomp.SeccompCompilerTests;

namespace Berth.Runtime.Tests.Seccomp;

public class SeccompProfilesTests
{
    private static SeccompProfile Small() =>
        SeccompProfiles.Load(Path.Combine(SeccompScaleTests.RepoRoot(), "tests/Berth.Runtime.Tests/Seccomp/profiles/small.json"));

    private static List<string> Names(Oci.Runtime.Seccomp spec) => spec.Syscalls!.SelectMany(s => s.Names.Select(n => $"{n}:{s.Action}")).ToList();

    [Fact]
    public void ArchMapPicksTheHostAndItsCompatAbis()
    {
        var x86 = SeccompProfiles.Resolve(Small(), [], SeccompArch.X86_64)!;
        Assert.Equal(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], x86.Architectures);
        var arm = SeccompProfiles.Resolve(Small(), [], SeccompArch.Aarch64)!;
        Assert.Equal(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"], arm.Architectures);
        Assert.Equal("SCMP_ACT_ERRNO", x86.DefaultAction);
        Assert.Equal(38u, x86.DefaultErrnoRet);
    }

    [Fact]
    public void NameAndNamesBothBecomeNames()
    {
        var names = Names(SeccompProfiles.Resolve(Small(), [], SeccompArch.X86_64)!);
        Assert.Contains("getpid:SCMP_ACT_ALLOW", names);
        Assert.Contains("read:SCMP_ACT_ALLOW", names);
    }

    [Fact]
    public void ArchIncludesAndExcludesUseGoNames()
    {
        var x86 = Names(SeccompProfiles.Resolve(Small(), [], SeccompArch.X86_64)!);
        Assert.Contains("arch_prctl:SCMP_ACT_ALLOW", x86);
        Assert.Contains("fadvise64:SCMP_ACT_ALLOW", x86);
        var arm = Names(SeccompProfiles.Resolve(Small(), [], SeccompArch.Aarch64)!);
        Assert.DoesNotContain("arch_prctl:SCMP_ACT_ALLOW", arm);
        Assert.DoesNotContain("fadvise64:SCMP_ACT_ALLOW", arm);
    }

    [Fact]
    public void CapIncludesNeedEveryCapAndExcludesAnyCap()
    {
        var none = Names(SeccompProfiles.Resolve(Small(), ["CAP_CHOWN"], SeccompArch.X86_64)!);
        Assert.Contains("bpf:SCMP_ACT_ERRNO", none);
        Assert.DoesNotContain("bpf:SCMP_ACT_ALLOW", none);
        Assert.DoesNotContain("kcmp:SCMP_ACT_ALLOW", none);

        var admin = Names(SeccompProfiles.Resolve(Small(), ["CAP_SYS_ADMIN"], SeccompArch.X86_64)!);
        Assert.Contains("bpf:SCMP_ACT_ALLOW", admin);
        Assert.DoesNotContain("bpf:SCMP_ACT_ERRNO", admin);
        Assert.DoesNotContain("kcmp:SCMP_ACT_ALLOW", admin); // needs CAP_SYS_PTRACE too

        var both = Names(SeccompProfiles.Resolve(Small(), ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"], SeccompArch.X86_64)!);
        Assert.Contains("kcmp:SCMP_ACT_ALLOW", both);

        // no capability information: containers/common keeps every rule
        var unknown = Names(SeccompProfiles.Resolve(Small(), null, SeccompArch.X86_64)!);
        Assert.Contains("bpf:SCMP_ACT_ALLOW", unknown);
        Assert.Contains("bpf:SCMP_ACT_ERRNO", unknown);
    }

    [Fact]
    public void MinKernel()
    {
        var old = Names(SeccompProfiles.Resolve(Small(), [], SeccompArch.X86_64, new Version(5, 2))!);
        Assert.DoesNotContain("clone3:SCMP_ACT_ALLOW", old);
        Assert.Contains("io_uring_setup:SCMP_ACT_ERRNO", old);
        var recent = Names(SeccompProfiles.Resolve(Small(), [], SeccompArch.X86_64, new Version(6, 1))!);
        Assert.Contains("clone3:SCMP_ACT_ALLOW", recent);
        Assert.DoesNotContain("io_uring_setup:SCMP_ACT_ERRNO", recent);
        var unknown = Names(SeccompProfiles.Resolve(Small(), [], SeccompArch.X86_64)!);
        Assert.Contains("clone3:SCMP_ACT_ALLOW", unknown);
    }

    [Fact]
    public void ResolvedProfileCompilesAndBehaves()
    {
        var spec = SeccompProfiles.Resolve(Small(), ["CAP_CHOWN"], SeccompArch.X86_64, new Version(6, 1))!;
        var program = Compile(spec);
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, Nr("getpid")).Action);
        Assert.Equal(RET_ERRNO | 1, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, Nr("bpf")).Action);
        Assert.Equal(RET_ERRNO | 38, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, Nr("mount")).Action);
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, Nr("personality"), 8).Action);
        Assert.Equal(RET_ERRNO | 38, BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, Nr("personality"), 9).Action);
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(program, AUDIT_ARCH_I386, Nr("getpid", SeccompArch.X86)).Action);
    }

    [Fact]
    public void MalformedProfilesAreRejected()
    {
        var both = SeccompProfiles.Parse("""{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"""u8, "p.json");
        Assert.Contains("archMap", Assert.Throws<SeccompProfileException>(() => SeccompProfiles.Resolve(both, [], SeccompArch.X86_64)).Message);
        var twoNames = SeccompProfiles.Parse("""{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ERRNO"}]}"""u8, "p.json");
        Assert.Contains("syscalls[0]", Assert.Throws<SeccompProfileException>(() => SeccompProfiles.Resolve(twoNames, [], SeccompArch.X86_64)).Message);
        Assert.Contains("p.json", Assert.Throws<SeccompProfileException>(() => SeccompProfiles.Parse("""{"defaultAction": 3}"""u8, "p.json")).Message);
        Assert.Null(SeccompProfiles.Resolve(new SeccompProfile(), [], SeccompArch.X86_64));
    }
}

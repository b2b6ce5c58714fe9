using Berth.Linux.Seccomp;
using Berth.Runtime.Seccomp;
using static Berth.Linux.Seccomp.SeccompAbi;
using static Berth.Runtime.Tests.Seccomp.SeccompCompilerTests;

namespace Berth.Runtime.Tests.Seccomp;

/// <summary>
/// berth's default profile (podman's, embedded) under podman's default capabilities, and the host's
/// /usr/share/containers/seccomp.json when installed. Scripts that install that file set
/// BERTH_REQUIRE_PODMAN_PROFILE=1 so that its absence fails instead of passing quietly.
/// </summary>
public class PodmanProfileTests
{
    private const string HostProfile = "/usr/share/containers/seccomp.json";
    private const uint ENOSYS = 38, EPERM = 1, EINVAL = 22;

    private static SockFilter[] DefaultProgram(IReadOnlyCollection<string> caps) =>
        Compile(SeccompProfiles.Resolve(SeccompProfiles.Default, caps, SeccompArch.X86_64, new Version(6, 1))!);

    private static uint Run(SockFilter[] p, string name, params ulong[] args) =>
        BpfInterpreter.Run(p, AUDIT_ARCH_X86_64, Nr(name), args).Action;

    [Fact]
    public void DefaultProfileBehavesLikePodmans()
    {
        var p = DefaultProgram(SeccompScaleTests.PodmanDefaultCaps);
        foreach (var ok in new[] { "read", "openat", "execve", "clone", "chmod", "unshare", "mount", "keyctl", "ptrace", "chroot", "setns" })
            Assert.True(Run(p, ok) == RET_ALLOW, ok);
        Assert.Equal(RET_ERRNO | EPERM, Run(p, "bpf"));
        Assert.Equal(RET_ERRNO | EPERM, Run(p, "kexec_load"));
        Assert.Equal(RET_ERRNO | EPERM, Run(p, "perf_event_open"));
        Assert.Equal(RET_ERRNO | ENOSYS, Run(p, "io_uring_setup"));
        Assert.Equal(RET_ERRNO | ENOSYS, BpfInterpreter.Run(p, AUDIT_ARCH_X86_64, 1000).Action);
        Assert.Equal(RET_ALLOW, Run(p, "personality", 0));
        Assert.Equal(RET_ALLOW, Run(p, "personality", 0xffffffff));
        Assert.Equal(RET_ERRNO | ENOSYS, Run(p, "personality", 1));
        Assert.Equal(RET_ERRNO | EINVAL, Run(p, "socket", 16, 3, 9)); // AF_NETLINK, NETLINK_AUDIT
        Assert.Equal(RET_ALLOW, Run(p, "socket", 16, 3, 0));
        Assert.Equal(RET_ALLOW, Run(p, "socket", 40, 1, 0)); // AF_VSOCK: allowed by this profile version
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(p, AUDIT_ARCH_I386, Nr("_llseek", SeccompArch.X86)).Action);
        Assert.Equal(RET_ALLOW, BpfInterpreter.Run(p, AUDIT_ARCH_X86_64, Nr("read", SeccompArch.X32)).Action);
        Assert.Equal(RET_KILL_THREAD, BpfInterpreter.Run(p, AUDIT_ARCH_AARCH64, 63).Action);
    }

    [Fact]
    public void CapabilitiesOpenTheirSyscalls()
    {
        var p = DefaultProgram([.. SeccompScaleTests.PodmanDefaultCaps, "CAP_SYS_ADMIN", "CAP_AUDIT_WRITE"]);
        Assert.Equal(RET_ALLOW, Run(p, "bpf"));
        Assert.Equal(RET_ALLOW, Run(p, "socket", 16, 3, 9));
        var noChroot = DefaultProgram(["CAP_CHOWN"]);
        Assert.Equal(RET_ERRNO | EPERM, Run(noChroot, "chroot"));
    }

    [Fact]
    public void HostProfileCompilesWhenInstalled()
    {
        if (!File.Exists(HostProfile))
        {
            Assert.True(Environment.GetEnvironmentVariable("BERTH_REQUIRE_PODMAN_PROFILE") != "1",
                $"{HostProfile} is missing: apt-get install -y golang-github-containers-common");
            return;
        }
        var spec = SeccompProfiles.Resolve(SeccompProfiles.Load(HostProfile), SeccompScaleTests.PodmanDefaultCaps, SeccompArch.X86_64)!;
        var program = Compile(spec);
        Assert.InRange(program.Length, 1, Bpf.MaxInstructions - 1);
        int steps = Enumerable.Range(0, 500).Max(nr => BpfInterpreter.Run(program, AUDIT_ARCH_X86_64, (uint)nr, new ulong[6]).Steps);
        Assert.True(steps <= 24, $"a lookup took {steps} instructions");
    }
}

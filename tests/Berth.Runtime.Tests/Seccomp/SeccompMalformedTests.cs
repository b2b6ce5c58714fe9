using Berth.Linux.Seccomp;
using Berth.Oci.Runtime;
using Berth.Runtime.Seccomp;
using static Berth.Runtime.Tests.Seccomp.SeccompCompilerTests;

namespace Berth.Runtime.Tests.Seccomp;

public class SeccompMalformedTests
{
    private static string Reject(Oci.Runtime.Seccomp spec) =>
        Assert.Throws<SeccompProfileException>(() => SeccompCompiler.Compile(spec, SeccompArch.X86_64)).Message;

    [Fact]
    public void UnknownActionNamesTheEntry()
    {
        var msg = Reject(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", "read"), Rule("SCMP_ACT_EXPLODE", "mount")));
        Assert.Contains("syscalls[1] (mount)", msg);
        Assert.Contains("SCMP_ACT_EXPLODE", msg);
        Assert.Contains("defaultAction", Reject(Profile("ALLOW")));
    }

    [Fact]
    public void BadOpNamesTheArg()
    {
        var msg = Reject(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", "socket", null, Arg(0, "SCMP_CMP_EQ", 1), Arg(1, "SCMP_CMP_SORTOF", 2))));
        Assert.Contains("syscalls[0] (socket): args[1]", msg);
        Assert.Contains("SCMP_CMP_SORTOF", msg);
    }

    [Fact]
    public void IndexAboveFiveIsRejected()
    {
        var msg = Reject(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", "socket", null, Arg(6, "SCMP_CMP_EQ", 1))));
        Assert.Contains("syscalls[0] (socket): args[0]: index 6", msg);
    }

    [Fact]
    public void UnknownArchitectureIsRejected()
    {
        var spec = Profile("SCMP_ACT_ALLOW");
        spec.Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"];
        Assert.Contains("architectures[1]: unknown architecture \"SCMP_ARCH_Z80\"", Reject(spec));
    }

    [Fact]
    public void UnknownFlagIsRejected()
    {
        var spec = Profile("SCMP_ACT_ALLOW");
        spec.Flags = ["SECCOMP_FILTER_FLAG_FAST"];
        Assert.Contains("flags[0]", Reject(spec));
    }

    [Fact]
    public void ErrnoRetOnlyWithErrnoOrTrace()
    {
        Assert.Contains("syscalls[0] (read): errnoRet", Reject(Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", "read", 1))));
        var spec = Profile("SCMP_ACT_ALLOW");
        spec.DefaultErrnoRet = 1;
        Assert.Contains("defaultAction: errnoRet", Reject(spec));
        Assert.Contains("16 bits", Reject(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", "read", 70000))));
    }

    [Fact]
    public void NotifyNeedsAListenerAndCannotBeTheDefault()
    {
        Assert.Contains("listenerPath", Reject(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_NOTIFY", "mount"))));
        var spec = Profile("SCMP_ACT_NOTIFY");
        spec.ListenerPath = "/run/x.sock";
        Assert.Contains("default action", Reject(spec));
    }

    [Fact]
    public void RuleWithoutNamesIsRejected()
    {
        Assert.Contains("syscalls[0]", Reject(Profile("SCMP_ACT_ALLOW", new SeccompSyscall { Names = [], Action = "SCMP_ACT_ERRNO" })));
    }
}

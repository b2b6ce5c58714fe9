using Berth.Oci.Runtime;
using Berth.Runtime.Init;
using Berth.Runtime.Lifecycle;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Tests.Lifecycle;

/// <summary>Which init plans the jail stub builds (docs/adr/0016), and what decides a batch slot's template jail. Pure.</summary>
public class StubJailTests
{
    /// <summary>A sandbox-like plan: an unprivileged user, no capabilities, no_new_privs.</summary>
    private static InitPlan Plan(Action<Oci.Runtime.Spec>? edit = null)
    {
        var spec = DefaultSpec.Create(rootless: false);
        var p = spec.Process!;
        p.User = new User { Uid = 65534, Gid = 65534 };
        p.Capabilities = new Capabilities { Bounding = [], Effective = [], Permitted = [], Inheritable = [], Ambient = [] };
        p.NoNewPrivileges = true;
        p.Terminal = false;
        spec.Mounts!.RemoveAll(m => m.Type == "cgroup");
        edit?.Invoke(spec);
        return PlanBuilder.Build(spec, "j1", "/b", "/b/rootfs", new PlanBuilder.Options { FifoPath = "/run/berth/j1/exec.fifo", LastCap = 40 });
    }

    [Fact]
    public void A_sandbox_like_plan_is_supported()
    {
        Assert.Null(StubJail.Unsupported(Plan()));
    }

    [Fact]
    public void What_only_the_runtime_init_does_is_refused_by_name()
    {
        Assert.Contains("uid 0", StubJail.Unsupported(Plan(s => s.Process!.User = new User { Uid = 0, Gid = 0 })));
        Assert.Contains("capabilities", StubJail.Unsupported(Plan(s => s.Process!.Capabilities!.Bounding = ["CAP_CHOWN"])));
        Assert.Contains("terminal", StubJail.Unsupported(Plan(s => s.Process!.Terminal = true)));
        Assert.Contains("user namespaces", StubJail.Unsupported(Plan(s =>
        {
            s.Linux!.Namespaces!.Add(new LinuxNamespace { Type = "user" });
            s.Linux.UidMappings = [new IdMapping { ContainerID = 0, HostID = 100000, Size = 65536 }];
            s.Linux.GidMappings = [new IdMapping { ContainerID = 0, HostID = 100000, Size = 65536 }];
        })));
        Assert.Contains("sysctls", StubJail.Unsupported(Plan(s => s.Linux!.Sysctl = new Dictionary<string, string> { ["net.ipv4.ip_forward"] = "1" })));
        Assert.Contains("cgroup mounts", StubJail.Unsupported(Plan(s => s.Mounts!.Add(new Mount { Destination = "/sys/fs/cgroup", Type = "cgroup", Source = "cgroup" }))));
        Assert.Contains("pid namespace", StubJail.Unsupported(Plan(s => s.Linux!.Namespaces!.RemoveAll(n => n.Type == "pid"))));
    }

    [Fact]
    public void The_template_key_ignores_the_process_and_follows_the_jail()
    {
        var a = StubJail.TemplateKey(Plan(s => s.Process!.Args = ["/bin/a"]));
        var b = StubJail.TemplateKey(Plan(s => { s.Process!.Args = ["/bin/b", "x"]; s.Process.Env = ["A=1"]; s.Process.Cwd = "/tmp"; }));
        Assert.Equal(a, b);
        Assert.NotEqual(a, StubJail.TemplateKey(Plan(s => s.Mounts!.Add(new Mount { Destination = "/data", Type = "bind", Source = "/srv", Options = ["rbind", "ro"] }))));
        Assert.NotEqual(a, StubJail.TemplateKey(Plan(s => s.Hostname = "other")));
        Assert.NotEqual(a, StubJail.TemplateKey(Plan(s => s.Linux!.Namespaces!.RemoveAll(n => n.Type == "network"))));
        Assert.NotEqual(a, StubJail.TemplateKey(Plan(s => s.Process!.User = new User { Uid = 1000, Gid = 1000 })));
    }
}

using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>Namespaces, hostname, PID 1, pivoted and read-only root.</summary>
public sealed class IsolationTests(TestEnvironment env) : IntegrationTest(env)
{
    private static readonly string[] NewNamespaces = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];

    [Fact]
    public void Namespaces_differ_from_the_hosts()
    {
        var c = NewContainer();
        c.Sh("for n in pid net ipc uts mnt cgroup user; do echo \"$n=$(readlink /proc/self/ns/$n)\"; done");
        string output = c.RunOk();

        var inside = Lines(output).Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        var host = Kernel.HostNamespaces();
        foreach (var ns in NewNamespaces)
        {
            Assert.True(inside.TryGetValue(ns, out var link) && link.StartsWith(ns == "mnt" ? "mnt:[" : ns + ":[", StringComparison.Ordinal),
                $"no {ns} namespace link inside:\n{output}");
            Assert.NotEqual(host[ns], link);
        }
        // The default config asks for no user namespace: that one must be the host's.
        Assert.Equal(host["user"], inside["user"]);
    }

    [Fact]
    public void Hostname_is_set_in_the_containers_uts_namespace_only()
    {
        string hostBefore = File.ReadAllText("/proc/sys/kernel/hostname").Trim();
        var c = NewContainer();
        c.Config["hostname"] = "bt-uts-probe";
        c.Sh("hostname; cat /proc/sys/kernel/hostname");
        Assert.Equal(["bt-uts-probe", "bt-uts-probe"], Lines(c.RunOk()));
        Assert.Equal(hostBefore, File.ReadAllText("/proc/sys/kernel/hostname").Trim());
    }

    [Fact]
    public void Process_is_pid_1()
    {
        var c = NewContainer();
        c.Sh("echo $$; cat /proc/1/cmdline | tr '\\0' ' '");
        var lines = Lines(c.RunOk());
        Assert.Equal("1", lines[0]);
        Assert.StartsWith("sh -c", lines[1]);
    }

    [Fact]
    public void Root_is_pivoted_to_the_bundle_rootfs()
    {
        var c = NewContainer();
        string planted = "planted-" + c.Id;
        File.WriteAllText(Path.Combine(c.RootFs, planted), "x");
        c.Sh($"cat /proc/1/mountinfo; echo ===; ls /; echo ===; [ -e /{planted} ] && echo PLANTED; [ -e /work ] || [ -e {c.BundleDir} ] && echo HOST-VISIBLE; true");
        var parts = c.RunOk().Split("===\n");

        var mounts = Kernel.ParseMountInfo(parts[0]);
        var root = mounts.LastOrDefault(m => m.MountPoint == "/");
        Assert.True(root is not null, "no mount at / in /proc/1/mountinfo:\n" + parts[0]);
        // The root field is the rootfs path inside its filesystem (the whole path when /tmp is on /).
        Assert.True(root.Root.EndsWith("/bundle/rootfs", StringComparison.Ordinal) && c.RootFs.EndsWith(root.Root, StringComparison.Ordinal),
            $"/ is mounted from '{root.Root}', not from {c.RootFs}:\n{parts[0]}");
        Assert.Contains("PLANTED", parts[2]);
        Assert.DoesNotContain("HOST-VISIBLE", parts[2]);
        Assert.Contains("bin", Lines(parts[1]));
    }

    [Fact]
    public void Readonly_root_refuses_writes()
    {
        var c = NewContainer();
        c.ReadonlyRoot(true);
        c.Sh("if touch /probe 2>/dev/null; then echo WROTE; else echo DENIED; fi; awk '$5 == \"/\"' /proc/self/mountinfo");
        var lines = Lines(c.RunOk());
        Assert.Equal("DENIED", lines[0]);
        Assert.False(File.Exists(Path.Combine(c.RootFs, "probe")));
        var root = Kernel.ParseMountInfo(string.Join('\n', lines.Skip(1))).Single();
        Assert.Contains("ro", root.Options.Split(','));
    }

    [Fact]
    public void Writable_root_accepts_writes_that_land_in_the_bundle()
    {
        var c = NewContainer();
        c.ReadonlyRoot(false);
        c.Sh("if echo hello > /probe; then echo WROTE; else echo DENIED; fi");
        Assert.Equal("WROTE", c.RunOk().Trim());
        Assert.Equal("hello\n", File.ReadAllText(Path.Combine(c.RootFs, "probe")));
    }
}

using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>Devices, joined namespaces, sysctls, in-container hooks and crash recovery.</summary>
public sealed class RuntimeFeatureTests(TestEnvironment env) : IntegrationTest(env)
{
    private static JsonObject Device(string path, long major, long minor) =>
        new() { ["path"] = path, ["type"] = "c", ["major"] = major, ["minor"] = minor, ["fileMode"] = 438 };

    [Fact]
    public void Devices_are_created_and_the_device_cgroup_enforces_the_rules()
    {
        var c = NewContainer();
        c.Linux["devices"] = new JsonArray(Device("/dev/mynull", 1, 3), Device("/dev/myzero", 1, 5));
        // The bundle's spec starts with deny-all; the spec's own rule for 1:3 allows mynull,
        // and /dev/myzero (1:5) is allowed by the default list, so deny it explicitly last.
        c.Resources["devices"] = new JsonArray(
            new JsonObject { ["allow"] = false, ["access"] = "rwm" },
            new JsonObject { ["allow"] = true, ["type"] = "c", ["major"] = 1, ["minor"] = 3, ["access"] = "rw" });
        c.Sh("ls -l /dev/mynull /dev/myzero | cut -c1-10; echo hi > /dev/mynull && echo WROTE-NULL; " +
             "head -c 1 /dev/myzero > /dev/null 2>&1 && echo READ-ZERO || echo ZERO-READABLE-$?");
        var stdout = c.RunOk();
        var lines = Lines(stdout);
        Assert.All(lines.Take(2), l => Assert.StartsWith("crw-rw-rw-", l));
        Assert.Contains("WROTE-NULL", lines);
        // 1:5 is in the default allow list, which the runtime appends (as runc does): readable.
        Assert.Contains("READ-ZERO", lines);
    }

    [Fact]
    public void Device_outside_the_allow_list_is_refused_by_the_kernel()
    {
        // mknod is allowed ("c *:* m" is in the default list), opening c 1:11 (/dev/kmsg) is not.
        var c = NewContainer();
        c.ReadonlyRoot(false);
        c.Resources["devices"] = new JsonArray(new JsonObject { ["allow"] = false, ["access"] = "rwm" });
        string[] capable = ["CAP_MKNOD", "CAP_DAC_OVERRIDE"];
        c.Capabilities(capable, capable, capable, [], []);
        c.Sh("mknod /tmp/kmsg c 1 11 && echo MADE; head -c 1 /tmp/kmsg > /dev/null; echo rc=$?");
        var r = c.Run();
        Assert.Contains("MADE", r.Stdout);
        Assert.Contains("Operation not permitted", r.Stderr);
        Assert.Contains("rc=1", r.Stdout);
    }

    [Fact]
    public void Namespaces_joined_by_path_are_shared()
    {
        var a = NewContainer("a");
        a.Args("sleep", "60");
        a.CreateOk();
        int pidA = a.Pid();

        var b = NewContainer("b");
        b.RemoveNamespace("network").AddNamespace("network", $"/proc/{pidA}/ns/net");
        b.RemoveNamespace("ipc").AddNamespace("ipc", $"/proc/{pidA}/ns/ipc");
        b.Sh("readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid");
        var lines = Lines(b.RunOk());
        Assert.Equal(Kernel.NsLink(pidA, "net"), lines[0]);
        Assert.Equal(Kernel.NsLink(pidA, "ipc"), lines[1]);
        Assert.NotEqual(Kernel.NsLink(pidA, "pid"), lines[2]); // not joined: its own
    }

    [Fact]
    public void Sysctl_is_set_in_the_containers_network_namespace()
    {
        var c = NewContainer();
        c.Linux["sysctl"] = new JsonObject { ["net.ipv4.ip_forward"] = "1", ["kernel.shmmax"] = "12345678" };
        c.Sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax");
        var lines = Lines(c.RunOk());
        Assert.Equal(["1", "12345678"], lines);
        Assert.NotEqual("12345678", File.ReadAllText("/proc/sys/kernel/shmmax").Trim());
    }

    [Fact]
    public void CreateContainer_and_startContainer_hooks_run_in_the_container()
    {
        var c = NewContainer();
        c.ReadonlyRoot(false);
        // createContainer runs in the container's mount namespace before pivot_root (host paths),
        // startContainer after it (paths inside the container), both with the state on stdin.
        string created = Path.Combine(c.WorkDir, "created.json");
        string hook = c.HostScript("cc.sh", $"cat > {created}; readlink /proc/self/ns/mnt >> {created}.ns");
        c.AddHook("createContainer", hook);
        c.AddHook("startContainer", "/bin/sh", ["sh", "-c", "cat > /started.json"]);
        c.Args("sleep", "60");
        c.CreateOk();
        int pid = c.Pid();
        var state = JsonNode.Parse(TestContainer.WaitForFile(created))!.AsObject();
        Assert.Equal(c.Id, (string?)state["id"]);
        Assert.Equal(Kernel.NsLink(pid, "mnt"), File.ReadAllText(created + ".ns").Trim());
        Assert.False(File.Exists(Path.Combine(c.RootFs, "started.json")));
        c.StartOk();
        var started = JsonNode.Parse(TestContainer.WaitForFile(Path.Combine(c.RootFs, "started.json")))!.AsObject();
        Assert.Equal(c.Id, (string?)started["id"]);
        Assert.Equal(pid, (int)started["pid"]!);
    }

    /// <summary>
    /// The runtime dies in the middle of create (a createRuntime hook SIGKILLs it): the container
    /// is left half-made, and `delete --force` removes its processes, cgroup and state.
    /// </summary>
    [Fact]
    public void Runtime_crash_during_create_is_cleaned_up_by_delete_force()
    {
        var c = NewContainer();
        c.AddHook("createRuntime", "/bin/sh", ["sh", "-c", "kill -9 $PPID"]);
        c.Args("sleep", "60");
        var r = c.Create();
        Assert.NotEqual(0, r.ExitCode);
        Assert.True(Directory.Exists(Path.Combine(c.StateRoot, c.Id)), "the crash should leave state behind:\n" + r);
        var del = c.Delete(force: true);
        Assert.True(del.Succeeded, del.ToString());
        c.AssertNoLeaks("after delete --force of a crashed create");
    }
}

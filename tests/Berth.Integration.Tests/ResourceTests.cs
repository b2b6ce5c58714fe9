using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>linux.resources reach the cgroup files, and the kernel enforces them.</summary>
public sealed class ResourceTests(TestEnvironment env) : IntegrationTest(env)
{
    private const long Mib = 1024 * 1024;

    [Fact]
    public void Limits_are_written_to_the_containers_cgroups()
    {
        var c = NewContainer();
        c.Resources["memory"] = new JsonObject { ["limit"] = 64 * Mib };
        c.Resources["pids"] = new JsonObject { ["limit"] = 77 };
        c.Resources["cpu"] = new JsonObject { ["shares"] = 512, ["quota"] = 50000, ["period"] = 100000 };
        c.Args("sleep", "60");
        int pid = c.CreateAndStart();

        string memory = Kernel.CgroupV1Dir(pid, "memory");
        Assert.Contains(c.Id, memory); // its own cgroup, not the caller's
        Assert.Equal((64 * Mib).ToString(), ReadCg(memory, "memory.limit_in_bytes"));
        Assert.Contains(pid.ToString(), Lines(ReadCg(memory, "cgroup.procs")));
        Assert.Equal("77", ReadCg(Kernel.CgroupV1Dir(pid, "pids"), "pids.max"));
        string cpu = Kernel.CgroupV1Dir(pid, "cpu");
        Assert.Equal("512", ReadCg(cpu, "cpu.shares"));
        Assert.Equal("50000", ReadCg(cpu, "cpu.cfs_quota_us"));
        Assert.Equal("100000", ReadCg(cpu, "cpu.cfs_period_us"));

        Assert.True(c.Kill("KILL").Succeeded);
        c.WaitForStatus("stopped");
        var del = c.Delete();
        Assert.True(del.Succeeded, del.ToString());
        Assert.False(Directory.Exists(memory), $"{memory} survived delete");
        c.AssertNoLeaks("after delete");
    }

    [Fact]
    public void Over_limit_process_is_oom_killed()
    {
        var c = NewContainer();
        c.Resources["memory"] = new JsonObject { ["limit"] = 32 * Mib, ["swap"] = 32 * Mib };
        // awk doubles a string in its own memory (user page faults): the memory cgroup must
        // OOM-kill it (SIGKILL, 137) rather than let it grow past the limit.
        c.Sh("awk 'BEGIN { s = \"x\"; while (1) s = s s }'; echo AWK-EXIT=$?");
        var r = c.Run();
        Assert.False(r.TimedOut, r.ToString());
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("AWK-EXIT=137", Lines(r.Stdout).Single());
        c.AssertNoLeaks("after the OOM-killed run");
    }

    private const string ForkLoop =
        "i=0; while [ $i -lt 40 ]; do sleep 2 & i=$((i+1)); done; echo SPAWNED-ALL";

    /// <summary>busybox sh exits when fork fails, so look for what did not happen (host-notes).</summary>
    [Fact]
    public void Pids_limit_stops_a_fork_bomb()
    {
        var c = NewContainer();
        c.Resources["pids"] = new JsonObject { ["limit"] = 10 };
        c.Sh(ForkLoop);
        var r = c.Run();
        Assert.False(r.TimedOut, r.ToString());
        Assert.DoesNotContain("SPAWNED-ALL", r.Stdout);
        Assert.NotEqual(0, r.ExitCode);
        c.AssertNoLeaks("after the fork bomb");
    }

    [Fact]
    public void Pids_limit_control_without_a_tight_limit_spawns_all()
    {
        var c = NewContainer();
        c.Resources["pids"] = new JsonObject { ["limit"] = 200 };
        c.Sh(ForkLoop);
        Assert.Contains("SPAWNED-ALL", c.RunOk());
    }

    private static string ReadCg(string dir, string file) => File.ReadAllText(Path.Combine(dir, file)).Trim();
}

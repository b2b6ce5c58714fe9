using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>`berth run IMAGE`: the default image, an overlay rootfs, the runtime in-process; ps and rm.</summary>
public sealed class EngineRunTests(TestEnvironment env) : IntegrationTest(env)
{
    private string Berth => Path.Combine(Path.GetDirectoryName(Env.RuntimePath)!, "berth");

    private ProcResult Engine(string storage, params string[] args) =>
        ProcessRunner.Run(Berth, ["--storage", storage, .. args], Path.Combine(storage, "cmds"));

    [Fact]
    public void Run_rm_ps_and_rm_with_the_default_image()
    {
        string storage = Directory.CreateTempSubdirectory("berth-engine-it.").FullName;
        try
        {
            var r = Engine(storage, "run", "--rm", "berth.local/busybox", "sh", "-c",
                "echo hello; grep -E '^Seccomp:' /proc/self/status; readlink /proc/self/ns/net; exit 3");
            Assert.Equal(3, r.ExitCode);
            var lines = Lines(r.Stdout);
            Assert.Equal("hello", lines[0]);
            Assert.Equal("Seccomp:\t2", lines[1]);
            Assert.NotEqual(new FileInfo("/proc/self/ns/net").LinkTarget, lines[2]);
            Assert.Empty(Directory.GetDirectories(Path.Combine(storage, "containers")));

            var keep = Engine(storage, "run", "--name", "keep", "berth.local/busybox", "sh", "-c", "echo data > /file");
            Assert.True(keep.Succeeded, keep.ToString());
            var rmi = Engine(storage, "rmi", "berth.local/busybox");
            Assert.NotEqual(0, rmi.ExitCode); // used by "keep"
            Assert.True(Engine(storage, "image", "prune").Succeeded);
            var psj = Engine(storage, "ps", "-a", "--format", "json");
            var arr = System.Text.Json.Nodes.JsonNode.Parse(psj.Stdout)!.AsArray();
            Assert.Equal("keep", (string?)arr.Single()!["Names"]![0]);
            Assert.Equal("exited", (string?)arr.Single()!["State"]);
            var ps = Engine(storage, "ps", "-a");
            Assert.Contains(Lines(ps.Stdout), l => l.EndsWith("keep", StringComparison.Ordinal) && l.Contains("exited (0)"));
            // The write went to the container's upper dir, not the image's layers.
            var upper = Directory.GetDirectories(Path.Combine(storage, "containers")).Single();
            Assert.Equal("data\n", File.ReadAllText(Path.Combine(upper, "upper", "file")));

            var bg = Engine(storage, "run", "-d", "--name", "bg", "berth.local/busybox", "sleep", "60");
            Assert.True(bg.Succeeded, bg.ToString());
            Assert.NotEqual(0, Engine(storage, "rm", "bg").ExitCode); // running: needs --force
            Assert.True(Engine(storage, "rm", "-f", "bg", "keep").Succeeded);
            Assert.Empty(Directory.GetDirectories(Path.Combine(storage, "containers")));
            Assert.DoesNotContain(storage, File.ReadAllText("/proc/self/mountinfo"));
        }
        finally
        {
            foreach (var line in File.ReadAllLines("/proc/self/mountinfo"))
                if (line.Split(' ')[4].StartsWith(storage, StringComparison.Ordinal))
                    ProcessRunner.Host("umount", "-l", line.Split(' ')[4]);
            try { Directory.Delete(storage, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public void Exec_and_stop_a_detached_container()
    {
        string storage = Directory.CreateTempSubdirectory("berth-engine-it.").FullName;
        try
        {
            Assert.True(Engine(storage, "run", "-d", "--name", "web", "berth.local/busybox", "sleep", "60").Succeeded);
            var inspect = Engine(storage, "inspect", "web");
            Assert.True(inspect.Succeeded, inspect.ToString());
            var doc = System.Text.Json.Nodes.JsonNode.Parse(inspect.Stdout)!.AsArray().Single()!;
            Assert.Equal("/web", (string?)doc["Name"]);
            Assert.True((bool)doc["State"]!["Running"]!);
            Assert.Equal(["60"], doc["Args"]!.AsArray().Select(a => (string?)a));
            Assert.True(Directory.Exists((string?)doc["GraphDriver"]!["Data"]!["MergedDir"]));
            var top = Engine(storage, "top", "web");
            Assert.True(top.Succeeded, top.ToString());
            Assert.Contains(Lines(top.Stdout), l => l.Contains("sleep 60"));
            var stats = Engine(storage, "stats", "--no-stream", "web");
            Assert.True(stats.Succeeded, stats.ToString());
            var sdoc = System.Text.Json.Nodes.JsonNode.Parse(Lines(stats.Stdout)[0])!;
            Assert.True((long)sdoc["data"]!["memory"]!["usage"]!["usage"]! > 0);
            var ex = Engine(storage, "exec", "-e", "X=1", "web", "sh", "-c", "echo in-$X; exit 4");
            Assert.Equal(4, ex.ExitCode);
            Assert.Equal("in-1", ex.Stdout.Trim());
            // PID 1 ignores SIGTERM without a handler: stop must fall back to SIGKILL after the grace period.
            var started = DateTime.UtcNow;
            Assert.True(Engine(storage, "stop", "-t", "1", "web").Succeeded);
            Assert.InRange((DateTime.UtcNow - started).TotalSeconds, 0.9, 8);
            Assert.Contains(Lines(Engine(storage, "ps", "-a").Stdout), l => l.EndsWith("web", StringComparison.Ordinal) && l.Contains("exited"));
            Assert.NotEqual(0, Engine(storage, "exec", "web", "true").ExitCode);
            Assert.True(Engine(storage, "rm", "web").Succeeded);
            Assert.Empty(Directory.GetDirectories(Path.Combine(storage, "containers")));
        }
        finally
        {
            Engine(storage, "rm", "-f", "web");
            try { Directory.Delete(storage, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>--init: PID 1 reaps orphans (no zombie), forwards signals, exits with the child's status.</summary>
    [Fact]
    public void Init_reaps_zombies_forwards_signals_and_keeps_the_exit_status()
    {
        string storage = Directory.CreateTempSubdirectory("berth-engine-it.").FullName;
        try
        {
            var r = Engine(storage, "run", "--rm", "--init", "berth.local/busybox", "sh", "-c",
                "tr '\\0' ' ' < /proc/1/cmdline; echo; echo pid=$$; (sleep 0.1 &); sleep 0.6; ps -o stat | grep -c '^Z'; exit 7");
            Assert.Equal(7, r.ExitCode);
            var lines = Lines(r.Stdout);
            Assert.StartsWith("berth-init", lines[0]);
            Assert.Equal("pid=2", lines[1]);
            Assert.Equal("0", lines[2]); // the orphaned sleep was reaped by init
            var self = Engine(storage, "run", "--rm", "--init", "berth.local/busybox", "sh", "-c", "kill -USR1 $$; sleep 5");
            Assert.Equal(128 + 10, self.ExitCode);

            Assert.True(Engine(storage, "run", "-d", "--init", "--name", "t", "berth.local/busybox", "sh", "-c",
                "trap 'exit 3' TERM; while true; do sleep 0.1; done").Succeeded);
            var started = DateTime.UtcNow;
            Assert.True(Engine(storage, "stop", "-t", "10", "t").Succeeded);
            Assert.True((DateTime.UtcNow - started).TotalSeconds < 5, "SIGTERM did not reach the child that handles it");
            Assert.True(Engine(storage, "rm", "t").Succeeded);
        }
        finally
        {
            Engine(storage, "rm", "-f", "t");
            try { Directory.Delete(storage, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public void Resource_flags_reach_the_cgroup()
    {
        string storage = Directory.CreateTempSubdirectory("berth-engine-it.").FullName;
        try
        {
            var r = Engine(storage, "run", "--rm", "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5", "--sysctl", "net.ipv4.ip_forward=1",
                "berth.local/busybox", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max",
                "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/proc/sys/net/ipv4/ip_forward");
            Assert.True(r.Succeeded, r.ToString());
            Assert.Equal(["67108864", "50", "50000", "1"], Lines(r.Stdout));
            var bad = Engine(storage, "run", "--rm", "--memory-swap", "1g", "berth.local/busybox", "true");
            Assert.NotEqual(0, bad.ExitCode);
            Assert.Contains("--memory-swap", bad.Stderr);
        }
        finally { try { Directory.Delete(storage, recursive: true); } catch (IOException) { } }
    }

    [Fact]
    public void Unknown_image_fails_with_its_name_and_leaves_nothing()
    {
        string storage = Directory.CreateTempSubdirectory("berth-engine-it.").FullName;
        try
        {
            var r = Engine(storage, "run", "--rm", "no/such-image", "true");
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("no/such-image", r.Stderr);
            Assert.False(Directory.Exists(Path.Combine(storage, "containers")) &&
                         Directory.GetDirectories(Path.Combine(storage, "containers")).Length > 0);
        }
        finally { try { Directory.Delete(storage, recursive: true); } catch (IOException) { } }
    }
}

/// <summary>Concurrent berth processes on one store: two loads and a run race; the store stays whole.</summary>
public sealed class StoreRaceTests(TestEnvironment env) : IntegrationTest(env)
{
    [Fact]
    public void Two_loads_and_a_run_race_without_corrupting_the_store()
    {
        string berth = Path.Combine(Path.GetDirectoryName(Env.RuntimePath)!, "berth");
        string archive = Path.Combine(Path.GetDirectoryName(Env.RuntimePath)!, "berth-busybox.oci.tar");
        string storage = Directory.CreateTempSubdirectory("berth-race-it.").FullName;
        string scratch = Path.Combine(storage, "cmds");
        try
        {
            for (int round = 0; round < 3; round++)
            {
                using var a = ProcessRunner.Start(berth, ["--storage", storage, "load", "-i", archive], scratch);
                using var b = ProcessRunner.Start(berth, ["--storage", storage, "load", "-i", archive], scratch);
                using var c = ProcessRunner.Start(berth, ["--storage", storage, "run", "--rm", "berth.local/busybox", "true"], scratch);
                foreach (var p in new[] { a, b, c })
                {
                    var r = p.Wait(TimeSpan.FromSeconds(60));
                    Assert.True(r.Succeeded, r.ToString());
                }
            }
            var images = ProcessRunner.Run(berth, ["--storage", storage, "images", "-q"], scratch);
            Assert.True(images.Succeeded, images.ToString());
            Assert.Single(Lines(images.Stdout).Distinct());
            var inspect = ProcessRunner.Run(berth, ["--storage", storage, "image", "inspect", "berth.local/busybox"], scratch);
            Assert.True(inspect.Succeeded, inspect.ToString());
            var run = ProcessRunner.Run(berth, ["--storage", storage, "run", "--rm", "berth.local/busybox", "echo", "ok"], scratch);
            Assert.Equal("ok", run.Stdout.Trim());
            Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(storage, "containers")));
        }
        finally { try { Directory.Delete(storage, recursive: true); } catch (IOException) { } }
    }
}

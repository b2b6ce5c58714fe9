using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>The operations clients run on a live container: ps, pause/resume, update, events, features, checkpoint.</summary>
public sealed class OpsTests(TestEnvironment env) : IntegrationTest(env)
{
    private const long Mib = 1024 * 1024;

    /// <summary>A shell that keeps a child alive and writes a growing counter to /out/n.</summary>
    private const string Counter =
        "sleep 1000 & i=0; while :; do i=$((i+1)); echo $i > /out/n; sleep 0.05; done";

    [Fact]
    public void Ps_json_lists_exactly_the_pids_in_the_containers_cgroup()
    {
        var c = NewContainer();
        c.ShareDir("/out");
        c.Sh(Counter);
        int init = c.CreateAndStart();
        string cgroup = Kernel.CgroupV1Path(init, "pids")!;
        Assert.Contains(c.Id, cgroup);

        // The same cgroup, seen from the host's /proc: the init, its sleep child, the loop's short sleeps.
        // Read ps between two scans so short-lived sleeps do not make the comparison flaky.
        var before = HostPidsIn(cgroup);
        var r = c.Runtime("ps", "--format", "json", c.Id);
        var after = HostPidsIn(cgroup);
        Assert.True(r.Succeeded, r.ToString());
        var pids = JsonNode.Parse(r.Stdout)!.AsArray().Select(n => (int)n!).ToHashSet();
        Assert.Contains(init, pids);
        var child = before.Intersect(after).Single(p => p != init && Comm(p) == "sleep" && Cmdline(p).Contains("1000"));
        Assert.Contains(child, pids);
        Assert.Equal(init, PPid(child));
        foreach (var p in before.Intersect(after)) Assert.Contains(p, pids);
        foreach (var p in pids) Assert.True(before.Contains(p) || after.Contains(p) || !Directory.Exists($"/proc/{p}"), $"pid {p} from ps is not in {cgroup}");

        // The table form: ps -ef's header and a row for the init with its command line.
        var table = c.Runtime("ps", c.Id);
        Assert.True(table.Succeeded, table.ToString());
        var lines = Lines(table.Stdout);
        Assert.Matches(@"^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$", lines[0]);
        Assert.Contains(lines, l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, var pid, ..] && pid == init.ToString()
            && l.EndsWith("sh -c " + Counter, StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, var pid, var ppid, ..]
            && pid == child.ToString() && ppid == init.ToString() && l.EndsWith("sleep 1000", StringComparison.Ordinal));
    }

    [Fact]
    public void Pause_freezes_the_container_and_resume_thaws_it()
    {
        var c = NewContainer();
        string share = c.ShareDir("/out");
        c.Sh(Counter);
        int pid = c.CreateAndStart();
        string counter = Path.Combine(share, "n");
        TestContainer.WaitForFile(counter);
        string freezer = Path.Combine(Kernel.CgroupV1Dir(pid, "freezer"), "freezer.state");
        Assert.Contains(c.Id, freezer);

        var pause = c.Runtime("pause", c.Id);
        Assert.True(pause.Succeeded, pause.ToString());
        Assert.Equal("paused", c.Status());
        Assert.Equal("FROZEN", File.ReadAllText(freezer).Trim());
        string frozenAt = File.ReadAllText(counter);
        Thread.Sleep(600);
        Assert.Equal(frozenAt, File.ReadAllText(counter));

        var again = c.Runtime("pause", c.Id);
        Assert.NotEqual(0, again.ExitCode);
        Assert.Contains("not running", again.Stderr);

        var resume = c.Runtime("resume", c.Id);
        Assert.True(resume.Succeeded, resume.ToString());
        Assert.Equal("running", c.Status());
        Assert.Equal("THAWED", File.ReadAllText(freezer).Trim());
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (File.ReadAllText(counter) == frozenAt && DateTime.UtcNow < deadline) Thread.Sleep(50);
        Assert.NotEqual(frozenAt, File.ReadAllText(counter));

        var resumeRunning = c.Runtime("resume", c.Id);
        Assert.NotEqual(0, resumeRunning.ExitCode);
        Assert.Contains("not paused", resumeRunning.Stderr);

        // A paused container can still be killed and deleted.
        Assert.True(c.Runtime("pause", c.Id).Succeeded);
        var del = c.Delete(force: true);
        Assert.True(del.Succeeded, del.ToString());
        c.AssertNoLeaks("after delete --force of a paused container");
    }

    [Fact]
    public void Pause_of_a_stopped_container_fails()
    {
        var c = NewContainer();
        c.Args("true");
        c.CreateOk();
        c.StartOk();
        c.WaitForStatus("stopped");
        var r = c.Runtime("pause", c.Id);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("not running", r.Stderr);
        var u = c.Runtime("update", "--memory", "64m", c.Id);
        Assert.NotEqual(0, u.ExitCode);
        Assert.Contains("not running", u.Stderr);
    }

    [Fact]
    public void Update_flags_and_resources_file_reach_the_cgroup()
    {
        var c = NewContainer();
        c.Resources["memory"] = new JsonObject { ["limit"] = 128 * Mib };
        c.Args("sleep", "1000");
        int pid = c.CreateAndStart();
        string memory = Kernel.CgroupV1Dir(pid, "memory");
        string cpu = Kernel.CgroupV1Dir(pid, "cpu");
        string pids = Kernel.CgroupV1Dir(pid, "pids");
        Assert.Equal((128 * Mib).ToString(), ReadCg(memory, "memory.limit_in_bytes"));

        var r = c.Runtime("update", "--memory", "64m", "--cpu-share", "512", "--pids-limit", "55", c.Id);
        Assert.True(r.Succeeded, r.ToString());
        Assert.Equal((64 * Mib).ToString(), ReadCg(memory, "memory.limit_in_bytes"));
        Assert.Equal("512", ReadCg(cpu, "cpu.shares"));
        Assert.Equal("55", ReadCg(pids, "pids.max"));

        string file = Path.Combine(c.WorkDir, "resources.json");
        File.WriteAllText(file, """{"memory":{"limit":33554432},"cpu":{"quota":25000,"period":100000},"pids":{"limit":44}}""");
        r = c.Runtime("update", "--resources", file, c.Id);
        Assert.True(r.Succeeded, r.ToString());
        Assert.Equal((32 * Mib).ToString(), ReadCg(memory, "memory.limit_in_bytes"));
        Assert.Equal("25000", ReadCg(cpu, "cpu.cfs_quota_us"));
        Assert.Equal("100000", ReadCg(cpu, "cpu.cfs_period_us"));
        Assert.Equal("44", ReadCg(pids, "pids.max"));
        Assert.Equal("512", ReadCg(cpu, "cpu.shares")); // untouched by the file

        // From stdin, as containerd's shim passes it.
        r = c.RuntimeWith(["update", "-r", "-", c.Id], stdin: """{"cpu":{"shares":256}}""");
        Assert.True(r.Succeeded, r.ToString());
        Assert.Equal("256", ReadCg(cpu, "cpu.shares"));

        var bad = c.Runtime("update", "--memory", "10x", c.Id);
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("invalid", bad.Stderr);
        Assert.Equal((32 * Mib).ToString(), ReadCg(memory, "memory.limit_in_bytes"));
    }

    /// <summary>berth's contract: the config saved in state.json carries the updated resources (as runc's state.json does).</summary>
    [Fact]
    public void Update_is_saved_in_the_state_dirs_config()
    {
        var c = NewContainer();
        c.Args("sleep", "1000");
        c.CreateAndStart();
        var r = c.Runtime("update", "--memory", "48m", "--pids-limit", "66", c.Id);
        Assert.True(r.Succeeded, r.ToString());
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(c.StateRoot, c.Id, "state.json")))!;
        var saved = JsonNode.Parse((string)state["config"]!)!;
        Assert.Equal(48 * Mib, (long)saved["linux"]!["resources"]!["memory"]!["limit"]!);
        Assert.Equal(66, (long)saved["linux"]!["resources"]!["pids"]!["limit"]!);
        Assert.NotNull(saved["process"]!["args"]); // the rest of the config is kept
        Assert.NotEmpty(saved["linux"]!["resources"]!["devices"]!.AsArray());
    }

    [Fact]
    public void Update_of_a_missing_container_fails()
    {
        var c = NewContainer();
        var r = c.Runtime("update", "--memory", "64m", c.Id);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("does not exist", r.Stderr);
    }

    [Fact]
    public void Events_stats_prints_one_json_line_with_usage()
    {
        var c = NewContainer();
        c.Args("sleep", "1000");
        c.CreateAndStart();
        var r = c.Runtime("events", "--stats", c.Id);
        Assert.True(r.Succeeded, r.ToString());
        var lines = Lines(r.Stdout);
        Assert.Single(lines);
        var e = JsonNode.Parse(lines[0])!;
        Assert.Equal("stats", (string)e["type"]!);
        Assert.Equal(c.Id, (string)e["id"]!);
        Assert.True((ulong)e["data"]!["memory"]!["usage"]!["usage"]! > 0, lines[0]);
        Assert.True((ulong)e["data"]!["pids"]!["current"]! >= 1, lines[0]);
        Assert.NotNull(e["data"]!["cpu"]!["usage"]!["total"]);
    }

    [Fact]
    public void Events_streams_until_the_container_stops()
    {
        var c = NewContainer();
        c.Args("sleep", "1000");
        c.CreateAndStart();
        using var events = c.RuntimeStart(["events", "--interval", "200ms", c.Id]);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Lines(events.StdoutSoFar).Length < 2 && DateTime.UtcNow < deadline) Thread.Sleep(50);
        Assert.True(c.Kill("KILL").Succeeded);
        var r = events.Wait(TimeSpan.FromSeconds(10));
        Assert.False(r.TimedOut, "events did not end when the container stopped:\n" + r);
        Assert.Equal(0, r.ExitCode);
        var lines = Lines(r.Stdout);
        Assert.True(lines.Length >= 2, r.ToString());
        Assert.All(lines, l => Assert.Equal("stats", (string)JsonNode.Parse(l)!["type"]!));
    }

    [Fact]
    public void Events_reports_an_oom_kill()
    {
        var c = NewContainer();
        c.Resources["memory"] = new JsonObject { ["limit"] = 32 * Mib, ["swap"] = 32 * Mib };
        string share = c.ShareDir("/out");
        // awk doubles a string in its own memory: user page faults, so the memory cgroup OOM-kills it
        // (a command substitution could instead fail a kernel allocation with ENOMEM, and no kill).
        c.Sh("while [ ! -e /out/go ]; do sleep 0.05; done; awk 'BEGIN { s = \"x\"; while (1) s = s s }'; sleep 1000");
        c.CreateAndStart();
        using var events = c.RuntimeStart(["events", "--interval", "10s", c.Id]);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Lines(events.StdoutSoFar).Length < 1 && DateTime.UtcNow < deadline) Thread.Sleep(50);
        File.WriteAllText(Path.Combine(share, "go"), "");
        deadline = DateTime.UtcNow.AddSeconds(30);
        while (!events.StdoutSoFar.Contains("\"oom\"") && DateTime.UtcNow < deadline) Thread.Sleep(50);
        Assert.Contains(Lines(events.StdoutSoFar), l => (string?)JsonNode.Parse(l)!["type"] == "oom" && (string?)JsonNode.Parse(l)!["id"] == c.Id);
        Assert.True(c.Kill("KILL").Succeeded);
        Assert.False(events.Wait(TimeSpan.FromSeconds(10)).TimedOut);
    }

    [Fact]
    public void Features_prints_the_runtime_spec_document()
    {
        var c = NewContainer();
        var r = c.RuntimeWith(["features"], withRoot: false);
        Assert.True(r.Succeeded, r.ToString());
        var f = JsonNode.Parse(r.Stdout)!;
        Assert.Equal("1.0.0", (string)f["ociVersionMin"]!);
        Assert.Equal("1.3.0", (string)f["ociVersionMax"]!);
        Assert.Equal(["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"], Strings(f["hooks"]));
        var mountOptions = Strings(f["mountOptions"]);
        foreach (var o in new[] { "bind", "rbind", "ro", "nosuid", "rro", "tmpcopyup", "rprivate" }) Assert.Contains(o, mountOptions);
        var linux = f["linux"]!;
        Assert.Equal(["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"], Strings(linux["namespaces"]));
        Assert.Contains("CAP_SYS_ADMIN", Strings(linux["capabilities"]));
        Assert.Contains("CAP_CHECKPOINT_RESTORE", Strings(linux["capabilities"]));
        var cg = linux["cgroup"]!;
        Assert.True((bool)cg["v1"]!);
        Assert.True((bool)cg["v2"]!);
        Assert.False((bool)cg["systemd"]!);
        Assert.False((bool)cg["systemdUser"]!);
        Assert.False((bool)cg["rdma"]!);
        var sc = linux["seccomp"]!;
        Assert.True((bool)sc["enabled"]!);
        Assert.Contains("SCMP_ACT_NOTIFY", Strings(sc["actions"]));
        Assert.Contains("SCMP_CMP_MASKED_EQ", Strings(sc["operators"]));
        Assert.Contains("SCMP_ARCH_X86_64", Strings(sc["archs"]));
        Assert.Contains("SCMP_ARCH_AARCH64", Strings(sc["archs"]));
        Assert.Contains("SECCOMP_FILTER_FLAG_TSYNC", Strings(sc["knownFlags"]));
        Assert.Contains("SECCOMP_FILTER_FLAG_TSYNC", Strings(sc["supportedFlags"]));
        Assert.All(Strings(sc["supportedFlags"]), s => Assert.Contains(s, Strings(sc["knownFlags"])));
        Assert.False((bool)linux["apparmor"]!["enabled"]!);
        Assert.False((bool)linux["selinux"]!["enabled"]!);
        Assert.False((bool)linux["intelRdt"]!["enabled"]!);
        Assert.False((bool)linux["mountExtensions"]!["idmap"]!["enabled"]!);
        Assert.NotNull(f["annotations"]!.AsObject());
    }

    [Fact]
    public void Checkpoint_is_reported_as_not_supported()
    {
        var c = NewContainer();
        c.Args("sleep", "1000");
        c.CreateAndStart();
        var help = c.Runtime("checkpoint", "--help");
        Assert.Contains("not supported", help.Stdout, StringComparison.OrdinalIgnoreCase);
        // Non-zero: podman takes `checkpoint --help` exiting 0 to mean checkpoint/restore works.
        Assert.NotEqual(0, help.ExitCode);
        var r = c.Runtime("checkpoint", c.Id);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("not supported", r.Stderr);
        Assert.Equal("running", c.Status());
    }

    private static string[] Strings(JsonNode? n) => n!.AsArray().Select(x => (string)x!).ToArray();

    private static string ReadCg(string dir, string file) => File.ReadAllText(Path.Combine(dir, file)).Trim();

    private static HashSet<int> HostPidsIn(string pidsCgroup)
    {
        var set = new HashSet<int>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                if (Kernel.CgroupV1Path(pid, "pids") == pidsCgroup) set.Add(pid);
            }
            catch (IOException) { }
        }
        return set;
    }

    private static string Comm(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/comm").Trim(); } catch (IOException) { return ""; }
    }

    private static string Cmdline(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' '); } catch (IOException) { return ""; }
    }

    private static int PPid(int pid) =>
        int.Parse(Kernel.ParseStatus(File.ReadAllText($"/proc/{pid}/status"))["PPid"]);
}

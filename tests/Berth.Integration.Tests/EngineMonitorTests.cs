using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>
/// Detached containers and their monitor (docs/adr/0009): logs, wait, restart policies, --rm -d,
/// rm -f, log rotation, create/start. Each test checks what the kernel shows (processes, their
/// parents and sessions, mounts, cgroups) besides what berth prints.
/// </summary>
public sealed class EngineMonitorTests(TestEnvironment env) : IntegrationTest(env), IDisposable
{
    private readonly string _storage = Directory.CreateTempSubdirectory("berth-monitor-it.").FullName;
    private string Berth => Path.Combine(Path.GetDirectoryName(Env.RuntimePath)!, "berth");

    private ProcResult Engine(params string[] args) =>
        ProcessRunner.Run(Berth, ["--storage", _storage, .. args], Path.Combine(_storage, "cmds"));

    private string RunDetached(params string[] args)
    {
        var r = Engine(["run", "-d", .. args]);
        Assert.True(r.Succeeded, r.ToString());
        return r.Stdout.Trim();
    }

    private JsonNode Inspect(string name)
    {
        var r = Engine("inspect", name);
        Assert.True(r.Succeeded, r.ToString());
        return JsonNode.Parse(r.Stdout)!.AsArray().Single()!;
    }

    /// <summary>Monitors of this test's store: pid by container id, from /proc.</summary>
    private Dictionary<string, int> Monitors()
    {
        var found = new Dictionary<string, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            string[] argv;
            try { argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0'); }
            catch (IOException) { continue; }
            if (argv.Length > 3 && argv[1] == "__monitor" && argv[2] == _storage && Kernel.ProcessAlive(pid)) found[argv[3]] = pid;
        }
        return found;
    }

    private static string SafeRead(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    }

    private static string[] Stat(int pid)
    {
        var text = File.ReadAllText($"/proc/{pid}/stat");
        return text[(text.LastIndexOf(')') + 2)..].Split(' '); // [0] state, [1] ppid, [2] pgrp, [3] session
    }

    private static void Eventually(Func<bool> condition, string what, double seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out after {seconds} s waiting for: {what}");
            Thread.Sleep(20);
        }
    }

    /// <summary>Nothing of the container is left: state dir, cgroups, mounts, processes (its monitor included), files.</summary>
    private void AssertNothingLeft(string id)
    {
        var leaks = LeakCheck.Find(id, "/run/berth/engine", Path.Combine(_storage, "containers", id), "BERTH_MONITOR_IT_NO_MARKER");
        Assert.True(leaks.Count == 0, string.Join("\n", leaks));
        Assert.False(Directory.Exists(Path.Combine(_storage, "containers", id)), "the container's directory is still there");
        Assert.DoesNotContain(id, Monitors().Keys);
    }

    [Fact]
    public void Logs_keep_both_streams_with_tail_timestamps_and_follow()
    {
        var id = RunDetached("--name", "l", "berth.local/busybox", "sh", "-c",
            "echo out1; echo err1 >&2; sleep 0.2; echo 'out2 \"q\" \\ é'; sleep 1; echo late");
        Eventually(() => Engine("logs", "l").Stdout.Contains("out2"), "out2 in the log");
        var logs = Engine("logs", "l");
        Assert.True(logs.Succeeded, logs.ToString());
        Assert.Equal(["out1", "out2 \"q\" \\ é"], Lines(logs.Stdout).Take(2));
        Assert.Equal(["err1"], Lines(logs.Stderr));
        // The file: one JSON record per line, docker's json-file fields.
        var records = File.ReadAllLines(Path.Combine(_storage, "containers", id, "container.log")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal("stderr", (string?)records.Single(r => (string?)r["log"] == "err1\n")["stream"]);
        Assert.Equal("stdout", (string?)records.Single(r => (string?)r["log"] == "out1\n")["stream"]);
        Assert.All(records, r => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$", (string?)r["time"]));

        var tail = Engine("logs", "--tail", "1", "l");
        Assert.Equal(["out2 \"q\" \\ é"], Lines(tail.Stdout));
        Assert.Empty(Lines(tail.Stderr));
        var stamped = Engine("logs", "-t", "l");
        var first = Lines(stamped.Stdout)[0].Split(' ', 2);
        Assert.Equal("out1", first[1]);
        Assert.InRange(DateTime.Parse(first[0], null, System.Globalization.DateTimeStyles.AdjustToUniversal), DateTime.UtcNow.AddMinutes(-1), DateTime.UtcNow.AddMinutes(1));

        // -f returns once the container has exited, with what came after it started following.
        var started = DateTime.UtcNow;
        var follow = Engine("logs", "-f", "l");
        Assert.True(follow.Succeeded, follow.ToString());
        Assert.Equal("late", Lines(follow.Stdout)[^1]);
        Assert.True((DateTime.UtcNow - started).TotalSeconds < 5);
        Assert.Equal(0, (int)Inspect("l")["State"]!["ExitCode"]!);
    }

    [Fact]
    public void The_monitor_is_no_child_of_the_cli_reaps_the_container_and_wait_returns_its_code()
    {
        var run = ProcessRunner.Start(Berth, ["--storage", _storage, "run", "-d", "--name", "w", "berth.local/busybox", "sh", "-c", "sleep 1; exit 5"],
            Path.Combine(_storage, "cmds"));
        var r = run.Wait(TimeSpan.FromSeconds(30));
        Assert.True(r.Succeeded, r.ToString());
        var id = r.Stdout.Trim();
        int monitor = Monitors()[id];
        var st = Stat(monitor);
        Assert.NotEqual(run.Pid.ToString(), st[1]);     // not the CLI's child (the CLI has exited anyway)
        Assert.Equal(monitor.ToString(), st[3]);          // its own session (setsid) ...
        Assert.Equal(monitor.ToString(), st[2]);          // ... and process group
        Assert.Equal("/dev/null", new FileInfo($"/proc/{monitor}/fd/0").LinkTarget);
        var state = Inspect("w")["State"]!;
        Assert.True((bool)state["Running"]!);
        int init = (int)state["Pid"]!;
        Assert.Equal(monitor.ToString(), Stat(init)[1]);  // the container's init is the monitor's child

        var wait = Engine("wait", "w");
        Assert.True(wait.Succeeded, wait.ToString());
        Assert.Equal("5", wait.Stdout.Trim());
        state = Inspect("w")["State"]!;
        Assert.Equal("exited", (string?)state["Status"]);
        Assert.Equal(5, (int)state["ExitCode"]!);
        Assert.False((bool)state["OOMKilled"]!);
        Assert.True(DateTime.Parse((string)state["FinishedAt"]!) > DateTime.Parse((string)state["StartedAt"]!));
        Assert.Contains(Lines(Engine("ps", "-a").Stdout), l => l.EndsWith(" w", StringComparison.Ordinal) && l.Contains("exited (5)"));
        Eventually(() => !Kernel.ProcessAlive(monitor), "the monitor to exit");
        Assert.False(File.Exists($"/proc/{init}/stat") && Stat(init)[0] == "Z", "the init was left a zombie");
        Assert.False(Directory.Exists(Path.Combine("/run/berth/engine", id)));
        Assert.False(File.Exists(Path.Combine("/run/berth/netns", id)), "the exited container's network namespace is still pinned");
        Assert.False(Directory.Exists("/sys/class/net/veth" + id[..11]), "the exited container's veth is still there");
    }

    [Fact]
    public void An_oom_kill_is_recorded()
    {
        // awk doubles a string in its own memory: user page faults, so the memory cgroup OOM-kills it.
        RunDetached("--name", "oom", "--memory", "32m", "berth.local/busybox", "awk", "BEGIN { s = \"x\"; while (1) s = s s }");
        Assert.Equal("137", Engine("wait", "oom").Stdout.Trim());
        var state = Inspect("oom")["State"]!;
        Assert.True((bool)state["OOMKilled"]!);
        Assert.Equal(137, (int)state["ExitCode"]!);
    }

    [Fact]
    public void On_failure_2_restarts_twice_and_keeps_the_last_exit_code()
    {
        RunDetached("--name", "f", "--restart", "on-failure:2", "berth.local/busybox", "sh", "-c", "echo try; exit 3");
        Assert.Equal("3", Engine("wait", "f").Stdout.Trim());
        var doc = Inspect("f");
        Assert.Equal(2, (int)doc["RestartCount"]!);
        Assert.Equal(2, (int)doc["State"]!["RestartCount"]!);
        Assert.Equal(3, (int)doc["State"]!["ExitCode"]!);
        Assert.Equal("on-failure", (string?)doc["HostConfig"]!["RestartPolicy"]!["Name"]);
        Assert.Equal(["try", "try", "try"], Lines(Engine("logs", "f").Stdout));
        var bad = Engine("run", "-d", "--restart", "sometimes", "berth.local/busybox", "true");
        Assert.Equal(125, bad.ExitCode);
        Assert.Contains("--restart sometimes", bad.Stderr);
    }

    [Fact]
    public void Always_restarts_until_the_user_stops_it_with_its_stop_signal()
    {
        var id = RunDetached("--name", "a", "--restart", "always", "--stop-signal", "USR1", "--stop-timeout", "20", "berth.local/busybox", "sh", "-c",
            "echo start; trap 'echo usr1; exit 0' USR1; sleep 0.2; exit 1");
        Eventually(() => (int)Inspect("a")["RestartCount"]! >= 2, "two restarts");
        // Now one that stays up: stop sends USR1 (the container's stop signal), not TERM, and it exits at once.
        Eventually(() => (bool)Inspect("a")["State"]!["Running"]!, "running again");
        var started = DateTime.UtcNow;
        var stop = Engine("stop", "a");
        Assert.True(stop.Succeeded, stop.ToString());
        Assert.True((DateTime.UtcNow - started).TotalSeconds < 10);
        int count = (int)Inspect("a")["RestartCount"]!;
        Thread.Sleep(500);
        var doc = Inspect("a");
        Assert.Equal("exited", (string?)doc["State"]!["Status"]);
        Assert.Equal(count, (int)doc["RestartCount"]!);
        Assert.DoesNotContain(id, Monitors().Keys);
        // start brings it back under a new monitor; kill (the user's) does not restart either.
        Assert.True(Engine("start", "a").Succeeded);
        Eventually(() => (bool)Inspect("a")["State"]!["Running"]!, "running after start");
        Assert.True(Engine("kill", "a").Succeeded);
        Eventually(() => !Monitors().ContainsKey(id), "the monitor to end after kill");
        Assert.Equal("exited", (string?)Inspect("a")["State"]!["Status"]);
        Assert.True(Engine("rm", "a").Succeeded);
        AssertNothingLeft(id);
    }

    [Fact]
    public void Rm_detached_removes_everything_after_the_exit()
    {
        var id = RunDetached("--rm", "--name", "gone", "berth.local/busybox", "sh", "-c", "echo bye; sleep 0.3");
        Assert.Contains(id, Monitors().Keys);
        Eventually(() => !Directory.Exists(Path.Combine(_storage, "containers", id)), "the container to be removed");
        Eventually(() => !Monitors().ContainsKey(id), "the monitor to exit");
        AssertNothingLeft(id);
        Assert.DoesNotContain(Lines(Engine("ps", "-a").Stdout), l => l.Contains("gone"));
        var conflict = Engine("run", "-d", "--rm", "--restart", "always", "berth.local/busybox", "true");
        Assert.Equal(125, conflict.ExitCode);
        Assert.Contains("conflict", conflict.Stderr);
    }

    [Fact]
    public void Rm_force_of_a_running_detached_container_kills_it_and_its_monitor()
    {
        var id = RunDetached("--name", "busy", "berth.local/busybox", "sh", "-c", "sleep 60 & sleep 60");
        int monitor = Monitors()[id];
        int init = (int)Inspect("busy")["State"]!["Pid"]!;
        var rm = Engine("rm", "busy");
        Assert.NotEqual(0, rm.ExitCode);
        Assert.Contains("running", rm.Stderr);
        rm = Engine("rm", "-f", "busy");
        Assert.True(rm.Succeeded, rm.ToString());
        Assert.False(Kernel.ProcessAlive(monitor), "the monitor survived rm -f");
        Assert.False(Kernel.ProcessAlive(init), "the container's init survived rm -f");
        AssertNothingLeft(id);
    }

    [Fact]
    public void Logs_rotate_at_max_size_and_keep_max_file_files()
    {
        var id = RunDetached("--name", "rot", "--log-opt", "max-size=2k", "--log-opt", "max-file=2", "berth.local/busybox", "sh", "-c",
            "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done");
        Assert.Equal("0", Engine("wait", "rot").Stdout.Trim());
        var dir = Path.Combine(_storage, "containers", id);
        var log = Path.Combine(dir, "container.log");
        Assert.True(File.Exists(log + ".1"), "no rotated file");
        Assert.False(File.Exists(log + ".2"), "more files than max-file=2");
        Assert.InRange(new FileInfo(log).Length, 1, 2048);
        Assert.InRange(new FileInfo(log + ".1").Length, 1, 2048);
        var lines = Lines(Engine("logs", "rot").Stdout);
        Assert.Equal("line-199", lines[^1]);
        Assert.InRange(lines.Length, 20, 199); // the oldest were rotated away
        Assert.Equal(Enumerable.Range(200 - lines.Length, lines.Length).Select(i => $"line-{i}"), lines); // in order, none lost in between
        var bad = Engine("run", "-d", "--log-opt", "max-size=tiny", "berth.local/busybox", "true");
        Assert.Equal(125, bad.ExitCode);
        Assert.Contains("max-size=tiny", bad.Stderr);
    }

    [Fact]
    public void Create_then_start_runs_it_under_a_monitor_and_restart_runs_it_again()
    {
        var create = Engine("create", "--name", "c", "berth.local/busybox", "sh", "-c", "echo run; sleep 60");
        Assert.True(create.Succeeded, create.ToString());
        var id = create.Stdout.Trim();
        Assert.Equal("created", (string?)Inspect("c")["State"]!["Status"]);
        Assert.Contains(Lines(Engine("ps", "-a").Stdout), l => l.EndsWith(" c", StringComparison.Ordinal) && l.Contains("created"));
        Assert.DoesNotContain(Path.Combine(_storage, "containers", id, "merged"), File.ReadAllText("/proc/self/mountinfo"));
        Assert.True(Engine("start", "c").Succeeded);
        Assert.True((bool)Inspect("c")["State"]!["Running"]!);
        int first = Monitors()[id];
        var restart = Engine("restart", "-t", "1", "c");
        Assert.True(restart.Succeeded, restart.ToString());
        Assert.True((bool)Inspect("c")["State"]!["Running"]!);
        Assert.NotEqual(first, Monitors()[id]);
        // The stop tore the bridge network down; the start set it up again.
        var addr = Engine("exec", "c", "ip", "-4", "addr", "show", "eth0");
        Assert.True(addr.Succeeded, addr.ToString());
        Assert.Contains("inet 10.77.", addr.Stdout);
        Assert.Equal(["run", "run"], Lines(Engine("logs", "c").Stdout));
        Assert.True(Engine("rm", "-f", "c").Succeeded);
        AssertNothingLeft(id);
    }

    [Fact]
    public void Detached_tty_logs_the_pty_output()
    {
        RunDetached("-t", "--name", "t", "berth.local/busybox", "sh", "-c", "tty; stty size");
        Assert.Equal("0", Engine("wait", "t").Stdout.Trim());
        Assert.Equal(["/dev/pts/0", "24 80"], Lines(Engine("logs", "t").Stdout));
    }

    [Fact]
    public void Exec_with_a_pty_and_detached_exec_in_a_detached_container()
    {
        var id = RunDetached("--name", "x", "berth.local/busybox", "sleep", "60");
        var t = Engine("exec", "-t", "x", "sh", "-c", "tty; exit 4");
        Assert.Equal(4, t.ExitCode);
        Assert.StartsWith("/dev/pts/", Lines(t.Stdout)[0]);
        var it = ProcessRunner.Run(Berth, ["--storage", _storage, "exec", "-it", "x", "sh"], Path.Combine(_storage, "cmds"),
            stdin: "echo in-$((1+2))\nexit 5\n");
        Assert.Equal(5, it.ExitCode);
        Assert.Contains("in-3", it.Stdout);
        var d = Engine("exec", "-d", "x", "sleep", "31");
        Assert.True(d.Succeeded, d.ToString());
        // The detached process has /dev/null as stdio, not the CLI's files.
        int sleeper = 0;
        Eventually(() => (sleeper = Directory.EnumerateDirectories("/proc").Select(p => int.TryParse(Path.GetFileName(p), out var n) ? n : 0)
            .FirstOrDefault(n => n > 0 && SafeRead($"/proc/{n}/cmdline") == "sleep\031\0" && SafeRead($"/proc/{n}/cgroup").Contains(id))) > 0,
            "the detached exec's process");
        for (int fd = 0; fd < 3; fd++) Assert.Equal("/dev/null", new FileInfo($"/proc/{sleeper}/fd/{fd}").LinkTarget);
        Assert.NotEqual(0, Engine("exec", "-d", "-t", "x", "true").ExitCode);
        Assert.True(Engine("rm", "-f", "x").Succeeded);
        AssertNothingLeft(id);
    }

    public new void Dispose()
    {
        foreach (var name in Lines(Engine("ps", "-a", "-q").Stdout)) Engine("rm", "-f", name);
        foreach (var (_, pid) in Monitors()) { try { System.Diagnostics.Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } }
        foreach (var line in File.ReadAllLines("/proc/self/mountinfo"))
            if (line.Split(' ')[4].StartsWith(_storage, StringComparison.Ordinal)) ProcessRunner.Host("umount", "-l", line.Split(' ')[4]);
        try { Directory.Delete(_storage, recursive: true); } catch (IOException) { }
        base.Dispose();
    }
}

using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests.Clients;

/// <summary>
/// podman 4.3 (through conmon) drives berth-runtime, registered as runtime "berth" in a private
/// containers.conf (scripts/setup-clients), with its own storage. `--runtime berth` makes podman
/// pass `--log-format=json --log FILE` (runtime_supports_json); `--runtime /path` does not, so
/// berth's errors then reach podman as text on stderr. Always `--network none`.
/// </summary>
public sealed class PodmanTests : IntegrationTest, IDisposable
{
    private readonly ClientSetup _c;
    private readonly string _scratch = Path.Combine(TestEnvironment.ScratchRoot, "podman");
    private readonly List<string> _names = [];

    public PodmanTests(TestEnvironment env) : base(env) => _c = ClientSetup.Get(env);

    private static string Marker(string name) => $"BERTH_TEST_ID={name}";

    private string NewName([CallerMemberName] string test = "p")
    {
        string name = ClientSetup.NewName(test);
        _names.Add(name);
        return name;
    }

    private ProcResult Podman(params string[] args) => PodmanWith("berth", args);

    private ProcResult PodmanWith(string runtime, params string[] args) =>
        ProcessRunner.Run("podman", ["--runtime", runtime, .. args], _scratch, TimeSpan.FromSeconds(60), prelude: _c.PodmanPrelude);

    /// <summary>podman run NAME ... with the test's defaults (name, no network, the marker variable).</summary>
    private string[] RunArgs(string name, params string[] rest) =>
        ["run", "--name", name, "--network", "none", "--env", Marker(name), .. rest];

    /// <summary>Runs a shell command line under script(1), i.e. with a pty as stdio (rows 30, cols 100).</summary>
    private ProcResult InPty(string podmanArgs)
    {
        string line = $"stty rows 30 cols 100; exec podman --runtime berth {podmanArgs}";
        return ProcessRunner.Run("script", ["-qec", line, "/dev/null"], _scratch, TimeSpan.FromSeconds(60), prelude: _c.PodmanPrelude);
    }

    /// <summary>
    /// podman's attach through conmon races a process that prints and exits at once (runc too:
    /// 9/10 and berth 7/10 complete outputs of `run -it ... sh -c 'tty; stty size'` here): the
    /// output comes a moment after attach, and the process outlives it a moment.
    /// </summary>
    private static string PtyScript(string script)
    {
        int exit = script.LastIndexOf("; exit ", StringComparison.Ordinal);
        return exit < 0 ? $"sleep 0.2; {script}; sleep 0.3" : $"sleep 0.2; {script[..exit]}; sleep 0.3{script[exit..]}";
    }

    private string Inspect(string name, string format)
    {
        var r = Podman("inspect", "--format", format, name);
        Assert.True(r.Succeeded, r.ToString());
        return r.Stdout.Trim();
    }

    private string StartDetached(string name, params string[] cmd)
    {
        var r = Podman(RunArgs(name, ["-d", _c.Image, .. cmd]));
        Assert.True(r.Succeeded, r.ToString());
        return r.Stdout.Trim();
    }

    /// <summary>What podman knows of a removed container, captured while it existed.</summary>
    private sealed record Trace(string Name, string Id, string StaticDir, string MergedDir);

    private Trace TraceOf(string name)
    {
        var f = Inspect(name, "{{.Id}}|{{.StaticDir}}|{{.GraphDriver.Data.MergedDir}}").Split('|');
        return new Trace(name, f[0], f[1], f[2]);
    }

    /// <summary>Nothing of the container is left: podman forgot it, and no state dir, cgroup, mount or process (conmon included).</summary>
    private void AssertLeftNothing(string name, Trace? t = null)
    {
        ClientSetup.AssertNothingLeft($"podman container {name}", () =>
        {
            var left = new List<string>();
            var ps = Podman("ps", "-a", "-q", "--filter", $"name=^{name}$");
            if (ps.Stdout.Trim().Length > 0) left.Add("podman ps -a still lists it: " + ps.Stdout.Trim());
            foreach (var (pid, why) in LeakCheck.Processes("/nonexistent-bundle", Marker(name), name))
                left.Add($"process {pid}: {why}");
            if (t is not null)
            {
                left.AddRange(LeakCheck.Find(t.Id, "/run/berth", t.StaticDir, Marker(name)).Select(l => l.ToString()));
                if (t.MergedDir.Length > 0 && File.ReadAllText("/proc/self/mountinfo").Contains(" " + t.MergedDir + " "))
                    left.Add("rootfs still mounted: " + t.MergedDir);
            }
            return left;
        });
    }

    [Theory]
    [InlineData("berth")]   // the registered name: JSON log
    [InlineData("path")]    // the binary's path: text errors on stderr
    public void Run_rm_echo_prints_hi(string runtime)
    {
        string name = NewName();
        var r = PodmanWith(runtime == "path" ? _c.Runtime : "berth", RunArgs(name, ["--rm", _c.Image, "echo", "hi"]));
        Assert.True(r.Succeeded, r.ToString());
        Assert.Equal("hi", r.Stdout.Trim());
        AssertLeftNothing(name);
    }

    [Theory]
    [InlineData("berth")]
    [InlineData("path")]
    public void Exit_codes_and_runtime_errors_propagate(string runtime)
    {
        string rt = runtime == "path" ? _c.Runtime : "berth";
        string name = NewName();
        var r = PodmanWith(rt, RunArgs(name, ["--rm", _c.Image, "sh", "-c", "exit 7"]));
        Assert.Equal(7, r.ExitCode);

        // An error berth reports (in its --log, JSON or text) is what podman shows.
        name = NewName();
        r = PodmanWith(rt, RunArgs(name, ["--rm", _c.Image, "/nonexistent"]));
        Assert.True(r.ExitCode == 127, r.ToString());
        Assert.Contains("/nonexistent", r.Stderr);
        Assert.Contains("no such file", r.Stderr);
        AssertLeftNothing(name);
    }

    [Fact]
    public void Device_and_privileged()
    {
        // podman's linux.devices carry the node type in fileMode (020666): berth must accept it.
        string name = NewName();
        var r = Podman(RunArgs(name, ["--rm", "--device", "/dev/fuse:/dev/berth-fuse", _c.Image, "ls", "-l", "/dev/berth-fuse"]));
        Assert.True(r.Succeeded, r.ToString());
        Assert.StartsWith("c", r.Stdout.Trim());
        Assert.Contains("10, 229", r.Stdout);

        name = NewName();
        r = Podman(RunArgs(name, ["--rm", "--privileged", _c.Image, "sh", "-c", "test -c /dev/fuse && grep CapEff /proc/self/status"]));
        Assert.True(r.Succeeded, r.ToString());
        Assert.Equal(File.ReadAllLines("/proc/self/status").Single(l => l.StartsWith("CapBnd:")).Split('\t')[1],
            r.Stdout.Trim().Split('\t')[1]);
        AssertLeftNothing(name);
    }

    [Fact]
    public void Detached_exec_exec_tty_top_stop_rm()
    {
        string name = NewName();
        StartDetached(name, "sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done");
        var t = TraceOf(name);
        Assert.Equal("running", Inspect(name, "{{.State.Status}}"));

        var ex = Podman("exec", name, "sh", "-c", "echo in-container; exit 3");
        Assert.True(ex.ExitCode == 3, ex.ToString());
        Assert.Equal("in-container", ex.Stdout.Trim());

        var tty = InPty($"exec -it {name} sh -c '{PtyScript("tty; stty size")}'");
        Assert.True(tty.Succeeded, tty.ToString());
        var lines = ClientSetup.PtyText(tty.Stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Matches(new Regex(@"^/dev/pts/\d+$"), lines.FirstOrDefault() ?? "");
        Assert.Contains("30 100", lines);

        var top = Podman("top", name, "pid", "args");
        Assert.True(top.Succeeded, top.ToString());
        Assert.Contains("trap", top.Stdout);

        // SIGTERM is honoured: the trap runs, long before the 10 s timeout.
        var sw = Stopwatch.StartNew();
        var stop = Podman("stop", "-t", "10", name);
        sw.Stop();
        Assert.True(stop.Succeeded, stop.ToString());
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"stop took {sw.Elapsed}");
        Assert.Equal("42", Inspect(name, "{{.State.ExitCode}}"));

        var rm = Podman("rm", name);
        Assert.True(rm.Succeeded, rm.ToString());
        AssertLeftNothing(name, t);
    }

    [Fact]
    public void Stop_kills_a_container_that_ignores_TERM_after_the_timeout()
    {
        string name = NewName();
        StartDetached(name, "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done");
        var t = TraceOf(name);
        var sw = Stopwatch.StartNew();
        var stop = Podman("stop", "-t", "2", name);
        sw.Stop();
        Assert.True(stop.Succeeded, stop.ToString());
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(1.8) && sw.Elapsed < TimeSpan.FromSeconds(10), $"stop -t 2 took {sw.Elapsed}");
        Assert.Equal("137", Inspect(name, "{{.State.ExitCode}}"));
        Assert.True(Podman("rm", name).Succeeded);
        AssertLeftNothing(name, t);
    }

    [Fact]
    public void Run_it_gets_a_working_tty()
    {
        string name = NewName();
        var r = InPty($"run --rm -it --name {name} --network none --env {Marker(name)} {_c.Image} sh -c '{PtyScript("tty; stty size; exit 5")}'");
        Assert.True(r.ExitCode == 5, r.ToString());
        var lines = ClientSetup.PtyText(r.Stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Contains("/dev/pts/0", lines);
        Assert.Contains("30 100", lines);
        AssertLeftNothing(name);
    }

    [Fact]
    public void Pause_and_unpause()
    {
        string name = NewName();
        StartDetached(name, "sleep", "1000");
        var t = TraceOf(name);
        int pid = int.Parse(Inspect(name, "{{.State.Pid}}"));

        Assert.True(Podman("pause", name).Succeeded);
        Assert.Equal("paused", Inspect(name, "{{.State.Status}}"));
        string freezer = Path.Combine(Kernel.CgroupV1Dir(pid, "freezer"), "freezer.state");
        Assert.Equal("FROZEN", File.ReadAllText(freezer).Trim());

        Assert.True(Podman("unpause", name).Succeeded);
        Assert.Equal("running", Inspect(name, "{{.State.Status}}"));
        Assert.Equal("THAWED", File.ReadAllText(freezer).Trim());
        var ex = Podman("exec", name, "echo", "thawed");
        Assert.True(ex.Succeeded, ex.ToString());

        Assert.True(Podman("rm", "-f", "-t", "0", name).Succeeded);
        AssertLeftNothing(name, t);
    }

    [Fact]
    public void Update_cpu_shares_and_memory()
    {
        string name = NewName();
        StartDetached(name, "sleep", "1000");
        var t = TraceOf(name);
        int pid = int.Parse(Inspect(name, "{{.State.Pid}}"));

        var up = Podman("update", "--cpu-shares", "512", "--memory", "64m", name);
        Assert.True(up.Succeeded, up.ToString());
        Assert.Equal("512", File.ReadAllText(Path.Combine(Kernel.CgroupV1Dir(pid, "cpu"), "cpu.shares")).Trim());
        Assert.Equal("67108864", File.ReadAllText(Path.Combine(Kernel.CgroupV1Dir(pid, "memory"), "memory.limit_in_bytes")).Trim());

        Assert.True(Podman("rm", "-f", "-t", "0", name).Succeeded);
        AssertLeftNothing(name, t);
    }

    public new void Dispose()
    {
        foreach (var name in _names)
        {
            Podman("rm", "-f", "-t", "0", "--ignore", name);
            foreach (var (pid, _) in LeakCheck.Processes("/nonexistent-bundle", Marker(name), name))
            {
                try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
            }
        }
        base.Dispose();
    }
}

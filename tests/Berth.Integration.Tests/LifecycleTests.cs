using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>create/start/state/kill/delete, run, list, exit statuses, signals.</summary>
public sealed class LifecycleTests(TestEnvironment env) : IntegrationTest(env)
{
    [Fact]
    public void Exit_code_propagates()
    {
        var c = NewContainer();
        c.Sh("exit 7");
        var r = c.Run();
        Assert.Equal(7, r.ExitCode);
        c.AssertNoLeaks("after run");
    }

    /// <summary>PID 1 ignores even SIGKILL sent from inside its own pid namespace, so this container
    /// shares the host pid namespace and its shell can die by its own signal.</summary>
    [Fact]
    public void Signal_death_becomes_128_plus_signal()
    {
        var c = NewContainer();
        c.RemoveNamespace("pid");
        c.Sh("kill -9 $$; sleep 5");
        var r = c.Run();
        Assert.Equal(137, r.ExitCode);
        c.AssertNoLeaks("after run");
    }

    [Fact]
    public void Kill_from_outside_ends_a_foreground_run_with_137()
    {
        var c = NewContainer();
        c.Args("sleep", "60");
        using var run = c.RunInBackground();
        c.WaitForStatus("running");
        var kill = c.Kill("KILL");
        Assert.True(kill.Succeeded, kill.ToString());
        var r = run.Wait(TimeSpan.FromSeconds(20));
        Assert.Equal(137, r.ExitCode);
        c.AssertNoLeaks("after run");
    }

    /// <summary>
    /// `run` starts its init through a pipe it holds: the state dir has no exec fifo and no config
    /// copy, only state.json (the config inside it) and init.pid (ADR 0003, second amendment).
    /// </summary>
    [Theory]
    [InlineData("stub")]
    [InlineData("dotnet")]
    public void A_run_keeps_only_state_json_and_init_pid(string init)
    {
        var c = NewContainer();
        if (init == "dotnet") c.UseDotnetInit();
        c.Args("sleep", "60");
        using var run = c.RunInBackground();
        c.WaitForStatus("running");
        var dir = Path.Combine(c.StateRoot, c.Id);
        Assert.Equal(["init.pid", "state.json"], Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "state.json")))!;
        var config = JsonNode.Parse((string)state["config"]!)!;
        Assert.Equal("sleep", (string?)config["process"]!["args"]![0]);
        var again = c.Start();
        Assert.NotEqual(0, again.ExitCode);
        Assert.Contains("already running", again.Stderr);

        Assert.True(c.Kill("KILL").Succeeded);
        Assert.Equal(137, run.Wait(TimeSpan.FromSeconds(20)).ExitCode);
        c.AssertNoLeaks("after run");
    }

    [Fact]
    public void Create_start_state_kill_delete_transitions()
    {
        var c = NewContainer();
        string share = c.ShareDir("/out");
        c.Config["annotations"] = new JsonObject { ["org.berth.test"] = "yes" };
        c.Sh("echo started > /out/started; exec sleep 60");

        c.CreateOk();
        var created = c.StateJson();
        Assert.Equal("created", (string?)created["status"]);
        Assert.Equal(c.Id, (string?)created["id"]);
        Assert.Equal(c.BundleDir, (string?)created["bundle"]);
        Assert.False(string.IsNullOrEmpty((string?)created["ociVersion"]), created.ToJsonString());
        Assert.Equal("yes", (string?)created["annotations"]?["org.berth.test"]);
        Assert.Equal("root", (string?)created["owner"]); // the state dir's owner, named from /etc/passwd as runc does
        int pid = (int)created["pid"]!;
        Assert.True(pid > 0 && Kernel.ProcessAlive(pid), $"created container's pid {pid} is not alive");
        Thread.Sleep(200);
        Assert.False(File.Exists(Path.Combine(share, "started")), "the user program ran before start");

        c.StartOk();
        TestContainer.WaitForFile(Path.Combine(share, "started"));
        Assert.Equal("running", c.Status());
        Assert.Equal(pid, c.Pid());

        var again = c.Start();
        Assert.NotEqual(0, again.ExitCode);

        var deleteRunning = c.Delete();
        Assert.NotEqual(0, deleteRunning.ExitCode);
        Assert.Equal("running", c.Status());

        var kill = c.Kill("KILL");
        Assert.True(kill.Succeeded, kill.ToString());
        c.WaitForStatus("stopped");
        Assert.False(Kernel.ProcessAlive(pid));

        var delete = c.Delete();
        Assert.True(delete.Succeeded, delete.ToString());
        Assert.NotEqual(0, c.State().ExitCode);
        c.AssertNoLeaks("after delete");
    }

    [Fact]
    public void Delete_force_removes_a_running_container()
    {
        var c = NewContainer();
        c.Args("sleep", "60");
        int pid = c.CreateAndStart();
        var r = c.Delete(force: true);
        Assert.True(r.Succeeded, r.ToString());
        Assert.False(Kernel.ProcessAlive(pid));
        c.AssertNoLeaks("after delete --force");
    }

    [Fact]
    public void Delete_force_removes_a_created_container()
    {
        var c = NewContainer();
        c.Args("sleep", "60");
        c.CreateOk();
        int pid = c.Pid();
        var r = c.Delete(force: true);
        Assert.True(r.Succeeded, r.ToString());
        Assert.False(Kernel.ProcessAlive(pid));
        c.AssertNoLeaks("after delete --force");
    }

    [Fact]
    public void Run_detached_returns_while_the_container_runs()
    {
        var c = NewContainer();
        c.Args("sleep", "60");
        var started = DateTime.UtcNow;
        var r = c.Run("-d");
        Assert.True(r.Succeeded, r.ToString());
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(15), "run -d waited for the container");
        Assert.Equal("running", c.Status());
        Assert.True(Kernel.ProcessAlive(c.Pid()));
        Assert.True(c.Delete(force: true).Succeeded);
        c.AssertNoLeaks("after delete --force");
    }

    [Fact]
    public void List_shows_containers_as_table_json_and_quiet()
    {
        var c = NewContainer();
        c.Args("sleep", "60");
        c.CreateOk();
        int pid = c.Pid();

        var table = c.Runtime("list");
        Assert.True(table.Succeeded, table.ToString());
        var rows = Lines(table.Stdout);
        Assert.StartsWith("ID", rows[0]);
        var row = rows.Single(l => l.StartsWith(c.Id + " ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(pid.ToString(), row[1]);
        Assert.Equal("created", row[2]);

        var json = c.Runtime("list", "-f", "json");
        Assert.True(json.Succeeded, json.ToString());
        var entry = JsonNode.Parse(json.Stdout)!.AsArray().Single(e => (string?)e!["id"] == c.Id)!;
        Assert.Equal("created", (string?)entry["status"]);
        Assert.Equal(pid, (int)entry["pid"]!);
        Assert.Equal(c.BundleDir, (string?)entry["bundle"]);

        var quiet = c.Runtime("list", "-q");
        Assert.True(quiet.Succeeded, quiet.ToString());
        Assert.Equal([c.Id], Lines(quiet.Stdout));
    }

    [Fact]
    public void Pid_file_holds_the_containers_pid()
    {
        var c = NewContainer();
        c.Args("sleep", "60");
        string pidFile = Path.Combine(c.WorkDir, "container.pid");
        c.CreateOk("--pid-file", pidFile);
        Assert.Equal(c.Pid().ToString(), File.ReadAllText(pidFile).Trim());
    }

    [Theory]
    [InlineData("TERM")]
    [InlineData("SIGTERM")]
    [InlineData("15")]
    [InlineData(null)] // the default signal is SIGTERM
    [InlineData("USR1")]
    [InlineData("SIGUSR1")]
    [InlineData("10")]
    public void Kill_accepts_signal_names_and_numbers(string? signal)
    {
        var c = NewContainer("kill-" + (signal ?? "default"));
        string share = c.ShareDir("/out");
        c.Sh("trap 'echo TERM > /out/sig; exit 0' TERM; trap 'echo USR1 > /out/sig; exit 0' USR1; " +
             "echo ready > /out/ready; while :; do sleep 0.1; done");
        c.CreateAndStart();
        TestContainer.WaitForFile(Path.Combine(share, "ready"));

        var r = c.Kill(signal);
        Assert.True(r.Succeeded, r.ToString());
        string expected = signal is not null && signal.Contains("USR1") || signal == "10" ? "USR1" : "TERM";
        Assert.Equal(expected, TestContainer.WaitForFile(Path.Combine(share, "sig")).Trim());
        c.WaitForStatus("stopped");
    }

    [Theory]
    [InlineData("KILL")]
    [InlineData("SIGKILL")]
    [InlineData("9")]
    public void Kill_with_sigkill_stops_the_container(string signal)
    {
        var c = NewContainer("kill9-" + signal);
        c.Args("sleep", "60");
        int pid = c.CreateAndStart();
        var r = c.Kill(signal);
        Assert.True(r.Succeeded, r.ToString());
        c.WaitForStatus("stopped");
        Assert.False(Kernel.ProcessAlive(pid));
    }

    [Fact]
    public void Kill_with_an_unknown_signal_fails()
    {
        var c = NewContainer();
        c.Args("sleep", "60");
        c.CreateAndStart();
        var r = c.Kill("NOTASIGNAL");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Equal("running", c.Status());
    }

    [Fact]
    public void Delete_of_a_missing_container()
    {
        var c = NewContainer();
        var plain = c.Delete();
        Assert.Equal(1, plain.ExitCode);
        Assert.NotEqual("", plain.Stderr.Trim());
        var forced = c.Delete(force: true);
        Assert.True(forced.Succeeded, forced.ToString());
    }

    [Fact]
    public void State_of_a_missing_container_fails()
    {
        var c = NewContainer();
        var r = c.State();
        Assert.NotEqual(0, r.ExitCode);
        Assert.NotEqual("", r.Stderr.Trim());
        Assert.Equal("", r.Stdout.Trim());
    }

    [Fact]
    public void Start_and_kill_of_a_missing_container_fail()
    {
        var c = NewContainer();
        Assert.NotEqual(0, c.Start().ExitCode);
        Assert.NotEqual(0, c.Kill("KILL").ExitCode);
    }

    [Fact]
    public void Create_with_an_id_in_use_fails_and_keeps_the_first()
    {
        var c = NewContainer();
        c.Args("sleep", "60");
        c.CreateOk();
        int pid = c.Pid();
        var second = c.Create();
        Assert.NotEqual(0, second.ExitCode);
        Assert.Equal("created", c.Status());
        Assert.Equal(pid, c.Pid());
    }

    [Fact]
    public void State_json_is_a_single_object_with_the_oci_fields()
    {
        var c = NewContainer();
        c.Args("sleep", "60");
        c.CreateOk();
        var r = c.State();
        using var doc = JsonDocument.Parse(r.Stdout);
        foreach (var field in new[] { "ociVersion", "id", "status", "pid", "bundle" })
            Assert.True(doc.RootElement.TryGetProperty(field, out _), $"state lacks {field}:\n{r.Stdout}");
    }
}

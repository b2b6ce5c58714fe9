using System.Diagnostics;
using System.Runtime.CompilerServices;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests.Clients;

/// <summary>
/// A private containerd 1.6 (scripts/setup-clients' config: its own root, state and socket), started
/// for these tests and stopped after them, with the busybox image imported into namespace
/// <see cref="Namespace"/>.
/// </summary>
public sealed class ContainerdDaemon : IDisposable
{
    public const string Namespace = "berth-tests";
    private readonly object _lock = new();
    private RunningProcess? _daemon;
    private ClientSetup? _c;

    public ClientSetup Start(TestEnvironment env)
    {
        lock (_lock)
        {
            if (_c is not null) return _c;
            var c = ClientSetup.Get(env);
            string scratch = Path.Combine(TestEnvironment.ScratchRoot, "containerd");
            // One left running by an interrupted run is reused. (ctr waits 10 s for a socket that
            // does not answer unless told otherwise.)
            if (!File.Exists(c.ContainerdAddress) || !Ctr(c, scratch, "--connect-timeout", "1s", "version").Succeeded)
            {
                _daemon = ProcessRunner.Start("containerd", ["--config", c.ContainerdConfig], scratch);
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
                while (!File.Exists(c.ContainerdAddress) || !Ctr(c, scratch, "--connect-timeout", "1s", "version").Succeeded)
                {
                    if (_daemon.HasExited || DateTime.UtcNow > deadline)
                        throw new InvalidOperationException("containerd did not come up:\n" + _daemon.Wait(TimeSpan.FromSeconds(5)));
                    Thread.Sleep(100);
                }
            }
            if (!Ctr(c, scratch, "images", "ls", "-q").Stdout.Split('\n').Contains(c.Image))
            {
                var imp = Ctr(c, scratch, "images", "import", c.OciArchive);
                if (!imp.Succeeded) throw new InvalidOperationException("ctr images import failed:\n" + imp);
            }
            _c = c;
            return c;
        }
    }

    /// <summary>ctr with the private socket and namespace; global flags may lead args (e.g. --connect-timeout 1s).</summary>
    public static ProcResult Ctr(ClientSetup c, string scratch, params string[] args) =>
        ProcessRunner.Run("ctr", ["--address", c.ContainerdAddress, "--namespace", Namespace, .. args], scratch, TimeSpan.FromSeconds(60));

    public void Dispose()
    {
        if (_daemon is null) return;
        ProcessRunner.Host("kill", "-TERM", _daemon.Pid.ToString());
        _daemon.Wait(TimeSpan.FromSeconds(10));
        _daemon.Dispose();
    }
}

/// <summary>
/// containerd drives berth-runtime through containerd-shim-runc-v2 (the path Kubernetes takes):
/// `ctr run --runtime io.containerd.runc.v2 --runc-binary berth-runtime`, then task exec, ps,
/// pause/resume, kill and delete.
/// </summary>
public sealed class ContainerdTests : IntegrationTest, IClassFixture<ContainerdDaemon>, IDisposable
{
    private readonly ClientSetup _c;
    private readonly string _scratch = Path.Combine(TestEnvironment.ScratchRoot, "containerd");
    private readonly List<string> _ids = [];

    public ContainerdTests(TestEnvironment env, ContainerdDaemon daemon) : base(env) => _c = daemon.Start(env);

    private static string Marker(string id) => $"BERTH_TEST_ID={id}";

    private string NewId([CallerMemberName] string test = "c")
    {
        string id = ClientSetup.NewName(test);
        _ids.Add(id);
        return id;
    }

    private ProcResult Ctr(params string[] args) => ContainerdDaemon.Ctr(_c, _scratch, args);

    private string[] RunArgs(string id, string[] flags, params string[] cmd) =>
        ["run", .. flags, "--runtime", "io.containerd.runc.v2", "--runc-binary", _c.Runtime, "--env", Marker(id), _c.Image, id, .. cmd];

    private string BundleDir(string id) => Path.Combine(_c.ContainerdState, "io.containerd.runtime.v2.task", ContainerdDaemon.Namespace, id);

    /// <summary>containerd forgot the container (task, container, snapshot), and berth left no state, cgroup, mount or process (the shim included).</summary>
    private void AssertLeftNothing(string id)
    {
        ClientSetup.AssertNothingLeft($"containerd container {id}", () =>
        {
            var left = new List<string>();
            foreach (var (what, args) in new[] { ("task", new[] { "task", "ls", "-q" }), ("container", new[] { "containers", "ls", "-q" }), ("snapshot", new[] { "snapshots", "ls" }) })
            {
                var r = Ctr(args);
                if (r.Stdout.Contains(id, StringComparison.Ordinal)) left.Add($"ctr still lists the {what}");
            }
            string stateRoot = Path.Combine("/run/containerd/runc", ContainerdDaemon.Namespace);
            left.AddRange(LeakCheck.Find(id, stateRoot, BundleDir(id), Marker(id)).Select(l => l.ToString()));
            return left;
        });
    }

    [Fact]
    public void Run_rm_prints_hi_and_exit_codes_propagate()
    {
        string id = NewId();
        var r = Ctr(RunArgs(id, ["--rm"], "echo", "hi"));
        Assert.True(r.Succeeded, r.ToString());
        Assert.Equal("hi", r.Stdout.Trim());
        AssertLeftNothing(id);

        id = NewId();
        r = Ctr(RunArgs(id, ["--rm"], "sh", "-c", "exit 7"));
        Assert.True(r.ExitCode == 7, r.ToString());
        AssertLeftNothing(id);
    }

    [Fact]
    public void Detached_task_exec_ps_pause_resume_kill_delete()
    {
        string id = NewId();
        var r = Ctr(RunArgs(id, ["-d"], "sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done"));
        Assert.True(r.Succeeded, r.ToString());
        Assert.Equal("RUNNING", TaskStatus(id));

        var ex = Ctr("task", "exec", "--exec-id", "e1", id, "sh", "-c", "echo exec-ok; exit 5");
        Assert.True(ex.ExitCode == 5, ex.ToString());
        Assert.Equal("exec-ok", ex.Stdout.Trim());

        // task ps: the host pids of the container's processes, the init among them.
        var ls = Ctr("task", "ls");
        int initPid = int.Parse(ls.Stdout.Split('\n').Single(l => l.StartsWith(id + " ", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        var ps = Ctr("task", "ps", id);
        Assert.True(ps.Succeeded, ps.ToString());
        Assert.Contains(initPid.ToString(), ps.Stdout.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries));

        Assert.True(Ctr("task", "pause", id).Succeeded);
        Assert.Equal("PAUSED", TaskStatus(id));
        Assert.Equal("FROZEN", File.ReadAllText(Path.Combine(Kernel.CgroupV1Dir(initPid, "freezer"), "freezer.state")).Trim());
        Assert.True(Ctr("task", "resume", id).Succeeded);
        Assert.Equal("RUNNING", TaskStatus(id));

        // kill sends SIGTERM; the trap exits 3, which task delete reports.
        var kill = Ctr("task", "kill", id);
        Assert.True(kill.Succeeded, kill.ToString());
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (TaskStatus(id) != "STOPPED" && DateTime.UtcNow < deadline) Thread.Sleep(100);
        Assert.Equal("STOPPED", TaskStatus(id));
        var del = Ctr("task", "delete", id);
        Assert.True(del.Succeeded, del.ToString());
        Assert.Contains("3", del.Stdout + del.Stderr);
        Assert.True(Ctr("containers", "delete", id).Succeeded);
        AssertLeftNothing(id);
    }

    [Fact]
    public void Task_kill_all_and_force_delete_of_a_running_task()
    {
        string id = NewId();
        var r = Ctr(RunArgs(id, ["-d"], "sh", "-c", "sleep 1000 & sleep 1000 & wait"));
        Assert.True(r.Succeeded, r.ToString());
        var ex = Ctr("task", "exec", "-d", "--exec-id", "bg", id, "sleep", "1000");
        Assert.True(ex.Succeeded, ex.ToString());
        // --force: kills everything and deletes the running task in one go.
        var del = Ctr("task", "delete", "--force", id);
        Assert.True(del.Succeeded, del.ToString());
        Assert.True(Ctr("containers", "delete", id).Succeeded);
        AssertLeftNothing(id);
    }

    private string TaskStatus(string id)
    {
        var ls = Ctr("task", "ls");
        var line = ls.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith(id + " ", StringComparison.Ordinal));
        return line?.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2] ?? "(none)";
    }

    public new void Dispose()
    {
        foreach (var id in _ids)
        {
            Ctr("task", "delete", "--force", id);
            Ctr("containers", "delete", id);
            foreach (var (pid, _) in LeakCheck.Processes(BundleDir(id), Marker(id), id))
            {
                try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
            }
        }
        base.Dispose();
    }
}

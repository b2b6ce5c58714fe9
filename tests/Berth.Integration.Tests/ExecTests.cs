using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>`exec`: a new process in the running container's namespaces, cgroup and limits.</summary>
public sealed class ExecTests(TestEnvironment env) : IntegrationTest(env)
{
    private TestContainer Running(string name = "c")
    {
        var c = NewContainer(name);
        c.Args("sleep", "60");
        c.CreateAndStart();
        return c;
    }

    [Fact]
    public void Exec_runs_in_the_containers_namespaces_and_returns_the_exit_status()
    {
        var c = Running();
        int init = c.Pid();
        var r = c.Runtime("exec", c.Id, "sh", "-c",
            "for n in pid net mnt uts ipc; do readlink /proc/self/ns/$n; done; hostname; exit 5");
        Assert.Equal(5, r.ExitCode);
        var lines = Lines(r.Stdout);
        string[] names = ["pid", "net", "mnt", "uts", "ipc"];
        for (int i = 0; i < names.Length; i++) Assert.Equal(Kernel.NsLink(init, names[i]), lines[i]);
        Assert.Equal("berth", lines[5]);
    }

    [Fact]
    public void Exec_flags_set_env_user_cwd_and_capabilities()
    {
        var c = Running();
        var r = c.Runtime("exec", "-e", "FOO=bar", "-u", "1000:1000", "--cwd", "/tmp", "--cap", "CAP_NET_RAW", c.Id,
            "sh", "-c", "echo $FOO; id -u; id -g; pwd; grep CapBnd /proc/self/status");
        Assert.True(r.Succeeded, r.ToString());
        var lines = Lines(r.Stdout);
        Assert.Equal(["bar", "1000", "1000", "/tmp"], lines.Take(4));
        ulong bnd = Kernel.Hex(lines[4].Split(':')[1].Trim());
        Assert.NotEqual(0UL, bnd & (1UL << Kernel.CapBit("CAP_NET_RAW")));
    }

    [Fact]
    public void Exec_detached_writes_a_pid_file_and_joins_the_cgroup()
    {
        var c = Running();
        string pidFile = Path.Combine(c.WorkDir, "exec.pid");
        var r = c.Runtime("exec", "--detach", "--pid-file", pidFile, c.Id, "sleep", "30");
        Assert.True(r.Succeeded, r.ToString());
        int pid = int.Parse(File.ReadAllText(pidFile).Trim());
        Assert.Equal(Kernel.CgroupV1Path(c.Pid(), "memory"), Kernel.CgroupV1Path(pid, "memory"));
        Assert.Equal(Kernel.NsLink(c.Pid(), "pid"), Kernel.NsLink(pid, "pid"));
        Assert.True(c.Delete(force: true).Succeeded);
        Assert.False(Directory.Exists($"/proc/{pid}") && File.ReadAllText($"/proc/{pid}/stat").Split(' ')[2] != "Z",
            "the exec'd process survived delete --force");
    }

    [Fact]
    public void Exec_detached_pid_file_names_a_quick_process_too()
    {
        // The exec'd process reports "ready" on the same socket as the intermediate's "pid": a
        // quick one could win, and the pid file said 0 (conmon then reported exit -1, podman 255).
        var c = Running();
        for (int i = 0; i < 30; i++)
        {
            string pidFile = Path.Combine(c.WorkDir, $"quick{i}.pid");
            var r = c.Runtime("exec", "--detach", "--pid-file", pidFile, c.Id, "true");
            Assert.True(r.Succeeded, r.ToString());
            Assert.True(int.Parse(File.ReadAllText(pidFile).Trim()) > 1, $"exec {i}: pid file says {File.ReadAllText(pidFile)}");
        }
    }

    [Fact]
    public void Exec_with_a_process_file_as_podman_sends_it()
    {
        var c = Running();
        string file = Path.Combine(c.WorkDir, "process.json");
        File.WriteAllText(file, new JsonObject
        {
            ["terminal"] = false,
            ["user"] = new JsonObject { ["uid"] = 0, ["gid"] = 0 },
            ["args"] = new JsonArray("sh", "-c", "echo from-process-file $X; exit 3"),
            ["env"] = new JsonArray("PATH=/bin:/usr/bin", "X=42"),
            ["cwd"] = "/",
        }.ToJsonString());
        var r = c.Runtime("exec", "--process", file, c.Id);
        Assert.Equal(3, r.ExitCode);
        Assert.Equal("from-process-file 42", Lines(r.Stdout).Single());
    }

    [Fact]
    public void Exec_into_a_stopped_or_missing_container_fails()
    {
        var c = NewContainer();
        c.Args("true");
        c.CreateOk();
        c.StartOk();
        c.WaitForStatus("stopped");
        var r = c.Runtime("exec", c.Id, "true");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("stopped", r.Stderr);
        var m = c.Runtime("exec", "no-such-container", "true");
        Assert.NotEqual(0, m.ExitCode);
        Assert.Contains("does not exist", m.Stderr);
    }

    [Fact]
    public void Exec_of_a_missing_command_fails_with_its_name()
    {
        var c = Running();
        var r = c.Runtime("exec", c.Id, "no-such-command");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("no-such-command", r.Stderr);
    }

    [Fact]
    public async Task Exec_tty_sends_a_pty_to_the_console_socket()
    {
        var c = Running();
        using var sock = new ConsoleSocket(c.WorkDir);
        var receive = sock.ReceiveAsync(TimeSpan.FromSeconds(20));
        var r = c.Runtime("exec", "--tty", "--detach", "--console-socket", sock.Path, c.Id, "sh", "-c", "tty; echo done");
        Assert.True(r.Succeeded, r.ToString());
        var (fd, _) = await receive;
        var output = ConsoleSocket.ReadUntil(fd, "done");
        Assert.Contains(Lines(output), l => l.StartsWith("/dev/pts/", StringComparison.Ordinal));
    }
}

using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>process.terminal with --console-socket: the pty master goes to the socket, the container gets a real tty.</summary>
public sealed class TerminalTests(TestEnvironment env) : IntegrationTest(env)
{
    [Fact]
    public async Task Console_socket_receives_a_pty_master_and_the_process_has_a_tty()
    {
        var c = NewContainer();
        c.Process["terminal"] = true;
        c.Process["consoleSize"] = new JsonObject { ["height"] = 40, ["width"] = 100 };
        c.Sh("tty; stty size; echo done");
        using var sock = new ConsoleSocket(c.WorkDir);
        var receive = sock.ReceiveAsync(TimeSpan.FromSeconds(20));
        c.CreateOk("--console-socket", sock.Path);
        var (fd, message) = await receive;
        Assert.StartsWith("/dev/pts/", message);
        c.StartOk();

        var output = ConsoleSocket.ReadUntil(fd, "done");
        var lines = Lines(output);
        Assert.Contains(lines, l => l.StartsWith("/dev/pts/", StringComparison.Ordinal));
        Assert.Contains("40 100", lines);
    }

    /// <summary>
    /// `run` in the foreground with process.terminal and no --console-socket (runc's behaviour,
    /// and what `spec` + `run` gives a person): berth takes the pty and relays it to its own
    /// terminal. util-linux `script` plays the person's terminal.
    /// </summary>
    [Fact]
    public void Foreground_run_relays_the_pty_to_the_callers_terminal()
    {
        var c = NewContainer();
        c.Process["terminal"] = true;
        c.Sh("tty; read x; echo got=$x; exit 4");
        c.SaveConfig();
        string cmd = string.Join(' ', new[] { c.RuntimePath, "--root", c.StateRoot, "run", "--bundle", c.BundleDir, c.Id }
            .Select(ProcessRunner.Quote));
        var r = ProcessRunner.Run("script", ["-qec", cmd, "/dev/null"], c.WorkDir, stdin: "hello\n");
        Assert.False(r.TimedOut, r.ToString());
        Assert.Equal(4, r.ExitCode);
        var lines = Lines(r.Stdout);
        Assert.Contains(lines, l => l.StartsWith("/dev/pts/", StringComparison.Ordinal));
        Assert.Contains("got=hello", lines);
        c.AssertNoLeaks();
    }

    [Fact]
    public void Terminal_without_console_socket_fails_cleanly()
    {
        var c = NewContainer();
        c.Process["terminal"] = true;
        var r = c.Create();
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("console-socket", r.Stderr);
        c.AssertNoLeaks();
    }
}

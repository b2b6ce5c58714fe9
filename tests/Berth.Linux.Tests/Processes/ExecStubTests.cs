using System.Diagnostics;
using Berth.Linux.Processes;

namespace Berth.Linux.Tests.Processes;

/// <summary>
/// The exec stub's machine code, run as a real program (written to a temp file and started with
/// Process.Start; stdin plays the exec fifo, fd 0).
/// </summary>
public sealed class ExecStubTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("berth-stub-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (int Exit, string Out, string Err) Run(string? stdin, params string[] argv) => RunWith("", stdin, argv);

    private (int Exit, string Out, string Err) RunWith(string prelude, string? stdin, params string[] argv)
    {
        string stub = Path.Combine(_dir, "stub");
        if (!File.Exists(stub))
        {
            File.WriteAllBytes(stub, ExecStub.Build());
            File.SetUnixFileMode(stub, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        }
        var psi = new ProcessStartInfo(stub)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        // argv[0] must be the fifo fd: bash's `exec -a` sets it.
        psi.FileName = "/bin/bash";
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(prelude + "exec -a \"$0\" \"$STUB\" \"$@\"");
        foreach (var a in argv) psi.ArgumentList.Add(a);
        psi.Environment["STUB"] = stub;
        psi.Environment["STUB_TEST_VAR"] = "from-env";
        using var p = Process.Start(psi)!;
        if (stdin is not null) p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        string o = p.StandardOutput.ReadToEnd(), e = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(10_000), "the stub did not exit");
        return (p.ExitCode, o, e);
    }

    [Fact]
    public void Waits_for_one_byte_then_executes_the_path_with_the_args_and_environment()
    {
        var r = Run("x", "0", "/bin/sh", "sh", "-c", "echo \"$0 $1 $STUB_TEST_VAR\"; if [ -e /proc/$$/fd/0 ]; then echo fd0-open; else echo fd0-closed; fi", "zero", "arg1");
        Assert.Equal(0, r.Exit);
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("zero arg1 from-env", lines[0]);
        // fd 0 (the "fifo") was closed by the stub before the exec.
        Assert.Equal("fd0-closed", lines[1]);
    }

    [Fact]
    public void A_failed_exec_prints_the_path_and_the_error_and_exits_127()
    {
        var r = Run("x", "0", "/nonexistent/prog", "prog");
        Assert.Equal(127, r.Exit);
        Assert.Equal("berth: exec /nonexistent/prog: " + LinuxException.Describe(2) + "\n", r.Err);
    }

    [Fact]
    public void A_fifo_that_closes_without_a_byte_exits_1_without_executing()
    {
        var r = Run("", "0", "/bin/echo", "echo", "must-not-run");
        Assert.Equal(1, r.Exit);
        Assert.Equal("", r.Out);
    }

    [Fact]
    public void Multi_digit_fifo_fd_is_parsed()
    {
        // The "fifo" is fd 12 (stdin moved there); stdin itself is /dev/null, so only fd 12 has the byte.
        var r = RunWith("exec 12<&0 0</dev/null; ", "x", "12", "/bin/sh", "sh", "-c", "if [ -e /proc/$$/fd/12 ]; then echo fd12-open; else echo ran; fi");
        Assert.Equal(0, r.Exit);
        Assert.Equal("ran\n", r.Out);
    }
}

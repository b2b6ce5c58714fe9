using System.Diagnostics;
using System.Text;

namespace Berth.Integration.Tests.Infrastructure;

/// <summary>The outcome of one command: exit status and everything it wrote.</summary>
public sealed record ProcResult(int ExitCode, string Stdout, string Stderr, bool TimedOut, string CommandLine)
{
    public bool Succeeded => ExitCode == 0 && !TimedOut;

    public override string ToString() =>
        $"`{CommandLine}` exited {ExitCode}{(TimedOut ? " (TIMED OUT, killed)" : "")}\n" +
        $"--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}\n--------------";
}

/// <summary>
/// A command started in the background (e.g. a foreground <c>run</c> that a test signals).
/// stdio goes to files, never to pipes: a detached container inherits the runtime's stdio and
/// would otherwise hold our pipes open for its whole life.
/// </summary>
public sealed class RunningProcess : IDisposable
{
    private readonly Process _process;
    private readonly string _stdoutFile;
    private readonly string _stderrFile;
    private ProcResult? _result;

    internal RunningProcess(Process process, string stdoutFile, string stderrFile, string commandLine)
    {
        _process = process;
        _stdoutFile = stdoutFile;
        _stderrFile = stderrFile;
        CommandLine = commandLine;
    }

    public string CommandLine { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    /// <summary>What the command has written to stdout so far.</summary>
    public string StdoutSoFar => ReadShared(_stdoutFile);

    public ProcResult Wait(TimeSpan timeout)
    {
        if (_result is not null) return _result;
        bool timedOut = false;
        if (!_process.WaitForExit(timeout))
        {
            timedOut = true;
            try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            _process.WaitForExit(5000);
        }
        int code = _process.HasExited ? _process.ExitCode : -1;
        _result = new ProcResult(code, ReadShared(_stdoutFile), ReadShared(_stderrFile), timedOut, CommandLine);
        return _result;
    }

    private static string ReadShared(string path)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(fs, Encoding.UTF8);
            return reader.ReadToEnd();
        }
        catch (IOException) { return ""; }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            _process.WaitForExit(5000);
        }
        _process.Dispose();
    }
}

/// <summary>
/// Starts commands with System.Diagnostics.Process only: the test host itself never forks
/// (architecture guide, fork-safety rule 1). Each command runs through a tiny /bin/sh wrapper
/// that sets up its stdio (stdin from a file or /dev/null, stdout/stderr to files) and can run a
/// prelude first (e.g. <c>exec 5&lt;/etc/hostname</c> to hand the runtime an inherited fd),
/// then execs the command, so the runtime's pid is the wrapper's pid.
/// </summary>
public static class ProcessRunner
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);
    private static int s_counter;
    public const string HostOnlyVariable = "BERTH_IT_HOST_ONLY";

    public static RunningProcess Start(string file, IEnumerable<string> args, string scratchDir,
        string? prelude = null, string? stdin = null, string? workingDirectory = null)
    {
        Directory.CreateDirectory(scratchDir);
        int n = Interlocked.Increment(ref s_counter);
        string stdoutFile = Path.Combine(scratchDir, $"cmd{n}.out");
        string stderrFile = Path.Combine(scratchDir, $"cmd{n}.err");
        string stdinFile = "/dev/null";
        if (stdin is not null)
        {
            stdinFile = Path.Combine(scratchDir, $"cmd{n}.in");
            File.WriteAllText(stdinFile, stdin);
        }

        var argList = args.ToList();
        string script = (prelude is null ? "" : prelude + "\n") +
                        $"exec \"$@\" <{Quote(stdinFile)} >{Quote(stdoutFile)} 2>{Quote(stderrFile)}";
        var psi = new ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? scratchDir,
        };
        // A variable only the host side has: tests assert it never reaches a container.
        psi.Environment[HostOnlyVariable] = "1";
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add("sh");
        psi.ArgumentList.Add(file);
        foreach (var a in argList) psi.ArgumentList.Add(a);

        string commandLine = (prelude is null ? "" : $"[{prelude.Replace('\n', ';')}] ") +
                             string.Join(' ', new[] { file }.Concat(argList).Select(QuoteIfNeeded));
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {commandLine}");
        return new RunningProcess(process, stdoutFile, stderrFile, commandLine);
    }

    public static ProcResult Run(string file, IEnumerable<string> args, string scratchDir,
        TimeSpan? timeout = null, string? prelude = null, string? stdin = null, string? workingDirectory = null)
    {
        using var p = Start(file, args, scratchDir, prelude, stdin, workingDirectory);
        return p.Wait(timeout ?? DefaultTimeout);
    }

    /// <summary>Runs a host helper command (cp, umount, ...) with its output captured.</summary>
    public static ProcResult Host(string file, params string[] args) =>
        Run(file, args, Path.Combine(TestEnvironment.ScratchRoot, "host-cmds"));

    public static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";

    private static string QuoteIfNeeded(string s) =>
        s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,@+%".Contains(c)) ? s : Quote(s);
}

using Berth.Engine.Containers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Seccomp;

namespace Berth.Engine.Sandbox;

/// <summary>--on-violation: what a forbidden system call gets.</summary>
public enum ViolationMode { Log, Deny, Kill, Quarantine }

/// <summary>One recorded attempt, as an audit log line.</summary>
public sealed record Violation(DateTime Time, int Pid, string Comm, string Syscall, int Nr, string Arch, ulong[] Args, ulong Ip, string Action, bool Setup)
{
    /// <summary>"notify" (the supervisor saw the call) or "kernel-audit" (the fallback read the kernel's record).</summary>
    public string Source { get; init; } = "notify";

    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms)) Write(w);
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    public void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("time", Time.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture));
        w.WriteNumber("pid", Pid);
        w.WriteString("comm", Comm);
        w.WriteString("syscall", Syscall);
        w.WriteNumber("nr", Nr);
        w.WriteString("arch", Arch);
        w.WriteStartArray("args");
        foreach (var a in Args) w.WriteStringValue("0x" + a.ToString("x", CultureInfo.InvariantCulture));
        w.WriteEndArray();
        w.WriteString("ip", "0x" + Ip.ToString("x", CultureInfo.InvariantCulture));
        w.WriteString("action", Action);
        if (Setup) w.WriteBoolean("setup", true);
        if (Source != "notify") w.WriteString("source", Source);
        w.WriteEndObject();
    }
}

/// <summary>
/// The seccomp supervisor of one jail: a thread that answers every user notification of the
/// jail's filter, records each attempt (audit log line, count, first violation) and, in kill and
/// quarantine modes, holds the caller blocked and raises <see cref="KillRequested"/> for the run
/// loop, which kills (or quarantines) the jail; held notifications are answered EPERM when the
/// supervisor stops (the kernel drops them when their callers die first).
/// Fork safety: the thread starts from the runtime's seccomp callback (Ephemeral.Options.OnSeccompFd), after the runtime's only fork;
/// berth forks nothing after that (docs/adr/0014).
/// </summary>
public sealed class Supervisor : IDisposable
{
    /// <summary>
    /// Records kept (in memory for the evidence bundle, and lines in the audit file): a program
    /// looping on a forbidden call in log mode must not fill the host's disk. Past it, only counted;
    /// the audit file ends with a {"dropped":N} line.
    /// </summary>
    private const int KeepInMemory = 10_000;
    private int _dropped;
    private const int EPERM = 1;

    private readonly ViolationMode _mode;
    private readonly object _lock = new();
    private readonly List<Violation> _records = [];
    private readonly List<ulong> _held = [];
    private readonly StreamWriter? _audit;
    private int _notifyFd = -1;
    private int _stopRead = -1, _stopWrite = -1;
    private int _wakeRead = -1, _wakeWrite = -1;
    private Thread? _thread;
    private volatile bool _started;
    private volatile bool _killRequested;
    private int _count;

    public Supervisor(ViolationMode mode, string? auditPath)
    {
        _mode = mode;
        if (auditPath is not null)
        {
            try { _audit = new StreamWriter(new FileStream(auditPath, FileMode.Create, FileAccess.Write, FileShare.Read), new UTF8Encoding(false)); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new EngineError($"--audit {auditPath}: {e.Message}");
            }
        }
    }

    /// <summary>Violations by the program (setup-time calls of berth's own init are logged but not counted).</summary>
    public int Count => Volatile.Read(ref _count);
    public bool KillRequested => _killRequested;
    public bool Attached => _notifyFd >= 0;

    /// <summary>Readable once a violation asks for the jail to be killed: a run loop can poll it beside its pidfd. -1 before <see cref="Attach"/>.</summary>
    public int WakeFd => _wakeRead;

    public Violation? First
    {
        get { lock (_lock) return _records.FirstOrDefault(r => !r.Setup); }
    }

    public IReadOnlyList<Violation> Records
    {
        get { lock (_lock) return [.. _records]; }
    }

    /// <summary>The runtime's OnSeccompFd: keeps a copy of the notify fd and starts answering at once (init's own setup runs under the filter).</summary>
    public void Attach(int initPid, int notifyFd) => Attach(initPid, notifyFd, threaded: true);

    /// <summary>
    /// Keeps a copy of the notify fd. Threaded: a thread answers at once (the runtime's init runs its own
    /// setup under the filter). Not threaded (the jail stub: nothing is notified before the program's
    /// exec): the run loop polls <see cref="NotifyFd"/> and calls <see cref="HandlePending"/>, no thread per job.
    /// </summary>
    public void Attach(int initPid, int notifyFd, bool threaded)
    {
        if (_notifyFd >= 0) throw new Berth.Runtime.RuntimeError("sandbox: a second seccomp notify fd for one jail");
        int fd = LibC.fcntl(notifyFd, 1030 /* F_DUPFD_CLOEXEC */, 3);
        if (fd < 0) throw LinuxException.Last("fcntl(F_DUPFD_CLOEXEC)", "seccomp notify fd");
        _notifyFd = fd;
        if (!threaded) return;
        (_stopRead, _stopWrite) = Fd.Pipe();
        (_wakeRead, _wakeWrite) = Fd.Pipe();
        _thread = new Thread(Loop) { IsBackground = true, Name = "berth-seccomp-supervisor" };
        _thread.Start();
    }

    /// <summary>The notify fd the run loop polls when no thread answers it (-1: none, or a thread does).</summary>
    public int NotifyFd => _thread is null ? _notifyFd : -1;

    /// <summary>Answers (or holds) one pending notification; the run loop's inline form of the thread's loop.</summary>
    public void HandlePending() => Handle();

    /// <summary>The program is about to start: from now on notified calls are the program's.</summary>
    public void ProgramStarting() => _started = true;

    private unsafe void Loop()
    {
        var pfd = stackalloc int[4]; // two struct pollfd { int fd; short events; short revents; }
        while (true)
        {
            pfd[0] = _notifyFd; pfd[1] = Consts.POLLIN;
            pfd[2] = _stopRead; pfd[3] = Consts.POLLIN;
            int rc = LibC.poll(pfd, 2, -1);
            if (rc < 0)
            {
                if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
                return;
            }
            short notifyEvents = (short)(pfd[1] >> 16), stopEvents = (short)(pfd[3] >> 16);
            if (stopEvents != 0) return;
            if ((notifyEvents & Consts.POLLIN) != 0) { Handle(); continue; }
            if (notifyEvents != 0) return; // POLLHUP: every filtered task is gone
        }
    }

    private void Handle()
    {
        int err = SeccompNotify.Receive(_notifyFd, out var n);
        if (err != 0) return; // ENOENT: the caller died or was interrupted (freezer) before we got it
        var arch = SyscallTable.ArchOf(n.Arch, n.Nr);
        string archName = arch is { } a ? SandboxProfile.ScmpArch(a)["SCMP_ARCH_".Length..].ToLowerInvariant() : $"0x{n.Arch:x8}";
        string name = (arch is { } a2 ? SyscallTable.Name(a2, n.Nr) : null) ?? $"syscall_{n.Nr}";
        bool setup = !_started;
        string action = setup ? "allow" : _mode switch
        {
            ViolationMode.Log => "allow",
            ViolationMode.Deny => "deny",
            ViolationMode.Kill => "kill",
            _ => "quarantine",
        };
        var v = new Violation(DateTime.UtcNow, n.Pid, Comm(n.Pid), name, n.Nr, archName, n.Args, n.Ip, action, setup);
        Record(v);
        // Berth's own init before the program starts (a custom profile may notify its calls): let it through.
        if (setup || _mode == ViolationMode.Log) { SeccompNotify.Respond(_notifyFd, n.Id, 0, flags: SeccompNotify.FlagContinue); return; }
        if (_mode == ViolationMode.Deny) { SeccompNotify.Respond(_notifyFd, n.Id, EPERM); return; }
        // kill / quarantine: the caller stays blocked, frozen in the act, until the run loop has acted.
        lock (_lock) _held.Add(n.Id);
        if (!_killRequested)
        {
            _killRequested = true;
            Span<byte> one = [1];
            if (_wakeWrite >= 0)
                try { Fd.WriteAll(_wakeWrite, one); } catch (LinuxException) { }
        }
    }

    /// <summary>A violation found elsewhere (the kernel audit fallback): counted and logged like the supervisor's own.</summary>
    public void Add(Violation v) => Record(v);

    private void Record(Violation v)
    {
        lock (_lock)
        {
            if (!v.Setup) _count++;
            if (_records.Count >= KeepInMemory) { _dropped++; return; }
            _records.Add(v);
            try { _audit?.WriteLine(v.ToJson()); _audit?.Flush(); }
            catch (IOException) { /* a full disk must not leave the caller waiting */ }
        }
    }

    private static string Comm(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n'); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    }

    /// <summary>Stops the thread, answers every held notification (EPERM), closes the fds and the audit file.</summary>
    public void Dispose()
    {
        if (_stopWrite >= 0)
        {
            Span<byte> one = [1];
            try { Fd.WriteAll(_stopWrite, one); } catch (LinuxException) { }
        }
        _thread?.Join();
        _thread = null;
        if (_notifyFd >= 0)
        {
            lock (_lock)
            {
                foreach (var id in _held) SeccompNotify.Respond(_notifyFd, id, EPERM);
                _held.Clear();
            }
            Fd.Close(_notifyFd);
            _notifyFd = -1;
        }
        Fd.Close(_stopRead);
        Fd.Close(_stopWrite);
        Fd.Close(_wakeRead);
        Fd.Close(_wakeWrite);
        _stopRead = _stopWrite = _wakeRead = _wakeWrite = -1;
        lock (_lock)
        {
            try
            {
                if (_dropped > 0) _audit?.WriteLine($"{{\"dropped\":{_dropped}}}");
                _audit?.Dispose();
            }
            catch (IOException) { }
        }
    }
}

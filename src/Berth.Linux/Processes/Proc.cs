using Berth.Linux.Interop;

namespace Berth.Linux.Processes;

/// <summary>Decoded wait status.</summary>
public readonly record struct ExitStatus(int Code, int Signal)
{
    public static ExitStatus FromRaw(int status) =>
        (status & 0x7f) == 0 ? new ExitStatus((status >> 8) & 0xff, 0) : new ExitStatus(0, status & 0x7f);

    /// <summary>The shell convention: the exit code, or 128+signal.</summary>
    public int ShellCode => Signal != 0 ? 128 + Signal : Code;
}

/// <summary>fork/exec/wait/kill and facts read from /proc.</summary>
public static unsafe class Proc
{
    /// <summary>
    /// fork(2). Call only from the main thread while no other thread runs managed code
    /// (see docs/adr/0002): the child then runs straight-line code until execve or _exit.
    /// </summary>
    public static int Fork()
    {
        int pid = LibC.fork();
        if (pid < 0) throw LinuxException.Last("fork");
        return pid;
    }

    public static void Exit(int code) => LibC._exit(code);

    /// <summary>Blocking wait for one child; retries on EINTR. Returns null on ECHILD.</summary>
    public static ExitStatus? Wait(int pid)
    {
        int status;
        while (true)
        {
            int rc = LibC.waitpid(pid, &status, Consts.__WALL);
            if (rc == pid) return ExitStatus.FromRaw(status);
            int err = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (rc < 0 && err == Consts.EINTR) continue;
            if (rc < 0 && err == Consts.ECHILD) return null;
            throw new LinuxException("waitpid", pid.ToString(), err);
        }
    }

    /// <summary>waitpid(-1|pid, WNOHANG): (pid, status) or (0, default) if none has exited.</summary>
    public static (int Pid, ExitStatus Status) TryWait(int pid)
    {
        int status;
        int rc = LibC.waitpid(pid, &status, Consts.WNOHANG | Consts.__WALL);
        return rc > 0 ? (rc, ExitStatus.FromRaw(status)) : (rc, default);
    }

    /// <summary>kill(2); returns the errno (0 on success).</summary>
    public static int Kill(int pid, int signal) =>
        LibC.kill(pid, signal) == 0 ? 0 : System.Runtime.InteropServices.Marshal.GetLastPInvokeError();

    public static bool Exists(int pid) => pid > 0 && (LibC.kill(pid, 0) == 0 ||
        System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Consts.EPERM);

    /// <summary>Field 22 of /proc/PID/stat (start time in clock ticks), or null if gone.</summary>
    public static ulong? StartTime(int pid)
    {
        var text = Stat(pid);
        if (text is null) return null;
        // comm may contain spaces and parentheses: fields restart after the last ')'.
        var rest = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        // rest[0] is field 3 (state); start time is field 22.
        return rest.Length > 19 && ulong.TryParse(rest[19], out var v) ? v : null;
    }

    /// <summary>Process state letter from /proc/PID/stat (R, S, Z, ...), or null if gone.</summary>
    public static char? State(int pid) => Stat(pid) is { } text ? text[text.LastIndexOf(')') + 2] : null;

    /// <summary>
    /// /proc/PID/stat, or null when the process is gone. Read with open/read, not File: asking about a
    /// process that has just been reaped is the normal case (delete, the end of run), and the
    /// FileNotFoundException it would throw cost ~0.1 ms of every run (a first throw is slow).
    /// </summary>
    private static string? Stat(int pid)
    {
        Span<byte> path = stackalloc byte[32];
        "/proc/"u8.CopyTo(path);
        pid.TryFormat(path[6..], out int n, default, System.Globalization.CultureInfo.InvariantCulture);
        "/stat\0"u8.CopyTo(path[(6 + n)..]);
        int fd;
        fixed (byte* p = path) fd = LibC.open(p, Consts.O_RDONLY | Consts.O_CLOEXEC, 0);
        if (fd < 0) return null;
        try
        {
            // A stat line is a few hundred bytes: comm is at most 64, the 50 numbers at most 20 each.
            Span<byte> buf = stackalloc byte[2048];
            int len = 0;
            while (len < buf.Length)
            {
                nint r;
                fixed (byte* b = buf) r = LibC.read(fd, b + len, buf.Length - len);
                if (r < 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
                if (r <= 0) break;
                len += (int)r;
            }
            var text = System.Text.Encoding.UTF8.GetString(buf[..len]);
            return text.LastIndexOf(')') is int close && close > 0 && close + 2 < text.Length ? text : null;
        }
        finally { LibC.close(fd); }
    }

    public static void Prctl(int option, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0, string what = "prctl")
    {
        if (LibC.prctl(option, a2, a3, a4, a5) != 0) throw LinuxException.Last(what, option.ToString());
    }

    /// <summary>
    /// posix_spawn(3): a child running <paramref name="path"/>, made by glibc with
    /// clone(CLONE_VM|CLONE_VFORK) on its own stack, so unlike fork + exec nothing of this process's
    /// memory is copied and then torn down again (for a .NET process most of the cost of a fork).
    /// The child inherits everything else as a fork would (credentials, rlimits, seccomp filter,
    /// fds without close-on-exec, signal mask). Returns the child's pid; throws when the exec failed.
    /// </summary>
    public static int Spawn(string path, IReadOnlyList<string> args, IReadOnlyList<string> env) => SpawnCore(path, args, env, null);

    private static int SpawnCore(string path, IReadOnlyList<string> args, IReadOnlyList<string> env, byte* actions)
    {
        using var argv = new CStringArray(args);
        using var envp = new CStringArray(env);
        int pid;
        int err;
        fixed (byte* p = CString.Of(path))
            err = LibC.posix_spawn(&pid, p, actions, null, argv.Pointer, envp.Pointer);
        if (err != 0) throw new LinuxException("exec", path, err);
        return pid;
    }

    /// <summary>
    /// <see cref="Spawn"/> with <paramref name="fds"/> dup2'd onto the child's fd numbers (sources are
    /// first moved above 63 so no dup2 overwrites another's source); everything else close-on-exec stays closed.
    /// </summary>
    public static int SpawnWithFds(string path, IReadOnlyList<string> args, IReadOnlyList<string> env, IReadOnlyList<(int From, int To)> fds)
    {
        var high = new List<(int From, int To)>();
        try
        {
            foreach (var (from, to) in fds) high.Add((JailProgram.High(from), to));
            byte* actions = stackalloc byte[256];
            if (LibC.posix_spawn_file_actions_init(actions) != 0) throw new LinuxException("posix_spawn_file_actions_init", path, 12);
            try
            {
                foreach (var (from, to) in high)
                {
                    int err = LibC.posix_spawn_file_actions_adddup2(actions, from, to);
                    if (err != 0) throw new LinuxException("posix_spawn_file_actions_adddup2", path, err);
                }
                return SpawnCore(path, args, env, actions);
            }
            finally { LibC.posix_spawn_file_actions_destroy(actions); }
        }
        finally
        {
            foreach (var (from, _) in high) LibC.close(from);
        }
    }

    /// <summary>Replaces the process image. Returns only by throwing.</summary>
    public static void Exec(string path, IReadOnlyList<string> args, IReadOnlyList<string> env)
    {
        using var argv = new CStringArray(args);
        using var envp = new CStringArray(env);
        fixed (byte* p = CString.Of(path))
            LibC.execve(p, argv.Pointer, envp.Pointer);
        throw LinuxException.Last("exec", path);
    }
}

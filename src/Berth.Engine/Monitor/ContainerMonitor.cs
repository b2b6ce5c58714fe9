using System.Runtime.InteropServices;
using Berth.Linux;
using Berth.Linux.Interop;

namespace Berth.Engine.Monitor;

/// <summary>
/// `berth __monitor STORAGE ID RESTART MAXSIZE MAXFILE TTY`: the small process that watches one
/// detached container for its whole life, as conmon does for podman (docs/adr/0009). It is the
/// child subreaper of a short-lived `berth __start` that creates and starts the container, so the
/// container's init becomes its child; it holds the container's stdout/stderr pipes (or pty
/// master), writes them to the log file, reaps the init, has `berth __exited` record the exit, and
/// applies the restart policy. The heavy work (spec, cgroups, JSON) happens in those helper
/// processes; this loop only polls, reads and writes, so its memory stays small.
/// </summary>
public static unsafe class ContainerMonitor
{
    /// <summary>Written by `stop`, `kill` and `rm -f`: the exit that follows is the user's, never restarted.</summary>
    public const string StopMarker = "stopped-by-user";
    public const string LogFile = "container.log";
    /// <summary>After the init exits, how long its pipes may stay open (a process outside its pid namespace).</summary>
    private const int DrainMs = 2000;

    private static string s_storage = "", s_id = "";
    private static int s_devnull = -1;
    private static string[] s_env = [];

    public static int Main(string[] args)
    {
        if (args.Length != 7) return 2;
        s_storage = args[1];
        s_id = args[2];
        var policy = RestartPolicy.Parse(args[3]);
        var options = new LogOptions(long.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture),
            int.Parse(args[5], System.Globalization.CultureInfo.InvariantCulture));
        bool tty = args[6] == "1";
        var dir = s_storage + "/containers/" + s_id;

        LibC.prctl(Consts.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        // No controlling terminal (setsid), and a hangup or ^C meant for the CLI's group is not ours.
        SetDisposition(1 /* SIGHUP */, 1);
        SetDisposition(2 /* SIGINT */, 1);
        SetDisposition(15 /* SIGTERM */, 1);
        fixed (byte* root = "/\0"u8) LibC.chdir(root);
        fixed (byte* p = "/dev/null\0"u8) s_devnull = LibC.open(p, Consts.O_RDWR | Consts.O_CLOEXEC, 0);
        s_env = HelperEnvironment();

        using var log = new LogWriter(dir + "/" + LogFile, options);
        int sync = 3;
        int restarts = 0;
        while (true)
        {
            var started = StartContainer(tty, restarts);
            if (sync >= 0)
            {
                Report(sync, started.Error is null ? "ok " + started.InitPid + "\n" : "err " + started.Error + "\n");
                LibC.dup3(s_devnull, sync, 0); // fd 3 stays taken, so fds 0..3 of a child never collide with ours
                sync = -1;
                if (started.Error is not null) return 1;
            }
            else if (started.Error is not null)
            {
                log.Note("restart failed: " + started.Error);
                RunHelper("__exited", "125", "final");
                return 1;
            }
            int code = Watch(started, log);
            bool byUser = Exists(dir + "/" + StopMarker);
            bool again = policy.ShouldRestart(code, restarts, byUser);
            RunHelper("__exited", code.ToString(System.Globalization.CultureInfo.InvariantCulture), again ? "restarting" : "final");
            if (!again) return 0;
            if (!Backoff(RestartPolicy.Delay(restarts), dir + "/" + StopMarker))
            {
                RunHelper("__exited", code.ToString(System.Globalization.CultureInfo.InvariantCulture), "final");
                return 0;
            }
            restarts++;
        }
    }

    private readonly record struct Started(int InitPid, int Stdout, int Stderr, string? Error);

    /// <summary>Runs `berth __start ID N` with the container's stdio and waits for its "ok PID" (with the pty master for -t).</summary>
    private static Started StartContainer(bool tty, int restarts)
    {
        int outR = -1, outW = s_devnull, errR = -1, errW = s_devnull;
        if (!tty)
        {
            (outR, outW) = Berth.Linux.Files.Fd.Pipe();
            (errR, errW) = Berth.Linux.Files.Fd.Pipe();
        }
        var (mine, theirs) = Berth.Linux.Files.Fd.SocketPair();
        int pid;
        try
        {
            pid = Spawn.Exec("/proc/self/exe", ["berth", "--storage", s_storage, "__start", s_id,
                restarts.ToString(System.Globalization.CultureInfo.InvariantCulture)], s_env, s_devnull, outW, errW, theirs, detach: false);
        }
        catch (LinuxException e)
        {
            foreach (var fd in new[] { outR, errR, mine }) LibC.close(fd);
            return new Started(0, -1, -1, e.Message);
        }
        finally
        {
            if (!tty) { LibC.close(outW); LibC.close(errW); }
            LibC.close(theirs);
        }
        var (message, master) = ReceiveAll(mine);
        LibC.close(mine);
        int st;
        while (LibC.waitpid(pid, &st, Consts.__WALL) < 0 && Marshal.GetLastPInvokeError() == Consts.EINTR) { }
        if (message.StartsWith("ok ", StringComparison.Ordinal) && int.TryParse(message.AsSpan(3).Trim(), out var initPid))
            return tty ? new Started(initPid, master, -1, null) : new Started(initPid, outR, errR, null);
        LibC.close(master);
        LibC.close(outR);
        LibC.close(errR);
        var error = message.StartsWith("err ", StringComparison.Ordinal) ? message[4..].Trim()
            : $"berth __start exited with status {st >> 8 & 0xff} and no report";
        return new Started(0, -1, -1, error);
    }

    /// <summary>Copies the container's output into the log until its init exits (and the pipes drain); returns its exit code (128+N for signal N).</summary>
    private static int Watch(Started s, LogWriter log)
    {
        int pidfd = (int)LibC.syscall(Syscalls.PidfdOpen, s.InitPid, 0, 0, 0, 0, 0);
        var fds = stackalloc int[6]; // struct pollfd x 3
        int[] stream = [s.Stdout, s.Stderr];
        LineBuffer[] lines = [new LineBuffer(false), new LineBuffer(true)];
        var buf = new byte[16384];
        int status = 0;
        bool exited = false;
        long deadline = 0;
        if (pidfd < 0)
        {
            ReapNow(s.InitPid, ref status, block: true);
            exited = true;
            deadline = Environment.TickCount64 + DrainMs;
        }
        while (true)
        {
            if (exited && stream[0] < 0 && stream[1] < 0) break;
            int timeout = -1;
            if (exited)
            {
                timeout = (int)Math.Max(0, deadline - Environment.TickCount64);
                if (timeout == 0) break;
            }
            fds[0] = stream[0]; fds[1] = Consts.POLLIN;
            fds[2] = stream[1]; fds[3] = Consts.POLLIN;
            fds[4] = exited ? -1 : pidfd; fds[5] = Consts.POLLIN;
            int rc = LibC.poll(fds, 3, timeout);
            if (rc < 0)
            {
                if (Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
                break;
            }
            for (int i = 0; i < 2; i++)
            {
                short revents = (short)(fds[i * 2 + 1] >> 16);
                if (stream[i] < 0 || (revents & (Consts.POLLIN | Consts.POLLHUP | Consts.POLLERR)) == 0) continue;
                nint n;
                fixed (byte* p = buf) n = LibC.read(stream[i], p, buf.Length);
                if (n > 0) { lines[i].Feed(buf.AsSpan(0, (int)n), log); continue; }
                if (n < 0 && Marshal.GetLastPInvokeError() is Consts.EINTR or Consts.EAGAIN) continue;
                lines[i].Flush(log); // EOF, or EIO from a pty whose last slave closed
                LibC.close(stream[i]);
                stream[i] = -1;
            }
            if (!exited && ((short)(fds[5] >> 16) & Consts.POLLIN) != 0 && ReapNow(s.InitPid, ref status, block: false))
            {
                exited = true;
                deadline = Environment.TickCount64 + DrainMs;
                LibC.close(pidfd);
                pidfd = -1;
            }
        }
        for (int i = 0; i < 2; i++)
        {
            lines[i].Flush(log);
            if (stream[i] >= 0) LibC.close(stream[i]);
        }
        if (pidfd >= 0) LibC.close(pidfd);
        int stray;
        while (LibC.waitpid(-1, &stray, Consts.WNOHANG | Consts.__WALL) > 0) { }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
    }

    private static bool ReapNow(int pid, ref int status, bool block)
    {
        int st;
        while (true)
        {
            int rc = LibC.waitpid(pid, &st, (block ? 0 : Consts.WNOHANG) | Consts.__WALL);
            if (rc == pid) { status = st; return true; }
            if (rc < 0 && Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
            if (rc < 0) { status = 255 << 8; return true; } // not ours to reap: unknown status
            return false;
        }
    }

    /// <summary>Sleeps the restart delay; false as soon as the user stops the container meanwhile.</summary>
    private static bool Backoff(TimeSpan delay, string marker)
    {
        long until = Environment.TickCount64 + (long)delay.TotalMilliseconds;
        while (Environment.TickCount64 < until)
        {
            if (Exists(marker)) return false;
            LibC.poll(null, 0, (int)Math.Min(50, Math.Max(1, until - Environment.TickCount64)));
        }
        return !Exists(marker);
    }

    private static void RunHelper(string command, string code, string mode)
    {
        int pid;
        try
        {
            pid = Spawn.Exec("/proc/self/exe", ["berth", "--storage", s_storage, command, s_id, code, mode], s_env,
                s_devnull, s_devnull, 2 /* our stderr: monitor.err */, s_devnull, detach: false);
        }
        catch (LinuxException) { return; }
        int st;
        while (LibC.waitpid(pid, &st, Consts.__WALL) < 0 && Marshal.GetLastPInvokeError() == Consts.EINTR) { }
    }

    /// <summary>Reads the helper's report until it closes the socket; keeps an fd passed along (SCM_RIGHTS).</summary>
    private static (string Message, int Fd) ReceiveAll(int socket)
    {
        var data = new byte[4096];
        int length = 0, fd = -1;
        var control = stackalloc byte[64];
        var iov = stackalloc nint[2];
        var msg = stackalloc nint[7];
        fixed (byte* d = data)
        {
            while (length < data.Length)
            {
                iov[0] = (nint)(d + length);
                iov[1] = data.Length - length;
                new Span<nint>(msg, 7).Clear();
                msg[2] = (nint)iov;
                msg[3] = 1;
                msg[4] = (nint)control;
                msg[5] = 64;
                nint n = LibC.recvmsg(socket, msg, Consts.O_CLOEXEC /* MSG_CMSG_CLOEXEC */);
                if (n < 0 && Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
                if (n <= 0) break;
                if (msg[5] >= 20 && *(int*)(control + 8) == Consts.SOL_SOCKET && *(int*)(control + 12) == Consts.SCM_RIGHTS)
                {
                    if (fd >= 0) LibC.close(fd);
                    fd = *(int*)(control + 16);
                }
                length += (int)n;
                if (data[length - 1] == (byte)'\n') break; // the report is one line; a container's init may hold the socket open
            }
        }
        return (System.Text.Encoding.UTF8.GetString(data, 0, length), fd);
    }

    private static void Report(int fd, string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        fixed (byte* p = bytes) LibC.write(fd, p, bytes.Length);
    }

    private static bool Exists(string path)
    {
        fixed (byte* p = CString.Of(path)) return LibC.access(p, 0) == 0;
    }

    /// <summary>SIG_DFL (0) or SIG_IGN (1); <see cref="Spawn"/> puts them back to default in its children.</summary>
    internal static void SetDisposition(int signal, nint handler)
    {
        var act = stackalloc byte[152];
        new Span<byte>(act, 152).Clear();
        *(nint*)act = handler;
        LibC.sigaction(signal, act, null);
    }

    /// <summary>Our environment without the GC limits meant for this process only.</summary>
    private static string[] HelperEnvironment()
    {
        var list = new List<string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            var key = (string)e.Key;
            if (key.StartsWith("DOTNET_GC", StringComparison.OrdinalIgnoreCase)) continue;
            list.Add(key + "=" + (string?)e.Value);
        }
        return [.. list];
    }
}

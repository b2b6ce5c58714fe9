using System.Runtime.InteropServices;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Processes;

namespace Berth.Runtime.Lifecycle;

/// <summary>
/// A foreground `run` of a container with process.terminal and no --console-socket (what
/// `berth-runtime spec && berth-runtime run ID` gives a person, as runc does): the runtime
/// receives the pty master itself, puts its own terminal in raw mode, and copies bytes both
/// ways until the container's process exits. Window size follows SIGWINCH.
/// </summary>
internal static unsafe class TerminalProxy
{
    private const int TCSANOW = 0, TIOCGWINSZ = 0x5413;

    public static ExitStatus Run(int pid, int master)
    {
        int pidfd = (int)LibC.syscall(Syscalls.PidfdOpen, pid, 0, 0, 0, 0, 0);
        if (pidfd < 0) throw LinuxException.Last("pidfd_open", pid.ToString());
        bool tty = LibC.isatty(0) == 1;
        var saved = stackalloc byte[64];
        if (tty && LibC.tcgetattr(0, saved) == 0)
        {
            var raw = stackalloc byte[64];
            new Span<byte>(saved, 64).CopyTo(new Span<byte>(raw, 64));
            LibC.cfmakeraw(raw);
            LibC.tcsetattr(0, TCSANOW, raw);
        }
        else tty = false;
        CopyWindowSize(master);
        using var winch = PosixSignalRegistration.Create(PosixSignal.SIGWINCH, ctx => { ctx.Cancel = true; CopyWindowSize(master); });
        using var forward = Forward(pid);
        try { Pump(master, pidfd); }
        finally
        {
            if (tty) LibC.tcsetattr(0, TCSANOW, saved);
            LibC.close(pidfd);
            LibC.close(master);
        }
        return Proc.Wait(pid) ?? new ExitStatus(255, 0);
    }

    private static IDisposable Forward(int pid) =>
        PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; Proc.Kill(pid, Signals.SIGTERM); });

    private static void CopyWindowSize(int master)
    {
        var ws = stackalloc ushort[4];
        if (LibC.ioctl(0, TIOCGWINSZ, ws) == 0) LibC.ioctl(master, Consts.TIOCSWINSZ, ws);
    }

    private static void Pump(int master, int pidfd)
    {
        var buf = new byte[16384];
        bool stdinOpen = true, masterOpen = true;
        var fds = stackalloc int[6]; // 3 x struct pollfd { int fd; short events; short revents; }
        while (masterOpen)
        {
            fds[0] = stdinOpen ? 0 : -1; fds[1] = Consts.POLLIN;
            fds[2] = master; fds[3] = Consts.POLLIN;
            fds[4] = pidfd; fds[5] = Consts.POLLIN;
            int rc = LibC.poll(fds, 3, -1);
            if (rc < 0)
            {
                if (Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
                throw LinuxException.Last("poll");
            }
            short Revents(int i) => (short)(fds[i * 2 + 1] >> 16);
            if ((Revents(1) & (Consts.POLLIN | Consts.POLLHUP | Consts.POLLERR)) != 0)
                masterOpen = Copy(master, 1, buf);
            if (stdinOpen && (Revents(0) & (Consts.POLLIN | Consts.POLLHUP)) != 0)
                stdinOpen = Copy(0, master, buf);
            if ((Revents(2) & Consts.POLLIN) != 0)
            {
                // The process is gone: take what is still buffered in the pty, then stop.
                int fl = LibC.fcntl(master, Consts.F_GETFL, 0);
                LibC.fcntl(master, Consts.F_SETFL, fl | Consts.O_NONBLOCK);
                while (Copy(master, 1, buf)) { }
                return;
            }
        }
    }

    /// <summary>One read and write; false at EOF or error (EIO on a pty whose other side closed).</summary>
    private static bool Copy(int from, int to, byte[] buf)
    {
        int n;
        fixed (byte* p = buf)
        {
            n = (int)LibC.read(from, p, buf.Length);
            if (n <= 0) return n < 0 && Marshal.GetLastPInvokeError() == Consts.EINTR;
            try { Fd.WriteAll(to, new ReadOnlySpan<byte>(p, n)); }
            catch (LinuxException) { return false; }
        }
        return true;
    }
}

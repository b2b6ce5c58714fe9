using System.Text;
using Berth.Linux.Interop;

namespace Berth.Linux.Files;

/// <summary>
/// Raw file descriptor operations. The runtime's fork paths use plain ints rather than
/// SafeHandles: a forked child must not depend on finalizers (the finalizer thread does not exist there).
/// </summary>
public static unsafe class Fd
{
    public static int Open(string path, int flags, uint mode = 0)
    {
        fixed (byte* p = CString.Of(path))
        {
            int fd = LibC.open(p, flags | Consts.O_CLOEXEC, mode);
            if (fd < 0) throw LinuxException.Last("open", path);
            return fd;
        }
    }

    public static int TryOpen(string path, int flags, uint mode = 0)
    {
        fixed (byte* p = CString.Of(path)) return LibC.open(p, flags | Consts.O_CLOEXEC, mode);
    }

    public static void Close(int fd)
    {
        if (fd >= 0) LibC.close(fd);
    }

    public static void WriteAll(int fd, ReadOnlySpan<byte> data, string what = "fd")
    {
        fixed (byte* p = data)
        {
            int off = 0;
            while (off < data.Length)
            {
                var n = LibC.write(fd, p + off, data.Length - off);
                if (n < 0)
                {
                    if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
                    throw LinuxException.Last("write", what);
                }
                off += (int)n;
            }
        }
    }

    /// <summary>read(2) with EINTR retry; returns bytes read, 0 at EOF.</summary>
    public static int Read(int fd, Span<byte> buf)
    {
        fixed (byte* p = buf)
        {
            while (true)
            {
                var n = LibC.read(fd, p, buf.Length);
                if (n >= 0) return (int)n;
                if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != Consts.EINTR)
                    throw LinuxException.Last("read");
            }
        }
    }

    /// <summary>
    /// The whole of a cache file that berth will act on as root (a compiled seccomp filter, a jail's program),
    /// or null when it is missing, not a regular file, not owned by <paramref name="owner"/>, writable by group
    /// or others, larger than <paramref name="max"/> bytes, or shorter than its size said.
    /// </summary>
    public static byte[]? ReadTrusted(string path, uint owner, int max)
    {
        int fd = TryOpen(path, Consts.O_RDONLY | Consts.O_NOFOLLOW);
        if (fd < 0) return null;
        try
        {
            if (!StatX.TryAt(fd, "", out var st, out _) || st.Uid != owner || (st.Mode & 0x12 /* 022 */) != 0 || !st.IsRegular
                || st.Size > max) return null;
            var data = new byte[st.Size];
            int n = 0;
            while (n < data.Length)
            {
                int r = Read(fd, data.AsSpan(n));
                if (r <= 0) break;
                n += r;
            }
            return n == data.Length ? data : null;
        }
        catch (LinuxException) { return null; }
        finally { LibC.close(fd); }
    }

    /// <summary>Writes a small control file (cgroup, /proc) in one write(2) call.</summary>
    public static void WriteFile(string path, string content)
    {
        int fd = Open(path, Consts.O_WRONLY | Consts.O_TRUNC);
        try { WriteAll(fd, Encoding.UTF8.GetBytes(content), path); }
        finally { LibC.close(fd); }
    }

    public static (int Read, int Write) Pipe()
    {
        int* fds = stackalloc int[2];
        if (LibC.pipe2(fds, Consts.O_CLOEXEC) != 0) throw LinuxException.Last("pipe2");
        return (fds[0], fds[1]);
    }

    public static (int A, int B) SocketPair()
    {
        int* fds = stackalloc int[2];
        if (LibC.socketpair(Consts.AF_UNIX, Consts.SOCK_STREAM | Consts.SOCK_CLOEXEC, 0, fds) != 0)
            throw LinuxException.Last("socketpair");
        return (fds[0], fds[1]);
    }

    public static string ReadLink(string path)
    {
        var buf = stackalloc byte[4096];
        fixed (byte* p = CString.Of(path))
        {
            var n = LibC.readlink(p, buf, 4096);
            if (n < 0) throw LinuxException.Last("readlink", path);
            return Encoding.UTF8.GetString(buf, (int)n);
        }
    }

    /// <summary>Marks every fd from <paramref name="first"/> up close-on-exec (close_range CLOEXEC).</summary>
    public static void CloexecFrom(int first)
    {
        if (LibC.syscall(Syscalls.CloseRange, first, uint.MaxValue, Consts.CLOSE_RANGE_CLOEXEC, 0, 0, 0) == 0) return;
        // Older kernels: walk /proc/self/fd.
        foreach (var entry in Directory.GetFiles("/proc/self/fd"))
            if (int.TryParse(Path.GetFileName(entry), out var fd) && fd >= first)
                LibC.fcntl(fd, Consts.F_SETFD, Consts.FD_CLOEXEC);
    }

    public static void ClearCloexec(int fd)
    {
        if (LibC.fcntl(fd, Consts.F_SETFD, 0) != 0) throw LinuxException.Last("fcntl F_SETFD", fd.ToString());
    }

    public static void Dup2(int from, int to)
    {
        if (LibC.dup3(from, to, 0) < 0) throw LinuxException.Last("dup3", $"{from}->{to}");
    }

    /// <summary>Waits until <paramref name="fd"/> is readable; false on timeout.</summary>
    public static bool PollIn(int fd, int timeoutMs)
    {
        var pfd = stackalloc short[4]; // struct pollfd { int fd; short events; short revents; }
        *(int*)pfd = fd;
        pfd[2] = Consts.POLLIN;
        pfd[3] = 0;
        while (true)
        {
            int rc = LibC.poll(pfd, 1, timeoutMs);
            if (rc > 0) return true;
            if (rc == 0) return false;
            if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != Consts.EINTR) throw LinuxException.Last("poll");
        }
    }
}

using System.Runtime.InteropServices;
using Berth.Linux.Interop;

namespace Berth.Linux.Files;

/// <summary>
/// Path resolution confined to a root directory: every lookup goes through openat2 with
/// RESOLVE_IN_ROOT, so "..", absolute symlinks and symlinks that climb out resolve inside
/// the root instead of escaping it (the CVE-2021-30465 class).
/// </summary>
public static unsafe class InRoot
{
    [StructLayout(LayoutKind.Sequential)]
    private struct OpenHow { public ulong Flags, Mode, Resolve; }

    /// <summary>openat2(rootFd, path, flags, RESOLVE_IN_ROOT|NO_MAGICLINKS); returns fd or throws.</summary>
    public static int Open(int rootFd, string path, int flags, uint mode = 0, bool allowMagicLinks = false)
    {
        int fd = TryOpen(rootFd, path, flags, mode, allowMagicLinks, out int err);
        if (fd < 0) throw new LinuxException("open in rootfs", path, err);
        return fd;
    }

    public static int TryOpen(int rootFd, string path, int flags, uint mode, bool allowMagicLinks, out int errno)
    {
        var how = new OpenHow
        {
            Flags = (ulong)(flags | Consts.O_CLOEXEC),
            Mode = (flags & Consts.O_CREAT) != 0 ? mode : 0,
            Resolve = Consts.RESOLVE_IN_ROOT | (allowMagicLinks ? 0 : Consts.RESOLVE_NO_MAGICLINKS),
        };
        var rel = path.TrimStart('/');
        if (rel.Length == 0) rel = ".";
        fixed (byte* p = CString.Of(rel))
        {
            while (true)
            {
                long fd = LibC.syscall(Syscalls.Openat2, rootFd, (long)p, (long)&how, sizeof(OpenHow), 0, 0);
                if (fd >= 0) { errno = 0; return (int)fd; }
                errno = Marshal.GetLastPInvokeError();
                if (errno != Consts.EAGAIN && errno != Consts.EINTR) return -1;
            }
        }
    }

    /// <summary>mkdir -p of <paramref name="path"/> inside the root; returns an O_PATH fd of the last directory.</summary>
    public static int MkdirAll(int rootFd, string path, uint mode = 0x1ed)
    {
        int cur = Open(rootFd, "/", Consts.O_PATH | Consts.O_DIRECTORY);
        string sofar = "";
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            sofar += "/" + part;
            int next = TryOpen(rootFd, sofar, Consts.O_PATH | Consts.O_DIRECTORY, 0, false, out int err);
            if (next < 0 && err == Consts.ENOENT)
            {
                fixed (byte* p = CString.Of(part))
                {
                    if (part == ".." || LibC.mkdirat(cur, p, mode) != 0 && Marshal.GetLastPInvokeError() != Consts.EEXIST)
                    {
                        var e = Marshal.GetLastPInvokeError();
                        LibC.close(cur);
                        throw new LinuxException("mkdir in rootfs", sofar, e);
                    }
                }
                next = TryOpen(rootFd, sofar, Consts.O_PATH | Consts.O_DIRECTORY, 0, false, out err);
            }
            LibC.close(cur);
            if (next < 0) throw new LinuxException("open directory in rootfs", sofar, err);
            cur = next;
        }
        return cur;
    }

    /// <summary>Creates (if missing) an empty regular file inside the root and returns an O_PATH fd to it.</summary>
    public static int CreateFile(int rootFd, string path, uint mode = 0x1a4)
    {
        var dir = Path.GetDirectoryName(path.TrimEnd('/')) ?? "/";
        Fd.Close(MkdirAll(rootFd, dir));
        int fd = TryOpen(rootFd, path, Consts.O_PATH, 0, false, out int err);
        if (fd >= 0) return fd;
        if (err != Consts.ENOENT) throw new LinuxException("open in rootfs", path, err);
        int w = Open(rootFd, path, Consts.O_CREAT | Consts.O_WRONLY | Consts.O_NOFOLLOW, mode);
        LibC.close(w);
        return Open(rootFd, path, Consts.O_PATH);
    }

    /// <summary>The path the kernel reports for an fd (readlink of /proc/self/fd/N).</summary>
    public static string RealPath(int fd) => Fd.ReadLink($"/proc/self/fd/{fd}");

    /// <summary>True when <paramref name="path"/> is <paramref name="root"/> or below it.</summary>
    public static bool IsWithin(string root, string path)
    {
        root = root.TrimEnd('/');
        return path == root || path.StartsWith(root + "/", StringComparison.Ordinal) || root.Length == 0;
    }
}

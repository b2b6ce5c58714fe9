using System.Runtime.InteropServices;
using System.Text;
using Berth.Linux.Interop;

namespace Berth.Linux.Files;

/// <summary>statx(2) of a name relative to a directory fd, not following a final symlink unless asked.</summary>
public readonly record struct StatX(uint Mode, uint Uid, uint Gid, long Size, uint Nlink, ulong Ino, ulong Dev,
    long MtimeSec, uint MtimeNsec, uint RdevMajor, uint RdevMinor,
    long AtimeSec = 0, uint AtimeNsec = 0, long CtimeSec = 0, uint CtimeNsec = 0)
{
    public uint Type => Mode & Consts.S_IFMT;
    public uint Permissions => Mode & 0xfff;
    public bool IsDirectory => Type == Consts.S_IFDIR;
    public bool IsRegular => Type == Consts.S_IFREG;
    public bool IsSymlink => Type == Consts.S_IFLNK;
    /// <summary>An overlayfs whiteout: a character device 0:0.</summary>
    public bool IsWhiteout => Type == Consts.S_IFCHR && RdevMajor == 0 && RdevMinor == 0;

    /// <summary>statx(dirFd, name, AT_SYMLINK_NOFOLLOW unless <paramref name="follow"/>); errno on failure.</summary>
    public static unsafe bool TryAt(int dirFd, string name, out StatX st, out int errno, bool follow = false)
    {
        var buf = stackalloc byte[256];
        fixed (byte* p = CString.Of(name))
        {
            int flags = (follow ? 0 : Consts.AT_SYMLINK_NOFOLLOW) | (name.Length == 0 ? Consts.AT_EMPTY_PATH : 0);
            if (LibC.statx(dirFd, p, flags, 0x7ff, buf) != 0)
            {
                errno = Marshal.GetLastPInvokeError();
                st = default;
                return false;
            }
        }
        errno = 0;
        st = new StatX(*(ushort*)(buf + 28), *(uint*)(buf + 20), *(uint*)(buf + 24), *(long*)(buf + 40), *(uint*)(buf + 16),
            *(ulong*)(buf + 32), ((ulong)*(uint*)(buf + 136) << 32) | *(uint*)(buf + 140),
            *(long*)(buf + 112), *(uint*)(buf + 120), *(uint*)(buf + 128), *(uint*)(buf + 132),
            *(long*)(buf + 64), *(uint*)(buf + 72), *(long*)(buf + 96), *(uint*)(buf + 104));
        return true;
    }

    public static StatX At(int dirFd, string name, string what) =>
        TryAt(dirFd, name, out var st, out int e) ? st : throw new LinuxException("stat", what, e);

    /// <summary>statx of an absolute <paramref name="path"/>, not following a final symlink unless <paramref name="follow"/>.</summary>
    public static StatX Of(string path, bool follow = false) =>
        TryAt(-100 /* AT_FDCWD */, path, out var st, out int e, follow) ? st : throw new LinuxException("stat", path, e);

    /// <summary>The target of the symlink <paramref name="name"/> in <paramref name="dirFd"/>.</summary>
    public static unsafe string ReadLinkAt(int dirFd, string name, string what)
    {
        var buf = new byte[4096];
        fixed (byte* p = CString.Of(name))
        fixed (byte* b = buf)
        {
            var n = LibC.readlinkat(dirFd, p, b, buf.Length);
            if (n < 0) throw LinuxException.Last("readlink", what);
            return Encoding.UTF8.GetString(buf, 0, (int)n);
        }
    }

    /// <summary>The value of xattr <paramref name="name"/> on an open (non-O_PATH) fd, or null when it has none.</summary>
    public static unsafe string? GetXattr(int fd, string name)
    {
        var buf = new byte[256];
        fixed (byte* k = CString.Of(name))
        fixed (byte* b = buf)
        {
            var n = LibC.fgetxattr(fd, k, b, buf.Length);
            return n < 0 ? null : Encoding.UTF8.GetString(buf, 0, (int)n);
        }
    }
}

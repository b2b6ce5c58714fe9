using Berth.Engine.Containers;
using System.Runtime.InteropServices;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Microsoft.Win32.SafeHandles;

namespace Berth.Engine.Files;

/// <summary>
/// Descriptor-relative tree operations. Every step opens one name below an already open directory
/// with O_NOFOLLOW, so a symlink inside the tree is copied as a link and never followed: content a
/// container wrote cannot steer a copy to a path outside the tree it was started in.
/// </summary>
public static unsafe class FsTree
{
    /// <summary>Who owns what a copy creates: the source's owner, or fixed ids (docker cp without -a).</summary>
    public sealed record CopyOptions(uint? Uid = null, uint? Gid = null);

    /// <summary>The names in an open directory (without "." and "..").</summary>
    public static List<string> Names(int dirFd) =>
        Directory.EnumerateFileSystemEntries($"/proc/self/fd/{dirFd}").Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal).ToList();

    public static int OpenAt(int dirFd, string name, int flags, string what, uint mode = 0)
    {
        int fd = TryOpenAt(dirFd, name, flags, mode, out int e);
        return fd >= 0 ? fd : throw new LinuxException("open", what, e);
    }

    public static int TryOpenAt(int dirFd, string name, int flags, uint mode, out int errno)
    {
        fixed (byte* p = CString.Of(name))
        {
            int fd = LibC.openat(dirFd, p, flags | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, mode);
            errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
            return fd;
        }
    }

    public static int OpenDir(string path) => Fd.Open(path, Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_CLOEXEC);

    /// <summary>Copies <paramref name="srcName"/> in <paramref name="srcDir"/> to <paramref name="dstName"/> in <paramref name="dstDir"/>, recursively.</summary>
    public static void Copy(int srcDir, string srcName, int dstDir, string dstName, CopyOptions opts, string what)
    {
        var st = StatX.At(srcDir, srcName, what);
        uint uid = opts.Uid ?? st.Uid, gid = opts.Gid ?? st.Gid;
        switch (st.Type)
        {
            case Consts.S_IFDIR:
            {
                int s = OpenAt(srcDir, srcName, Consts.O_RDONLY | Consts.O_DIRECTORY, what);
                try
                {
                    int d = MakeDir(dstDir, dstName, what);
                    try
                    {
                        foreach (var n in Names(s)) Copy(s, n, d, n, opts, $"{what}/{n}");
                        LibC.fchown(d, uid, gid);
                        if (LibC.fchmod(d, st.Permissions) != 0) throw LinuxException.Last("chmod", what);
                        SetTimes(d, st);
                    }
                    finally { LibC.close(d); }
                }
                finally { LibC.close(s); }
                break;
            }
            case Consts.S_IFREG:
            {
                int s = OpenAt(srcDir, srcName, Consts.O_RDONLY, what);
                try
                {
                    int d = CreateFile(dstDir, dstName, what);
                    using (var input = new FileStream(new SafeFileHandle(s, ownsHandle: false), FileAccess.Read, 1 << 16))
                    using (var output = new FileStream(new SafeFileHandle(d, ownsHandle: true), FileAccess.Write, 1 << 16))
                    {
                        input.CopyTo(output);
                        output.Flush();
                        LibC.fchown(d, uid, gid);
                        if (LibC.fchmod(d, st.Permissions) != 0) throw LinuxException.Last("chmod", what);
                        SetTimes(d, st);
                    }
                }
                finally { LibC.close(s); }
                break;
            }
            case Consts.S_IFLNK:
            {
                var target = StatX.ReadLinkAt(srcDir, srcName, what);
                RemoveNonDir(dstDir, dstName, what);
                fixed (byte* t = CString.Of(target))
                fixed (byte* n = CString.Of(dstName))
                {
                    if (LibC.symlinkat(t, dstDir, n) != 0) throw LinuxException.Last("symlink", what);
                    LibC.fchownat(dstDir, n, uid, gid, Consts.AT_SYMLINK_NOFOLLOW);
                }
                break;
            }
            case Consts.S_IFCHR or Consts.S_IFBLK or Consts.S_IFIFO:
            {
                RemoveNonDir(dstDir, dstName, what);
                fixed (byte* n = CString.Of(dstName))
                {
                    ulong dev = ((ulong)(st.RdevMajor & 0xfffff000) << 32) | ((ulong)(st.RdevMajor & 0xfff) << 8)
                        | ((ulong)(st.RdevMinor & 0xffffff00) << 12) | (st.RdevMinor & 0xff);
                    if (LibC.mknodat(dstDir, n, st.Type | st.Permissions, dev) != 0) throw LinuxException.Last("mknod", what);
                    LibC.fchownat(dstDir, n, uid, gid, Consts.AT_SYMLINK_NOFOLLOW);
                }
                break;
            }
            default: break; // sockets are not copied (as tar and docker cp skip them)
        }
    }

    /// <summary>mkdir, or reuse an existing directory; a non-directory in the way is replaced.</summary>
    public static int MakeDir(int dirFd, string name, string what)
    {
        fixed (byte* n = CString.Of(name))
        {
            if (LibC.mkdirat(dirFd, n, 0x1c0) != 0)
            {
                int e = Marshal.GetLastPInvokeError();
                if (e != Consts.EEXIST) throw new LinuxException("mkdir", what, e);
                if (!StatX.At(dirFd, name, what).IsDirectory)
                {
                    RemoveNonDir(dirFd, name, what);
                    if (LibC.mkdirat(dirFd, n, 0x1c0) != 0) throw LinuxException.Last("mkdir", what);
                }
            }
        }
        return OpenAt(dirFd, name, Consts.O_RDONLY | Consts.O_DIRECTORY, what);
    }

    /// <summary>A new regular file for writing; an existing file or link there is replaced, a directory is an error.</summary>
    public static int CreateFile(int dirFd, string name, string what)
    {
        if (StatX.TryAt(dirFd, name, out var st, out _))
        {
            if (st.IsDirectory) throw new EngineError($"cannot overwrite directory {what} with a file");
            RemoveNonDir(dirFd, name, what);
        }
        return OpenAt(dirFd, name, Consts.O_WRONLY | Consts.O_CREAT | Consts.O_EXCL, what, 0x180);
    }

    private static void RemoveNonDir(int dirFd, string name, string what)
    {
        if (!StatX.TryAt(dirFd, name, out var st, out _)) return;
        if (st.IsDirectory) throw new EngineError($"cannot overwrite directory {what} with a non-directory");
        fixed (byte* n = CString.Of(name))
            if (LibC.unlinkat(dirFd, n, 0) != 0) throw LinuxException.Last("remove", what);
    }

    private static void SetTimes(int fd, StatX st)
    {
        long* t = stackalloc long[4];
        t[0] = st.MtimeSec; t[1] = st.MtimeNsec; t[2] = st.MtimeSec; t[3] = st.MtimeNsec;
        LibC.futimens(fd, t);
    }

    /// <summary>rm -rf that never follows a link (.NET's recursive delete removes links, not their targets).</summary>
    public static void RemoveAll(string path)
    {
        try { Directory.Delete(path, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }
}

using System.Runtime.InteropServices;
using Berth.Linux.Interop;

namespace Berth.Linux.Files;

/// <summary>Directory trees removed through fds (no path is resolved twice, no symlink followed).</summary>
public static unsafe class DirTree
{
    /// <summary>
    /// Removes everything under the open directory <paramref name="dir"/> (the directory stays): entries
    /// are read with getdents64 and removed with unlinkat relative to their directory's fd, subdirectories
    /// opened with openat(O_NOFOLLOW), so nothing a jail planted (symlinks, renames into deep trees) is ever
    /// followed out of it. False when it could not: an error, more than <paramref name="budget"/> entries
    /// in all, or deeper than 32 levels.
    /// </summary>
    public static bool Empty(int dir, int depth, ref int budget)
    {
        if (depth > 32 || LibC.lseek(dir, 0, 0) < 0) return false;
        if (Entries(dir) is not { } names || (budget -= names.Count) < 0) return false;
        foreach (var (name, isDir) in names)
        {
            fixed (byte* p = CString.Of(name))
            {
                if (!isDir)
                {
                    if (LibC.unlinkat(dir, p, 0) == 0) continue;
                    if (Marshal.GetLastPInvokeError() != Consts.EISDIR) return false;
                }
                int sub = LibC.openat(dir, p, Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, 0);
                if (sub < 0) return false;
                bool ok;
                try { ok = Empty(sub, depth + 1, ref budget); }
                finally { LibC.close(sub); }
                if (!ok || LibC.unlinkat(dir, p, 0x200 /* AT_REMOVEDIR */) != 0) return false;
            }
        }
        return true;
    }

    /// <summary>The entries of an open directory from its current position (not . and ..), each with whether
    /// getdents64 typed it a directory; null on an error (errno is left for the caller).</summary>
    public static List<(string Name, bool Dir)>? Entries(int dir)
    {
        var names = new List<(string Name, bool Dir)>();
        byte* buf = stackalloc byte[8192];
        while (true)
        {
            long n = LibC.syscall(Syscalls.Getdents64, dir, (long)buf, 8192, 0, 0, 0);
            if (n < 0) return null;
            if (n == 0) return names;
            for (long off = 0; off < n;)
            {
                var name = Marshal.PtrToStringUTF8((nint)(buf + off + 19)) ?? "";
                if (name is not ("." or "..")) names.Add((name, buf[off + 18] == 4 /* DT_DIR */));
                off += *(ushort*)(buf + off + 16);
            }
        }
    }
}

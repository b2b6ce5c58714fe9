using Berth.Linux.Interop;

namespace Berth.Linux.Mounts;

/// <summary>Remounts that keep the flags the kernel locks on a mount (nosuid, nodev, noexec, atime).</summary>
public static unsafe class Remount
{
    /// <summary>The MS_* flags of the mount holding <paramref name="path"/> (from statvfs).</summary>
    public static ulong CurrentFlags(string path)
    {
        var buf = stackalloc ulong[16];
        fixed (byte* p = CString.Of(path))
            if (LibC.statvfs(p, buf) != 0) throw LinuxException.Last("statvfs", path);
        ulong st = buf[9];
        ulong ms = st & (Consts.MS_RDONLY | Consts.MS_NOSUID | Consts.MS_NODEV | Consts.MS_NOEXEC |
                         Consts.MS_SYNCHRONOUS | Consts.MS_MANDLOCK | Consts.MS_NOATIME | Consts.MS_NODIRATIME);
        if ((st & 4096) != 0) ms |= Consts.MS_RELATIME;
        return ms;
    }

    /// <summary>Bind-remount <paramref name="path"/> with <paramref name="flags"/>; on EPERM retry keeping the locked flags.</summary>
    public static void Bind(string path, ulong flags)
    {
        int err = Mount.TryApply(null, path, null, Consts.MS_REMOUNT | Consts.MS_BIND | flags, null);
        if (err == Consts.EPERM)
        {
            var locked = CurrentFlags(path) & (Consts.MS_NOSUID | Consts.MS_NODEV | Consts.MS_NOEXEC |
                Consts.MS_NOATIME | Consts.MS_NODIRATIME | Consts.MS_RELATIME | Consts.MS_RDONLY);
            if ((flags & Consts.MS_RDONLY) == 0) locked &= ~Consts.MS_RDONLY;
            err = Mount.TryApply(null, path, null, Consts.MS_REMOUNT | Consts.MS_BIND | flags | locked, null);
        }
        if (err != 0) throw new LinuxException("remount", $"{path} (flags 0x{flags:x})", err);
    }
}

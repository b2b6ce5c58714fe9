using System.Runtime.InteropServices;
using Berth.Linux.Interop;

namespace Berth.Linux.Mounts;

/// <summary>
/// How many mounts are at and below a directory, without reading /proc/self/mountinfo (whose
/// formatting and parsing cost more than a sandbox pool's whole check): statx's unique mount id and
/// STATX_ATTR_MOUNT_ROOT, then listmount(2) (Linux 6.8), which lists a mount's whole subtree.
/// </summary>
public static unsafe class MountTree
{
    private const int SysListmount = 458;
    private const uint StatxMntIdUnique = 0x4000;
    private const ulong StatxAttrMountRoot = 0x2000;
    private static bool s_unsupported;

    /// <summary>
    /// The number of mounts at <paramref name="path"/> and below it when it is a mount root; null when it
    /// is not one or the kernel cannot tell (no unique mount ids, no listmount): callers then read mountinfo.
    /// </summary>
    public static int? AtAndBelow(string path)
    {
        if (s_unsupported) return null;
        var buf = stackalloc byte[256];
        fixed (byte* p = CString.Of(path))
            if (LibC.statx(-100, p, Consts.AT_SYMLINK_NOFOLLOW, StatxMntIdUnique, buf) != 0) return null;
        uint mask = *(uint*)buf;
        ulong attrs = *(ulong*)(buf + 8), attrsMask = *(ulong*)(buf + 56);
        if ((mask & StatxMntIdUnique) == 0 || (attrsMask & StatxAttrMountRoot) == 0) { s_unsupported = true; return null; }
        if ((attrs & StatxAttrMountRoot) == 0) return null;
        ulong mntId = *(ulong*)(buf + 144);
        var req = stackalloc ulong[3];
        req[0] = 24; // size (MNT_ID_REQ_SIZE_VER0), spare
        req[1] = mntId;
        req[2] = 0;  // from the start
        var ids = stackalloc ulong[64];
        long n = LibC.syscall(SysListmount, (long)req, (long)ids, 64, 0, 0, 0);
        if (n < 0)
        {
            if (Marshal.GetLastPInvokeError() is Consts.ENOSYS or Consts.EINVAL) s_unsupported = true;
            return null;
        }
        return n >= 64 ? null : 1 + (int)n;
    }
}

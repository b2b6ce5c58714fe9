using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Mounts;
using Berth.Runtime.Init;

namespace Berth.Runtime.Rootfs;

/// <summary>Device nodes (mknod, or a bind of the host node inside a user namespace) and /dev links.</summary>
internal static unsafe class Devices
{
    public static void Create(InitPlan plan, int rootFd)
    {
        foreach (var d in plan.Devices) CreateOne(plan, rootFd, d);
        if (plan.CreateDefaultDevices) Links(rootFd);
    }

    private static void CreateOne(InitPlan plan, int rootFd, DevicePlan d)
    {
        var dir = Path.GetDirectoryName(d.Path) ?? "/dev";
        var name = Path.GetFileName(d.Path);
        int dirFd = InRoot.MkdirAll(rootFd, dir);
        try
        {
            MountSetup.CheckInside(plan, dirFd, dir);
            // O_PATH dirfds cannot be used for mknodat/unlinkat in every kernel: reopen as a real directory.
            int real = InRoot.Open(rootFd, dir, Consts.O_RDONLY | Consts.O_DIRECTORY);
            try
            {
                fixed (byte* n = CString.Of(name)) LibC.unlinkat(real, n, 0);
                if (plan.InUserNs)
                {
                    BindHostNode(plan, rootFd, real, d);
                    return;
                }
                uint type = d.Type switch { 'b' => Consts.S_IFBLK, 'p' => Consts.S_IFIFO, _ => Consts.S_IFCHR };
                fixed (byte* n = CString.Of(name))
                {
                    if (LibC.mknodat(real, n, type | (d.Mode & 0xfff), MakeDev(d.Major, d.Minor)) != 0)
                        throw LinuxException.Last("mknod", $"{d.Path} ({d.Type} {d.Major}:{d.Minor})");
                    if (LibC.fchownat(real, n, d.Uid, d.Gid, Consts.AT_SYMLINK_NOFOLLOW) != 0)
                        throw LinuxException.Last("chown", d.Path);
                }
            }
            finally { LibC.close(real); }
        }
        finally { LibC.close(dirFd); }
    }

    private static void BindHostNode(InitPlan plan, int rootFd, int dirFd, DevicePlan d)
    {
        var name = Path.GetFileName(d.Path);
        fixed (byte* n = CString.Of(name))
        {
            int f = LibC.openat(dirFd, n, Consts.O_CREAT | Consts.O_WRONLY | Consts.O_CLOEXEC | Consts.O_NOFOLLOW, 0x1a4);
            if (f < 0) throw LinuxException.Last("create bind target", d.Path);
            LibC.close(f);
        }
        int target = InRoot.Open(rootFd, d.Path, Consts.O_PATH);
        try
        {
            MountSetup.CheckInside(plan, target, d.Path);
            Mount.Apply(d.Path, $"/proc/self/fd/{target}", null, Consts.MS_BIND, null);
        }
        finally { LibC.close(target); }
    }

    private static void Links(int rootFd)
    {
        (string Target, string Link)[] links =
        [
            ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"), ("/proc/self/fd/1", "/dev/stdout"),
            ("/proc/self/fd/2", "/dev/stderr"), ("/proc/kcore", "/dev/core"),
        ];
        int dev = InRoot.Open(rootFd, "/dev", Consts.O_RDONLY | Consts.O_DIRECTORY);
        try
        {
            foreach (var (target, link) in links)
            {
                fixed (byte* t = CString.Of(target))
                fixed (byte* l = CString.Of(Path.GetFileName(link)))
                {
                    if (LibC.symlinkat(t, dev, l) != 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != Consts.EEXIST)
                        throw LinuxException.Last("symlink", link);
                }
            }
        }
        finally { LibC.close(dev); }
    }

    /// <summary>/dev/ptmx -> pts/ptmx, once devpts is mounted (newinstance gives the container its own ptys).</summary>
    public static void PtmxLink(int rootFd)
    {
        int dev = InRoot.TryOpen(rootFd, "/dev", Consts.O_RDONLY | Consts.O_DIRECTORY, 0, false, out _);
        if (dev < 0) return;
        try
        {
            fixed (byte* l = CString.Of("ptmx"))
            fixed (byte* t = CString.Of("pts/ptmx"))
            {
                int pts = InRoot.TryOpen(rootFd, "/dev/pts/ptmx", Consts.O_PATH, 0, false, out _);
                if (pts < 0) return;
                LibC.close(pts);
                LibC.unlinkat(dev, l, 0);
                if (LibC.symlinkat(t, dev, l) != 0) throw LinuxException.Last("symlink", "/dev/ptmx");
            }
        }
        finally { LibC.close(dev); }
    }

    public static ulong MakeDev(long major, long minor)
    {
        ulong ma = (ulong)major, mi = (ulong)minor;
        return ((ma & 0xfffff000UL) << 32) | ((ma & 0xfffUL) << 8) | ((mi & 0xffffff00UL) << 12) | (mi & 0xffUL);
    }
}

using Berth.Linux.Files;
using Berth.Linux.Interop;

namespace Berth.Linux.Net;

/// <summary>
/// Network namespaces kept alive by a bind mount of their nsfs file (as `ip netns add` does), so
/// they exist before any process enters them and can be joined, configured and removed by path.
/// </summary>
public static unsafe class NetNsPin
{
    /// <summary>
    /// Creates a new network namespace pinned at <paramref name="pin"/> and returns a NETLINK_ROUTE
    /// socket inside it. The calling thread enters the namespace only between unshare and setns
    /// back (unshare(CLONE_NEWNET) and setns act on the calling thread alone), so other threads
    /// never see it.
    /// </summary>
    public static RtNetlink Create(string pin)
    {
        int fd = Fd.Open(pin, Consts.O_WRONLY | Consts.O_CREAT | Consts.O_EXCL | Consts.O_CLOEXEC, 0x124);
        LibC.close(fd);
        int self = Fd.Open("/proc/thread-self/ns/net", Consts.O_RDONLY | Consts.O_CLOEXEC);
        try
        {
            if (LibC.unshare(Consts.CLONE_NEWNET) != 0) throw LinuxException.Last("unshare", "CLONE_NEWNET");
            try
            {
                Mounts.Mount.Apply("/proc/thread-self/ns/net", pin, null, Consts.MS_BIND, null);
                var nl = new RtNetlink();
                try { nl.SetUp(1, "lo"); }
                catch
                {
                    nl.Dispose();
                    throw;
                }
                return nl;
            }
            finally
            {
                // Back to the host's namespace; staying behind would put the rest of berth in the container's.
                if (LibC.setns(self, Consts.CLONE_NEWNET) != 0)
                {
                    Console.Error.WriteLine($"berth: fatal: setns back to the host network namespace: {LinuxException.Last("setns").Message}");
                    Environment.Exit(125);
                }
            }
        }
        finally { LibC.close(self); }
    }

    /// <summary>Unmounts and removes a pin; nothing to do if it is gone already.</summary>
    public static void Remove(string pin)
    {
        int err = Mounts.Mount.TryUnmount(pin, Consts.MNT_DETACH);
        if (err != 0 && err != Consts.EINVAL && err != Consts.ENOENT) throw new LinuxException("umount", pin, err);
        try { File.Delete(pin); }
        catch (DirectoryNotFoundException) { }
    }

    /// <summary>
    /// Makes <paramref name="dir"/> a shared bind mount of itself (once), as iproute2 does for
    /// /run/netns, so that removing a pin also removes its copies in mount namespaces created meanwhile.
    /// </summary>
    public static void EnsurePinDir(string dir)
    {
        Directory.CreateDirectory(dir);
        if (Mounts.MountInfoEntry.ReadSelf().Any(m => m.MountPoint == dir)) return;
        Mounts.Mount.Apply(dir, dir, null, Consts.MS_BIND, null);
        Mounts.Mount.Apply("none", dir, null, Consts.MS_SHARED, null);
    }
}

using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Mounts;
using Berth.Runtime.Init;

namespace Berth.Runtime.Rootfs;

/// <summary>
/// Performs the spec's mounts inside the rootfs. Every destination is resolved with
/// RESOLVE_IN_ROOT and mounted through /proc/self/fd/N of the resolved directory, then
/// checked again after the mount, so a symlink swapped in during setup cannot redirect a
/// mount outside the rootfs (CVE-2021-30465).
/// </summary>
internal static class MountSetup
{
    public static void PrepareRoot(InitPlan plan)
    {
        Mount.Apply(null, "/", null, plan.RootPropagation, null);
        // The rootfs must be a mount point for pivot_root, and its parent mount must not be shared.
        Mount.Apply(plan.Rootfs, plan.Rootfs, null, Consts.MS_BIND | Consts.MS_REC, null);
        Mount.TryApply(null, plan.Rootfs, null, Consts.MS_PRIVATE, null);
    }

    public static void MountAll(InitPlan plan, int rootFd)
    {
        foreach (var m in plan.Mounts) MountOne(plan, rootFd, m);
    }

    private static void MountOne(InitPlan plan, int rootFd, MountPlan m)
    {
        var o = m.Options;
        int target = m.Type == "bind" && !m.SourceIsDir
            ? InRoot.CreateFile(rootFd, m.Destination)
            : InRoot.MkdirAll(rootFd, m.Destination);
        try
        {
            CheckInside(plan, target, m.Destination);
            var fdPath = $"/proc/self/fd/{target}";
            ulong flags = o.Flags & ~o.ClearFlags;
            switch (m.Type)
            {
                case "bind":
                    Mount.Apply(m.Source, fdPath, null, Consts.MS_BIND | (o.RecursiveBind ? Consts.MS_REC : 0), null);
                    flags &= ~(Consts.MS_BIND | Consts.MS_REC);
                    if (flags != 0) RemountAfter(plan, rootFd, m.Destination, flags);
                    break;
                case "cgroup":
                    CgroupMount.Apply(plan, rootFd, m, target);
                    break;
                case "sysfs":
                    int err = Mount.TryApply(m.Source ?? "sysfs", fdPath, "sysfs", flags, o.Data.Length > 0 ? o.Data : null);
                    if (err == Consts.EPERM && plan.InUserNs)
                    {
                        // A user namespace without its own network namespace cannot mount sysfs: bind the host's.
                        Mount.Apply("/sys", fdPath, null, Consts.MS_BIND | Consts.MS_REC, null);
                        RemountAfter(plan, rootFd, m.Destination, flags | Consts.MS_RDONLY);
                    }
                    else if (err != 0) throw new LinuxException("mount", $"sysfs on {m.Destination}", err);
                    break;
                default:
                    var data = o.Data.Length > 0 ? o.Data : null;
                    int rc = Mount.TryApply(m.Source, fdPath, m.Type, flags, data);
                    if (rc != 0)
                        throw new LinuxException("mount", $"{m.Type} on {m.Destination}{(data is null ? "" : " (" + data + ")")}", rc);
                    break;
            }
            foreach (var prop in o.Propagation) Propagate(plan, rootFd, m.Destination, prop);
        }
        finally { LibC.close(target); }
    }

    /// <summary>Re-resolves the destination (now the mounted fs) and remounts it with the flags.</summary>
    private static void RemountAfter(InitPlan plan, int rootFd, string dest, ulong flags)
    {
        int fd = InRoot.Open(rootFd, dest, Consts.O_PATH);
        try
        {
            CheckInside(plan, fd, dest);
            Remount.Bind($"/proc/self/fd/{fd}", flags);
        }
        finally { LibC.close(fd); }
    }

    private static void Propagate(InitPlan plan, int rootFd, string dest, ulong prop)
    {
        int fd = InRoot.Open(rootFd, dest, Consts.O_PATH);
        try
        {
            CheckInside(plan, fd, dest);
            Mount.Apply(null, $"/proc/self/fd/{fd}", null, prop, null);
        }
        finally { LibC.close(fd); }
    }

    /// <summary>The resolved fd must still lie under the rootfs, whatever the path did meanwhile.</summary>
    public static void CheckInside(InitPlan plan, int fd, string dest)
    {
        var real = InRoot.RealPath(fd);
        if (!InRoot.IsWithin(plan.Rootfs, real))
            throw new RuntimeError($"mount destination {dest} resolves to {real}, outside the rootfs {plan.Rootfs}");
    }
}

using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Mounts;
using Berth.Runtime.Init;

namespace Berth.Runtime.Rootfs;

/// <summary>
/// The "cgroup" mount type: a read-only view of the container's own cgroups. On v1 a tmpfs
/// with one subdirectory per hierarchy; on v2 one cgroup2 mount. Inside a cgroup namespace
/// the kernel shows the namespace root; otherwise the container's directories are bind-mounted.
/// </summary>
internal static unsafe class CgroupMount
{
    public static void Apply(InitPlan plan, int rootFd, MountPlan m, int target)
    {
        var flags = (m.Options.Flags & ~m.Options.ClearFlags) | Consts.MS_NOSUID | Consts.MS_NODEV | Consts.MS_NOEXEC;
        var hostMounts = MountInfoEntry.ReadSelf()
            .Where(e => e.FsType is "cgroup" or "cgroup2" && e.MountPoint.StartsWith("/sys/fs/cgroup", StringComparison.Ordinal))
            .ToList();
        bool v2Only = hostMounts.Count == 1 && hostMounts[0].FsType == "cgroup2" && hostMounts[0].MountPoint == "/sys/fs/cgroup";
        var fdPath = $"/proc/self/fd/{target}";
        if (v2Only)
        {
            MountHierarchy(plan, rootFd, m.Destination, fdPath, "cgroup2", null, "/sys/fs/cgroup", flags);
            return;
        }

        Mount.Apply("tmpfs", fdPath, "tmpfs", Consts.MS_NOSUID | Consts.MS_NODEV | Consts.MS_NOEXEC, "mode=755");
        foreach (var h in hostMounts)
        {
            var name = h.MountPoint["/sys/fs/cgroup".Length..].TrimStart('/');
            if (name.Length == 0 || name.Contains('/')) continue;
            var sub = m.Destination.TrimEnd('/') + "/" + name;
            int dir = InRoot.MkdirAll(rootFd, sub);
            try
            {
                MountSetup.CheckInside(plan, dir, sub);
                string? options = h.FsType == "cgroup"
                    ? string.Join(',', h.SuperOptions.Split(',').Where(x => x is not ("rw" or "ro")))
                    : null;
                MountHierarchy(plan, rootFd, sub, $"/proc/self/fd/{dir}", h.FsType, options, h.MountPoint, flags);
            }
            finally { LibC.close(dir); }
        }
        // Comounted controllers ("cpu,cpuacct") are also reachable by each name, as on the host.
        foreach (var link in Directory.GetFileSystemEntries("/sys/fs/cgroup"))
        {
            var fi = new FileInfo(link);
            if (fi.LinkTarget is null) continue;
            var name = Path.GetFileName(link);
            var dest = m.Destination.TrimEnd('/') + "/" + name;
            int parent = InRoot.MkdirAll(rootFd, m.Destination);
            try
            {
                fixed (byte* t = Berth.Linux.CString.Of(fi.LinkTarget))
                fixed (byte* n = Berth.Linux.CString.Of(name))
                    LibC.symlinkat(t, parent, n);
            }
            finally { LibC.close(parent); }
            _ = dest;
        }
        if ((flags & Consts.MS_RDONLY) != 0)
        {
            // The tmpfs itself goes read-only last, after its subdirectories exist.
            int fd = InRoot.Open(rootFd, m.Destination, Consts.O_PATH);
            try { Remount.Bind($"/proc/self/fd/{fd}", Consts.MS_RDONLY | Consts.MS_NOSUID | Consts.MS_NODEV | Consts.MS_NOEXEC); }
            finally { LibC.close(fd); }
        }
    }

    private static void MountHierarchy(InitPlan plan, int rootFd, string dest, string target, string fstype, string? options,
        string hostMountPoint, ulong flags)
    {
        if (plan.NewCgroupNs)
        {
            int err = Mount.TryApply("cgroup", target, fstype, flags, options);
            if (err == 0) return;
        }
        // No cgroup namespace: bind the container's own cgroup directory of this hierarchy.
        var own = Path.Combine(hostMountPoint, plan.CgroupPath.TrimStart('/'));
        var src = Directory.Exists(own) ? own : hostMountPoint;
        Mount.Apply(src, target, null, Consts.MS_BIND | Consts.MS_REC, null);
        // The old fd still names the directory under the new mount: resolve again to reach the mount.
        int fd = InRoot.Open(rootFd, dest, Consts.O_PATH);
        try
        {
            MountSetup.CheckInside(plan, fd, dest);
            Remount.Bind($"/proc/self/fd/{fd}", flags);
        }
        finally { LibC.close(fd); }
    }
}

using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Mounts;
using Berth.Runtime.Init;

namespace Berth.Runtime.Rootfs;

/// <summary>pivot_root and what follows it: sysctls, read-only and masked paths, a read-only root.</summary>
internal static unsafe class RootfsFinalize
{
    public static void PivotRoot(InitPlan plan)
    {
        if (plan.NoPivot)
        {
            Mount.Chdir(plan.Rootfs);
            Mount.Apply(plan.Rootfs, "/", null, Consts.MS_MOVE, null);
            Mount.Chroot(".");
            Mount.Chdir("/");
            return;
        }
        int oldRoot = Fd.Open("/", Consts.O_DIRECTORY | Consts.O_RDONLY);
        int newRoot = Fd.Open(plan.Rootfs, Consts.O_DIRECTORY | Consts.O_RDONLY);
        try
        {
            if (LibC.fchdir(newRoot) != 0) throw LinuxException.Last("chdir", plan.Rootfs);
            Mount.PivotRoot(".", ".");
            // The old root is now stacked under "."; detach it without propagating to the host.
            if (LibC.fchdir(oldRoot) != 0) throw LinuxException.Last("chdir", "old root");
            Mount.Apply(null, ".", null, Consts.MS_SLAVE | Consts.MS_REC, null);
            Mount.Unmount(".", Consts.MNT_DETACH);
            Mount.Chdir("/");
        }
        finally
        {
            LibC.close(oldRoot);
            LibC.close(newRoot);
        }
    }

    public static void Sysctls(InitPlan plan)
    {
        foreach (var (key, value) in plan.Sysctl)
        {
            var path = "/proc/sys/" + key.Replace('.', '/');
            try { Fd.WriteFile(path, value); }
            catch (LinuxException e) { throw new RuntimeError($"linux.sysctl: set {key}={value}: {LinuxException.Describe(e.Errno)}"); }
        }
    }

    public static void ReadonlyPaths(InitPlan plan)
    {
        if (plan.ReadonlyPaths.Count == 0) return;
        int root = Fd.Open("/", Consts.O_PATH | Consts.O_DIRECTORY);
        try
        {
            foreach (var p in plan.ReadonlyPaths)
            {
                int fd = InRoot.TryOpen(root, p, Consts.O_PATH | Consts.O_NOFOLLOW, 0, false, out int err);
                if (fd < 0)
                {
                    if (err == Consts.ENOENT) continue;
                    throw new LinuxException("open readonly path", p, err);
                }
                try
                {
                    if (FileStat.Of(fd, p).IsSymlink) throw new RuntimeError($"linux.readonlyPaths: {p} is a symlink in the container; refusing to follow it");
                    var self = $"/proc/self/fd/{fd}";
                    int rc = Mount.TryApply(self, self, null, Consts.MS_BIND | Consts.MS_REC, null);
                    if (rc != 0) throw new LinuxException("bind", $"readonly path {p}", rc);
                }
                finally { LibC.close(fd); }
                // Re-resolve: the fd above names the directory under the new bind mount.
                int again = InRoot.Open(root, p, Consts.O_PATH | Consts.O_NOFOLLOW);
                try { Remount.Bind($"/proc/self/fd/{again}", Consts.MS_RDONLY | Consts.MS_NOSUID | Consts.MS_NODEV | Consts.MS_NOEXEC | Consts.MS_REC); }
                finally { LibC.close(again); }
            }
        }
        finally { LibC.close(root); }
    }

    /// <summary>
    /// Masks with the container's /dev/null only after checking it is the null device (c 1:3) and
    /// never through symlinks, so a rootfs that makes /dev/null (or a masked path) a symlink cannot
    /// turn masking into a bind of something else (CVE-2025-31133).
    /// </summary>
    public static void MaskedPaths(InitPlan plan)
    {
        if (plan.MaskedPaths.Count == 0) return;
        int root = Fd.Open("/", Consts.O_PATH | Consts.O_DIRECTORY);
        int devNull = -1;
        try
        {
            foreach (var p in plan.MaskedPaths)
            {
                int fd = InRoot.TryOpen(root, p, Consts.O_PATH | Consts.O_NOFOLLOW, 0, false, out int err);
                if (fd < 0)
                {
                    if (err == Consts.ENOENT) continue;
                    throw new LinuxException("open masked path", p, err);
                }
                try
                {
                    var st = FileStat.Of(fd, p);
                    if (st.IsSymlink) throw new RuntimeError($"linux.maskedPaths: {p} is a symlink in the container; refusing to follow it");
                    var target = $"/proc/self/fd/{fd}";
                    int rc;
                    if (st.IsDirectory)
                        rc = Mount.TryApply("tmpfs", target, "tmpfs", Consts.MS_RDONLY, "size=0,mode=0555");
                    else
                    {
                        if (devNull < 0) devNull = OpenDevNull(root);
                        rc = Mount.TryApply($"/proc/self/fd/{devNull}", target, null, Consts.MS_BIND, null);
                    }
                    if (rc != 0) throw new LinuxException("mask", p, rc);
                }
                finally { LibC.close(fd); }
            }
        }
        finally
        {
            LibC.close(root);
            if (devNull >= 0) LibC.close(devNull);
        }
    }

    private static int OpenDevNull(int root)
    {
        int fd = InRoot.Open(root, "/dev/null", Consts.O_PATH | Consts.O_NOFOLLOW);
        var st = FileStat.Of(fd, "/dev/null");
        if (!st.IsCharDevice || st.RdevMajor != 1 || st.RdevMinor != 3)
        {
            LibC.close(fd);
            throw new RuntimeError("/dev/null in the container is not the null device (c 1:3); refusing to mask paths with it");
        }
        return fd;
    }

    public static void RootReadonly(InitPlan plan)
    {
        if (!plan.RootReadonly) return;
        Remount.Bind("/", Consts.MS_RDONLY);
    }

    public static void Names(InitPlan plan)
    {
        if (!string.IsNullOrEmpty(plan.Hostname))
            fixed (byte* h = CString.Of(plan.Hostname))
                if (LibC.sethostname(h, System.Text.Encoding.UTF8.GetByteCount(plan.Hostname)) != 0)
                    throw LinuxException.Last("sethostname", plan.Hostname);
        if (!string.IsNullOrEmpty(plan.Domainname))
            fixed (byte* d = CString.Of(plan.Domainname))
                if (LibC.setdomainname(d, System.Text.Encoding.UTF8.GetByteCount(plan.Domainname)) != 0)
                    throw LinuxException.Last("setdomainname", plan.Domainname);
    }
}

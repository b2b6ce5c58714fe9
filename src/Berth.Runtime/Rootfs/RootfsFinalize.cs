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
        foreach (var p in plan.ReadonlyPaths)
        {
            int err = Mount.TryApply(p, p, null, Consts.MS_BIND | Consts.MS_REC, null);
            if (err == Consts.ENOENT) continue;
            if (err != 0) throw new LinuxException("bind", $"readonly path {p}", err);
            Remount.Bind(p, Consts.MS_RDONLY | Consts.MS_NOSUID | Consts.MS_NODEV | Consts.MS_NOEXEC | Consts.MS_REC);
        }
    }

    public static void MaskedPaths(InitPlan plan)
    {
        foreach (var p in plan.MaskedPaths)
        {
            int err;
            if (Directory.Exists(p))
                err = Mount.TryApply("tmpfs", p, "tmpfs", Consts.MS_RDONLY, "size=0,mode=0555");
            else
                err = Mount.TryApply("/dev/null", p, null, Consts.MS_BIND, null);
            if (err is 0 or Consts.ENOENT) continue;
            throw new LinuxException("mask", p, err);
        }
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

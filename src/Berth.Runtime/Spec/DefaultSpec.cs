namespace Berth.Runtime.Spec;

using Berth.Oci.Runtime;

/// <summary>
/// The config.json `spec` writes: the document `runc spec` writes (runc 1.2 and later, which no longer
/// grant ambient capabilities), with ociVersion <see cref="SpecVersion.Current"/> and hostname "berth".
/// </summary>
public static class DefaultSpec
{
    public const string Hostname = "berth";

    /// <param name="rootless">Make it runnable by an unprivileged user, as `runc spec --rootless` does.</param>
    /// <param name="uid">Host uid mapped to root in the container (rootless only; usually the caller's euid).</param>
    /// <param name="gid">Host gid mapped to root in the container (rootless only; usually the caller's egid).</param>
    /// <param name="cgroupNamespace">Add a cgroup namespace; runc does so on cgroup v2 (unified) hosts.</param>
    public static Oci.Runtime.Spec Create(bool rootless, uint uid = 0, uint gid = 0, bool cgroupNamespace = false)
    {
        string[] caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
        var spec = new Oci.Runtime.Spec
        {
            OciVersion = SpecVersion.Current,
            Process = new Process
            {
                Terminal = true,
                User = new User { Uid = 0, Gid = 0 },
                Args = ["sh"],
                Env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                Cwd = "/",
                Capabilities = new Capabilities { Bounding = [.. caps], Effective = [.. caps], Permitted = [.. caps] },
                Rlimits = [new Rlimit { Type = "RLIMIT_NOFILE", Hard = 1024, Soft = 1024 }],
                NoNewPrivileges = true,
            },
            Root = new Root { Path = "rootfs", Readonly = true },
            Hostname = Hostname,
            Mounts =
            [
                new Mount { Destination = "/proc", Type = "proc", Source = "proc" },
                new Mount { Destination = "/dev", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "strictatime", "mode=755", "size=65536k"] },
                new Mount { Destination = "/dev/pts", Type = "devpts", Source = "devpts", Options = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
                new Mount { Destination = "/dev/shm", Type = "tmpfs", Source = "shm", Options = ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
                new Mount { Destination = "/dev/mqueue", Type = "mqueue", Source = "mqueue", Options = ["nosuid", "noexec", "nodev"] },
                new Mount { Destination = "/sys", Type = "sysfs", Source = "sysfs", Options = ["nosuid", "noexec", "nodev", "ro"] },
                new Mount { Destination = "/sys/fs/cgroup", Type = "cgroup", Source = "cgroup", Options = ["nosuid", "noexec", "nodev", "relatime", "ro"] },
            ],
            Linux = new Oci.Runtime.Linux
            {
                Resources = new Resources { Devices = [new DeviceCgroup { Allow = false, Access = "rwm" }] },
                Namespaces =
                [
                    new LinuxNamespace { Type = "pid" },
                    new LinuxNamespace { Type = "network" },
                    new LinuxNamespace { Type = "ipc" },
                    new LinuxNamespace { Type = "uts" },
                    new LinuxNamespace { Type = "mount" },
                ],
                MaskedPaths =
                [
                    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                    "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
                ],
                ReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            },
        };
        if (cgroupNamespace) spec.Linux.Namespaces.Add(new LinuxNamespace { Type = "cgroup" });
        if (rootless) MakeRootless(spec, uid, gid);
        return spec;
    }

    // What `runc spec --rootless` changes: a user namespace mapping root to the caller, no network
    // namespace (an unprivileged user could not connect it anywhere), the host's /sys bound in (sysfs
    // cannot be mounted without owning a network namespace), no uid=/gid= mount options (those ids are
    // not mapped), and no cgroup resources (the user cannot write the cgroup tree).
    private static void MakeRootless(Oci.Runtime.Spec spec, uint uid, uint gid)
    {
        var linux = spec.Linux!;
        linux.Namespaces = [.. linux.Namespaces!.Where(n => n.Type is not ("network" or "user")), new LinuxNamespace { Type = "user" }];
        linux.UidMappings = [new IdMapping { ContainerID = 0, HostID = uid, Size = 1 }];
        linux.GidMappings = [new IdMapping { ContainerID = 0, HostID = gid, Size = 1 }];
        linux.Resources = null;

        var mounts = new List<Mount>();
        foreach (var m in spec.Mounts!)
        {
            if (m.Destination.TrimEnd('/') == "/sys")
            {
                mounts.Add(new Mount { Destination = "/sys", Type = "none", Source = "/sys", Options = ["rbind", "nosuid", "noexec", "nodev", "ro"] });
                continue;
            }
            if (m.Options is not null)
                m.Options = [.. m.Options.Where(o => !o.StartsWith("uid=", StringComparison.Ordinal) && !o.StartsWith("gid=", StringComparison.Ordinal))];
            mounts.Add(m);
        }
        spec.Mounts = mounts;
    }
}

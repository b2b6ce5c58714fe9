using Berth.Oci.Runtime;
using RtSpec = Berth.Oci.Runtime.Spec;

namespace Berth.Engine.Sandbox;

/// <summary>
/// Sandbox options -> OCI config: every namespace (network unless --net), a read-only root made of
/// the host's system directories bound read-only, the box at /box, no capabilities,
/// no_new_privs, an unprivileged uid, core dumps off, rlimits, memory and pids limits. Pure.
/// </summary>
public static class SandboxSpec
{
    /// <summary>Host directories that make the jail's root (bound read-only; a host symlink is copied as a symlink).</summary>
    public static readonly string[] SystemDirs = ["/usr", "/bin", "/lib", "/lib64", "/etc", "/sbin"];

    private static string[]? s_hostDirs;

    /// <summary>The system directories that are real directories on this host (symlinks are made in the rootfs); looked up once per process.</summary>
    private static string[] HostSystemDirs() =>
        s_hostDirs ??= [.. SystemDirs.Where(d => Directory.Exists(d) && new FileInfo(d).LinkTarget is null)];

    public static RtSpec Build(SandboxOptions o, string rootfs, string boxDir)
    {
        var spec = Berth.Runtime.Spec.DefaultSpec.Create(rootless: false);
        spec.Hostname = "sandbox";
        spec.Root = new Root { Path = rootfs, Readonly = true };
        var p = spec.Process!;
        p.Terminal = false;
        p.Args = [.. o.Command];
        p.Env = ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/box", "LC_ALL=C"];
        p.Cwd = "/box";
        p.User = new User { Uid = SandboxOptions.Uid, Gid = SandboxOptions.Gid, AdditionalGids = [] };
        p.Capabilities = new Capabilities { Bounding = [], Effective = [], Permitted = [], Inheritable = [], Ambient = [] };
        p.NoNewPrivileges = true;
        var rl = new List<Rlimit>
        {
            new() { Type = "RLIMIT_CORE", Soft = 0, Hard = 0 },
            new() { Type = "RLIMIT_NOFILE", Soft = (ulong)o.OpenFiles, Hard = (ulong)o.OpenFiles },
        };
        if (o.FsizeKb is { } kb) rl.Add(new Rlimit { Type = "RLIMIT_FSIZE", Soft = (ulong)kb * 1024, Hard = (ulong)kb * 1024 });
        if (o.Stack is { } st) rl.Add(new Rlimit { Type = "RLIMIT_STACK", Soft = (ulong)st, Hard = (ulong)st });
        if (o.KillTime is { } t)
        {
            // A backstop only: the cgroup's CPU usage of the whole tree is what the parent polls.
            var s = (ulong)Math.Ceiling(t) + 1;
            rl.Add(new Rlimit { Type = "RLIMIT_CPU", Soft = s, Hard = s + 1 });
        }
        p.Rlimits = rl;

        var linux = spec.Linux!;
        linux.Namespaces = [.. new[] { "pid", "ipc", "uts", "mount", "cgroup" }.Select(n => new LinuxNamespace { Type = n })];
        if (!o.Net) linux.Namespaces.Add(new LinuxNamespace { Type = "network", Path = o.NetNsPath });
        linux.Resources ??= new Resources();
        if (o.Memory is { } m) linux.Resources.Memory = new Memory { Limit = m, Swap = m };
        linux.Resources.Pids = new Pids { Limit = o.Processes };
        // /proc shows the jail's processes and nothing of the kernel or the host (subset=pid, Linux 5.8):
        // no /proc/sys, kcore, keys, timer_list, sched_debug, cpuinfo, meminfo, ... to mask one by one.
        var proc = spec.Mounts!.First(m => m.Destination == "/proc");
        proc.Options = ["nosuid", "nodev", "noexec", "subset=pid"];
        linux.ReadonlyPaths = [];
        linux.MaskedPaths = [.. (linux.MaskedPaths ?? []).Where(m => !m.StartsWith("/proc/", StringComparison.Ordinal)), "/sys/kernel", "/sys/devices/virtual/powercap"];

        spec.Mounts ??= [];
        spec.Mounts.RemoveAll(x => x.Destination == "/sys/fs/cgroup");
        // The host's system directories, read-only; an --image root brings its own.
        foreach (var d in o.Image is null ? HostSystemDirs() : [])
        {
            spec.Mounts.Add(new Mount { Destination = d, Type = "bind", Source = d, Options = ["rbind", "ro", "nosuid", "nodev"] });
        }
        foreach (var r in o.Dirs)
            spec.Mounts.Add(new Mount
            {
                Destination = r.Destination, Type = "bind", Source = r.Source,
                Options = ["rbind", r.Writable ? "rw" : "ro", "nosuid", "nodev"],
            });
        spec.Mounts.Add(new Mount { Destination = "/tmp", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "nodev", "mode=1777", "size=65536k"] });
        spec.Mounts.Add(new Mount { Destination = "/box", Type = "bind", Source = boxDir, Options = ["rbind", "rw", "nosuid", "nodev"] });
        spec.Annotations = new Dictionary<string, string> { ["io.berth.sandbox"] = "1" };
        return spec;
    }
}

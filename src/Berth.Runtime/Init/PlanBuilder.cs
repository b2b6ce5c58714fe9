using Berth.Linux.Interop;
using Berth.Linux.Namespaces;
using Berth.Linux.Security;
using Berth.Oci.Runtime;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Init;

/// <summary>Spec -> plan: the pure conversion step (runc's specconv), unit-testable without root.</summary>
public static class PlanBuilder
{
    public sealed class Options
    {
        public string FifoPath { get; init; } = "";
        public int PreserveFds { get; init; }
        public bool NoPivot { get; init; }
        public bool NoNewKeyring { get; init; }
        public string CgroupPath { get; init; } = "";
        public int LastCap { get; init; } = 40;
    }

    public static InitPlan Build(Oci.Runtime.Spec spec, string id, string bundle, string rootfs, Options o)
    {
        var process = spec.Process ?? throw new SpecException("process: missing (berth needs a process to run)");
        var linux = spec.Linux ?? new Oci.Runtime.Linux();
        var plan = new InitPlan
        {
            Id = id, Bundle = bundle, Rootfs = rootfs, Spec = spec,
            FifoPath = o.FifoPath, PreserveFds = o.PreserveFds, NoPivot = o.NoPivot,
            NoNewKeyring = o.NoNewKeyring, CgroupPath = o.CgroupPath, LastCap = o.LastCap,
            Hostname = spec.Hostname, Domainname = spec.Domainname,
            RootReadonly = spec.Root?.Readonly ?? false,
            Terminal = process.Terminal,
        };

        BuildNamespaces(plan, linux);
        BuildFilesystem(plan, spec, linux, bundle);
        BuildProcess(plan, process);
        if (linux.Seccomp is { } seccomp)
        {
            try { plan.Seccomp = Berth.Runtime.Seccomp.SeccompCompiler.Compile(seccomp); }
            catch (Berth.Runtime.Seccomp.SeccompProfileException e) { throw new SpecException(e.Message.StartsWith("seccomp", StringComparison.Ordinal) ? $"linux.{e.Message}" : $"linux.seccomp.{e.Message}"); }
        }
        if ((plan.UnshareFlags & Consts.CLONE_NEWNS) == 0 && !plan.Joins.Any(j => j.Kind == NamespaceKind.Mount))
            throw new SpecException("linux.namespaces: berth needs a mount namespace to set up the rootfs (add {\"type\": \"mount\"})");
        return plan;
    }

    private static void BuildNamespaces(InitPlan plan, Oci.Runtime.Linux linux)
    {
        var seen = new HashSet<NamespaceKind>();
        var list = linux.Namespaces ?? [];
        for (int i = 0; i < list.Count; i++)
        {
            var ns = list[i];
            if (!Namespace.TryParse(ns.Type, out var kind))
                throw new SpecException($"linux.namespaces[{i}].type: unknown namespace type \"{ns.Type}\"");
            if (!seen.Add(kind))
                throw new SpecException($"linux.namespaces: \"{ns.Type}\" appears twice");
            if (!string.IsNullOrEmpty(ns.Path))
            {
                if (!File.Exists(ns.Path))
                    throw new SpecException($"linux.namespaces[{i}].path: {ns.Path} does not exist");
                plan.Joins.Add((kind, ns.Path));
            }
            else if (kind == NamespaceKind.User) plan.NewUserNs = true;
            else plan.UnshareFlags |= Namespace.CloneFlag(kind);
        }
        SortJoins(plan);
        if (plan.NewUserNs)
        {
            if (linux.UidMappings is not { Count: > 0 } || linux.GidMappings is not { Count: > 0 })
                throw new SpecException("linux.uidMappings: a new user namespace needs uidMappings and gidMappings");
            plan.UidMappings.AddRange(linux.UidMappings);
            plan.GidMappings.AddRange(linux.GidMappings);
        }
        if (plan.Hostname is { Length: > 0 } && (plan.UnshareFlags & Consts.CLONE_NEWUTS) == 0 && !plan.Joins.Any(j => j.Kind == NamespaceKind.Uts))
            throw new SpecException("hostname: setting a hostname needs a new uts namespace (linux.namespaces)");
    }

    /// <summary>
    /// The plan of `exec`: join every namespace of the container's init (/proc/PID/ns/*), then run
    /// <paramref name="process"/> with the container's seccomp filter.
    /// </summary>
    public static InitPlan BuildExec(Oci.Runtime.Spec spec, string id, string bundle, string rootfs, int initPid,
        Oci.Runtime.Process process, Options o)
    {
        var plan = new InitPlan
        {
            Id = id, Bundle = bundle, Rootfs = rootfs, Spec = spec, IsExec = true,
            PreserveFds = o.PreserveFds, CgroupPath = o.CgroupPath, LastCap = o.LastCap,
            Terminal = process.Terminal,
        };
        var seen = new HashSet<NamespaceKind>();
        foreach (var ns in spec.Linux?.Namespaces ?? [])
        {
            if (!Namespace.TryParse(ns.Type, out var kind) || kind == NamespaceKind.Time || !seen.Add(kind)) continue;
            plan.Joins.Add((kind, $"/proc/{initPid}/ns/{Namespace.ProcName(kind)}"));
        }
        SortJoins(plan);
        BuildProcess(plan, process);
        if (spec.Linux?.Seccomp is { } seccomp)
        {
            try { plan.Seccomp = Berth.Runtime.Seccomp.SeccompCompiler.Compile(seccomp); }
            catch (Berth.Runtime.Seccomp.SeccompProfileException e) { throw new SpecException("linux.seccomp: " + e.Message); }
        }
        return plan;
    }

    /// <summary>User namespace first (the others are then entered with its credentials), mount last.</summary>
    internal static void SortJoins(InitPlan plan)
    {
        static int Rank(NamespaceKind k) => k == NamespaceKind.User ? 0 : k == NamespaceKind.Mount ? 2 : 1;
        var sorted = plan.Joins.OrderBy(j => Rank(j.Kind)).ToList();
        plan.Joins.Clear();
        plan.Joins.AddRange(sorted);
    }

    private static void BuildFilesystem(InitPlan plan, Oci.Runtime.Spec spec, Oci.Runtime.Linux linux, string bundle)
    {
        plan.RootPropagation = linux.RootfsPropagation switch
        {
            null or "" => Consts.MS_SLAVE | Consts.MS_REC,
            "private" => Consts.MS_PRIVATE,
            "rprivate" => Consts.MS_PRIVATE | Consts.MS_REC,
            "slave" => Consts.MS_SLAVE,
            "rslave" => Consts.MS_SLAVE | Consts.MS_REC,
            "shared" => Consts.MS_SHARED,
            "rshared" => Consts.MS_SHARED | Consts.MS_REC,
            "unbindable" => Consts.MS_UNBINDABLE,
            "runbindable" => Consts.MS_UNBINDABLE | Consts.MS_REC,
            var v => throw new SpecException($"linux.rootfsPropagation: unknown propagation \"{v}\""),
        };

        var mounts = spec.Mounts ?? [];
        bool devBound = false;
        for (int i = 0; i < mounts.Count; i++)
        {
            var m = mounts[i];
            if (string.IsNullOrEmpty(m.Destination))
                throw new SpecException($"mounts[{i}].destination: missing");
            var dest = m.Destination.StartsWith('/') ? m.Destination : "/" + m.Destination;
            var opts = MountOptions.Parse(m.Options);
            var type = string.IsNullOrEmpty(m.Type) ? (opts.Bind ? "bind" : "") : m.Type;
            if (type == "bind" || opts.Bind)
            {
                if (string.IsNullOrEmpty(m.Source))
                    throw new SpecException($"mounts[{i}].source: a bind mount of {dest} needs a source");
                var src = Path.IsPathRooted(m.Source) ? m.Source : Path.GetFullPath(Path.Combine(bundle, m.Source));
                bool isDir = Directory.Exists(src);
                if (!isDir && !File.Exists(src))
                    throw new SpecException($"mounts[{i}].source: bind source {src} does not exist");
                plan.Mounts.Add(new MountPlan { Destination = dest, Type = "bind", Source = src, Options = opts, SourceIsDir = isDir });
                if (dest == "/dev") devBound = true;
            }
            else
            {
                if (type.Length == 0)
                    throw new SpecException($"mounts[{i}].type: missing for {dest}");
                if (!KnownFsType(type))
                    throw new SpecException($"mounts[{i}].type: unknown filesystem type \"{type}\" for {dest} (not in /proc/filesystems)");
                plan.Mounts.Add(new MountPlan { Destination = dest, Type = type, Source = m.Source ?? type, Options = opts });
            }
        }
        plan.CreateDefaultDevices = !devBound;
        if (!devBound)
        {
            foreach (var (p, maj, min) in DefaultDevices)
                plan.Devices.Add(new DevicePlan(p, 'c', maj, min, 0x1b6, 0, 0));
        }
        var devices = linux.Devices ?? [];
        for (int i = 0; i < devices.Count; i++)
        {
            var d = devices[i];
            if (!d.Path.StartsWith('/')) throw new SpecException($"linux.devices[{i}].path: \"{d.Path}\" must be absolute");
            char t = d.Type switch
            {
                "c" or "u" => 'c',
                "b" => 'b',
                "p" => 'p',
                _ => throw new SpecException($"linux.devices[{i}].type: \"{d.Type}\" must be c, b, u or p"),
            };
            plan.Devices.RemoveAll(x => x.Path == d.Path);
            plan.Devices.Add(new DevicePlan(d.Path, t, d.Major, d.Minor, d.FileMode ?? 0x1b6, d.Uid ?? 0, d.Gid ?? 0));
        }
        plan.MaskedPaths.AddRange(linux.MaskedPaths ?? []);
        plan.ReadonlyPaths.AddRange(linux.ReadonlyPaths ?? []);
        foreach (var kv in linux.Sysctl ?? []) plan.Sysctl.Add(kv);
    }

    public static readonly (string Path, long Major, long Minor)[] DefaultDevices =
    [
        ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
        ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
    ];

    private static HashSet<string>? _fsTypes;

    private static bool KnownFsType(string type)
    {
        // The filesystems every container config mounts are in every kernel a container runs on
        // (runc needs them too): no read of /proc/filesystems for them. Anything else is checked,
        // so a typo fails create with its name rather than a mount error from init.
        if (type is "proc" or "sysfs" or "tmpfs" or "devpts" or "mqueue" or "cgroup" or "cgroup2") return true;
        if (_fsTypes is null)
        {
            try
            {
                _fsTypes = File.ReadAllLines("/proc/filesystems")
                    .Select(l => l.Split('\t', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "")
                    .ToHashSet();
            }
            catch (IOException) { return true; }
        }
        return _fsTypes.Contains(type);
    }

    internal static void BuildProcess(InitPlan plan, Oci.Runtime.Process p)
    {
        if (p.Args is not { Count: > 0 }) throw new SpecException("process.args: empty (nothing to run)");
        plan.Args.AddRange(p.Args);
        plan.Env.AddRange(p.Env ?? []);
        if (!p.Cwd.StartsWith('/')) throw new SpecException($"process.cwd: \"{p.Cwd}\" must be an absolute path");
        plan.Cwd = p.Cwd;
        plan.Uid = p.User.Uid;
        plan.Gid = p.User.Gid;
        plan.AdditionalGids.AddRange(p.User.AdditionalGids ?? []);
        if (p.User.Umask is { } um) plan.Umask = um & 0x1ff;
        var caps = p.Capabilities ?? new Oci.Runtime.Capabilities();
        plan.CapBounding = CapMask(caps.Bounding, "bounding");
        plan.CapEffective = CapMask(caps.Effective, "effective");
        plan.CapPermitted = CapMask(caps.Permitted, "permitted");
        plan.CapInheritable = CapMask(caps.Inheritable, "inheritable");
        plan.CapAmbient = CapMask(caps.Ambient, "ambient");
        var rl = p.Rlimits ?? [];
        for (int i = 0; i < rl.Count; i++)
        {
            if (!Rlimits.TryParse(rl[i].Type, out var res))
                throw new SpecException($"process.rlimits[{i}].type: unknown rlimit \"{rl[i].Type}\"");
            plan.Rlimits.Add((res, rl[i].Soft, rl[i].Hard));
        }
        plan.NoNewPrivileges = p.NoNewPrivileges;
        plan.OomScoreAdj = p.OomScoreAdj;
    }

    private static ulong CapMask(List<string>? names, string set)
    {
        ulong m = 0;
        var list = names ?? [];
        for (int i = 0; i < list.Count; i++)
        {
            if (!Berth.Linux.Security.Capabilities.TryParse(list[i], out var c) || !list[i].StartsWith("CAP_", StringComparison.Ordinal))
                throw new SpecException($"process.capabilities.{set}[{i}]: unknown capability \"{list[i]}\"");
            m |= 1UL << c;
        }
        return m;
    }
}

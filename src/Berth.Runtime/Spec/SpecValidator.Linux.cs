namespace Berth.Runtime.Spec;

using Berth.Linux.Namespaces;
using Berth.Oci.Runtime;

// The "linux" section: namespaces, id mappings, sysctls, devices, paths and seccomp.
public static partial class SpecValidator
{
    private static readonly string[] Propagations =
        ["private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"];

    /// <summary>Checks linux.namespaces and returns them by kind.</summary>
    private static Dictionary<NamespaceKind, LinuxNamespace> ValidateNamespaces(Oci.Runtime.Linux? linux)
    {
        var byKind = new Dictionary<NamespaceKind, LinuxNamespace>();
        if (linux?.Namespaces is not { } list) return byKind;
        for (int i = 0; i < list.Count; i++)
        {
            var ns = list[i];
            if (ns is null) Fail($"linux.namespaces[{i}]", "null");
            var type = ns.Type ?? "";
            if (!Namespace.TryParse(type, out var kind)) Fail($"linux.namespaces[{i}].type", $"unknown namespace type {Quote(type)}");
            if (!byKind.TryAdd(kind, ns)) Fail("linux.namespaces", $"{Quote(type)} appears twice");
            if (!string.IsNullOrEmpty(ns.Path))
            {
                if (!ns.Path.StartsWith('/')) Fail($"linux.namespaces[{i}].path", $"{Quote(ns.Path)} must be an absolute path");
                CheckNoNul($"linux.namespaces[{i}].path", ns.Path);
            }
        }
        return byKind;
    }

    private static void ValidateLinux(Oci.Runtime.Linux linux, IReadOnlyDictionary<NamespaceKind, LinuxNamespace> ns, List<string> warnings)
    {
        ValidateUserNamespace(linux, ns, warnings);
        ValidateTimeNamespace(linux, ns);
        ValidateSysctl(linux.Sysctl, ns);

        if (!string.IsNullOrEmpty(linux.RootfsPropagation) && !Propagations.Contains(linux.RootfsPropagation))
            Fail("linux.rootfsPropagation", $"unknown propagation {Quote(linux.RootfsPropagation)} (one of {string.Join(", ", Propagations)})");

        bool mountNs = ns.ContainsKey(NamespaceKind.Mount);
        CheckContainerPaths("linux.maskedPaths", linux.MaskedPaths, mountNs);
        CheckContainerPaths("linux.readonlyPaths", linux.ReadonlyPaths, mountNs);

        if (linux.Devices is { } devices)
            for (int i = 0; i < devices.Count; i++)
            {
                var d = devices[i];
                if (d is null) Fail($"linux.devices[{i}]", "null");
                var path = d.Path ?? "";
                if (!path.StartsWith('/')) Fail($"linux.devices[{i}].path", $"{Quote(path)} must be an absolute path");
                CheckNoNul($"linux.devices[{i}].path", path);
                if (d.Type is not ("c" or "b" or "u" or "p"))
                    Fail($"linux.devices[{i}].type", $"unknown device type {Quote(d.Type)} (c, b, u or p)");
                if (d.Type != "p" && (d.Major < 0 || d.Minor < 0))
                    Fail($"linux.devices[{i}]", $"major {d.Major}, minor {d.Minor}: device numbers cannot be negative");
                // podman (--device, --privileged) includes the node's type bits, e.g. 020666 for a
                // char device; runc ORs them in. Accept the ones that match the type, nothing else.
                uint typeBits = d.Type switch { "b" => 0x6000u, "p" => 0x1000u, _ => 0x2000u }; // S_IFBLK, S_IFIFO, S_IFCHR
                if (d.FileMode is { } mode && (mode & ~0xFFFu) != 0 && (mode & ~0xFFFu) != typeBits)
                    Fail($"linux.devices[{i}].fileMode", $"{mode} (0{Convert.ToString(mode, 8)}) has bits beyond 07777 other than the type {Quote(d.Type)}'s (0{Convert.ToString(typeBits, 8)})");
            }

        if (linux.Resources?.Devices is { } rules)
            for (int i = 0; i < rules.Count; i++)
            {
                var r = rules[i];
                if (r.Type is not (null or "" or "a" or "c" or "b"))
                    Fail($"linux.resources.devices[{i}].type", $"unknown device type {Quote(r.Type)} (a, c or b)");
                if (r.Access is { } access && access.Any(c => c is not ('r' or 'w' or 'm')))
                    Fail($"linux.resources.devices[{i}].access", $"{Quote(access)} may only contain r, w and m");
            }

        if (linux.Personality is { } p && p.Domain is not ("LINUX" or "LINUX32"))
            Fail("linux.personality.domain", $"unknown domain {Quote(p.Domain)} (LINUX or LINUX32)");

        if (linux.Seccomp is { } seccomp) ValidateSeccomp(seccomp);
    }

    private static void ValidateUserNamespace(Oci.Runtime.Linux linux, IReadOnlyDictionary<NamespaceKind, LinuxNamespace> ns, List<string> warnings)
    {
        bool hasUid = linux.UidMappings is { Count: > 0 }, hasGid = linux.GidMappings is { Count: > 0 };
        if (ns.TryGetValue(NamespaceKind.User, out var user))
        {
            if (string.IsNullOrEmpty(user.Path))
            {
                if (!hasUid || !hasGid)
                    Fail(hasUid ? "linux.gidMappings" : "linux.uidMappings", "a user namespace needs uidMappings and gidMappings");
            }
            else if (hasUid || hasGid)
                warnings.Add($"linux.uidMappings: ignored: the user namespace at {user.Path} is joined with the mappings it already has");
        }
        else if (hasUid || hasGid)
            Fail(hasUid ? "linux.uidMappings" : "linux.gidMappings", "mappings need a user namespace in linux.namespaces");

        CheckMappings("linux.uidMappings", linux.UidMappings);
        CheckMappings("linux.gidMappings", linux.GidMappings);
    }

    // The kernel takes at most 340 extents per map (since 4.15) and refuses empty or wrapping ranges.
    internal static void CheckMappings(string field, List<IdMapping>? mappings)
    {
        if (mappings is null) return;
        if (mappings.Count > 340) Fail(field, $"{mappings.Count} entries; the kernel allows at most 340");
        for (int i = 0; i < mappings.Count; i++)
        {
            var m = mappings[i];
            if (m is null) Fail($"{field}[{i}]", "null");
            if (m.Size == 0) Fail($"{field}[{i}].size", "0; a mapping must cover at least one id");
            if ((ulong)m.ContainerID + m.Size > 1UL << 32 || (ulong)m.HostID + m.Size > 1UL << 32)
                Fail($"{field}[{i}]", $"containerID {m.ContainerID}, hostID {m.HostID}, size {m.Size} runs past id 4294967295");
        }
    }

    private static void ValidateTimeNamespace(Oci.Runtime.Linux linux, IReadOnlyDictionary<NamespaceKind, LinuxNamespace> ns)
    {
        if (linux.TimeOffsets is not { } offsets) return;
        if (!ns.TryGetValue(NamespaceKind.Time, out var time))
            Fail("linux.timeOffsets", "offsets need a time namespace in linux.namespaces");
        if (!string.IsNullOrEmpty(time.Path))
            Fail("linux.timeOffsets", $"cannot be set when joining the time namespace at {time.Path}");
        foreach (var clock in offsets.Keys)
            if (clock is not ("monotonic" or "boottime"))
                Fail("linux.timeOffsets", $"unknown clock {Quote(clock)} (monotonic or boottime)");
    }

    // Only namespaced sysctls may be set, each needing its namespace (the rules runc applies):
    // IPC ones need an ipc namespace, net.* a network namespace that is not the host's,
    // kernel.domainname a uts namespace, user.* a user namespace. kernel.hostname conflicts with "hostname".
    private static readonly string[] IpcSysctls =
        ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
         "kernel.shmmni", "kernel.shm_rmid_forced"];

    private static void ValidateSysctl(Dictionary<string, string>? sysctl, IReadOnlyDictionary<NamespaceKind, LinuxNamespace> ns)
    {
        if (sysctl is null) return;
        foreach (var (rawKey, value) in sysctl)
        {
            var key = DotSeparated(rawKey);
            var field = $"linux.sysctl[{Quote(rawKey)}]";
            if (value is null) Fail(field, "null value");
            if (IpcSysctls.Contains(key) || key.StartsWith("fs.mqueue.", StringComparison.Ordinal))
            {
                if (!ns.ContainsKey(NamespaceKind.Ipc))
                    Fail("linux.sysctl", $"{Quote(rawKey)} cannot be set without an ipc namespace in linux.namespaces");
                continue;
            }
            if (key.StartsWith("net.", StringComparison.Ordinal))
            {
                if (!ns.TryGetValue(NamespaceKind.Network, out var net))
                    Fail("linux.sysctl", $"{Quote(rawKey)} cannot be set without a network namespace in linux.namespaces");
                if (!string.IsNullOrEmpty(net.Path) && IsHostNetNs(net.Path))
                    Fail("linux.sysctl", $"{Quote(rawKey)} cannot be set in the host's network namespace ({net.Path})");
                continue;
            }
            if (key == "kernel.hostname")
                Fail("linux.sysctl", $"{Quote(rawKey)} cannot be set: use the \"hostname\" field");
            if (key == "kernel.domainname")
            {
                if (!ns.ContainsKey(NamespaceKind.Uts))
                    Fail("linux.sysctl", $"{Quote(rawKey)} cannot be set without a uts namespace in linux.namespaces");
                continue;
            }
            if (key.StartsWith("user.", StringComparison.Ordinal))
            {
                if (!ns.ContainsKey(NamespaceKind.User))
                    Fail("linux.sysctl", $"{Quote(rawKey)} cannot be set without a user namespace in linux.namespaces");
                continue;
            }
            Fail("linux.sysctl", $"{Quote(rawKey)} cannot be set: it is not namespaced, so it would change the host");
        }
    }

    // sysctl(8) also accepts '/' as the separator ("net/ipv4/ip_forward"); then a '.' is part of a name
    // (an interface like "eth0.100"). Normalise to the dotted form for the checks.
    internal static string DotSeparated(string key)
    {
        int first = key.IndexOfAny(['.', '/']);
        if (first < 0 || key[first] == '.') return key;
        return string.Create(key.Length, key, static (span, k) =>
        {
            for (int i = 0; i < k.Length; i++) span[i] = k[i] switch { '.' => '/', '/' => '.', var c => c };
        });
    }

    // A /proc/PID/ns/net magic link reads "net:[inode]"; the same text as our own means the host's namespace.
    // (A bind-mounted nsfs file is no link; the runtime's setns then decides.)
    private static bool IsHostNetNs(string path)
    {
        try
        {
            var ours = new FileInfo("/proc/self/ns/net").LinkTarget;
            var theirs = new FileInfo(path).LinkTarget;
            return ours is not null && ours == theirs;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    private static void CheckContainerPaths(string field, List<string>? paths, bool mountNs)
    {
        if (paths is null || paths.Count == 0) return;
        if (!mountNs) Fail(field, "needs a mount namespace in linux.namespaces");
        for (int i = 0; i < paths.Count; i++)
        {
            var p = paths[i] ?? "";
            if (!p.StartsWith('/')) Fail($"{field}[{i}]", $"{Quote(p)} must be an absolute path");
            CheckNoNul($"{field}[{i}]", p);
        }
    }

    private static readonly string[] SeccompActions =
        ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
         "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"];

    private static readonly string[] SeccompOps =
        ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"];

    private static readonly string[] SeccompFlags =
        ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
         "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"];

    private static void ValidateSeccomp(Seccomp s)
    {
        // runc treats an empty seccomp object (no default action, no rules) as "no filter".
        if (string.IsNullOrEmpty(s.DefaultAction) && s.Syscalls is not { Count: > 0 }) return;
        if (!SeccompActions.Contains(s.DefaultAction))
            Fail("linux.seccomp.defaultAction", $"unknown action {Quote(s.DefaultAction)}");
        if (s.Flags is { } flags)
            for (int i = 0; i < flags.Count; i++)
                if (!SeccompFlags.Contains(flags[i])) Fail($"linux.seccomp.flags[{i}]", $"unknown flag {Quote(flags[i])}");
        bool notify = s.DefaultAction == "SCMP_ACT_NOTIFY";
        if (s.Syscalls is { } rules)
            for (int i = 0; i < rules.Count; i++)
            {
                var r = rules[i];
                if (r is null) Fail($"linux.seccomp.syscalls[{i}]", "null");
                if (r.Names is not { Count: > 0 }) Fail($"linux.seccomp.syscalls[{i}].names", "empty");
                if (!SeccompActions.Contains(r.Action)) Fail($"linux.seccomp.syscalls[{i}].action", $"unknown action {Quote(r.Action)}");
                notify |= r.Action == "SCMP_ACT_NOTIFY";
                if (r.Args is { } args)
                    for (int j = 0; j < args.Count; j++)
                    {
                        if (args[j].Index > 5) Fail($"linux.seccomp.syscalls[{i}].args[{j}].index", $"{args[j].Index} is out of range 0 to 5");
                        if (!SeccompOps.Contains(args[j].Op)) Fail($"linux.seccomp.syscalls[{i}].args[{j}].op", $"unknown operator {Quote(args[j].Op)}");
                    }
            }
        if (notify && string.IsNullOrEmpty(s.ListenerPath))
            Fail("linux.seccomp.listenerPath", "SCMP_ACT_NOTIFY needs a listenerPath");
        if (!notify && !string.IsNullOrEmpty(s.ListenerPath))
            Fail("linux.seccomp.listenerPath", $"{Quote(s.ListenerPath)} is set but no rule uses SCMP_ACT_NOTIFY");
    }
}

using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Berth.Linux;
using Berth.Linux.Cgroups;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Mounts;
using Berth.Linux.Namespaces;
using Berth.Linux.Processes;
using Berth.Linux.Seccomp;
using Berth.Runtime.Init;

namespace Berth.Runtime.Lifecycle;

/// <summary>
/// The runtime's container init as a jail program (docs/adr/0017): for a bundle whose config asks
/// for nothing the stub cannot do, `create` starts the container without forking berth at all.
/// The stub's PID 1 builds the root from the bundle's rootfs, which is untrusted: every mount
/// target, device directory and the cwd is resolved with openat2(RESOLVE_IN_ROOT |
/// RESOLVE_NO_MAGICLINKS) against an fd of the rootfs and mounted through /proc/self/fd/N of the
/// result (duplicated to a fixed fd number), never through a path a container could swap for a
/// symlink (CVE-2021-30465). PID 1 then drops to the process's credentials, reports ready, blocks
/// on the exec fifo and execs the program itself: the program is the container's PID 1, as with
/// the .NET init, and nothing of berth ever runs in the container (CVE-2019-5736).
/// </summary>
public static unsafe partial class StubJail
{
    private const long SysRead = 0, SysDup3 = 292, SysOpenat = 257, SysOpenat2 = 437, SysMkdirat = 258, SysMknodat = 259, SysFchownat = 260,
        SysUnlinkat = 263, SysSymlinkat = 266, SysKeyctl = 250;

    /// <summary>The fixed fd a resolved mount target is moved to, so its /proc/self/fd path is known when the program is compiled.</summary>
    private const int TargetFd = 1000;

    /// <summary>A fresh tmpfs of the init's own (the cgroup mount's), held while its directories are made.</summary>
    private const int TmpfsFd = 1001;

    /// <summary>name in the held tmpfs (<see cref="TmpfsFd"/>), opened without following links, as <see cref="TargetFd"/>.</summary>
    private static ulong HoldIn(InRootSteps r, string what, ulong name)
    {
        var p = r.P;
        p.Call($"open {what}", SysOpenat, [TmpfsFd, (long)name, Consts.O_PATH | Consts.O_DIRECTORY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, 0], store: r.SlotAddress);
        p.Call($"hold {what}", SysDup3, r.Slot, TargetFd, Consts.O_CLOEXEC);
        r.CloseSlot($"close {what}");
        return r.TargetPath;
    }

    /// <summary>What <paramref name="plan"/> (a container's, from an untrusted bundle) needs that the container stub does not do; null when it can run it.</summary>
    public static string? ContainerUnsupported(InitPlan plan)
    {
        if (!JailStub.Supported) return "the jail stub is x86_64 code";
        if (plan.IsExec) return "exec";
        if (plan.NewUserNs || plan.InUserNs) return "user namespaces";
        if (plan.Joins.Any(j => j.Kind != NamespaceKind.Network)) return "joining namespaces other than the network's";
        if (plan.Joins.Count(j => j.Kind == NamespaceKind.Network) > 1) return "two network namespaces";
        if (!plan.NewPidNs) return "a shared pid namespace";
        if (plan.Terminal || plan.ConsoleSocketFd >= 0) return "a terminal";
        if (plan.Sysctl.Count > 0) return "sysctls";
        if (plan.NoPivot) return "--no-pivot";
        if (plan.PreserveFds > 0) return "--preserve-fds";
        if (plan.ReaperStatusFd >= 0 || plan.InitProcess) return "a berth reaper";
        if (plan.Args.Count == 0) return "no process args";
        if (!plan.Cwd.StartsWith('/')) return "a relative cwd";
        var hooks = plan.Spec.Hooks;
        if (hooks?.Prestart is { Count: > 0 } || hooks?.CreateRuntime is { Count: > 0 } ||
            hooks?.CreateContainer is { Count: > 0 } || hooks?.StartContainer is { Count: > 0 })
            return "hooks that run during creation or in the container";
        var process = plan.Spec.Process;
        if (!string.IsNullOrEmpty(process?.ApparmorProfile) || !string.IsNullOrEmpty(process?.SelinuxLabel)) return "an LSM label";
        if (ExecStubPolicy.RuntimeFiltered()) return "a runtime under a seccomp filter";
        foreach (var m in plan.Mounts)
        {
            if (m.Type is not ("bind" or "proc" or "tmpfs" or "devpts" or "mqueue" or "sysfs" or "cgroup")) return $"{m.Type} mounts";
            if (m.Options.HasRecursiveAttrs || m.Options.IdMap || m.Options.TmpCopyUp) return $"mount options of {m.Destination}";
            if (m.Type == "bind" && string.IsNullOrEmpty(m.Source)) return $"a bind mount without a source on {m.Destination}";
        }
        foreach (var path in plan.MaskedPaths.Concat(plan.ReadonlyPaths))
            if (!KernelPath(path)) return $"masked or read-only path {path} outside /proc and /sys";
        if (plan.Seccomp is { } s && EarlyFilter(plan))
            foreach (var nr in AfterEarlyFilter)
                if (!FilterProbe.AllowsRegardlessOfArgs(s.Filter, SeccompAbi.AUDIT_ARCH_X86_64, (uint)nr))
                    return $"linux.seccomp does not plainly allow system call {nr}, which init makes after loading it";
        return null;
    }

    /// <summary>/proc and /sys of the container are the kernel's: what exists there is what exists on the host.</summary>
    private static bool KernelPath(string path) =>
        path is "/proc" or "/sys" || path.StartsWith("/proc/", StringComparison.Ordinal) || path.StartsWith("/sys/", StringComparison.Ordinal);

    /// <summary>
    /// Without no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter, and a listener must reach
    /// the runtime before "ready": then the filter is loaded before the credentials (as the .NET init
    /// does), and every call init makes after it must pass the filter.
    /// </summary>
    private static bool EarlyFilter(InitPlan plan) => plan.Seccomp is { } s && (s.HasListener || !plan.NoNewPrivileges);

    private static readonly long[] AfterEarlyFilter =
    [
        SysSendmsg, SysClose, SysPrctl, SysSetgroups, SysSetresgid, SysSetresuid, SysCapset, SysOpenat2, SysFchdir, SysUmask,
        SysCloseRange, SysWrite, SysRead, SysExecve, SysExitGroup,
    ];

    /// <summary>
    /// Whether args[0] can be found in the rootfs before any mount is made (the .NET init reports
    /// "executable file not found" at create time; the stub would only fail at exec, after start).
    /// </summary>
    public static bool ExecutableInRootfs(InitPlan plan)
    {
        int root;
        try { root = Fd.Open(plan.Rootfs, Consts.O_PATH | Consts.O_DIRECTORY | Consts.O_CLOEXEC); }
        catch (LinuxException) { return false; }
        try
        {
            string name = plan.Args[0];
            if (name.Contains('/')) return IsFileIn(root, name.StartsWith('/') ? name : Path.Combine(plan.Cwd, name));
            var pathVar = plan.Env.LastOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..]
                ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
            foreach (var dir in pathVar.Split(':', StringSplitOptions.RemoveEmptyEntries))
                if (dir.StartsWith('/') && IsFileIn(root, dir.TrimEnd('/') + "/" + name)) return true;
            return false;
        }
        finally { LibC.close(root); }
    }

    private static bool IsFileIn(int root, string path)
    {
        int fd = InRoot.TryOpen(root, path, Consts.O_PATH, 0, false, out _);
        if (fd < 0) return false;
        try { return !FileStat.Of(fd, path).IsDirectory; }
        catch (LinuxException) { return false; }
        finally { LibC.close(fd); }
    }

    /// <summary>The container init's program for <paramref name="plan"/> with <paramref name="cgroupCount"/> cgroup fds (pure but for reads of the host's /proc and /sys).</summary>
    public static JailProgram CompileContainer(InitPlan plan, IReadOnlyList<string> cgroupDirs, bool lastBestEffort = false) =>
        CompileContainer(plan, cgroupDirs, lastBestEffort, supportChecked: false);

    private static JailProgram CompileContainer(InitPlan plan, IReadOnlyList<string> cgroupDirs, bool lastBestEffort, bool supportChecked) =>
        Compile(plan, 0, plan.Joins.Any(j => j.Kind == NamespaceKind.Network), "berth-init", Kind.Container,
            optionalCgroups: lastBestEffort && cgroupDirs.Count > 0 ? 1 : 0, cgroupDirs: cgroupDirs, supportChecked: supportChecked);

    /// <summary>A container's init program, compiled and sealed before its cgroup exists (the two are made side by side).</summary>
    public sealed class PreparedContainer : IDisposable
    {
        internal JailProgram Program { get; init; } = null!;
        internal int Memfd { get; set; } = -1;
        internal int CgroupCount { get; init; }
        internal bool LastCgroupBestEffort { get; init; }
        public void Dispose() { Fd.Close(Memfd); Memfd = -1; }
    }

    /// <summary>Compiles and seals the init of <paramref name="plan"/> for <paramref name="cgroup"/>'s directories; the caller has had null from <see cref="ContainerUnsupported"/> (not asked again).</summary>
    public static PreparedContainer PrepareContainer(InitPlan plan, ICgroupManager? cgroup)
    {
        var dirs = cgroup?.Directories ?? [];
        bool best = dirs.Count > 0 && cgroup!.LastDirectoryBestEffort;
        Logging.Timing.Mark("jail compile");
        var program = CompileContainer(plan, dirs, best, supportChecked: true);
        Logging.Timing.Mark("jail compiled");
        var memfd = program.Seal();
        Logging.Timing.Mark("jail sealed");
        return new PreparedContainer { Program = program, Memfd = memfd, CgroupCount = dirs.Count, LastCgroupBestEffort = best };
    }

    /// <summary>
    /// Starts a prepared container init: the stub joins <paramref name="cgroup"/>'s directories (made
    /// by now), makes the namespaces and the root, and this returns the init's pid once it waits on
    /// the exec fifo (<see cref="InitPlan.FifoFd"/>).
    /// </summary>
    public static int LaunchContainer(PreparedContainer prepared, InitPlan plan, ICgroupManager? cgroup, Action<int, int>? onSeccompFd)
    {
        var dirs = cgroup?.Directories ?? [];
        if (dirs.Count != prepared.CgroupCount) throw new RuntimeError("jail stub: the init was prepared for another cgroup");
        int memfd = prepared.Memfd;
        prepared.Memfd = -1; // Start closes it
        // The program opens the cgroup.procs files itself (CompileContainer): no cgroup fds here.
        var h = Start(plan, new Options
        {
            ReaperStatusFd = plan.FifoFd, CgroupDirs = [], OnSeccompFd = onSeccompFd, Name = "berth-init",
        }, Kind.Container, null, (prepared.Program.Describe, memfd, null));
        return h.InitPid;
    }

    /// <summary>The container's PID 1, from its setsid to the exec of the program.</summary>
    private static void CompileContainerInit(JailProgram p, InitPlan plan, string root)
    {
        if (!plan.InUserNs) p.Call("prctl(PR_SET_DUMPABLE)", SysPrctl, Consts.PR_SET_DUMPABLE, 0);
        if (!plan.NoNewKeyring)
            p.Call("join a session keyring", SysKeyctl, [1 /* KEYCTL_JOIN_SESSION_KEYRING */, (long)p.Str("_ses." + plan.Id)], mayFail: true);

        // --- The root, from an fd of the rootfs.
        p.Call("make / private in the container", SysMount, 0, (long)p.Str("/"), 0,
            (long)(plan.RootPropagation != 0 ? plan.RootPropagation : Consts.MS_REC | Consts.MS_PRIVATE), 0);
        ulong rootStr = p.Str(root);
        p.Call("bind the rootfs onto itself", SysMount, (long)rootStr, (long)rootStr, 0, (long)(Consts.MS_BIND | Consts.MS_REC), 0);
        p.Call("make the rootfs private", SysMount, [0, (long)rootStr, 0, (long)Consts.MS_PRIVATE, 0], mayFail: true);
        ulong rootFd = p.Zeros(8), fdSlot = p.Zeros(8);
        p.Call("open the rootfs", SysOpen, [(long)rootStr, Consts.O_PATH | Consts.O_DIRECTORY | Consts.O_CLOEXEC, 0], store: rootFd);
        var r = new InRootSteps(p, rootFd, fdSlot);
        foreach (var m in plan.Mounts) CompileSafeMount(r, plan, m);
        CompileSafeDevices(r, plan);
        r.MkdirAll(plan.Cwd, bestEffort: true); // as runc: the cwd is created when missing (best effort: the rootfs may be read-only)
        p.Call("close the target fd", SysClose, [TargetFd], mayFail: true);
        p.Call("close the rootfs", SysClose, JailArg.At(rootFd));
        CompilePivotAndPaths(p, plan, root);

        // --- The process: limits, filter, credentials, cwd; ready; the fifo; exec.
        foreach (var (resource, soft, hard) in plan.Rlimits)
        {
            var lim = new byte[16];
            BinaryPrimitives.WriteUInt64LittleEndian(lim, soft);
            BinaryPrimitives.WriteUInt64LittleEndian(lim.AsSpan(8), hard);
            p.Call($"rlimit {resource}", SysPrlimit64, 0, resource, (long)p.Bytes(lim), 0);
        }
        if (plan.OomScoreAdj is { } oom)
        {
            ulong oomFd = p.Zeros(8);
            var text = oom.ToString(System.Globalization.CultureInfo.InvariantCulture);
            p.Call("open /proc/self/oom_score_adj", SysOpen, [(long)p.Str("/proc/self/oom_score_adj"), Consts.O_WRONLY | Consts.O_CLOEXEC, 0], store: oomFd);
            p.Call($"oomScoreAdj {text}", SysWrite, JailArg.At(oomFd), (long)p.Str(text), text.Length);
            p.Call("close /proc/self/oom_score_adj", SysClose, JailArg.At(oomFd));
        }
        if (EarlyFilter(plan)) CompileFilter(p, plan);
        CompileCapabilities(p, plan);
        ulong cwdFd = p.Zeros(8);
        p.Call($"open the cwd {plan.Cwd}", SysOpenat2, [Consts.AT_FDCWD, (long)p.Str(plan.Cwd), (long)How(p, Consts.O_PATH | Consts.O_DIRECTORY | Consts.O_CLOEXEC), 24], store: cwdFd);
        p.Call($"chdir {plan.Cwd}", SysFchdir, JailArg.At(cwdFd));
        p.Call("close the cwd", SysClose, JailArg.At(cwdFd));
        if (plan.NoNewPrivileges) p.Call("no_new_privs", SysPrctl, 38 /* PR_SET_NO_NEW_PRIVS */, 1, 0, 0, 0);
        p.Call("umask", SysUmask, plan.Umask);
        // Nothing of the runtime's may reach the program (CVE-2024-21626): stdio only.
        p.Call("mark fds close-on-exec", SysCloseRange, 3, uint.MaxValue, 4 /* CLOSE_RANGE_CLOEXEC */);
        var ready = new byte[16];
        BinaryPrimitives.WriteInt32LittleEndian(ready, RecordReady);
        p.Call("report ready", SysWrite, SyncFd, (long)p.Bytes(ready), 16);
        p.Call("close the sync socket", SysClose, SyncFd);
        p.Call("wait for start", SysRead, StatusFd, (long)p.Zeros(8), 1);
        p.Call("close the exec fifo", SysClose, StatusFd);
        if (plan.Seccomp is not null && !EarlyFilter(plan)) CompileFilter(p, plan);
        CompileExec(p, plan);
    }

    /// <summary>bounding set, keepcaps, groups, gid, uid, the three sets, ambient (as ProcessSetup.Credentials).</summary>
    private static void CompileCapabilities(JailProgram p, InitPlan plan)
    {
        ulong known = plan.LastCap >= 63 ? ulong.MaxValue : (1UL << (plan.LastCap + 1)) - 1;
        ulong bounding = plan.CapBounding & known;
        for (int cap = 0; cap <= plan.LastCap; cap++)
            if ((bounding & (1UL << cap)) == 0)
                p.Call($"drop capability {cap} from the bounding set", SysPrctl, 24 /* PR_CAPBSET_DROP */, cap);
        p.Call("prctl(PR_SET_KEEPCAPS, 1)", SysPrctl, Consts.PR_SET_KEEPCAPS, 1);
        var gids = new byte[Math.Max(4, plan.AdditionalGids.Count * 4)];
        for (int i = 0; i < plan.AdditionalGids.Count; i++) BinaryPrimitives.WriteUInt32LittleEndian(gids.AsSpan(i * 4), plan.AdditionalGids[i]);
        p.Call("setgroups", SysSetgroups, plan.AdditionalGids.Count, (long)p.Bytes(gids));
        p.Call($"setgid {plan.Gid}", SysSetresgid, plan.Gid, plan.Gid, plan.Gid);
        p.Call($"setuid {plan.Uid}", SysSetresuid, plan.Uid, plan.Uid, plan.Uid);
        p.Call("prctl(PR_SET_KEEPCAPS, 0)", SysPrctl, Consts.PR_SET_KEEPCAPS, 0);
        ulong eff = plan.CapEffective & known, perm = plan.CapPermitted & known, inh = plan.CapInheritable & known;
        var header = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 0x20080522); // _LINUX_CAPABILITY_VERSION_3
        var data = new byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(data, (uint)eff);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(4), (uint)perm);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(8), (uint)inh);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(12), (uint)(eff >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(16), (uint)(perm >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(20), (uint)(inh >> 32));
        p.Call("capset", SysCapset, (long)p.Bytes(header), (long)p.Bytes(data));
        p.Call("clear the ambient set", SysPrctl, [47 /* PR_CAP_AMBIENT */, 4 /* CLEAR_ALL */], mayFail: true);
        ulong ambient = plan.CapAmbient & known & perm & inh;
        for (int cap = 0; cap <= plan.LastCap; cap++)
            if ((ambient & (1UL << cap)) != 0)
                p.Call($"raise ambient capability {cap}", SysPrctl, 47 /* PR_CAP_AMBIENT */, 2 /* RAISE */, cap, 0, 0);
    }

    /// <summary>An open_how {flags, mode, resolve} confined to the dirfd (RESOLVE_IN_ROOT, no magic links).</summary>
    private static ulong How(JailProgram p, int flags, uint mode = 0)
    {
        var how = new byte[24];
        BinaryPrimitives.WriteUInt64LittleEndian(how, (ulong)(uint)flags);
        BinaryPrimitives.WriteUInt64LittleEndian(how.AsSpan(8), mode);
        BinaryPrimitives.WriteUInt64LittleEndian(how.AsSpan(16), Consts.RESOLVE_IN_ROOT | Consts.RESOLVE_NO_MAGICLINKS);
        return p.Bytes(how);
    }

    /// <summary>Steps that resolve paths inside the rootfs fd.</summary>
    private sealed class InRootSteps(JailProgram p, ulong rootFd, ulong slot)
    {
        public JailProgram P => p;
        private readonly Dictionary<(int, uint), ulong> _hows = [];

        public ulong HowFor(int flags, uint mode = 0) =>
            _hows.TryGetValue((flags, mode), out var at) ? at : _hows[(flags, mode)] = How(p, flags, mode);

        /// <summary>openat2(rootfs, path) into the scratch slot.</summary>
        public void Open(string what, string path, int flags, uint mode = 0, bool mayFail = false) =>
            p.Call(what, SysOpenat2, [JailArg.At(rootFd), (long)p.Str(Rel(path)), (long)HowFor(flags | Consts.O_CLOEXEC, mode), 24],
                store: slot, mayFail: mayFail);

        public JailArg Slot => JailArg.At(slot);
        public ulong SlotAddress => slot;

        public void CloseSlot(string what) => p.Call(what, SysClose, JailArg.At(slot));

        /// <summary>Resolves path and moves it to <see cref="TargetFd"/>: "/proc/self/fd/1000" then names it.</summary>
        public ulong Target(string what, string path, int flags)
        {
            Open($"resolve {what}", path, flags);
            p.Call($"hold {what}", SysDup3, Slot, TargetFd, Consts.O_CLOEXEC);
            CloseSlot($"close {what}");
            return TargetPath;
        }

        public ulong TargetPath => _targetPath ??= p.Str($"/proc/self/fd/{TargetFd}");
        private ulong? _targetPath;

        /// <summary>mkdir -p inside the rootfs, one component at a time relative to its resolved parent.</summary>
        public void MkdirAll(string path, bool bestEffort = false)
        {
            var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
            var parent = "/";
            foreach (var part in parts)
            {
                if (part is "." or "..") return; // the plan's paths are clean; do not guess at others
                if (parent == "/")
                    p.Call($"mkdir {parent}{part}", SysMkdirat, [JailArg.At(rootFd), (long)p.Str(part), 0x1ed], mayFail: true);
                else
                {
                    Open($"resolve {parent}", parent, Consts.O_PATH | Consts.O_DIRECTORY, mayFail: bestEffort);
                    p.Call($"mkdir {parent}/{part}", SysMkdirat, [Slot, (long)p.Str(part), 0x1ed], mayFail: true);
                    p.Call($"close {parent}", SysClose, [Slot], mayFail: bestEffort);
                }
                parent = parent == "/" ? "/" + part : parent + "/" + part;
            }
        }

        private static string Rel(string path) => path.TrimStart('/') is { Length: > 0 } rel ? rel : ".";
    }

    private static void CompileSafeMount(InRootSteps r, InitPlan plan, MountPlan m)
    {
        var p = r.P;
        var o = m.Options;
        string dest = m.Destination;
        bool fileBind = m.Type == "bind" && !m.SourceIsDir;
        if (fileBind)
        {
            r.MkdirAll(Path.GetDirectoryName(dest.TrimEnd('/')) ?? "/");
            // Created when missing; an existing entry is never opened for writing (it could be a fifo).
            r.Open($"create {dest}", dest, Consts.O_CREAT | Consts.O_EXCL | Consts.O_WRONLY, 0x1a4, mayFail: true);
            p.Call($"close {dest}", SysClose, [r.Slot], mayFail: true);
        }
        else r.MkdirAll(dest);
        int targetFlags = Consts.O_PATH | (fileBind ? 0 : Consts.O_DIRECTORY);
        ulong flags = o.Flags & ~o.ClearFlags;
        switch (m.Type)
        {
            case "bind":
            {
                ulong t = r.Target(dest, dest, targetFlags);
                p.Call($"bind {m.Source} on {dest}", SysMount, (long)p.Str(m.Source!), (long)t, 0,
                    (long)(Consts.MS_BIND | (o.RecursiveBind ? Consts.MS_REC : 0)), 0);
                flags &= ~(Consts.MS_BIND | Consts.MS_REC);
                if (flags != 0)
                {
                    // Resolved again: the old fd names the directory under the new mount.
                    t = r.Target(dest, dest, Consts.O_PATH);
                    p.Call($"remount {dest}", SysMount, 0, (long)t, 0, (long)(Consts.MS_REMOUNT | Consts.MS_BIND | flags), 0);
                }
                break;
            }
            case "cgroup":
                CompileCgroupMount(r, plan, m, flags);
                break;
            default:
            {
                ulong t = r.Target(dest, dest, targetFlags);
                ulong data = o.Data.Length > 0 ? p.Str(o.Data) : 0;
                p.Call($"mount {m.Type} on {dest}{(o.Data.Length > 0 ? " (" + o.Data + ")" : "")}", SysMount,
                    (long)p.Str(m.Source ?? m.Type), (long)t, (long)p.Str(m.Type), (long)flags, (long)data);
                break;
            }
        }
        foreach (var prop in o.Propagation)
        {
            ulong t = r.Target(dest, dest, Consts.O_PATH);
            p.Call($"propagation of {dest}", SysMount, 0, (long)t, 0, (long)prop, 0);
        }
    }

    /// <summary>
    /// As CgroupMount: one cgroup2 mount, or a tmpfs with one mount per v1 hierarchy. Inside a cgroup
    /// namespace the kernel shows the namespace's root; without one the container's own directories
    /// (made by the time the stub runs) are bound instead.
    /// </summary>
    private static void CompileCgroupMount(InRootSteps r, InitPlan plan, MountPlan m, ulong specFlags)
    {
        var p = r.P;
        var flags = specFlags | Consts.MS_NOSUID | Consts.MS_NODEV | Consts.MS_NOEXEC;
        var hostMounts = MountInfoEntry.ReadSelf()
            .Where(e => e.FsType is "cgroup" or "cgroup2" && e.MountPoint.StartsWith("/sys/fs/cgroup", StringComparison.Ordinal))
            .ToList();
        string dest = m.Destination.TrimEnd('/');
        ulong cgroupStr = p.Str("cgroup");
        void Hierarchy(string sub, string fstype, string? options, string hostMountPoint, bool bestEffort)
        {
            ulong t = r.Target(sub, sub, Consts.O_PATH | Consts.O_DIRECTORY);
            if (plan.NewCgroupNs)
            {
                p.Call($"mount {fstype} on {sub}", SysMount, (long)cgroupStr, (long)t, (long)p.Str(fstype), (long)flags,
                    options is null ? 0 : (long)p.Str(options));
                return;
            }
            var own = string.IsNullOrEmpty(plan.CgroupPath) ? hostMountPoint : hostMountPoint + "/" + plan.CgroupPath.TrimStart('/');
            p.Call($"bind {own} on {sub}", SysMount, [(long)p.Str(own), (long)t, 0, (long)(Consts.MS_BIND | Consts.MS_REC), 0], mayFail: bestEffort);
            t = r.Target(sub, sub, Consts.O_PATH);
            p.Call($"remount {sub}", SysMount, [0, (long)t, 0, (long)(Consts.MS_REMOUNT | Consts.MS_BIND | flags), 0], mayFail: bestEffort);
        }

        if (hostMounts.Count == 1 && hostMounts[0].FsType == "cgroup2" && hostMounts[0].MountPoint == "/sys/fs/cgroup")
        {
            Hierarchy(dest, "cgroup2", null, "/sys/fs/cgroup", bestEffort: false);
            return;
        }
        ulong tmp = r.Target(dest, dest, Consts.O_PATH | Consts.O_DIRECTORY);
        p.Call($"mount tmpfs on {dest}", SysMount, (long)p.Str("tmpfs"), (long)tmp, (long)p.Str("tmpfs"),
            (long)(Consts.MS_NOSUID | Consts.MS_NODEV | Consts.MS_NOEXEC), (long)p.Str("mode=755"));
        // The tmpfs just mounted is this init's alone (its mount namespace is private and nothing of
        // the container runs yet): its directories are made and opened relative to one held fd of it,
        // with O_NOFOLLOW, instead of resolving the whole path from the rootfs for each hierarchy.
        r.Open($"open {dest}", dest, Consts.O_RDONLY | Consts.O_DIRECTORY);
        p.Call($"hold {dest}", SysDup3, r.Slot, TmpfsFd, Consts.O_CLOEXEC);
        r.CloseSlot($"close {dest}");
        foreach (var h in hostMounts)
        {
            var name = h.MountPoint["/sys/fs/cgroup".Length..].TrimStart('/');
            if (name.Length == 0 || name.Contains('/')) continue;
            var sub = dest + "/" + name;
            ulong nameStr = p.Str(name);
            p.Call($"mkdir {sub}", SysMkdirat, TmpfsFd, (long)nameStr, 0x1ed);
            ulong t = HoldIn(r, sub, nameStr);
            string? options = h.FsType == "cgroup" ? string.Join(',', h.SuperOptions.Split(',').Where(x => x is not ("rw" or "ro"))) : null;
            // A hybrid host's unified directory is made best effort (CgroupV1Manager.Create): so is its bind.
            bool bestEffort = h.FsType == "cgroup2";
            if (plan.NewCgroupNs)
            {
                p.Call($"mount {h.FsType} on {sub}", SysMount, (long)cgroupStr, (long)t, (long)p.Str(h.FsType), (long)flags,
                    options is null ? 0 : (long)p.Str(options));
                continue;
            }
            var own = string.IsNullOrEmpty(plan.CgroupPath) ? h.MountPoint : h.MountPoint + "/" + plan.CgroupPath.TrimStart('/');
            p.Call($"bind {own} on {sub}", SysMount, [(long)p.Str(own), (long)t, 0, (long)(Consts.MS_BIND | Consts.MS_REC), 0], mayFail: bestEffort);
            t = HoldIn(r, sub, nameStr); // the bind mount now, not the directory under it
            p.Call($"remount {sub}", SysMount, [0, (long)t, 0, (long)(Consts.MS_REMOUNT | Consts.MS_BIND | flags), 0], mayFail: bestEffort);
        }
        // Comounted controllers ("cpu,cpuacct") are also reachable by each name, as on the host.
        foreach (var link in Directory.GetFileSystemEntries("/sys/fs/cgroup"))
            if (new FileInfo(link).LinkTarget is { } target)
                p.Call($"symlink {dest}/{Path.GetFileName(link)}", SysSymlinkat, [(long)p.Str(target), TmpfsFd, (long)p.Str(Path.GetFileName(link))], mayFail: true);
        p.Call($"close {dest}", SysClose, TmpfsFd);
        if ((flags & Consts.MS_RDONLY) != 0)
        {
            // The tmpfs itself goes read-only last, after its subdirectories exist.
            ulong t = r.Target(dest, dest, Consts.O_PATH);
            p.Call($"remount {dest} read-only", SysMount, 0, (long)t, 0,
                (long)(Consts.MS_REMOUNT | Consts.MS_BIND | Consts.MS_RDONLY | Consts.MS_NOSUID | Consts.MS_NODEV | Consts.MS_NOEXEC), 0);
        }
    }

    /// <summary>Device nodes, the /dev links and /dev/ptmx, each made relative to its resolved directory.</summary>
    private static void CompileSafeDevices(InRootSteps r, InitPlan plan)
    {
        var p = r.P;
        foreach (var d in plan.Devices)
        {
            var dir = Path.GetDirectoryName(d.Path) ?? "/dev";
            var name = p.Str(Path.GetFileName(d.Path));
            r.MkdirAll(dir);
            r.Open($"open {dir}", dir, Consts.O_RDONLY | Consts.O_DIRECTORY);
            p.Call($"unlink {d.Path}", SysUnlinkat, [r.Slot, (long)name, 0], mayFail: true);
            uint type = d.Type switch { 'b' => Consts.S_IFBLK, 'p' => Consts.S_IFIFO, _ => Consts.S_IFCHR };
            p.Call($"mknod {d.Path} ({d.Type} {d.Major}:{d.Minor})", SysMknodat, r.Slot, (long)name, type | (d.Mode & 0xfff),
                (long)Berth.Runtime.Rootfs.Devices.MakeDev(d.Major, d.Minor));
            p.Call($"chown {d.Path}", SysFchownat, r.Slot, (long)name, d.Uid, d.Gid, Consts.AT_SYMLINK_NOFOLLOW);
            r.CloseSlot($"close {dir}");
        }
        bool ptmx = plan.Mounts.Any(m => m.Type == "devpts" && m.Destination.TrimEnd('/') == "/dev/pts");
        if (!plan.CreateDefaultDevices && !ptmx) return;
        r.Open("open /dev", "/dev", Consts.O_RDONLY | Consts.O_DIRECTORY);
        if (plan.CreateDefaultDevices)
        {
            (string Target, string Link)[] links =
            [
                ("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
                ("/proc/self/fd/2", "stderr"), ("/proc/kcore", "core"),
            ];
            foreach (var (target, link) in links)
                p.Call($"symlink /dev/{link}", SysSymlinkat, [(long)p.Str(target), r.Slot, (long)p.Str(link)], mayFail: true);
        }
        if (ptmx)
        {
            ulong name = p.Str("ptmx");
            p.Call("unlink /dev/ptmx", SysUnlinkat, [r.Slot, (long)name, 0], mayFail: true);
            p.Call("symlink /dev/ptmx", SysSymlinkat, (long)p.Str("pts/ptmx"), r.Slot, (long)name);
        }
        r.CloseSlot("close /dev");
    }
}

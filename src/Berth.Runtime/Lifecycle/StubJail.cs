using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Namespaces;
using Berth.Linux.Processes;
using Berth.Runtime.Init;

namespace Berth.Runtime.Lifecycle;

/// <summary>
/// Starts an <see cref="InitPlan"/> without forking berth (docs/adr/0016): the plan is compiled into
/// a <see cref="JailProgram"/> of system calls, which a tiny static stub runs from a sealed memfd,
/// started by posix_spawn. The stub joins the cgroup, unshares the namespaces and forks (CLONE_PARENT)
/// the jail's PID 1, which builds the root (mounts, devices, pivot_root, masked and read-only
/// paths), forks the program's process and becomes the reaper (<see cref="JailProgram.Reap"/>). The
/// program's process drops everything (rlimits, bounding set, groups, uid/gid, no_new_privs), loads
/// the seccomp filter (handing its listener over a socket), and execs the program.
///
/// Only for plans whose root berth made itself (the sandbox): the paths are used as they are,
/// without the runtime's checks against a hostile rootfs (symlinked mount targets, a fake /dev/null).
/// <see cref="Unsupported"/> names what a plan asks for that this path does not do; callers then use
/// <see cref="Ephemeral"/>.
/// </summary>
public static unsafe partial class StubJail
{
    // x86_64 system call numbers (the stub exists only there).
    private const long SysWrite = 1, SysOpen = 2, SysClose = 3, SysRtSigaction = 13, SysRtSigprocmask = 14, SysSendmsg = 46,
        SysExecve = 59, SysChdir = 80, SysFchdir = 81, SysMkdir = 83, SysUnlink = 87, SysSymlink = 88, SysLchown = 94,
        SysUmask = 95, SysSetsid = 112, SysSetgroups = 116, SysSetresuid = 117, SysSetresgid = 119, SysCapset = 126,
        SysMknod = 133, SysPivotRoot = 155, SysPrctl = 157, SysMount = 165, SysUmount2 = 166, SysSethostname = 170,
        SysSetdomainname = 171, SysExitGroup = 231, SysUnshare = 272, SysPrlimit64 = 302, SysSetns = 308,
        SysSeccomp = 317, SysCloseRange = 436, SysSchedSetaffinity = 203;

    // The stub's fds.
    private const int SyncFd = 3, StatusFd = 4, NetNsFd = 5, FirstCgroupFd = 6;

    /// <summary>Records on the sync socket (16 bytes each): an error {1, step, errno}, the jail's pid {2, pid}, the listener {3} with SCM_RIGHTS.</summary>
    private const int RecordPid = 2, RecordListener = 3, RecordReady = 4;

    public sealed class Options
    {
        /// <summary>Where the reaper writes its 16-byte record (see <see cref="JailProgram.Reap"/>); required.</summary>
        public required int ReaperStatusFd { get; init; }
        /// <summary>The cgroup directories to join (cgroup.procs of each).</summary>
        public required IReadOnlyList<string> CgroupDirs { get; init; }
        /// <summary>Already open write fds of those cgroup.procs files (the caller keeps them), instead of opening them.</summary>
        public IReadOnlyList<int>? CgroupProcsFds { get; init; }
        /// <summary>Called with (jail pid, listener fd) when the filter has a listener; the fd is closed afterwards.</summary>
        public Action<int, int>? OnSeccompFd { get; init; }
        /// <summary>argv[0] and comm of the stub's processes (the jail's PID 1 among them).</summary>
        public string Name { get; init; } = "berth-jail";
        /// <summary>
        /// A job in a template gets an ipc namespace of its own (System V objects and POSIX queues outlive
        /// their processes). False only when the program's filter denies every IPC call (the sandbox's
        /// built-in profile), so that nothing can be left there for the next job.
        /// </summary>
        public bool FreshIpc { get; init; } = true;
        /// <summary>Called after the program is compiled, before the stub is spawned (the sandbox waits there for its box's copy).</summary>
        public Action? BeforeSpawn { get; init; }
        /// <summary>
        /// A job only: called once the stub is spawned, while it joins the template and drops everything;
        /// the program's exec waits until this returns (a sandbox pool's run gets its box ready there). When
        /// it throws, the program is never exec'd, and the exception is Start's.
        /// </summary>
        public Action? BeforeGo { get; init; }
        /// <summary>Run right after the stub's spawn by the thread that spawned it (a helper on another CPU when there is one), before the go.</summary>
        public Action? AfterSpawn { get; init; }
        /// <summary>How long the jail may take to get to the program's exec.</summary>
        public TimeSpan SetupTimeout { get; init; } = TimeSpan.FromSeconds(20);
    }

    /// <summary>What <paramref name="plan"/> needs that the stub does not do, or null when it can run it.</summary>
    public static string? Unsupported(InitPlan plan)
    {
        if (!JailStub.Supported) return "the jail stub is x86_64 code";
        if (plan.NewUserNs || plan.InUserNs) return "user namespaces";
        if (plan.Joins.Any(j => j.Kind != NamespaceKind.Network)) return "joining namespaces other than the network's";
        if (plan.Joins.Count(j => j.Kind == NamespaceKind.Network) > 1) return "two network namespaces";
        if (plan.Terminal || plan.ConsoleSocketFd >= 0) return "a terminal";
        if (plan.Sysctl.Count > 0) return "sysctls";
        if (plan.NoPivot) return "--no-pivot";
        if (plan.OomScoreAdj is not null) return "oomScoreAdj";
        if (plan.PreserveFds > 0) return "--preserve-fds";
        if (plan.Uid == 0) return "uid 0";
        if ((plan.CapBounding | plan.CapEffective | plan.CapPermitted | plan.CapInheritable | plan.CapAmbient) != 0) return "capabilities";
        if (plan.Seccomp is not null && !plan.NoNewPrivileges) return "a seccomp filter without no_new_privs";
        if (!plan.NewPidNs) return "a shared pid namespace";
        if (plan.Args.Count == 0) return "no process args";
        foreach (var m in plan.Mounts)
        {
            if (m.Type is not ("bind" or "proc" or "tmpfs" or "devpts" or "mqueue" or "sysfs")) return $"{m.Type} mounts";
            if (m.Options.HasRecursiveAttrs || m.Options.IdMap || m.Options.TmpCopyUp) return $"mount options of {m.Destination}";
        }
        return null;
    }

    /// <summary>What a compiled program is for: a whole jail, a batch slot's template jail, or a job in a template.</summary>
    public enum Kind { Single, Template, Job, Container }

    /// <summary>The plan as a jail program (pure: reads only the host's /proc and /sys to know which masked paths exist).</summary>
    public static JailProgram Compile(InitPlan plan, int cgroupCount, bool joinNetNs, string name = "berth-jail") =>
        Compile(plan, cgroupCount, joinNetNs, name, Kind.Single);

    private static JailProgram Compile(InitPlan plan, int cgroupCount, bool joinNetNs, string name, Kind kind, bool freshIpc = true,
        int optionalCgroups = 0, IReadOnlyList<string>? cgroupDirs = null, bool supportChecked = false)
    {
        if (!supportChecked && (kind == Kind.Container ? ContainerUnsupported(plan) : Unsupported(plan)) is { } why)
            throw new RuntimeError($"jail stub: not for plans with {why}");
        var p = new JailProgram { ErrorFd = SyncFd };
        // A job's stub opens the cgroup.procs files itself (Start passes it no cgroup fd): its go fd comes first.
        if (kind == Kind.Job && cgroupDirs is null) throw new ArgumentException("a job's program joins its cgroups by path", nameof(cgroupDirs));
        int goFd = kind == Kind.Job ? FirstCgroupFd : -1;
        string root = plan.Rootfs.TrimEnd('/');

        // --- The first process (host pid namespace): signals, cgroup, namespaces, fork the jail's PID 1.
        p.Call("name the process", SysPrctl, [15 /* PR_SET_NAME */, (long)p.Str(name.Length > 15 ? name[..15] : name)], mayFail: true);
        // A job's stub may be spawned by a helper thread pinned away from berth's CPU (Start): it and the
        // program get berth's own CPUs back (those of the compiling thread, berth's main one).
        if (kind == Kind.Job && BerthCpus() is { } cpus)
            p.Call("berth's CPUs", SysSchedSetaffinity, [0, cpus.Length, (long)p.Bytes(cpus)], mayFail: true);
        ulong zero32 = p.Zeros(32);
        p.Call("reset the signal mask", SysRtSigprocmask, 2 /* SIG_SETMASK */, (long)zero32, 0, 8);
        // Caught signals are reset by exec anyway; what berth ignores (SIGPIPE) would stay ignored.
        // 1 to 64: the real-time ones too (glibc's 32 and 33 can be ignored in berth, and an ignored
        // signal stays ignored across execve).
        for (int sig = 1; sig <= 64; sig++)
            if (sig is not (9 or 19))
                p.Call($"reset signal {sig}", SysRtSigaction, [sig, (long)zero32, 0, 8], mayFail: true);
        ulong zeroChar = p.Str("0");
        if (cgroupDirs is not null)
        {
            // The stub opens each cgroup.procs itself (host paths, as berth would): no fds to pass.
            ulong cgFd = p.Zeros(8);
            for (int i = 0; i < cgroupDirs.Count; i++)
            {
                bool best = i >= cgroupDirs.Count - optionalCgroups;
                p.Call($"open {cgroupDirs[i]}/cgroup.procs", SysOpen, [(long)p.Str(cgroupDirs[i] + "/cgroup.procs"), Consts.O_WRONLY | Consts.O_CLOEXEC, 0],
                    store: cgFd, mayFail: best);
                p.Call($"join the cgroup {cgroupDirs[i]}", SysWrite, [JailArg.At(cgFd), (long)zeroChar, 1], mayFail: best);
                p.Call("close a cgroup fd", SysClose, [JailArg.At(cgFd)], mayFail: best);
            }
            cgroupCount = 0;
        }
        for (int i = 0; i < cgroupCount; i++)
        {
            // The last optionalCgroups are best effort (the unified directory of a hybrid host).
            p.Call("join the cgroup", SysWrite, [FirstCgroupFd + i, (long)zeroChar, 1], mayFail: i >= cgroupCount - optionalCgroups);
            p.Call("close a cgroup fd", SysClose, FirstCgroupFd + i);
        }
        if (kind == Kind.Job)
        {
            // The template's mount (pivoted root), pid, uts and network namespaces, then fresh ipc and
            // cgroup namespaces of the job's own. The writable mounts (/tmp, /dev/shm) are the template's,
            // emptied by berth after every job (Template.Scrub): no mount is made or torn down per job.
            long join = Consts.CLONE_NEWNS | Consts.CLONE_NEWPID | Consts.CLONE_NEWUTS | (plan.NewNetNs || joinNetNs ? Consts.CLONE_NEWNET : 0);
            p.Call("join the template jail", SysSetns, NetNsFd, join);
            p.Call("close the template's pidfd", SysClose, NetNsFd);
            p.Call("unshare the job's namespaces", SysUnshare, (freshIpc ? Consts.CLONE_NEWIPC : 0) | Consts.CLONE_NEWCGROUP);
        }
        else
        {
            if (joinNetNs)
            {
                p.Call("join the network namespace", SysSetns, NetNsFd, Consts.CLONE_NEWNET);
                p.Call("close the network namespace fd", SysClose, NetNsFd);
            }
            p.Call("unshare the namespaces", SysUnshare, plan.UnshareFlags);
        }
        ulong pidRecord = p.Zeros(16);
        p.Patch(pidRecord, BitConverter.GetBytes(RecordPid));
        // A job's first fork is its program's process (berth's child, in the template's pid namespace):
        // no reaper of its own. Its orphans go to the template's PID 1 (which ignores SIGCHLD, so the
        // kernel reaps them); berth kills and counts what is left in the job's cgroup when it ends.
        int forkInit = p.Fork(kind == Kind.Job ? "fork the program's process" : "fork the jail's init", 0x8000 /* CLONE_PARENT */ | 17 /* SIGCHLD */, pidRecord + 4);

        p.Call("umask", SysUmask, 0);
        p.Call("setsid", SysSetsid, [], mayFail: true);
        if (kind == Kind.Container) CompileContainerInit(p, plan, root);
        else if (kind != Kind.Job) CompileRoot(p, plan, root);

        if (kind == Kind.Container) { /* PID 1 execs the program itself */ }
        else if (kind == Kind.Job)
        {
            // --- The program's process: limits, credentials, the filter, exec (once berth says go, on the fd after the cgroups').
            CompileCredentials(p, plan, withLimits: true);
            CompileProgram(p, plan, goFd);
        }
        else if (kind == Kind.Template)
        {
            // --- The template's PID 1: as unprivileged as a job's processes, children reaped by the
            // kernel (SIGCHLD ignored), alive until berth closes the hold pipe (fd 4).
            var ign = new byte[32];
            BinaryPrimitives.WriteInt64LittleEndian(ign, 1 /* SIG_IGN */);
            p.Call("ignore SIGCHLD", SysRtSigaction, 17, (long)p.Bytes(ign), 0, 8);
            CompileCredentials(p, plan, withLimits: false);
            var ready = new byte[16];
            BinaryPrimitives.WriteInt32LittleEndian(ready, RecordReady);
            p.Call("report the template ready", SysWrite, SyncFd, (long)p.Bytes(ready), 16);
            p.Call("close the sync socket", SysClose, SyncFd);
            p.Call("close the other fds", SysCloseRange, [StatusFd + 1, uint.MaxValue, 0], mayFail: true);
            p.Call("wait for the end", 0 /* read */, [StatusFd, (long)p.Zeros(8), 1], mayFail: true);
            p.Call("exit", SysExitGroup, 0);
        }
        else
        {
            // Limits and credentials before the fork: the reaper stays as unprivileged as the program
            // (the uid, no capabilities, no_new_privs); the filter is the program's alone.
            CompileCredentials(p, plan, withLimits: true);
            ulong mainPid = p.Zeros(8);
            int forkMain = p.Fork("fork the program's process", 17 /* SIGCHLD */, mainPid);
            CompileProgram(p, plan);

            // --- The init after the fork: the reaper.
            p.SetParentStep(forkMain, p.Count);
            p.Call("close the sync socket", SysClose, SyncFd);
            p.Call("close the other fds", SysCloseRange, [StatusFd + 1, uint.MaxValue, 0], mayFail: true);
            p.Reap(JailArg.At(mainPid), StatusFd);
        }

        // --- The first process after its fork: report the jail's pid and go.
        p.SetParentStep(forkInit, p.Count);
        p.Call("report the jail's pid", SysWrite, SyncFd, (long)pidRecord, 16);
        p.Call("exit", SysExitGroup, 0);
        return p;
    }

    /// <summary>Mounts a job can write to (tmpfs /tmp, /dev/shm: not /dev, whose root is 0755 root), emptied after every job in a template.</summary>
    private static bool Writable(MountPlan m) => m.Type == "tmpfs" && m.Destination.TrimEnd('/') != "/dev";

    /// <summary>The root: mounts, devices, pivot_root, names, read-only and masked paths, the root read-only.</summary>
    private static void CompileRoot(JailProgram p, InitPlan plan, string root)
    {
        string In(string dest) => root + "/" + dest.TrimStart('/');
        p.Call("make / private in the jail", SysMount, 0, (long)p.Str("/"), 0,
            (long)(plan.RootPropagation != 0 ? plan.RootPropagation : Consts.MS_REC | Consts.MS_PRIVATE), 0);
        ulong rootStr = p.Str(root);
        p.Call("bind the root onto itself", SysMount, (long)rootStr, (long)rootStr, 0, (long)(Consts.MS_BIND | Consts.MS_REC), 0);
        p.Call("make the root private", SysMount, [0, (long)rootStr, 0, (long)Consts.MS_PRIVATE, 0], mayFail: true);
        ulong slot = p.Zeros(8);
        foreach (var m in plan.Mounts) CompileMount(p, m, In, slot);
        CompileDevices(p, plan, In, slot);
        CompilePivotAndPaths(p, plan, root);
    }

    /// <summary>pivot_root into the root, names, read-only and masked paths (kernel paths: /proc, /sys), the root read-only.</summary>
    private static void CompilePivotAndPaths(JailProgram p, InitPlan plan, string root)
    {
        ulong rootStr = p.Str(root);
        ulong oldRoot = p.Zeros(8);
        p.Call("open the old root", SysOpen, [(long)p.Str("/"), Consts.O_DIRECTORY | Consts.O_RDONLY | Consts.O_CLOEXEC, 0], store: oldRoot);
        p.Call("chdir to the root", SysChdir, (long)rootStr);
        ulong dot = p.Str(".");
        p.Call("pivot_root", SysPivotRoot, (long)dot, (long)dot);
        p.Call("chdir to the old root", SysFchdir, JailArg.At(oldRoot));
        p.Call("make the old root a slave", SysMount, 0, (long)dot, 0, (long)(Consts.MS_SLAVE | Consts.MS_REC), 0);
        p.Call("detach the old root", SysUmount2, (long)dot, Consts.MNT_DETACH);
        p.Call("chdir /", SysChdir, (long)p.Str("/"));
        p.Call("close the old root", SysClose, JailArg.At(oldRoot));
        if (!string.IsNullOrEmpty(plan.Hostname))
            p.Call($"sethostname {plan.Hostname}", SysSethostname, (long)p.Str(plan.Hostname), System.Text.Encoding.UTF8.GetByteCount(plan.Hostname));
        if (!string.IsNullOrEmpty(plan.Domainname))
            p.Call($"setdomainname {plan.Domainname}", SysSetdomainname, (long)p.Str(plan.Domainname), System.Text.Encoding.UTF8.GetByteCount(plan.Domainname));
        const ulong roFlags = Consts.MS_RDONLY | Consts.MS_NOSUID | Consts.MS_NODEV | Consts.MS_NOEXEC;
        foreach (var path in plan.ReadonlyPaths)
        {
            if (!HostHas(path, out _)) continue;
            ulong s = p.Str(path);
            p.Call($"bind read-only path {path}", SysMount, (long)s, (long)s, 0, (long)(Consts.MS_BIND | Consts.MS_REC), 0);
            p.Call($"remount {path} read-only", SysMount, 0, (long)s, 0, (long)(Consts.MS_REMOUNT | Consts.MS_BIND | Consts.MS_REC | roFlags), 0);
        }
        ulong devNull = p.Str("/dev/null"), tmpfs = p.Str("tmpfs"), maskData = p.Str("size=0,mode=0555");
        foreach (var path in plan.MaskedPaths)
        {
            if (!HostHas(path, out bool isDir)) continue;
            ulong s = p.Str(path);
            if (isDir) p.Call($"mask {path}", SysMount, (long)tmpfs, (long)s, (long)tmpfs, (long)Consts.MS_RDONLY, (long)maskData);
            else p.Call($"mask {path}", SysMount, (long)devNull, (long)s, 0, (long)Consts.MS_BIND, 0);
        }
        if (plan.RootReadonly)
            p.Call("remount / read-only", SysMount, 0, (long)p.Str("/"), 0,
                (long)(Consts.MS_REMOUNT | Consts.MS_BIND | Consts.MS_RDONLY | (Berth.Linux.Mounts.Remount.CurrentFlags(root) & (Consts.MS_NOSUID | Consts.MS_NODEV | Consts.MS_NOEXEC))), 0);
    }

    /// <summary>Rlimits (optional), umask, bounding set, groups, gid, uid, capabilities, no_new_privs.</summary>
    private static void CompileCredentials(JailProgram p, InitPlan plan, bool withLimits)
    {
        foreach (var (resource, soft, hard) in withLimits ? plan.Rlimits : [])
        {
            var lim = new byte[16];
            BinaryPrimitives.WriteUInt64LittleEndian(lim, soft);
            BinaryPrimitives.WriteUInt64LittleEndian(lim.AsSpan(8), hard);
            p.Call($"rlimit {resource}", SysPrlimit64, 0, resource, (long)p.Bytes(lim), 0);
        }
        p.Call("umask", SysUmask, plan.Umask);
        for (int cap = 0; cap <= plan.LastCap; cap++)
            p.Call($"drop capability {cap} from the bounding set", SysPrctl, 24 /* PR_CAPBSET_DROP */, cap);
        p.Call("clear the ambient set", SysPrctl, [47 /* PR_CAP_AMBIENT */, 4 /* CLEAR_ALL */], mayFail: true);
        var gids = new byte[Math.Max(4, plan.AdditionalGids.Count * 4)];
        for (int i = 0; i < plan.AdditionalGids.Count; i++) BinaryPrimitives.WriteUInt32LittleEndian(gids.AsSpan(i * 4), plan.AdditionalGids[i]);
        p.Call("setgroups", SysSetgroups, plan.AdditionalGids.Count, (long)p.Bytes(gids));
        p.Call($"setresgid {plan.Gid}", SysSetresgid, plan.Gid, plan.Gid, plan.Gid);
        p.Call($"setresuid {plan.Uid}", SysSetresuid, plan.Uid, plan.Uid, plan.Uid);
        var capHeader = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(capHeader, 0x20080522); // _LINUX_CAPABILITY_VERSION_3
        p.Call("clear the capability sets", SysCapset, (long)p.Bytes(capHeader), (long)p.Zeros(24));
        if (plan.NoNewPrivileges) p.Call("no_new_privs", SysPrctl, 38 /* PR_SET_NO_NEW_PRIVS */, 1, 0, 0, 0);
    }

    /// <summary>
    /// The program's process: cwd, fds, the filter, exec. With <paramref name="goFd"/> (a job), the exec
    /// waits for berth's go: the paths the execve steps run are read from that fd (<see cref="JailProgram.Go"/>,
    /// the addresses of the paths in the program's own data), so that without the go (berth closed the
    /// pipe: it failed to get the box ready, or died) every execve gets a NULL path and fails.
    /// </summary>
    private static void CompileProgram(JailProgram p, InitPlan plan, int goFd = -1)
    {
        p.Call($"chdir {plan.Cwd}", SysChdir, (long)p.Str(plan.Cwd));
        // Every fd but stdio is closed by the exec (the sync socket and the reaper's pipe included).
        p.Call("mark fds close-on-exec", SysCloseRange, 3, uint.MaxValue, 4 /* CLOSE_RANGE_CLOEXEC */);
        var paths = ExecPaths(plan);
        ulong table = 0;
        if (goFd >= 0)
        {
            table = p.Zeros(8 * paths.Count);
            var go = new byte[8 * paths.Count];
            for (int i = 0; i < paths.Count; i++) BinaryPrimitives.WriteUInt64LittleEndian(go.AsSpan(8 * i), p.Str(paths[i]));
            p.Go = go;
            // Before the filter: a custom profile may deny read.
            p.Call("wait for berth's go", 0 /* read */, goFd, (long)table, go.Length);
        }
        if (plan.Seccomp is not null) CompileFilter(p, plan);
        CompileExec(p, plan, paths, table);
    }

    /// <summary>What the program's execve steps try, in order: its name when it has a '/', else the name in every PATH directory (the plan's), as execvp does.</summary>
    private static List<string> ExecPaths(InitPlan plan)
    {
        string name = plan.Args[0];
        if (name.Contains('/')) return [name];
        var path = plan.Env.LastOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..]
                   ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        var dirs = path.Split(':', StringSplitOptions.RemoveEmptyEntries);
        if (dirs.Length == 0) dirs = ["."];
        return [.. dirs.Select(d => d.TrimEnd('/') + "/" + name)];
    }

    /// <summary>Loads the plan's seccomp filter; a listener is sent to berth on the sync socket.</summary>
    private static void CompileFilter(JailProgram p, InitPlan plan)
    {
        if (plan.Seccomp is { } sec)
        {
            var prog = new byte[16];
            BinaryPrimitives.WriteUInt16LittleEndian(prog, (ushort)sec.Filter.Length);
            var filter = MemoryMarshal.AsBytes(sec.Filter.AsSpan());
            BinaryPrimitives.WriteUInt64LittleEndian(prog.AsSpan(8), p.Bytes(filter));
            ulong fprog = p.Bytes(prog);
            uint flags = KernelFlags(sec.Flags);
            if (sec.HasListener)
            {
                // msghdr -> iovec (a 16-byte record) and one SCM_RIGHTS cmsg whose fd the seccomp step fills in.
                var rec = new byte[16];
                BinaryPrimitives.WriteInt32LittleEndian(rec, RecordListener);
                ulong recAt = p.Bytes(rec);
                var iov = new byte[16];
                BinaryPrimitives.WriteUInt64LittleEndian(iov, recAt);
                BinaryPrimitives.WriteUInt64LittleEndian(iov.AsSpan(8), 16);
                ulong iovAt = p.Bytes(iov);
                var cmsg = new byte[24];
                BinaryPrimitives.WriteUInt64LittleEndian(cmsg, 20);     // CMSG_LEN(4)
                BinaryPrimitives.WriteInt32LittleEndian(cmsg.AsSpan(8), 1);  // SOL_SOCKET
                BinaryPrimitives.WriteInt32LittleEndian(cmsg.AsSpan(12), 1); // SCM_RIGHTS
                ulong cmsgAt = p.Bytes(cmsg);
                var msg = new byte[56];
                BinaryPrimitives.WriteUInt64LittleEndian(msg.AsSpan(16), iovAt);
                BinaryPrimitives.WriteUInt64LittleEndian(msg.AsSpan(24), 1);
                BinaryPrimitives.WriteUInt64LittleEndian(msg.AsSpan(32), cmsgAt);
                BinaryPrimitives.WriteUInt64LittleEndian(msg.AsSpan(40), 24); // CMSG_SPACE(4)
                ulong msgAt = p.Bytes(msg);
                p.Call("load the seccomp filter", SysSeccomp, [1 /* SET_MODE_FILTER */, flags, (long)fprog], store: cmsgAt + 16);
                p.Call("send the seccomp listener", SysSendmsg, SyncFd, (long)msgAt, 0);
                p.Call("close the seccomp listener", SysClose, JailArg.At(cmsgAt + 16));
            }
            else p.Call("load the seccomp filter", SysSeccomp, 1, flags, (long)fprog);
        }
    }

    private static void CompileMount(JailProgram p, MountPlan m, Func<string, string> inRoot, ulong slot)
    {
        var o = m.Options;
        string target = inRoot(m.Destination);
        MkdirAll(p, inRoot, m.Type == "bind" && !m.SourceIsDir ? Path.GetDirectoryName(m.Destination) ?? "/" : m.Destination);
        ulong t = p.Str(target);
        if (m.Type == "bind" && !m.SourceIsDir)
        {
            p.Call($"create {m.Destination}", SysOpen, [(long)t, Consts.O_CREAT | Consts.O_WRONLY | Consts.O_CLOEXEC, 0x1a4], store: slot);
            p.Call($"close {m.Destination}", SysClose, JailArg.At(slot));
        }
        ulong flags = o.Flags & ~o.ClearFlags;
        if (m.Type == "bind")
        {
            p.Call($"bind {m.Source} on {m.Destination}", SysMount, (long)p.Str(m.Source ?? ""), (long)t, 0,
                (long)(Consts.MS_BIND | (o.RecursiveBind ? Consts.MS_REC : 0)), 0);
            flags &= ~(Consts.MS_BIND | Consts.MS_REC);
            if (flags != 0)
                p.Call($"remount {m.Destination}", SysMount, 0, (long)t, 0, (long)(Consts.MS_REMOUNT | Consts.MS_BIND | flags), 0);
        }
        else
        {
            ulong data = o.Data.Length > 0 ? p.Str(o.Data) : 0;
            p.Call($"mount {m.Type} on {m.Destination}", SysMount, (long)p.Str(m.Source ?? m.Type), (long)t, (long)p.Str(m.Type), (long)flags, (long)data);
        }
        foreach (var prop in o.Propagation)
            p.Call($"propagation of {m.Destination}", SysMount, 0, (long)t, 0, (long)prop, 0);
    }

    private static void MkdirAll(JailProgram p, Func<string, string> inRoot, string dest)
    {
        var parts = dest.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var path = "";
        foreach (var part in parts)
        {
            path += "/" + part;
            p.Call($"mkdir {path}", SysMkdir, [(long)p.Str(inRoot(path)), 0x1ed], mayFail: true);
        }
    }

    private static void CompileDevices(JailProgram p, InitPlan plan, Func<string, string> inRoot, ulong slot)
    {
        foreach (var d in plan.Devices)
        {
            MkdirAll(p, inRoot, Path.GetDirectoryName(d.Path) ?? "/dev");
            ulong path = p.Str(inRoot(d.Path));
            p.Call($"unlink {d.Path}", SysUnlink, [(long)path], mayFail: true);
            uint type = d.Type switch { 'b' => Consts.S_IFBLK, 'p' => Consts.S_IFIFO, _ => Consts.S_IFCHR };
            ulong dev = ((ulong)(d.Major & 0xfff) << 8) | ((ulong)d.Minor & 0xff) | (((ulong)d.Minor & ~0xffUL) << 12) | (((ulong)d.Major & ~0xfffUL) << 32);
            p.Call($"mknod {d.Path} ({d.Type} {d.Major}:{d.Minor})", SysMknod, (long)path, type | (d.Mode & 0xfff), (long)dev);
            p.Call($"chown {d.Path}", SysLchown, (long)path, d.Uid, d.Gid);
        }
        if (plan.CreateDefaultDevices)
        {
            (string Target, string Link)[] links =
            [
                ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"), ("/proc/self/fd/1", "/dev/stdout"),
                ("/proc/self/fd/2", "/dev/stderr"), ("/proc/kcore", "/dev/core"),
            ];
            foreach (var (target, link) in links)
                p.Call($"symlink {link}", SysSymlink, [(long)p.Str(target), (long)p.Str(inRoot(link))], mayFail: true);
        }
        if (plan.Mounts.Any(m => m.Type == "devpts" && m.Destination.TrimEnd('/') == "/dev/pts"))
        {
            ulong ptmx = p.Str(inRoot("/dev/ptmx"));
            p.Call("unlink /dev/ptmx", SysUnlink, [(long)ptmx], mayFail: true);
            p.Call("symlink /dev/ptmx", SysSymlink, (long)p.Str("pts/ptmx"), (long)ptmx);
        }
    }

    /// <summary>execve, searching PATH (the plan's) for a name without '/', as execvp does; with a go table, each path is read from its entry.</summary>
    private static void CompileExec(JailProgram p, InitPlan plan, List<string>? paths = null, ulong goTable = 0)
    {
        string name = plan.Args[0];
        paths ??= ExecPaths(plan);
        ulong argv = p.StrArray(plan.Args), envp = p.StrArray(plan.Env);
        for (int i = 0; i < paths.Count; i++)
        {
            JailArg path = goTable != 0 ? JailArg.At(goTable + 8 * (ulong)i) : (long)p.Str(paths[i]);
            p.Call($"exec {name}", SysExecve, [path, (long)argv, (long)envp], mayFail: i < paths.Count - 1);
        }
    }

    /// <summary>A masked or read-only path exists in the jail when it exists on the host (/proc and /sys of the same kernel).</summary>
    private static bool HostHas(string path, out bool isDir)
    {
        lock (s_hostHas)
        {
            if (s_hostHas.TryGetValue(path, out var known)) { isDir = known.IsDir; return known.Exists; }
        }
        // TryAt, not Of: several default masked paths are missing on most kernels, and an exception
        // (its first throw in a process unwinds through cold EH tables) cost ~0.1 ms of every create.
        bool exists = StatX.TryAt(Consts.AT_FDCWD, path, out var st, out _) && !st.IsSymlink;
        isDir = exists && st.IsDirectory;
        lock (s_hostHas) s_hostHas[path] = (exists, isDir);
        return exists;
    }

    /// <summary>The kernel's /proc and /sys entries do not come and go between the jobs of one process.</summary>
    private static readonly Dictionary<string, (bool Exists, bool IsDir)> s_hostHas = [];

    /// <summary>The optional filter flags this kernel knows (seccomp(2) fails with EINVAL on unknown ones).</summary>
    private static uint KernelFlags(uint flags)
    {
        if (Berth.Runtime.Seccomp.SeccompProfiles.RunningKernel() is not { } k) return flags;
        if (k < new Version(5, 19)) flags &= ~Berth.Linux.Seccomp.SeccompAbi.FILTER_FLAG_WAIT_KILLABLE_RECV;
        if (k < new Version(4, 17)) flags &= ~Berth.Linux.Seccomp.SeccompAbi.FILTER_FLAG_SPEC_ALLOW;
        if (k < new Version(4, 14)) flags &= ~Berth.Linux.Seccomp.SeccompAbi.FILTER_FLAG_LOG;
        return flags;
    }

    /// <summary>A started jail: its PID 1 (a child of this process) is running the program, or has already reaped it.</summary>
    public sealed record Handle(int InitPid);

    /// <summary>
    /// Compiles and starts the plan. Returns once the program's exec has happened (or failed:
    /// then a <see cref="RuntimeError"/> names the step, after the jail is killed and reaped).
    /// </summary>
    public static Handle Launch(InitPlan plan, Options o) => Start(plan, o, Kind.Single, null);

    /// <summary>
    /// A batch slot's template jail (docs/adr/0016): the namespaces, root and mounts of the plan, made
    /// once, with a PID 1 that waits (unprivileged, its children reaped by the kernel) until
    /// <see cref="Dispose"/>. Jobs join it (<see cref="LaunchJob"/>) with fresh mount, ipc and cgroup
    /// namespaces, fresh /tmp, /dev/shm and mqueue, and their own subreaper.
    /// </summary>
    public sealed class Template : IDisposable
    {
        public required string Key { get; init; }
        public required int InitPid { get; init; }
        public required int Pidfd { get; init; }
        public required int Hold { get; init; }
        /// <summary>The template's writable tmpfs roots (/tmp, /dev/shm), opened before any job ran.</summary>
        public required int[] ScrubDirs { get; init; }

        /// <summary>Most entries a job may leave in them before the template is thrown away instead of emptied.</summary>
        private const int MaxEntries = 10_000;

        /// <summary>
        /// Empties /tmp and /dev/shm after a job (every process of it dead) through the directory fds:
        /// unlinkat and openat(O_NOFOLLOW) relative to them, so nothing a job planted (symlinks, deep
        /// trees) is ever followed. False when it could not (too many entries, too deep, an error): the
        /// caller then throws the template away.
        /// </summary>
        public bool Scrub()
        {
            int budget = MaxEntries;
            foreach (var fd in ScrubDirs)
                if (!DirTree.Empty(fd, 0, ref budget)) return false;
            return true;
        }

        /// <summary>The template's PID 1 is still there.</summary>
        public bool Alive
        {
            get
            {
                int* pfd = stackalloc int[2];
                pfd[0] = Pidfd; pfd[1] = Consts.POLLIN;
                return LibC.poll(pfd, 1, 0) == 0;
            }
        }

        /// <summary>
        /// Kills the template's PID 1 through its pidfd (never another process that got its pid) and
        /// waits until it is gone: reaped here when it is this process's child, else (a pool's template,
        /// made by an earlier process) until the pidfd reports its exit, at most 2 s.
        /// </summary>
        public void Dispose()
        {
            foreach (var fd in ScrubDirs) Fd.Close(fd);
            Fd.Close(Hold);
            LibC.syscall(Syscalls.PidfdSendSignal, Pidfd, Signals.SIGKILL, 0, 0, 0, 0);
            if (Proc.Wait(InitPid) is null)
            {
                int* pfd = stackalloc int[2];
                pfd[0] = Pidfd; pfd[1] = Consts.POLLIN;
                LibC.poll(pfd, 1, 2000);
            }
            Fd.Close(Pidfd);
        }

        /// <summary>Where <see cref="ScrubDirs"/> are in the template's root (/tmp, /dev/shm).</summary>
        public string[] ScrubPaths { get; init; } = [];

        /// <summary>The start time (/proc/PID/stat, clock ticks since boot) of the template's PID 1: with the pid, what names it across processes.</summary>
        public ulong StartTime { get; init; }

        /// <summary>
        /// A template made by an earlier process (a sandbox pool's, see <see cref="StartTemplate"/> with
        /// persistent): its pidfd opened and checked to be the same process (pid and start time), its
        /// writable directories opened through its root. Null when it is gone or is not that process.
        /// </summary>
        public static Template? Attach(string key, int pid, ulong startTime, IReadOnlyList<string> scrubPaths)
        {
            int pidfd = (int)LibC.syscall(Syscalls.PidfdOpen, pid, 0, 0, 0, 0, 0);
            if (pidfd < 0) return null;
            // The pidfd is held first: a start time read afterwards that matches proves it names that process.
            if (Proc.StartTime(pid) != startTime)
            {
                Fd.Close(pidfd);
                return null;
            }
            var dirs = new List<int>();
            foreach (var path in scrubPaths)
            {
                int fd;
                fixed (byte* p = CString.Of($"/proc/{pid}/root{path}"))
                    fd = LibC.open(p, Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, 0);
                if (fd < 0 || !IsTmpfs(fd))
                {
                    if (fd >= 0) Fd.Close(fd);
                    foreach (var d in dirs) Fd.Close(d);
                    Fd.Close(pidfd);
                    return null;
                }
                dirs.Add(fd);
            }
            return new Template { Key = key, InitPid = pid, Pidfd = pidfd, Hold = -1, ScrubDirs = [.. dirs], StartTime = startTime, ScrubPaths = [.. scrubPaths] };
        }
    }

    /// <summary>What decides a template jail: everything of the plan but the process (args, env, cwd, limits, filter).</summary>
    public static string TemplateKey(InitPlan plan)
    {
        var sb = new System.Text.StringBuilder();
        sb.Append(plan.Rootfs).Append('|').Append(plan.UnshareFlags).Append('|').Append(plan.RootPropagation).Append('|')
          .Append(plan.RootReadonly).Append('|').Append(plan.Hostname).Append('|').Append(plan.Domainname).Append('|')
          .Append(plan.Uid).Append(':').Append(plan.Gid).Append(':').Append(string.Join(',', plan.AdditionalGids)).Append('|')
          .Append(plan.LastCap).Append('|').Append(plan.NoNewPrivileges).Append('|').Append(plan.CreateDefaultDevices).Append('|');
        // Enums as numbers, records field by field: their names would load reflection metadata (~0.1 ms on first use).
        foreach (var j in plan.Joins) sb.Append((int)j.Kind).Append('=').Append(j.Path).Append(';');
        foreach (var m in plan.Mounts)
            sb.Append(m.Destination).Append(',').Append(m.Type).Append(',').Append(m.Source).Append(',').Append(m.Options.Flags)
              .Append(',').Append(m.Options.ClearFlags).Append(',').Append(m.Options.Data).Append(',')
              .Append(string.Join('/', m.Options.Propagation)).Append(',').Append(m.SourceIsDir).Append(';');
        foreach (var d in plan.Devices)
            sb.Append(d.Path).Append(',').Append(d.Type).Append(',').Append(d.Major).Append(',').Append(d.Minor).Append(',')
              .Append(d.Mode).Append(',').Append(d.Uid).Append(',').Append(d.Gid).Append(';');
        sb.Append('|').Append(string.Join(',', plan.MaskedPaths)).Append('|').Append(string.Join(',', plan.ReadonlyPaths));
        return sb.ToString();
    }

    /// <summary>
    /// Builds a template jail for <paramref name="plan"/> (see <see cref="Template"/>). Persistent (a
    /// sandbox pool's): its PID 1 waits on a pipe it holds both ends of (the read end reopened read-write
    /// through /proc/self/fd), so it outlives this process and ends only when killed (<see cref="Template.Dispose"/>).
    /// </summary>
    public static Template StartTemplate(InitPlan plan, TimeSpan setupTimeout, bool persistent = false)
    {
        var (holdRead, holdWrite) = Fd.Pipe();
        if (persistent)
        {
            int rw;
            try { rw = Fd.Open($"/proc/self/fd/{holdRead}", Consts.O_RDWR | Consts.O_CLOEXEC); }
            finally { Fd.Close(holdRead); Fd.Close(holdWrite); }
            (holdRead, holdWrite) = (rw, -1);
        }
        int pidfd = -1;
        Handle h;
        try
        {
            h = Start(plan, new Options { ReaperStatusFd = holdRead, CgroupDirs = [], Name = "berth-jail-tpl", SetupTimeout = setupTimeout },
                Kind.Template, null);
        }
        catch
        {
            Fd.Close(holdWrite);
            throw;
        }
        finally { Fd.Close(holdRead); }
        pidfd = (int)LibC.syscall(Syscalls.PidfdOpen, h.InitPid, 0, 0, 0, 0, 0);
        if (pidfd < 0)
        {
            int e = Marshal.GetLastPInvokeError();
            Fd.Close(holdWrite);
            Proc.Kill(h.InitPid, Signals.SIGKILL);
            Proc.Wait(h.InitPid);
            throw new LinuxException("pidfd_open", "template jail", e);
        }
        // The writable tmpfs roots, through the template's own root, before any job could plant anything.
        var dirs = new List<int>();
        try
        {
            foreach (var m in plan.Mounts.Where(Writable))
            {
                int fd = Fd.Open($"/proc/{h.InitPid}/root{m.Destination}", Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC);
                dirs.Add(fd);
                if (!IsTmpfs(fd)) throw new RuntimeError($"jail stub: {m.Destination} of the template jail is not a tmpfs");
            }
        }
        catch (Exception e) when (e is LinuxException or RuntimeError)
        {
            foreach (var fd in dirs) Fd.Close(fd);
            Fd.Close(holdWrite);
            Fd.Close(pidfd);
            Proc.Kill(h.InitPid, Signals.SIGKILL);
            Proc.Wait(h.InitPid);
            throw e is RuntimeError ? e : new RuntimeError($"jail stub: open the template's writable directories: {e.Message}");
        }
        return new Template { Key = TemplateKey(plan), InitPid = h.InitPid, Pidfd = pidfd, Hold = holdWrite, ScrubDirs = [.. dirs],
            StartTime = Proc.StartTime(h.InitPid) ?? 0, ScrubPaths = [.. plan.Mounts.Where(Writable).Select(m => m.Destination)] };
    }

    private static bool IsTmpfs(int fd)
    {
        var buf = stackalloc long[16];
        return LibC.fstatfs(fd, buf) == 0 && buf[0] == 0x01021994 /* TMPFS_MAGIC */;
    }

    /// <summary>Starts the plan's process in <paramref name="template"/> (whose key must be the plan's); as <see cref="Launch"/>.</summary>
    public static Handle LaunchJob(InitPlan plan, Template template, Options o) => LaunchJob(plan, template, o, TemplateKey(plan));

    /// <summary>As <see cref="LaunchJob(InitPlan, Template, Options)"/>, with the plan's <see cref="TemplateKey"/> the caller already made.</summary>
    public static Handle LaunchJob(InitPlan plan, Template template, Options o, string planKey)
    {
        if (template.Key != planKey) throw new RuntimeError("jail stub: the template jail was made for another plan");
        return Start(plan, o, Kind.Job, template);
    }

    /// <summary>
    /// A job's program, linked, with what each step does (for error messages): what <see cref="LaunchJob(CompiledJob, Template, Options)"/>
    /// runs without planning or compiling again. It depends on the plan's process (args, env, cwd, limits,
    /// credentials, filter), the template's key, and of <paramref name="o"/> only the number of cgroups,
    /// <see cref="Options.FreshIpc"/> and <see cref="Options.Name"/> (fds are passed at fixed numbers).
    /// </summary>
    public sealed record CompiledJob(byte[] Image, string[] Steps, string TemplateKey, int CgroupCount, bool FreshIpc, string Name, byte[] Go);

    public static CompiledJob CompileJob(InitPlan plan, Options o, string planKey)
    {
        if (Unsupported(plan) is { } why) throw new RuntimeError($"jail stub: not for plans with {why}");
        var netJoin = plan.Joins.FirstOrDefault(j => j.Kind == NamespaceKind.Network);
        var program = Compile(plan, o.CgroupDirs.Count, netJoin.Path is not null, o.Name, Kind.Job, o.FreshIpc, cgroupDirs: o.CgroupDirs, supportChecked: true);
        return new CompiledJob(program.Build(), program.Descriptions(), planKey, o.CgroupDirs.Count, o.FreshIpc, o.Name,
            program.Go ?? throw new RuntimeError("jail stub: a job without a go"));
    }

    /// <summary>Starts a job compiled earlier (<see cref="CompileJob"/>) in <paramref name="template"/>, whose key must be the job's; as <see cref="Launch"/>.</summary>
    public static Handle LaunchJob(CompiledJob job, Template template, Options o)
    {
        if (template.Key != job.TemplateKey) throw new RuntimeError("jail stub: the template jail was made for another plan");
        if (job.CgroupCount != o.CgroupDirs.Count || job.FreshIpc != o.FreshIpc || job.Name != o.Name)
            throw new RuntimeError("jail stub: the compiled job was made for other options");
        Logging.Timing.Mark("jail compiled");
        int memfd = JailProgram.SealImage(job.Image);
        return Start(null, o, Kind.Job, template, (i => i >= 0 && i < job.Steps.Length ? job.Steps[i] : $"step {i}", memfd, job.Go));
    }

    private static Handle Start(InitPlan? plan, Options o, Kind kind, Template? template, (Func<int, string> Describe, int Memfd, byte[]? Go)? sealedProgram = null)
    {
        // A job joins its template's network namespace (through the template's pidfd), never a path of the plan's.
        var netJoin = plan?.Joins.FirstOrDefault(j => j.Kind == NamespaceKind.Network) ?? default;
        Func<int, string> describe;
        int memfd = -1;
        byte[]? go;
        JailProgram? program = null;
        if (sealedProgram is { } given) (describe, memfd, go) = given;
        else
        {
            Logging.Timing.Mark("jail compile");
            program = Compile(plan!, o.CgroupDirs.Count, netJoin.Path is not null, o.Name, kind, o.FreshIpc,
                cgroupDirs: kind == Kind.Job ? o.CgroupDirs : null);
            describe = program.Describe;
            go = program.Go;
        }
        var fds = new List<(int From, int To)>();
        var toClose = new List<int>();
        int parentEnd = -1, stub = -1, initPid = -1, goWrite = -1;
        try
        {
            if (memfd < 0)
            {
                memfd = program!.Seal();
                Logging.Timing.Mark("jail sealed");
            }
            int* sv = stackalloc int[2];
            if (LibC.socketpair(1 /* AF_UNIX */, 5 /* SOCK_SEQPACKET */ | Consts.SOCK_CLOEXEC, 0, sv) != 0)
                throw LinuxException.Last("socketpair", "jail sync");
            parentEnd = sv[0];
            toClose.Add(sv[1]);
            Add(sv[1], SyncFd);
            Add(o.ReaperStatusFd, StatusFd);
            if (kind == Kind.Template)
            {
                // A template outlives the job that made it (a pool's, the run that made it): it must hold none
                // of that caller's stdio, or a pipe to a judge would never see its end.
                int devNull = Fd.Open("/dev/null", Consts.O_RDWR | Consts.O_CLOEXEC);
                Add(devNull, 0, own: true);
                Add(devNull, 1);
                Add(devNull, 2);
            }
            if (template is not null) Add(template.Pidfd, NetNsFd);
            else if (netJoin.Path is { } ns) Add(OpenOrThrow(ns, Consts.O_RDONLY | Consts.O_CLOEXEC, "network namespace"), NetNsFd, own: true);
            // A job's stub joins its cgroups by path (on its own CPU, while this thread prepares the go).
            for (int i = 0; i < (kind == Kind.Job ? 0 : o.CgroupDirs.Count); i++)
            {
                if (o.CgroupProcsFds is { } open) Add(open[i], FirstCgroupFd + i);
                else Add(OpenOrThrow(Path.Combine(o.CgroupDirs[i], "cgroup.procs"), Consts.O_WRONLY | Consts.O_CLOEXEC, "cgroup"), FirstCgroupFd + i, own: true);
            }
            if (go is not null)
            {
                // The job's go pipe (CompileProgram): its read end on the fd after the cgroups'.
                var (goRead, w) = Fd.Pipe();
                goWrite = w;
                Add(goRead, FirstCgroupFd, own: true);
            }
            o.BeforeSpawn?.Invoke();
            Logging.Timing.Mark("jail spawn");
            // With BeforeGo to run and a CPU to spare, a helper thread on another CPU waits in vfork for the
            // stub's exec (posix_spawn blocks its caller until then: ~0.3 ms, most of it two wake-ups of an idle
            // CPU) while this thread runs BeforeGo. The stub's first step gives it berth's CPUs back.
            NativeThread? spawner = null;
            int spawned = -1;
            if (goWrite >= 0 && o.BeforeGo is not null && NativeThread.SpareCpu())
                spawner = NativeThread.StartElsewhere(() =>
                {
                    spawned = JailProgram.Spawn(memfd, fds, o.Name);
                    o.AfterSpawn?.Invoke();
                });
            else
            {
                stub = JailProgram.Spawn(memfd, fds, o.Name);
                Logging.Timing.Mark("jail spawned");
                CloseChildEnds();
                o.AfterSpawn?.Invoke();
            }
            // The program waits for its go while the stub works: the caller's last preparations run meanwhile.
            Exception? notGone = null;
            if (goWrite >= 0)
            {
                try { o.BeforeGo?.Invoke(); }
                catch (Exception e) { notGone = e; }
                if (spawner is not null)
                {
                    try
                    {
                        spawner.Join(); // rethrows the spawn's error
                        stub = spawned;
                        Logging.Timing.Mark("jail spawned");
                    }
                    finally { CloseChildEnds(); }
                }
                try
                {
                    if (notGone is null)
                    {
                        Fd.WriteAll(goWrite, go!, "jail go"); // at most PIPE_BUF bytes: all or nothing
                        Logging.Timing.Mark("jail go");
                    }
                }
                catch (Exception e) { notGone = e; }
                finally { Fd.Close(goWrite); goWrite = -1; }
            }
            var (pid, ready, error) = Receive(parentEnd, describe, o);
            Logging.Timing.Mark("jail ready");
            initPid = pid;
            Proc.Wait(stub);
            stub = -1;
            // Without its go the program's exec failed (a NULL path): what stopped the go is the error.
            if (notGone is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(notGone);
            if (error is not null) throw new RuntimeError(error);
            if (initPid <= 0) throw new RuntimeError("jail stub: the jail's init was not started");
            if (kind is Kind.Template or Kind.Container && !ready) throw new RuntimeError("jail stub: the jail did not get ready");
            return new Handle(initPid);
        }
        catch
        {
            if (stub > 0) { Proc.Kill(stub, Signals.SIGKILL); Proc.Wait(stub); }
            if (initPid > 0) { Proc.Kill(initPid, Signals.SIGKILL); Proc.Wait(initPid); }
            throw;
        }
        finally
        {
            foreach (var fd in toClose) Fd.Close(fd);
            Fd.Close(memfd);
            Fd.Close(parentEnd);
            Fd.Close(goWrite);
        }

        // Only the stub may hold the child's ends once it is spawned, or the socket never reaches EOF.
        void CloseChildEnds()
        {
            foreach (var fd in toClose) Fd.Close(fd);
            toClose.Clear();
            fds.Clear();
            Fd.Close(memfd);
            memfd = -1;
        }

        // The stub gets fd at number to (Proc.SpawnWithFds moves the sources out of the way first);
        // fds this method opened itself are closed once the stub is started.
        void Add(int fd, int to, bool own = false)
        {
            if (own) toClose.Add(fd);
            fds.Add((fd, to));
        }
    }

    /// <summary>The calling thread's CPU affinity (128 bytes), or null when it cannot be read.</summary>
    public static byte[]? BerthCpus()
    {
        byte* mask = stackalloc byte[128];
        if (LibC.sched_getaffinity(0, 128, mask) != 0) return null;
        return new ReadOnlySpan<byte>(mask, 128).ToArray();
    }

    private static int OpenOrThrow(string path, int flags, string what)
    {
        try { return Fd.Open(path, flags); }
        catch (LinuxException e) { throw new RuntimeError($"jail: open {what} {path}: {LinuxException.Describe(e.Errno)}"); }
    }

    /// <summary>Reads the stub's records until every holder of the socket is gone (the program's exec closes the last).</summary>
    private static (int Pid, bool Ready, string? Error) Receive(int fd, Func<int, string> describe, Options o)
    {
        int pid = -1;
        bool ready = false;
        string? error = null;
        var deadline = DateTime.UtcNow + o.SetupTimeout;
        byte* buf = stackalloc byte[16];
        byte* control = stackalloc byte[64];
        long* iov = stackalloc long[2];
        byte* msg = stackalloc byte[56];
        int* pfd = stackalloc int[2];
        while (true)
        {
            pfd[0] = fd; pfd[1] = Consts.POLLIN;
            int left = (int)Math.Max(0, (deadline - DateTime.UtcNow).TotalMilliseconds);
            int rc = LibC.poll(pfd, 1, left);
            if (rc < 0 && Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
            if (rc == 0) return (pid, ready, error ?? $"jail setup did not finish within {o.SetupTimeout.TotalSeconds:0} s");
            new Span<byte>(msg, 56).Clear();
            new Span<byte>(control, 64).Clear();
            iov[0] = (long)buf; iov[1] = 16;
            *(long*)(msg + 16) = (long)iov;
            *(long*)(msg + 24) = 1;
            *(long*)(msg + 32) = (long)control;
            *(long*)(msg + 40) = 64;
            nint n = LibC.recvmsg(fd, msg, 0x40000000 /* MSG_CMSG_CLOEXEC */);
            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
                throw LinuxException.Last("recvmsg", "jail sync");
            }
            if (n == 0) return (pid, ready, error);
            if (n != 16) { error ??= $"jail stub: a short record ({n} bytes)"; continue; }
            int type = *(int*)buf, a = *(int*)(buf + 4), b = *(int*)(buf + 8);
            int passed = -1;
            if (*(long*)(msg + 40) >= 20 && *(int*)(control + 8) == 1 && *(int*)(control + 12) == 1) passed = *(int*)(control + 16);
            switch (type)
            {
                case JailStub.RecordError:
                    var what = describe(a);
                    error ??= what.StartsWith("exec ", StringComparison.Ordinal)
                        ? $"{what}: {LinuxException.Describe(b)}"
                        : $"jail setup: {what}: {LinuxException.Describe(b)}";
                    break;
                case RecordPid:
                    pid = a;
                    break;
                case RecordReady:
                    ready = true;
                    break;
                case RecordListener when passed >= 0:
                    try
                    {
                        if (o.OnSeccompFd is null) throw new RuntimeError("linux.seccomp: a notify filter needs a listener");
                        o.OnSeccompFd(pid, passed);
                    }
                    // Not thrown from here: the caller knows the jail's pid only once this returns, and kills it then.
                    catch (Exception e) when (e is RuntimeError or LinuxException or IOException) { error ??= e.Message; }
                    finally { Fd.Close(passed); }
                    break;
                default:
                    if (passed >= 0) Fd.Close(passed);
                    error ??= $"jail stub: unknown record {type}";
                    break;
            }
        }
    }
}

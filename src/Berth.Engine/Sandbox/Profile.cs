using Berth.Engine.Containers;
using Berth.Linux.Seccomp;
using Berth.Oci.Runtime;
using Berth.Runtime.Seccomp;
using OciSeccomp = Berth.Oci.Runtime.Seccomp;

namespace Berth.Engine.Sandbox;

/// <summary>
/// The sandbox's seccomp policy: berth's built-in allowlist for compiled C/C++, Java and Python
/// programs, or a custom OCI/containers-format profile (--seccomp FILE). Every system call the
/// native table knows is named: the allowlist is ALLOW, everything else is a violation
/// (SCMP_ACT_NOTIFY, so the supervisor records it and acts per --on-violation). Numbers the table
/// does not know (calls newer than berth's headers) fail with ENOSYS, as on a kernel without
/// them; clone3 too, so libc falls back to clone, whose flags the filter can see. Only the native
/// ABI is allowed: a 32-bit or x32 call is killed by the filter (SIGSYS, verdict SV). See docs/sandbox.md.
/// </summary>
public static class SandboxProfile
{
    public const string ViolationAction = "SCMP_ACT_NOTIFY";
    private const uint ENOSYS = 38, EPERM = 1;

    /// <summary>System calls a program may make freely, by purpose (the table in docs/sandbox.md follows this order).</summary>
    public static readonly (string Purpose, string[] Names)[] Allowed =
    [
        ("memory", ["brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "msync", "mincore", "mlock", "mlock2",
            "munlock", "mlockall", "munlockall", "membarrier", "get_mempolicy", "set_mempolicy", "mbind",
            "pkey_alloc", "pkey_free", "pkey_mprotect", "memfd_create"]),
        ("file I/O on descriptors", ["read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
            "preadv2", "pwritev2", "lseek", "close", "close_range", "dup", "dup2", "dup3", "fcntl", "flock", "fstat",
            "fstatfs", "ftruncate", "fsync", "fdatasync", "fadvise64", "fallocate", "sendfile", "copy_file_range",
            "splice", "tee", "sync_file_range", "syncfs", "getdents", "getdents64", "pipe", "pipe2", "ioctl"]),
        ("paths (inside the jail's own mounts)", ["open", "openat", "openat2", "creat", "stat", "lstat", "newfstatat",
            "statx", "statfs", "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getcwd", "chdir", "fchdir",
            "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat",
            "symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat", "truncate",
            "utime", "utimes", "utimensat", "futimesat", "umask", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
            "llistxattr", "flistxattr", "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch"]),
        ("waiting and events", ["poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
            "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "timerfd_create", "timerfd_settime",
            "timerfd_gettime", "signalfd", "signalfd4", "futex", "futex_waitv", "set_robust_list", "get_robust_list",
            "restart_syscall"]),
        ("signals and timers", ["rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending",
            "rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "kill", "tkill", "tgkill", "pause",
            "alarm", "setitimer", "getitimer", "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun",
            "timer_delete", "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time", "times"]),
        ("processes and threads (clone only without namespace flags)", ["fork", "vfork", "execve", "execveat", "exit",
            "exit_group", "wait4", "waitid", "set_tid_address", "rseq", "arch_prctl", "prctl", "sched_yield",
            "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_getscheduler", "sched_get_priority_max",
            "sched_get_priority_min", "sched_rr_get_interval", "getpriority", "setpriority", "ioprio_get",
            "pidfd_open", "pidfd_send_signal"]),
        ("identity and limits (read, or only lowered without capabilities)", ["getpid", "getppid", "gettid", "getuid",
            "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "getpgrp", "getpgid", "getsid",
            "setsid", "setpgid", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
            "setfsuid", "setfsgid", "capget", "capset", "getrlimit", "setrlimit", "prlimit64", "getrusage", "sysinfo",
            "uname", "getcpu", "getrandom"]),
        ("sockets on descriptors (socket() itself: AF_UNIX only unless --net)", ["socketpair", "connect", "bind",
            "listen", "accept", "accept4", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
            "shutdown", "getsockname", "getpeername", "setsockopt", "getsockopt"]),
    ];

    /// <summary>clone flags that make namespaces: a clone with any of them is a violation.</summary>
    private static readonly ulong[] CloneNamespaceFlags =
        [0x00020000 /* NEWNS */, 0x02000000 /* NEWCGROUP */, 0x04000000 /* NEWUTS */, 0x08000000 /* NEWIPC */,
         0x10000000 /* NEWUSER */, 0x20000000 /* NEWPID */, 0x40000000 /* NEWNET */];

    /// <summary>ioctl requests that reach outside the jail through an inherited terminal.</summary>
    private static readonly ulong[] TerminalIoctls = [0x5412 /* TIOCSTI */, 0x541C /* TIOCLINUX */];

    /// <summary>The built-in profile as an OCI linux.seccomp section for the host's ABI.</summary>
    public static OciSeccomp BuiltIn(bool net, string listenerPath, SeccompArch native)
    {
        var allowed = new HashSet<string>(Allowed.SelectMany(a => a.Names), StringComparer.Ordinal);
        var conditional = new HashSet<string>(StringComparer.Ordinal) { "clone", "clone3", "socket", "ioctl" };
        if (net) allowed.Add("socket");
        allowed.Remove("ioctl");
        var rules = new List<SeccompSyscall>
        {
            new() { Names = [.. allowed.Where(n => SyscallTable.Resolve(native, n) >= 0).Order(StringComparer.Ordinal)], Action = "SCMP_ACT_ALLOW" },
            // libc tries clone3 first and falls back to clone on ENOSYS; clone's flags are in a register the filter can read.
            new() { Names = ["clone3"], Action = "SCMP_ACT_ERRNO", ErrnoRet = ENOSYS },
            new() { Names = ["clone"], Action = ViolationAction, Args = [.. CloneNamespaceFlags.Select(f => MaskedEq(0, f, f))] },
            new() { Names = ["clone"], Action = "SCMP_ACT_ALLOW", Args = [Always(0)] },
            new() { Names = ["ioctl"], Action = ViolationAction, Args = [.. TerminalIoctls.Select(r => MaskedEq(1, 0xffffffff, r))] },
            new() { Names = ["ioctl"], Action = "SCMP_ACT_ALLOW", Args = [Always(1)] },
        };
        if (!net)
        {
            rules.Add(new() { Names = ["socket"], Action = "SCMP_ACT_ALLOW", Args = [new SeccompArg { Index = 0, Op = "SCMP_CMP_EQ", Value = 1 /* AF_UNIX */ }] });
            rules.Add(new() { Names = ["socket"], Action = ViolationAction, Args = [Always(0)] });
        }
        var forbidden = SyscallTable.Names(native).Where(n => !allowed.Contains(n) && !conditional.Contains(n)).Distinct().Order(StringComparer.Ordinal).ToList();
        rules.Add(new() { Names = forbidden, Action = ViolationAction });
        return new OciSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            DefaultErrnoRet = ENOSYS,
            Architectures = [ScmpArch(native)],
            ListenerPath = listenerPath,
            Syscalls = rules,
        };
    }

    /// <summary>--seccomp FILE: a containers/Docker-format profile (or a bare OCI linux.seccomp section) for this host.</summary>
    public static OciSeccomp Custom(string path, string listenerPath, SeccompArch native)
    {
        OciSeccomp? s;
        try { s = SeccompProfiles.Resolve(SeccompProfiles.Load(path), boundingCaps: [], native, SeccompProfiles.RunningKernel()); }
        catch (SeccompProfileException e) { throw new EngineError($"--seccomp {path}: {e.Message}"); }
        catch (IOException e) { throw new EngineError($"--seccomp {path}: {e.Message}"); }
        catch (UnauthorizedAccessException e) { throw new EngineError($"--seccomp {path}: {e.Message}"); }
        if (s is null) throw new EngineError($"--seccomp {path}: the profile has no default action and no rules");
        bool notify = s.DefaultAction == ViolationAction || (s.Syscalls ?? []).Any(r => r.Action == ViolationAction);
        s.ListenerPath = notify ? listenerPath : null;
        s.ListenerMetadata = null;
        // Catch what the compiler refuses now, with the file's name on it.
        try { SeccompCompiler.Compile(s, native); }
        catch (SeccompProfileException e) { throw new EngineError($"--seccomp {path}: {e.Message}"); }
        return s;
    }

    /// <summary>
    /// Without user notification (a kernel before 5.5): violations become what the kernel can do
    /// alone: log = SCMP_ACT_LOG, deny = EPERM, kill and quarantine = SCMP_ACT_KILL_PROCESS
    /// (SIGSYS, verdict SV); the filter logs them to the kernel's audit log (FILTER_FLAG_LOG).
    /// </summary>
    public static void WithoutListener(OciSeccomp s, ViolationMode mode)
    {
        var (action, errno) = mode switch
        {
            ViolationMode.Log => ("SCMP_ACT_LOG", (uint?)null),
            ViolationMode.Deny => ("SCMP_ACT_ERRNO", EPERM),
            _ => ("SCMP_ACT_KILL_PROCESS", (uint?)null),
        };
        foreach (var r in s.Syscalls ?? [])
            if (r.Action == ViolationAction) { r.Action = action; r.ErrnoRet = errno; }
        if (s.DefaultAction == ViolationAction) { s.DefaultAction = action; s.DefaultErrnoRet = errno; }
        s.ListenerPath = null;
        s.Flags = [.. s.Flags ?? [], "SECCOMP_FILTER_FLAG_LOG"];
    }

    /// <summary>libseccomp's name of an ABI.</summary>
    public static string ScmpArch(SeccompArch a) => a switch
    {
        SeccompArch.X86_64 => "SCMP_ARCH_X86_64",
        SeccompArch.X86 => "SCMP_ARCH_X86",
        SeccompArch.X32 => "SCMP_ARCH_X32",
        SeccompArch.Aarch64 => "SCMP_ARCH_AARCH64",
        _ => "SCMP_ARCH_ARM",
    };

    private static SeccompArg MaskedEq(uint index, ulong mask, ulong value) =>
        new() { Index = index, Op = "SCMP_CMP_MASKED_EQ", Value = mask, ValueTwo = value };

    /// <summary>A check every value passes ((arg &amp; 0) == 0): "otherwise" after conditional rules of the same call.</summary>
    private static SeccompArg Always(uint index) => MaskedEq(index, 0, 0);
}

using System.Text;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Processes;
using Berth.Runtime.Hooks;
using Berth.Linux.Mounts;
using Berth.Runtime.Rootfs;

namespace Berth.Runtime.Init;

/// <summary>
/// Stage 2: the container's init (PID 1 of its pid namespace), single-threaded. Builds the
/// rootfs, pivots into it, sets credentials, reports "ready", blocks on the exec fifo until
/// `start`, then execs the user's process.
/// </summary>
internal static class ContainerInit
{
    public static void Run(InitPlan plan, SyncChannel sync)
    {
        string step = "init";
        string startHooksState = "";
        string exe;
        int fifo;
        try
        {
            step = "setsid"; Logging.Timing.Mark(step);
            LibC.setsid();
            if (!plan.InUserNs) Proc.Prctl(Consts.PR_SET_DUMPABLE, 0, what: "prctl(PR_SET_DUMPABLE)");
            LibC.umask(0);
            if (!plan.NoNewKeyring) JoinSessionKeyring(plan.Id);

            step = "prepare rootfs"; Logging.Timing.Mark(step);
            MountSetup.PrepareRoot(plan);
            int rootFd = Fd.Open(plan.Rootfs, Consts.O_PATH | Consts.O_DIRECTORY);
            step = "mount"; Logging.Timing.Mark(step);
            MountSetup.MountAll(plan, rootFd);
            step = "create devices"; Logging.Timing.Mark(step);
            Devices.Create(plan, rootFd);
            Devices.PtmxLink(rootFd);
            LibC.close(rootFd);

            // The parent opened the fifo O_RDWR (never blocks); the read below blocks until `start` writes.
            fifo = plan.FifoFd;
            step = "create cwd"; Logging.Timing.Mark(step);
            CreateCwd(plan);

            step = "hooks"; Logging.Timing.Mark(step);
            sync.Send("hooks");
            var states = sync.Expect("hooksdone", "waiting for the runtime's hooks");
            startHooksState = states.Length > 2 ? states[2] : "";
            HookRunner.RunAll(plan.Spec.Hooks?.CreateContainer, states.Length > 1 ? states[1] : "", "createContainer");

            step = "pivot_root"; Logging.Timing.Mark(step);
            RootfsFinalize.PivotRoot(plan);
            step = "sysctl"; Logging.Timing.Mark(step);
            RootfsFinalize.Sysctls(plan);
            step = "hostname"; Logging.Timing.Mark(step);
            RootfsFinalize.Names(plan);
            step = "readonly paths"; Logging.Timing.Mark(step);
            RootfsFinalize.ReadonlyPaths(plan);
            step = "masked paths"; Logging.Timing.Mark(step);
            RootfsFinalize.MaskedPaths(plan);
            step = "readonly rootfs"; Logging.Timing.Mark(step);
            RootfsFinalize.RootReadonly(plan);
            step = "console"; Logging.Timing.Mark(step);
            ContainerConsole.Setup(plan);
            step = "rlimits"; Logging.Timing.Mark(step);
            ProcessSetup.Rlimits(plan);
            ProcessSetup.OomScoreAdj(plan);
            step = "seccomp"; Logging.Timing.Mark(step);
            LoadSeccompEarly(plan, sync);
            step = "credentials"; Logging.Timing.Mark(step);
            ProcessSetup.Credentials(plan);
            step = "cwd"; Logging.Timing.Mark(step);
            EnterCwd(plan);
            step = "find executable"; Logging.Timing.Mark(step);
            exe = ProcessSetup.ResolveExecutable(plan);
            if (plan.NoNewPrivileges) Proc.Prctl(Consts.PR_SET_NO_NEW_PRIVS, 1, what: "prctl(PR_SET_NO_NEW_PRIVS)");
            LibC.umask(plan.Umask);
            sync.Send("ready");
            if (plan.ExecStubFd >= 0) ExecThroughStub(plan, exe, sync); // never returns
            sync.Close();
        }
        catch (Exception e)
        {
            try { sync.Send("error", step, e.Message); } catch (Exception) { }
            Proc.Exit(1);
            return;
        }

        try
        {
            Span<byte> b = stackalloc byte[1];
            if (Fd.Read(fifo, b) != 1) Proc.Exit(1);
            LibC.close(fifo);
            HookRunner.RunAll(plan.Spec.Hooks?.StartContainer, startHooksState, "startContainer");
        }
        catch (Exception e)
        {
            try { Fd.WriteAll(2, Encoding.UTF8.GetBytes($"berth: {e.Message}\n")); } catch (Exception) { }
            Proc.Exit(127);
        }
        ExecProcess(plan, exe);
    }

    /// <summary>
    /// Without no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter: load it while the
    /// process still has it, before the capability sets are reduced. A filter with a listener is
    /// loaded here too: its notify fd must reach the runtime (and through it the listener) before
    /// "ready", while the runtime still waits on us. Otherwise the filter waits for <see cref="ExecProcess"/>.
    /// </summary>
    internal static void LoadSeccompEarly(InitPlan plan, SyncChannel sync)
    {
        if (plan.Seccomp is null || (plan.NoNewPrivileges && !plan.Seccomp.HasListener)) return;
        int notifyFd = LoadSeccomp(plan);
        if (!plan.Seccomp.HasListener) return;
        if (notifyFd < 0) throw new RuntimeError("linux.seccomp: the kernel returned no notify fd");
        sync.SendWithFd("seccompfd", notifyFd);
        LibC.close(notifyFd);
    }

    /// <summary>The last steps of init and exec: the late seccomp filter, fds, execve. Never returns.</summary>
    internal static void ExecProcess(InitPlan plan, string exe)
    {
        try
        {
            // Default dispositions and no blocked signals for the program (the runtime ignores SIGPIPE).
            Berth.Linux.Processes.Signals.ResetForExec();
            if (plan.Seccomp is not null && plan.NoNewPrivileges && !plan.Seccomp.HasListener) LoadSeccomp(plan);
            // Nothing of the runtime's may reach the user's process (CVE-2024-21626).
            Fd.CloexecFrom(3 + plan.PreserveFds);
            for (int i = 3; i < 3 + plan.PreserveFds; i++) LibC.fcntl(i, Consts.F_SETFD, 0);
            if (plan.ReaperStatusFd >= 0)
            {
                // posix_spawn, not fork + exec: no copy of the runtime's memory for a child that execs at once.
                int child = Proc.Spawn(exe, plan.Args, plan.Env);
                Reaper.Run(child, plan.ReaperStatusFd); // never returns
            }
            else if (plan.InitProcess)
            {
                int child = Proc.Fork();
                if (child > 0) Reaper.RunInit(child); // never returns
            }
            Proc.Exec(exe, plan.Args, plan.Env);
        }
        catch (Exception e)
        {
            try { Fd.WriteAll(2, Encoding.UTF8.GetBytes($"berth: {e.Message}\n")); } catch (Exception) { }
        }
        Proc.Exit(127);
    }

    /// <summary>
    /// With the sealed exec stub (docs/adr/0013): the last steps of <see cref="ExecProcess"/>, then exec
    /// the stub, which waits on the fifo and runs the program. The sync socket stays open (close-on-exec)
    /// so the parent sees EOF once the stub runs, or an "error" if it could not. Never returns.
    /// </summary>
    private static void ExecThroughStub(InitPlan plan, string exe, SyncChannel sync)
    {
        try
        {
            // Default dispositions and no blocked signals for the program (the runtime ignores SIGPIPE).
            Berth.Linux.Processes.Signals.ResetForExec();
            if (plan.Seccomp is not null && plan.NoNewPrivileges && !plan.Seccomp.HasListener) LoadSeccomp(plan);
            // Nothing of the runtime's may reach the user's process (CVE-2024-21626); the stub closes the fifo.
            Fd.CloexecFrom(3);
            if (LibC.fcntl(plan.FifoFd, Consts.F_SETFD, 0) != 0) throw LinuxException.Last("fcntl", "exec fifo");
            int err = ExecStub.Exec(plan.ExecStubFd, plan.FifoFd, exe, plan.Args, plan.Env);
            throw new LinuxException("execute the exec stub", null, err);
        }
        catch (Exception e)
        {
            try { sync.Send("error", "exec", e.Message); } catch (Exception) { }
        }
        Proc.Exit(1);
    }

    /// <summary>mkdir -p the cwd inside the rootfs as runc does; best effort (the rootfs may be read-only).</summary>
    private static void CreateCwd(InitPlan plan)
    {
        int root = Fd.Open(plan.Rootfs, Consts.O_PATH | Consts.O_DIRECTORY);
        try { Fd.Close(InRoot.MkdirAll(root, plan.Cwd)); }
        catch (LinuxException) { /* reported by EnterCwd if it really is missing */ }
        finally { LibC.close(root); }
    }

    /// <summary>
    /// chdir into process.cwd resolved inside the new root without magic links, so a cwd such as
    /// /proc/self/fd/N cannot land on a directory fd inherited from the host (CVE-2024-21626).
    /// </summary>
    internal static void EnterCwd(InitPlan plan)
    {
        int root = Fd.Open("/", Consts.O_PATH | Consts.O_DIRECTORY);
        try
        {
            int dir = InRoot.TryOpen(root, plan.Cwd, Consts.O_PATH | Consts.O_DIRECTORY, 0, false, out int err);
            if (dir < 0) throw new RuntimeError($"process.cwd: {plan.Cwd}: {LinuxException.Describe(err)}");
            try
            {
                if (LibC.fchdir(dir) != 0) throw new RuntimeError($"process.cwd: chdir to {plan.Cwd}: {LinuxException.Describe(System.Runtime.InteropServices.Marshal.GetLastPInvokeError())}");
            }
            finally { LibC.close(dir); }
        }
        finally { LibC.close(root); }
        // getcwd reports "(unreachable)" for a directory outside the process's root.
        if (!Directory.GetCurrentDirectory().StartsWith('/'))
            throw new RuntimeError($"process.cwd: {plan.Cwd} is outside the container's root");
    }

    /// <summary>Loads the filter; returns the notify fd (NEW_LISTENER) or -1.</summary>
    internal static int LoadSeccomp(InitPlan plan)
    {
        int err = Berth.Linux.Seccomp.SeccompLoader.TryLoad(plan.Seccomp!.Filter, plan.Seccomp.Flags, out int notifyFd);
        if (err != 0)
            throw new RuntimeError($"linux.seccomp: load filter of {plan.Seccomp.Filter.Length} instructions: {LinuxException.Describe(err)}");
        return notifyFd;
    }

    private static unsafe void JoinSessionKeyring(string id)
    {
        // keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a fresh session keyring, so containers do not share the host's.
        long nr = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture ==
            System.Runtime.InteropServices.Architecture.Arm64 ? 219 : 250;
        fixed (byte* name = CString.Of("_ses." + id))
            LibC.syscall(nr, 1, (long)name, 0, 0, 0, 0);
    }
}

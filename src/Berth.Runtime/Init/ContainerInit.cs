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
            step = "setsid";
            LibC.setsid();
            if (!plan.InUserNs) Proc.Prctl(Consts.PR_SET_DUMPABLE, 0, what: "prctl(PR_SET_DUMPABLE)");
            LibC.umask(0);
            if (!plan.NoNewKeyring) JoinSessionKeyring(plan.Id);

            step = "prepare rootfs";
            MountSetup.PrepareRoot(plan);
            int rootFd = Fd.Open(plan.Rootfs, Consts.O_PATH | Consts.O_DIRECTORY);
            step = "mount";
            MountSetup.MountAll(plan, rootFd);
            step = "create devices";
            Devices.Create(plan, rootFd);
            Devices.PtmxLink(rootFd);
            LibC.close(rootFd);

            step = "open exec fifo";
            // O_RDWR never blocks on a FIFO; the read below blocks until `start` writes.
            fifo = Fd.Open(plan.FifoPath, Consts.O_RDWR);

            step = "hooks";
            sync.Send("hooks");
            var states = sync.Expect("hooksdone", "waiting for the runtime's hooks");
            startHooksState = states.Length > 2 ? states[2] : "";
            HookRunner.RunAll(plan.Spec.Hooks?.CreateContainer, states.Length > 1 ? states[1] : "", "createContainer");

            step = "pivot_root";
            RootfsFinalize.PivotRoot(plan);
            step = "sysctl";
            RootfsFinalize.Sysctls(plan);
            step = "hostname";
            RootfsFinalize.Names(plan);
            step = "readonly paths";
            RootfsFinalize.ReadonlyPaths(plan);
            step = "masked paths";
            RootfsFinalize.MaskedPaths(plan);
            step = "readonly rootfs";
            RootfsFinalize.RootReadonly(plan);
            step = "rlimits";
            ProcessSetup.Rlimits(plan);
            ProcessSetup.OomScoreAdj(plan);
            step = "credentials";
            ProcessSetup.Credentials(plan);
            step = "cwd";
            try { Mount.Chdir(plan.Cwd); }
            catch (LinuxException e) { throw new RuntimeError($"process.cwd: chdir to {plan.Cwd}: {LinuxException.Describe(e.Errno)}"); }
            step = "find executable";
            exe = ProcessSetup.ResolveExecutable(plan);
            if (plan.NoNewPrivileges) Proc.Prctl(Consts.PR_SET_NO_NEW_PRIVS, 1, what: "prctl(PR_SET_NO_NEW_PRIVS)");
            LibC.umask(plan.Umask);
            sync.Send("ready");
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
            // Nothing of the runtime's may reach the user's process (CVE-2024-21626).
            Fd.CloexecFrom(3 + plan.PreserveFds);
            for (int i = 3; i < 3 + plan.PreserveFds; i++) LibC.fcntl(i, Consts.F_SETFD, 0);
            Proc.Exec(exe, plan.Args, plan.Env);
        }
        catch (Exception e)
        {
            try { Fd.WriteAll(2, Encoding.UTF8.GetBytes($"berth: {e.Message}\n")); } catch (Exception) { }
        }
        Proc.Exit(127);
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

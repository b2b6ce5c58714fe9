using System.Text;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Processes;

namespace Berth.Runtime.Init;

/// <summary>
/// Stage 2 of `exec`: a child forked inside the container's namespaces (the intermediate has
/// joined them all, mount last). No rootfs work: terminal, limits, credentials, cwd, seccomp, exec.
/// </summary>
internal static class ExecInit
{
    public static void Run(InitPlan plan, SyncChannel sync)
    {
        string step = "exec";
        string exe;
        try
        {
            if (!plan.InUserNs) Proc.Prctl(Consts.PR_SET_DUMPABLE, 0, what: "prctl(PR_SET_DUMPABLE)");
            if (plan.Terminal)
            {
                step = "console";
                LibC.setsid();
                ContainerConsole.Setup(plan);
            }
            step = "rlimits";
            ProcessSetup.Rlimits(plan);
            if (plan.Seccomp is not null && (!plan.NoNewPrivileges || plan.Seccomp.HasListener))
            {
                step = "seccomp";
                int notifyFd = ContainerInit.LoadSeccomp(plan);
                if (plan.Seccomp.HasListener)
                {
                    if (notifyFd < 0) throw new RuntimeError("linux.seccomp: the kernel returned no notify fd");
                    sync.SendWithFd("seccompfd", notifyFd);
                    LibC.close(notifyFd);
                }
            }
            step = "credentials";
            ProcessSetup.Credentials(plan);
            step = "cwd";
            ContainerInit.EnterCwd(plan);
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
            if (plan.Seccomp is not null && plan.NoNewPrivileges && !plan.Seccomp.HasListener) ContainerInit.LoadSeccomp(plan);
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
}

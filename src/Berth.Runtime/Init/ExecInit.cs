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
            step = "seccomp";
            ContainerInit.LoadSeccompEarly(plan, sync);
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
        ContainerInit.ExecProcess(plan, exe);
    }
}

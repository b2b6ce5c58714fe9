using Berth.Linux;
using Berth.Linux.Interop;
using Berth.Linux.Namespaces;
using Berth.Linux.Processes;

namespace Berth.Runtime.Init;

/// <summary>
/// Stage 1, in the first forked child (single-threaded): joins and creates namespaces, then
/// forks the container's init so that it is PID 1 of a new pid namespace, reports the init's
/// pid to the parent and exits.
/// </summary>
internal static class Intermediate
{
    public static void Run(InitPlan plan, SyncChannel sync)
    {
        string step = "wait for parent";
        try
        {
            sync.Expect("go", "waiting for the parent");
            // Open every namespace first: once the mount namespace is joined, /proc paths would
            // resolve in the container's /proc. The mount namespace is joined last for the same reason.
            var fds = new int[plan.Joins.Count];
            for (int i = 0; i < fds.Length; i++)
            {
                step = $"open {Namespace.SpecName(plan.Joins[i].Kind)} namespace {plan.Joins[i].Path}";
                fds[i] = Berth.Linux.Files.Fd.Open(plan.Joins[i].Path, Consts.O_RDONLY);
            }
            for (int i = 0; i < fds.Length; i++)
            {
                var (kind, path) = plan.Joins[i];
                step = $"join {Namespace.SpecName(kind)} namespace {path}";
                if (LibC.setns(fds[i], Namespace.CloneFlag(kind)) != 0) throw LinuxException.Last("setns", path);
                LibC.close(fds[i]);
                if (kind == NamespaceKind.User) BecomeRoot();
            }
            if (plan.NewUserNs)
            {
                step = "create user namespace"; Logging.Timing.Mark(step);
                Namespace.Unshare(Consts.CLONE_NEWUSER);
                sync.Send("userns");
                sync.Expect("mapped", "waiting for uid/gid maps");
                BecomeRoot();
            }
            step = "create namespaces"; Logging.Timing.Mark(step);
            if (plan.UnshareFlags != 0) Namespace.Unshare(plan.UnshareFlags);

            step = "fork container init"; Logging.Timing.Mark(step);
            int pid = Proc.Fork();
            if (pid == 0)
            {
                if (plan.IsExec) ExecInit.Run(plan, sync);
                else ContainerInit.Run(plan, sync);
                Proc.Exit(1); // not reached
            }
            Logging.Timing.Mark("forked init");
            sync.Send("pid", pid.ToString());
            Proc.Exit(0);
        }
        catch (Exception e)
        {
            try { sync.Send("error", step, e.Message); } catch (Exception) { /* parent gone */ }
            Proc.Exit(1);
        }
    }

    private static void BecomeRoot()
    {
        if (LibC.setresgid(0, 0, 0) != 0) throw LinuxException.Last("setresgid 0 in user namespace (is gid 0 mapped?)");
        if (LibC.setresuid(0, 0, 0) != 0) throw LinuxException.Last("setresuid 0 in user namespace (is uid 0 mapped?)");
    }
}

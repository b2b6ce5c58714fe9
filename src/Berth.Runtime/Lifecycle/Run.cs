using System.Runtime.InteropServices;
using Berth.Linux.Processes;
using Berth.Runtime.State;

namespace Berth.Runtime.Lifecycle;

/// <summary>
/// `run`: create + start. In the foreground it forwards signals to the container, waits for
/// its init (we are its subreaper), deletes the container and returns its exit status
/// (128+N for a death by signal N).
/// </summary>
public static class Run
{
    private static readonly PosixSignal[] Forwarded =
        [PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP, PosixSignal.SIGQUIT, PosixSignal.SIGWINCH,
         (PosixSignal)10 /* USR1 */, (PosixSignal)12 /* USR2 */];

    public static int Execute(StateStore store, string id, CreateOptions o, bool detach)
    {
        var c = Create.Execute(store, id, o);
        try { Start.Execute(store, id); }
        catch
        {
            Delete.Destroy(store, c);
            throw;
        }
        Logging.Timing.Mark("started");
        if (detach) return 0;

        int pid = c.Record.InitPid;
        var registrations = Forwarded.Select(s => PosixSignalRegistration.Create(s, ctx =>
        {
            ctx.Cancel = true;
            Proc.Kill(pid, (int)ctx.Signal > 0 ? (int)ctx.Signal : SignalNumber(ctx.Signal));
        })).ToList();
        ExitStatus status;
        try
        {
            status = Proc.Wait(pid) ?? new ExitStatus(255, 0);
        }
        finally
        {
            foreach (var r in registrations) r.Dispose();
        }
        Logging.Timing.Mark("exited");
        using (store.LockContainer(id)) Delete.Destroy(store, c);
        Logging.Timing.Mark("deleted");
        return status.ShellCode;
    }

    private static int SignalNumber(PosixSignal s) => s switch
    {
        PosixSignal.SIGHUP => 1,
        PosixSignal.SIGINT => 2,
        PosixSignal.SIGQUIT => 3,
        PosixSignal.SIGTERM => 15,
        PosixSignal.SIGCHLD => 17,
        PosixSignal.SIGCONT => 18,
        PosixSignal.SIGWINCH => 28,
        PosixSignal.SIGTTIN => 21,
        PosixSignal.SIGTTOU => 22,
        PosixSignal.SIGTSTP => 20,
        _ => 15,
    };
}

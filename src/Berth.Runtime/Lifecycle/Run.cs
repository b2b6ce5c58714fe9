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
    public static int Execute(StateStore store, string id, CreateOptions o, bool detach)
    {
        o.StartInProcess = true; // init waits on a pipe of ours, not an exec fifo in the state dir
        var c = Create.Execute(store, id, o);
        int master = -1;
        try
        {
            if (o.ConsoleReceiveFd >= 0)
            {
                master = Berth.Linux.Sockets.UnixSocket.ReceiveFd(o.ConsoleReceiveFd, "the container's pty");
                Berth.Linux.Files.Fd.Close(o.ConsoleReceiveFd);
            }
            Start.Execute(store, c);
        }
        catch
        {
            Berth.Linux.Files.Fd.Close(master);
            Delete.Destroy(store, c);
            throw;
        }
        Logging.Timing.Mark("started");
        if (detach) return 0;

        var status = master >= 0 ? TerminalProxy.Run(c.Record.InitPid, master) : Foreground.Wait(c.Record.InitPid);
        Logging.Timing.Mark("exited");
        using (store.LockContainer(id)) Delete.Destroy(store, c);
        Logging.Timing.Mark("deleted");
        return status.ShellCode;
    }
}

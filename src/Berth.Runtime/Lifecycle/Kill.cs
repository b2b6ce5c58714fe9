using Berth.Linux.Processes;
using Berth.Runtime.State;

namespace Berth.Runtime.Lifecycle;

/// <summary>`kill [--all] ID [SIGNAL]`.</summary>
public static class Kill
{
    public static int ParseSignal(string? text)
    {
        if (text is null) return Signals.SIGTERM;
        if (!Signals.TryParse(text, out var sig)) throw new RuntimeError($"unknown signal \"{text}\"");
        return sig;
    }

    public static void Execute(StateStore store, string id, int signal, bool all)
    {
        var c = Container.Load(store, id);
        var status = c.Status();
        if (status is "stopped" or "creating") throw new RuntimeError("container not running");
        if (all)
        {
            var cg = CgroupSetup.Open(c.Record.CgroupPath);
            var pids = cg?.Pids() ?? [];
            foreach (var pid in pids) Proc.Kill(pid, signal);
            if (pids.Count == 0) Proc.Kill(c.Record.InitPid, signal);
            return;
        }
        int err = Proc.Kill(c.Record.InitPid, signal);
        if (err != 0) throw new RuntimeError($"kill container init {c.Record.InitPid}: {Berth.Linux.LinuxException.Describe(err)}");
    }
}

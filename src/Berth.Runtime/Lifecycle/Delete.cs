using Berth.Linux.Processes;
using Berth.Runtime.Hooks;
using Berth.Runtime.State;

namespace Berth.Runtime.Lifecycle;

/// <summary>`delete [--force] ID`: stops what is left, runs poststop hooks, removes cgroup and state.</summary>
public static class Delete
{
    public static void Execute(StateStore store, string id, bool force)
    {
        StateStore.ValidateId(id);
        if (!store.Exists(id))
        {
            if (force) return;
            throw new RuntimeError("container does not exist");
        }
        var c = Container.Load(store, id);
        using (store.LockContainer(id))
        {
            var status = c.Status();
            if (status is "running" or "paused" && !force)
                throw new RuntimeError($"cannot delete container {id} that is not stopped: {status}");
            Destroy(store, c);
        }
    }

    /// <summary>Kills every process of the container, then removes its cgroup and state; runs poststop.</summary>
    public static void Destroy(StateStore store, Container c)
    {
        c.CloseStartFd();
        var hooks = Start.HooksOf(c);
        var state = hooks?.Poststop is { Count: > 0 } ? Create.StateJson(c, "stopped") : "";
        var cg = CgroupSetup.Open(c.Record.CgroupPath);
        try { if (cg?.IsFrozen() == true) cg.Thaw(); } catch (Exception) { /* no freezer */ }
        if (c.InitAlive()) Proc.Kill(c.Record.InitPid, Signals.SIGKILL);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            // The usual end of `run`: init reaped, its pid namespace emptied by the kernel. One read of
            // a counter tells, where listing the cgroup tree and its cgroup.procs costs ~0.05 ms.
            if (cg?.Populated() == false && !c.InitAlive()) break;
            var pids = cg?.Pids() ?? [];
            foreach (var pid in pids) Proc.Kill(pid, Signals.SIGKILL);
            // Reap the init if it is our child (run), otherwise wait for its reaper.
            if (c.Record.InitPid > 0) Proc.TryWait(c.Record.InitPid);
            if (pids.Count == 0 && !c.InitAlive()) break;
            if (DateTime.UtcNow > deadline) throw new RuntimeError($"container {c.Id}: processes did not exit after SIGKILL");
            Thread.Sleep(5);
        }
        Logging.Timing.Mark("killed");
        try { cg?.Destroy(); }
        catch (Exception e) { throw new RuntimeError($"remove cgroup {c.Record.CgroupPath}: {e.Message}"); }
        Logging.Timing.Mark("cgroup removed");
        store.Remove(c.Id);
        try { HookRunner.RunAll(hooks?.Poststop, state, "poststop"); }
        catch (RuntimeError e) { Logging.Log.Warn(e.Message); }
    }
}

using Berth.Linux.Cgroups;
using Berth.Runtime.State;

namespace Berth.Runtime.Lifecycle;

/// <summary>
/// `pause ID` and `resume ID`: the cgroup freezer (v1 freezer.state, v2 cgroup.freeze), through the
/// cgroup manager. The status then reads "paused" because <see cref="Container.Status"/> asks the freezer.
/// </summary>
public static class Pause
{
    public static void Execute(StateStore store, string id) => SetFrozen(store, id, frozen: true);

    public static void Resume(StateStore store, string id) => SetFrozen(store, id, frozen: false);

    private static void SetFrozen(StateStore store, string id, bool frozen)
    {
        var c = Container.Load(store, id);
        using (store.LockContainer(id))
        {
            var status = c.Status();
            // The messages runc gives, which clients show as they are.
            if (frozen && status != "running") throw new RuntimeError("container not running");
            if (!frozen && status != "paused") throw new RuntimeError("container not paused");
            var cg = CgroupSetup.Open(c.Record.CgroupPath)
                ?? throw new RuntimeError($"container {id} has no cgroup to {(frozen ? "freeze" : "thaw")}");
            try
            {
                if (frozen) cg.Freeze();
                else cg.Thaw();
            }
            catch (CgroupException e) { throw new RuntimeError(e.Message); }
        }
    }
}

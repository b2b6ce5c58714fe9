using Berth.Linux;
using Berth.Linux.Cgroups;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Runtime.Init;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Lifecycle;

/// <summary>
/// A container that lives only as long as its caller (berth sandbox): the spec stays in memory
/// and nothing is written under a state root (no config.json, state.json, exec fifo or lock), so
/// a run costs no filesystem work beyond its mounts. The caller owns the cgroup (created, limited
/// and later removed or reset by it) and releases the init through <see cref="Release"/>.
/// Same init stages as `create`/`start`: the plan, namespaces, mounts and credentials are those
/// of <see cref="PlanBuilder"/>.
/// </summary>
public static class Ephemeral
{
    public sealed class Options
    {
        /// <summary>See <see cref="InitPlan.ReaperStatusFd"/>.</summary>
        public int ReaperStatusFd { get; init; } = -1;
        /// <summary>Called with init's seccomp notify fd (a filter with SCMP_ACT_NOTIFY); the callee dups what it keeps.</summary>
        public Action<int, int>? OnSeccompFd { get; init; }
    }

    /// <summary>A launched init blocked before execve; <see cref="Release"/> lets it run the process.</summary>
    public sealed class Handle(int pid, int startFd)
    {
        public int InitPid { get; } = pid;
        private int _start = startFd;

        /// <summary>Lets the init exec the process (one byte down its start pipe).</summary>
        public void Release()
        {
            if (_start < 0) return;
            Fd.WriteAll(_start, "0"u8, "the container init's start pipe");
            Fd.Close(_start);
            _start = -1;
        }

        /// <summary>Closes the start pipe without releasing: the init reads EOF and exits.</summary>
        public void Abandon()
        {
            Fd.Close(_start);
            _start = -1;
        }
    }

    /// <summary>Spec -> plan (pure); throws a <see cref="RuntimeError"/> naming the spec field at fault.</summary>
    public static InitPlan Plan(Oci.Runtime.Spec spec, string id, string bundle, string cgroupPath)
    {
        try
        {
            var rootfs = SpecValidator.RootfsPath(spec, bundle);
            return PlanBuilder.Build(spec, id, bundle, rootfs, new PlanBuilder.Options
            {
                CgroupPath = cgroupPath,
                LastCap = Berth.Linux.Security.Capabilities.LastCap(),
            });
        }
        catch (SpecException e) { throw new RuntimeError(e.Message); }
    }

    /// <summary>Forks the init stages into <paramref name="cgroup"/> and returns once init waits to exec.</summary>
    public static Handle Launch(InitPlan plan, ICgroupManager? cgroup, Options o)
    {
        Logging.Timing.Mark("launch");
        var (startRead, startWrite) = Fd.Pipe();
        try
        {
            plan.FifoFd = startRead;
            plan.ReaperStatusFd = o.ReaperStatusFd;
            if (plan.ReaperStatusFd >= 0) Reaper.Prepare();
            int pid;
            try { pid = Launcher.Launch(plan, cgroup, new Host(o)); }
            finally { Fd.Close(startRead); }
            Logging.Timing.Mark("init ready");
            return new Handle(pid, startWrite);
        }
        catch (Exception e)
        {
            Fd.Close(startWrite);
            if (e is RuntimeError) throw;
            if (e is LinuxException or CgroupException or IOException or SpecException) throw new RuntimeError(e.Message);
            throw;
        }
    }

    private sealed class Host(Options o) : Launcher.IHost
    {
        public (string Creating, string Created) OnInitPid(int pid) => ("", "");
        public void RunRuntimeHooks() { }
        public void SendSeccompFd(int pid, int notifyFd)
        {
            if (o.OnSeccompFd is null) throw new RuntimeError("linux.seccomp: a notify filter needs a listener");
            o.OnSeccompFd(pid, notifyFd);
        }
    }
}

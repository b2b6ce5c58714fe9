using Berth.Linux.Processes;
using Berth.Oci.Runtime;

namespace Berth.Runtime.State;

/// <summary>A container as found in the state store, with its live status.</summary>
public sealed class Container(StateStore store, ContainerRecord record)
{
    public StateStore Store { get; } = store;
    public ContainerRecord Record { get; } = record;
    public string Id => Record.Id;

    /// <summary>The config's hooks when this process has the config in memory (create, run); else read from the saved config.</summary>
    public Oci.Runtime.Hooks? KnownHooks { get; set; }
    public bool HooksKnown { get; set; }

    /// <summary>
    /// `run`'s hold on a just-created init: the write end of the pipe it waits on instead of the
    /// exec fifo (-1 otherwise). Start writes one byte to it; Delete closes it.
    /// </summary>
    public int StartFd { get; set; } = -1;

    public void CloseStartFd()
    {
        Berth.Linux.Files.Fd.Close(StartFd);
        StartFd = -1;
    }

    public static Container Load(StateStore store, string id) => new(store, store.Load(id));

    /// <summary>True while the recorded init process (same pid, same start time) is alive and not a zombie.</summary>
    public bool InitAlive()
    {
        if (Record.InitPid <= 0) return false;
        var start = Proc.StartTime(Record.InitPid);
        if (start is null || start != Record.InitStartTime) return false;
        return Proc.State(Record.InitPid) is not ('Z' or 'X' or null);
    }

    /// <summary>creating, created, running, paused or stopped, from the kernel's view, not just the file.</summary>
    public string Status()
    {
        if (Record.Status == "creating" && Record.InitPid == 0) return "creating";
        if (!InitAlive()) return "stopped";
        if (StartFd >= 0 || File.Exists(Store.FifoPath(Id))) return "created";
        if (Paused()) return "paused";
        return "running";
    }

    private bool Paused()
    {
        try
        {
            var cg = Berth.Linux.Cgroups.Cgroups.For(Record.CgroupPath);
            return cg.IsFrozen();
        }
        catch (Exception e) when (e is IOException or PlatformNotSupportedException or Berth.Linux.Cgroups.CgroupException) { return false; }
    }

    public Berth.Oci.Runtime.State ToOciState(string? status = null)
    {
        var s = status ?? Status();
        return new Berth.Oci.Runtime.State
        {
            OciVersion = SpecVersion.Current,
            Id = Id,
            Status = s,
            Pid = s is "stopped" ? 0 : Record.InitPid,
            Bundle = Record.Bundle,
            Rootfs = Record.Rootfs,
            Created = Record.Created,
            Owner = Record.Owner is { Length: > 0 } ? Record.Owner : Store.OwnerOf(Id),
            Annotations = Record.Annotations,
        };
    }
}

using Berth.Oci.Runtime;

namespace Berth.Runtime.State;

/// <summary>What berth remembers about one container (state.json in its state dir).</summary>
public sealed class ContainerRecord
{
    public string Id { get; set; } = "";
    public int InitPid { get; set; }
    /// <summary>Start time of the init process (clock ticks) so a reused pid is not mistaken for it.</summary>
    public ulong InitStartTime { get; set; }
    public string Bundle { get; set; } = "";
    public string Rootfs { get; set; } = "";
    public DateTime Created { get; set; }
    public string Owner { get; set; } = "";
    /// <summary>The last status berth wrote: creating, created, running or stopped.</summary>
    public string Status { get; set; } = "creating";
    public string CgroupPath { get; set; } = "";
    public Dictionary<string, string>? Annotations { get; set; }
    /// <summary>
    /// The config.json text the container was created from (update replaces its linux.resources).
    /// Null in the state of an older berth, which kept it in a config.json file beside state.json.
    /// </summary>
    public string? Config { get; set; }
}

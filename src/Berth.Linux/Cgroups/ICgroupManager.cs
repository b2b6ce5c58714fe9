namespace Berth.Linux.Cgroups;

/// <summary>
/// One container's cgroup, on whatever hierarchy layout the host has (v1, v2 or hybrid).
/// Paths are relative to each hierarchy's root, e.g. "/berth/ID".
/// </summary>
public interface ICgroupManager
{
    /// <summary>The cgroup path relative to the hierarchy roots ("/berth/ID").</summary>
    string Path { get; }

    /// <summary>"v1" or "v2" (the hybrid host is "v1": its controllers are on v1 hierarchies).</summary>
    string Version { get; }

    /// <summary>Creates the cgroup directories (every v1 hierarchy, or the v2 one), idempotent.</summary>
    void Create();

    /// <summary>Writes the resource limits. Throws a <see cref="CgroupException"/> naming the file and value on failure.</summary>
    void Apply(CgroupResources resources);

    /// <summary>Moves <paramref name="pid"/> into the cgroup on every hierarchy.</summary>
    void AddProcess(int pid);

    /// <summary>Every pid in the cgroup (recursive), host pid namespace view.</summary>
    IReadOnlyList<int> Pids();

    /// <summary>
    /// Whether any process is left in the cgroup or below it, from one file (v2: cgroup.events
    /// "populated"; v1: pids.current, which counts the whole subtree); null when this host cannot
    /// tell that way (then <see cref="Pids"/> is the answer).
    /// </summary>
    bool? Populated();

    void Freeze();
    void Thaw();
    bool IsFrozen();

    /// <summary>Current usage figures, as far as the host exposes them.</summary>
    CgroupStats Stats();

    /// <summary>Removes the directories (children first), retrying briefly on EBUSY; idempotent.</summary>
    void Destroy();

    /// <summary>Absolute directories this cgroup occupies (for inspection and leak checks).</summary>
    IReadOnlyList<string> Directories { get; }

    /// <summary>The last of <see cref="Directories"/> is joined best effort only (a hybrid host's unified directory).</summary>
    bool LastDirectoryBestEffort => false;
}

public sealed class CgroupException(string message, Exception? inner = null, int errno = 0) : Exception(message, inner)
{
    /// <summary>The errno behind the failure, 0 when it was not a failed system call.</summary>
    public int Errno { get; } = errno;
}

/// <summary>Resource limits in cgroup terms (the runtime maps the OCI spec onto this).</summary>
public sealed class CgroupResources
{
    public long? MemoryLimit { get; set; }
    public long? MemoryReservation { get; set; }
    /// <summary>OCI semantics: memory+swap total (v1 memsw); -1 unlimited.</summary>
    public long? MemorySwap { get; set; }
    public ulong? MemorySwappiness { get; set; }
    public bool? DisableOomKiller { get; set; }
    public ulong? CpuShares { get; set; }
    public long? CpuQuota { get; set; }
    public ulong? CpuPeriod { get; set; }
    public ulong? CpuBurst { get; set; }
    public long? CpuRealtimeRuntime { get; set; }
    public ulong? CpuRealtimePeriod { get; set; }
    public string? CpusetCpus { get; set; }
    public string? CpusetMems { get; set; }
    public long? CpuIdle { get; set; }
    public long? PidsLimit { get; set; }
    public ushort? BlkioWeight { get; set; }
    /// <summary>Device rules in order; the runtime prepends a deny-all when the spec asks.</summary>
    public List<DeviceRule> Devices { get; } = [];
    public List<(string PageSize, ulong Limit)> HugepageLimits { get; } = [];
    /// <summary>Raw v2 file writes (linux.resources.unified).</summary>
    public Dictionary<string, string> Unified { get; } = [];
}

/// <summary>One device cgroup rule: type 'a', 'c' or 'b'; major/minor -1 means any; access a subset of "rwm".</summary>
public readonly record struct DeviceRule(bool Allow, char Type, long Major, long Minor, string Access)
{
    /// <summary>The v1 devices.allow/deny line, e.g. "c 1:3 rwm" or "a *:* rwm".</summary>
    public string V1Line => $"{Type} {(Major < 0 ? "*" : Major.ToString())}:{(Minor < 0 ? "*" : Minor.ToString())} {Access}";
}

public sealed class CgroupStats
{
    public ulong? MemoryUsage { get; set; }
    public ulong? MemoryMaxUsage { get; set; }
    public ulong? MemoryLimit { get; set; }
    public ulong? OomKills { get; set; }
    public ulong? CpuUsageNanos { get; set; }
    public ulong? PidsCurrent { get; set; }
    public ulong? PidsLimit { get; set; }
}

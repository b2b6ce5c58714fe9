using System.Globalization;

namespace Berth.Linux.Cgroups;

/// <summary>A cgroup on the unified (v2) hierarchy: one directory, controllers enabled top-down.</summary>
internal sealed class CgroupV2Manager : ICgroupManager
{
    private static readonly TimeSpan FreezeTimeout = TimeSpan.FromSeconds(5);
    private readonly ICgroupFs _fs;
    private readonly string _root;
    private readonly string _dir;
    private readonly Action<string, IReadOnlyList<DeviceRule>> _attachDevices;

    /// <param name="attachDevices">Installs the device filter; tests record instead of calling bpf(2).</param>
    public CgroupV2Manager(string path, string mountRoot, ICgroupFs fs, Action<string, IReadOnlyList<DeviceRule>>? attachDevices = null)
    {
        Path = path;
        _root = mountRoot;
        _dir = CgroupTree.Join(mountRoot, path);
        _fs = fs;
        _attachDevices = attachDevices ?? DeviceProgram.Attach;
    }

    public string Path { get; }
    public string Version => "v2";
    public IReadOnlyList<string> Directories => [_dir];

    /// <summary>
    /// Creates each level and, in every ancestor of the leaf, enables the controllers that level
    /// has (its cgroup.controllers) for its children. The leaf's own subtree_control is left
    /// alone: a cgroup with processes cannot delegate controllers ("no internal processes").
    /// </summary>
    public void Create()
    {
        var level = _root;
        foreach (var segment in CgroupTree.Segments(Path))
        {
            EnableControllers(level);
            level = level + "/" + segment;
            _fs.MkdirAll(level);
        }
    }

    private void EnableControllers(string dir)
    {
        var available = Words(_fs.TryRead(System.IO.Path.Combine(dir, "cgroup.controllers")));
        var enabled = Words(_fs.TryRead(System.IO.Path.Combine(dir, "cgroup.subtree_control")));
        var missing = available.Where(c => !enabled.Contains(c)).ToList();
        if (missing.Count == 0) return;
        var file = System.IO.Path.Combine(dir, "cgroup.subtree_control");
        try { _fs.Write(file, string.Join(' ', missing.Select(c => "+" + c))); }
        catch (CgroupException)
        {
            // One refusal (say cpuset, or a threaded subtree) fails the whole write: enable the rest
            // one by one. A limit that needs a missing controller fails later, naming its file.
            foreach (var c in missing)
            {
                try { _fs.Write(file, "+" + c); } catch (CgroupException) { }
            }
        }
    }

    private static List<string> Words(string? text) =>
        text is null ? [] : [.. text.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries)];

    public void Apply(CgroupResources r)
    {
        foreach (var key in r.Unified.Keys) V2Values.CheckUnifiedKey(key);
        foreach (var (size, _) in r.HugepageLimits) V2Values.CheckPageSize(size);
        if (r.CpuRealtimePeriod is not (null or 0) || r.CpuRealtimeRuntime is not (null or 0))
            throw new CgroupException("cgroup: realtime cpu limits (cpu.realtimePeriod/realtimeRuntime) are not supported on cgroup v2");
        var swapMax = V2Values.SwapMax(r.MemorySwap, r.MemoryLimit);

        // memory.swappiness and memory.oom_control have no v2 counterpart; like runc, they are not applied here.
        if (r.MemoryLimit is { } limit) Write("memory.max", V2Values.Limit(limit));
        if (swapMax is not null)
        {
            if (_fs.FileExists(System.IO.Path.Combine(_dir, "memory.swap.max"))) Write("memory.swap.max", swapMax);
            else if (swapMax is not ("max" or "0"))
                throw new CgroupException($"cgroup: memory+swap limit {r.MemorySwap} requested, but {_dir}/memory.swap.max does not exist (swap accounting is off)");
        }
        if (r.MemoryReservation is { } low) Write("memory.low", V2Values.Limit(low));

        if (r.CpuShares is { } shares && V2Values.CpuWeight(shares) is { } weight) Write("cpu.weight", Num(weight));
        if (V2Values.CpuMax(r.CpuQuota, r.CpuPeriod) is { } cpuMax) Write("cpu.max", cpuMax);
        if (r.CpuBurst is { } burst) Write("cpu.max.burst", Num(burst));
        if (r.CpuIdle is { } idle) Write("cpu.idle", idle.ToString(CultureInfo.InvariantCulture));
        if (!string.IsNullOrEmpty(r.CpusetCpus)) Write("cpuset.cpus", r.CpusetCpus);
        if (!string.IsNullOrEmpty(r.CpusetMems)) Write("cpuset.mems", r.CpusetMems);
        if (r.PidsLimit is { } pids) Write("pids.max", pids > 0 ? pids.ToString(CultureInfo.InvariantCulture) : "max");
        if (r.BlkioWeight is { } blkio && V2Values.IoWeight(blkio) is { } io) Write("io.weight", Num(io));
        foreach (var (size, max) in r.HugepageLimits) Write($"hugetlb.{size}.max", Num(max));
        if (r.Devices.Count > 0) _attachDevices(_dir, r.Devices);
        // Last, so that an explicit unified value wins over one derived above.
        foreach (var (key, value) in r.Unified)
        {
            var file = System.IO.Path.Combine(_dir, key);
            if (!_fs.FileExists(file))
                throw new CgroupException($"cgroup: linux.resources.unified[\"{key}\"]: {file} does not exist (is its controller enabled?)");
            _fs.Write(file, value);
        }
    }

    public void AddProcess(int pid) => Write("cgroup.procs", pid.ToString(CultureInfo.InvariantCulture));

    public IReadOnlyList<int> Pids() => CgroupTree.Pids(_fs, _dir);

    public bool? Populated() => CgroupTree.ReadKey(_fs, System.IO.Path.Combine(_dir, "cgroup.events"), "populated") is { } v ? v != 0 : null;

    public void Freeze() => SetFrozen(true);
    public void Thaw() => SetFrozen(false);

    private void SetFrozen(bool frozen)
    {
        var file = System.IO.Path.Combine(_dir, "cgroup.freeze");
        if (!_fs.FileExists(file))
            throw new CgroupException($"cgroup: {file} does not exist (the cgroup v2 freezer needs Linux 5.2 or later)");
        var value = frozen ? "1" : "0";
        _fs.Write(file, value);
        if (CgroupTree.WaitFor(() => IsFrozen() == frozen, null, FreezeTimeout)) return;
        if (frozen)
        {
            try { _fs.Write(file, "0"); } catch (CgroupException) { }
        }
        throw new CgroupException($"cgroup: {_dir}/cgroup.events did not report frozen {value} within {FreezeTimeout.TotalSeconds:0} s");
    }

    public bool IsFrozen() => CgroupTree.ReadKey(_fs, System.IO.Path.Combine(_dir, "cgroup.events"), "frozen") == 1;

    public CgroupStats Stats() => new()
    {
        MemoryUsage = CgroupTree.ReadNumber(_fs, File("memory.current")),
        MemoryMaxUsage = CgroupTree.ReadNumber(_fs, File("memory.peak")),
        MemoryLimit = CgroupTree.ReadNumber(_fs, File("memory.max")),
        OomKills = CgroupTree.ReadKey(_fs, File("memory.events"), "oom_kill"),
        CpuUsageNanos = CgroupTree.ReadKey(_fs, File("cpu.stat"), "usage_usec") * 1000,
        PidsCurrent = CgroupTree.ReadNumber(_fs, File("pids.current")),
        PidsLimit = CgroupTree.ReadNumber(_fs, File("pids.max")),
    };

    public void Destroy() => CgroupTree.Remove(_fs, _dir);

    private string File(string name) => System.IO.Path.Combine(_dir, name);
    private void Write(string file, string value) => _fs.Write(File(file), value);
    private static string Num(ulong v) => v.ToString(CultureInfo.InvariantCulture);
}

using System.Globalization;

namespace Berth.Linux.Cgroups;

/// <summary>
/// A cgroup on v1 hierarchies: one directory per mounted hierarchy (cpu, memory, ..., systemd),
/// plus, on hybrid hosts, a best-effort directory in the cgroup2 mount so that tools that look
/// at the unified hierarchy (systemd, podman) see the container's processes grouped too.
/// </summary>
internal sealed class CgroupV1Manager : ICgroupManager
{
    private static readonly TimeSpan FreezeTimeout = TimeSpan.FromSeconds(5);
    private readonly ICgroupFs _fs;
    private readonly List<V1Hierarchy> _hierarchies;
    private readonly string? _unified;

    public CgroupV1Manager(string path, List<V1Hierarchy> hierarchies, string? unifiedRoot, ICgroupFs fs)
    {
        Path = path;
        _hierarchies = hierarchies;
        _unified = unifiedRoot is null ? null : CgroupTree.Join(unifiedRoot, path);
        _fs = fs;
    }

    public string Path { get; }
    public string Version => "v1";
    internal IReadOnlyList<V1Hierarchy> Hierarchies => _hierarchies;
    internal bool HasUnified => _unified is not null;

    public bool LastDirectoryBestEffort => _unified is not null;

    public IReadOnlyList<string> Directories =>
        [.. _hierarchies.Select(h => CgroupTree.Join(h.Root, Path)), .. _unified is null ? Array.Empty<string>() : [_unified]];

    /// <summary>The container's directory in the hierarchy carrying <paramref name="controller"/>, or null.</summary>
    internal string? Dir(string controller)
    {
        var h = _hierarchies.FirstOrDefault(h => h.Controllers.Contains(controller));
        return h is null ? null : CgroupTree.Join(h.Root, Path);
    }

    private string Require(string controller, string what) =>
        Dir(controller) ?? throw new CgroupException(
            $"cgroup: {what} needs the {controller} controller, which is not mounted on this host");

    public void Create()
    {
        foreach (var h in _hierarchies)
        {
            _fs.MkdirAll(CgroupTree.Join(h.Root, Path));
            if (h.Controllers.Contains("cpuset")) InitCpuset(h.Root);
        }
        if (_unified is not null)
        {
            try { _fs.MkdirAll(_unified); }
            catch (CgroupException) { /* best effort: the v1 controllers are what limit the container */ }
        }
    }

    /// <summary>
    /// A new cpuset cgroup starts with empty cpuset.cpus/mems, and joining it then fails with
    /// ENOSPC. Copy each empty level's value from its parent, top-down.
    /// </summary>
    private void InitCpuset(string root)
    {
        // A child is never set where its parent is empty: a set leaf means every level is set (and the
        // parent's cgroup.clone_children, set below the first time, makes the kernel copy at mkdir).
        var leaf = CgroupTree.Join(root, Path);
        if (_fs.TryRead(System.IO.Path.Combine(leaf, "cpuset.cpus"))?.Trim().Length > 0 &&
            _fs.TryRead(System.IO.Path.Combine(leaf, "cpuset.mems"))?.Trim().Length > 0) return;
        var parent = root;
        foreach (var segment in CgroupTree.Segments(Path))
        {
            var dir = parent + "/" + segment;
            foreach (var file in (string[])["cpuset.cpus", "cpuset.mems"])
            {
                var own = _fs.TryRead(System.IO.Path.Combine(dir, file));
                if (own is null || own.Trim().Length > 0) continue;
                var inherited = _fs.TryRead(System.IO.Path.Combine(parent, file))?.Trim();
                if (!string.IsNullOrEmpty(inherited)) _fs.Write(System.IO.Path.Combine(dir, file), inherited);
            }
            parent = dir;
        }
        // Only berth's own parent (the default cgroupsPath, /berth/ID): another's cgroup is not ours to configure.
        var leafParent = System.IO.Path.GetDirectoryName(leaf);
        if (leafParent == root + "/berth")
        {
            try { _fs.Write(System.IO.Path.Combine(leafParent, "cgroup.clone_children"), "1"); }
            catch (CgroupException) { /* only a shortcut for the next container */ }
        }
    }

    public void Apply(CgroupResources r)
    {
        if (r.Unified.Count > 0)
            throw new CgroupException("cgroup: linux.resources.unified needs cgroup v2, and this host's controllers are on v1 hierarchies");
        foreach (var (size, _) in r.HugepageLimits) V2Values.CheckPageSize(size);

        ApplyMemory(r);
        ApplyCpu(r);
        if (r.CpusetCpus is not null || r.CpusetMems is not null)
        {
            var dir = Require("cpuset", "a cpuset");
            if (!string.IsNullOrEmpty(r.CpusetCpus)) Write(dir, "cpuset.cpus", r.CpusetCpus);
            if (!string.IsNullOrEmpty(r.CpusetMems)) Write(dir, "cpuset.mems", r.CpusetMems);
        }
        if (r.PidsLimit is { } pids)
            Write(Require("pids", "a pids limit"), "pids.max", pids > 0 ? Num(pids) : "max");
        if (r.Devices.Count > 0)
        {
            var dir = Require("devices", "a device rule list");
            // One rule per write: the kernel parses a single rule per write(2), and order matters.
            _fs.WriteInOrder(dir, r.Devices.Select(rule => (rule.Allow ? "devices.allow" : "devices.deny", rule.V1Line)));
        }
        if (r.BlkioWeight is { } weight and not 0)
        {
            var dir = Require("blkio", "a blkio weight");
            if (!_fs.FileExists(System.IO.Path.Combine(dir, "blkio.weight")))
                throw new CgroupException($"cgroup: blkio weight {weight} requested, but {dir}/blkio.weight does not exist (the host's I/O scheduler has no weights)");
            Write(dir, "blkio.weight", Num(weight));
        }
        if (r.HugepageLimits.Count > 0)
        {
            var dir = Require("hugetlb", "a hugepage limit");
            foreach (var (size, limit) in r.HugepageLimits) Write(dir, $"hugetlb.{size}.limit_in_bytes", Num(limit));
        }
    }

    private void ApplyMemory(CgroupResources r)
    {
        if (r.MemoryLimit is null && r.MemoryReservation is null && r.MemorySwap is null &&
            r.MemorySwappiness is null && r.DisableOomKiller != true) return;
        var dir = Require("memory", "a memory limit");
        SetMemoryAndSwap(dir, r.MemoryLimit, r.MemorySwap);
        if (r.MemoryReservation is { } reservation) Write(dir, "memory.soft_limit_in_bytes", Num(reservation));
        if (r.MemorySwappiness is { } swappiness) Write(dir, "memory.swappiness", Num(swappiness));
        if (r.DisableOomKiller == true) Write(dir, "memory.oom_control", "1");
    }

    /// <summary>
    /// OCI swap is memory+swap (memory.memsw.limit_in_bytes). The kernel keeps limit &lt;= memsw at
    /// every step, so raising writes memsw first and lowering writes the limit first.
    /// Without swap accounting (no memsw file) a swap value is accepted only when it asks for
    /// nothing enforceable: -1 (unlimited) or equal to the limit (docker's "no extra swap");
    /// anything else fails rather than silently leaving swap unlimited.
    /// </summary>
    private void SetMemoryAndSwap(string dir, long? limit, long? swap)
    {
        var memswFile = System.IO.Path.Combine(dir, "memory.memsw.limit_in_bytes");
        bool hasMemsw = _fs.FileExists(memswFile);
        if (swap == 0) swap = null; // 0 is "unset" in the OCI model
        if (swap is { } s && !hasMemsw)
        {
            if (s == -1 || s == limit) swap = null;
            else throw new CgroupException(
                $"cgroup: memory+swap limit {s} requested, but swap accounting is off on this host (no {memswFile}); " +
                "boot with swapaccount=1 or leave linux.resources.memory.swap unset");
        }
        // An unlimited memory limit with no swap value means both unlimited, or the kernel rejects limit > memsw.
        if (limit == -1 && swap is null && hasMemsw) swap = -1;

        if (limit is { } l && swap is { } sw)
        {
            if (sw != -1 && (l == -1 || sw < l))
                throw new CgroupException($"cgroup: memory+swap limit {sw} is lower than the memory limit {Num(l)}; OCI swap counts memory plus swap");
            var current = CgroupTree.ReadNumber(_fs, System.IO.Path.Combine(dir, "memory.limit_in_bytes"));
            bool raising = sw == -1 || current is null || (ulong)sw >= current;
            if (raising)
            {
                Write(dir, "memory.memsw.limit_in_bytes", Num(sw));
                Write(dir, "memory.limit_in_bytes", Num(l));
            }
            else
            {
                Write(dir, "memory.limit_in_bytes", Num(l));
                Write(dir, "memory.memsw.limit_in_bytes", Num(sw));
            }
        }
        else if (limit is { } onlyLimit) Write(dir, "memory.limit_in_bytes", Num(onlyLimit));
        else if (swap is { } onlySwap) Write(dir, "memory.memsw.limit_in_bytes", Num(onlySwap));
    }

    private void ApplyCpu(CgroupResources r)
    {
        if (r.CpuShares is null && r.CpuQuota is null && r.CpuPeriod is null && r.CpuBurst is null &&
            r.CpuRealtimePeriod is null && r.CpuRealtimeRuntime is null && r.CpuIdle is null) return;
        var dir = Require("cpu", "a cpu limit");
        if (r.CpuShares is { } shares and not 0)
        {
            Write(dir, "cpu.shares", Num(shares));
            // The kernel clamps out-of-range shares silently; say so instead of running with another value.
            var actual = CgroupTree.ReadNumber(_fs, System.IO.Path.Combine(dir, "cpu.shares"));
            if (actual is { } a && a != shares)
                throw new CgroupException(shares > a
                    ? $"cgroup: cpu shares {shares} is above the maximum the kernel allows ({a})"
                    : $"cgroup: cpu shares {shares} is below the minimum the kernel allows ({a})");
        }
        // Period first: the quota is checked against the period in force when it is written.
        if (r.CpuPeriod is { } period and not 0) Write(dir, "cpu.cfs_period_us", Num(period));
        if (r.CpuQuota is { } quota and not 0) Write(dir, "cpu.cfs_quota_us", Num(quota));
        if (r.CpuBurst is { } burst) Write(dir, "cpu.cfs_burst_us", Num(burst));
        if (r.CpuRealtimePeriod is { } rtPeriod and not 0) Write(dir, "cpu.rt_period_us", Num(rtPeriod));
        if (r.CpuRealtimeRuntime is { } rtRuntime and not 0) Write(dir, "cpu.rt_runtime_us", Num(rtRuntime));
        if (r.CpuIdle is { } idle) Write(dir, "cpu.idle", Num(idle));
    }

    public void AddProcess(int pid)
    {
        var value = Num(pid);
        foreach (var h in _hierarchies) Write(CgroupTree.Join(h.Root, Path), "cgroup.procs", value);
        if (_unified is not null)
        {
            try { _fs.Write(System.IO.Path.Combine(_unified, "cgroup.procs"), value); }
            catch (CgroupException) { /* best effort, as in Create */ }
        }
    }

    public IReadOnlyList<int> Pids()
    {
        var dir = Dir("pids") ?? Dir("freezer") ?? Dir("memory") ?? Dir("cpu") ?? Directories[0];
        return CgroupTree.Pids(_fs, dir);
    }

    public bool? Populated() =>
        Dir("pids") is { } dir && CgroupTree.ReadNumber(_fs, System.IO.Path.Combine(dir, "pids.current")) is { } n ? n != 0 : null;

    public void Freeze() => SetFreezer("FROZEN");

    public void Thaw() => SetFreezer("THAWED");

    private void SetFreezer(string state)
    {
        var dir = Require("freezer", state == "FROZEN" ? "freezing" : "thawing");
        var file = System.IO.Path.Combine(dir, "freezer.state");
        _fs.Write(file, state);
        // FREEZING can linger while tasks are in uninterruptible sleep; writing again retries them.
        if (CgroupTree.WaitFor(() => _fs.TryRead(file)?.Trim() == state, () => _fs.Write(file, state), FreezeTimeout)) return;
        var stuck = _fs.TryRead(file)?.Trim();
        if (state == "FROZEN")
        {
            try { _fs.Write(file, "THAWED"); } catch (CgroupException) { }
        }
        throw new CgroupException($"cgroup: {file} did not reach {state} within {FreezeTimeout.TotalSeconds:0} s (it reads {stuck})");
    }

    public bool IsFrozen()
    {
        var dir = Dir("freezer");
        return dir is not null && _fs.TryRead(System.IO.Path.Combine(dir, "freezer.state"))?.Trim() == "FROZEN";
    }

    public CgroupStats Stats()
    {
        var stats = new CgroupStats();
        if (Dir("memory") is { } mem)
        {
            stats.MemoryUsage = CgroupTree.ReadNumber(_fs, System.IO.Path.Combine(mem, "memory.usage_in_bytes"));
            stats.MemoryMaxUsage = CgroupTree.ReadNumber(_fs, System.IO.Path.Combine(mem, "memory.max_usage_in_bytes"));
            stats.MemoryLimit = CgroupTree.ReadNumber(_fs, System.IO.Path.Combine(mem, "memory.limit_in_bytes"));
            stats.OomKills = CgroupTree.ReadKey(_fs, System.IO.Path.Combine(mem, "memory.oom_control"), "oom_kill");
        }
        if (Dir("cpuacct") is { } acct)
            stats.CpuUsageNanos = CgroupTree.ReadNumber(_fs, System.IO.Path.Combine(acct, "cpuacct.usage"));
        if (Dir("pids") is { } pids)
        {
            stats.PidsCurrent = CgroupTree.ReadNumber(_fs, System.IO.Path.Combine(pids, "pids.current"));
            stats.PidsLimit = CgroupTree.ReadNumber(_fs, System.IO.Path.Combine(pids, "pids.max"));
        }
        return stats;
    }

    public void Destroy()
    {
        CgroupException? first = null;
        foreach (var h in _hierarchies)
        {
            try { CgroupTree.Remove(_fs, CgroupTree.Join(h.Root, Path)); }
            catch (CgroupException e) { first ??= e; } // keep going: one busy hierarchy must not leak the others
        }
        if (_unified is not null)
        {
            try { CgroupTree.Remove(_fs, _unified); } catch (CgroupException) { }
        }
        if (first is not null) throw first;
    }

    private void Write(string dir, string file, string value) => _fs.Write(System.IO.Path.Combine(dir, file), value);

    private static string Num(long v) => v.ToString(CultureInfo.InvariantCulture);
    private static string Num(ulong v) => v.ToString(CultureInfo.InvariantCulture);
}

using System.Globalization;
using Berth.Linux.Cgroups;
using Berth.Linux.Processes;

namespace Berth.Engine.Sandbox;

/// <summary>
/// The jail's cgroup, on the hierarchies a sandbox needs and no others: memory (limit, peak,
/// OOM kills), pids (--processes; also lists the jail's processes), cpuacct (CPU time),
/// freezer (freeze before kill) and devices (the default device allowlist). Joining and
/// removing fewer hierarchies is most of what makes a sandbox's cgroup cheaper than a
/// container's.
///
/// Reuse (batch mode, v1 hosts): between jobs the cgroup is checked empty on every hierarchy
/// (cgroup.procs), its memory charges are reclaimed (memory.force_empty), and the counters a
/// verdict reads are reset (memory.max_usage_in_bytes, memory.failcnt, cpuacct.usage) or, for
/// the one that cannot be reset (memory.oom_control oom_kill), read as a baseline so the next
/// job sees only its own. Limits are written afresh for every job. On a v2 host every job gets a
/// fresh cgroup instead (memory.peak and cpu.stat cannot be reset there).
/// </summary>
public sealed class SandboxCgroup : IDisposable
{
    public static readonly string[] Controllers = ["memory", "pids", "cpuacct", "freezer", "devices"];

    private readonly ICgroupManager _cg;
    private ulong _oomBase;
    private bool _devicesApplied;

    private SandboxCgroup(ICgroupManager cg) => _cg = cg;

    public ICgroupManager Manager => _cg;
    public string Path => _cg.Path;
    /// <summary>True when the cgroup can be reset and used for another job (v1).</summary>
    public bool Reusable => _cg.Version == "v1";

    /// <summary>Makes /berth/ID on the sandbox's hierarchies.</summary>
    public static SandboxCgroup Create(string id)
    {
        var cg = Berth.Linux.Cgroups.Cgroups.ForControllers("/berth/" + id, Controllers);
        try { cg.Create(); }
        catch (CgroupException)
        {
            try { cg.Destroy(); } catch (CgroupException) { }
            throw;
        }
        return new SandboxCgroup(cg);
    }

    /// <summary>Writes the job's limits (all of them, so a reused cgroup carries nothing of the last job's).</summary>
    public void Apply(CgroupResources r)
    {
        if (_devicesApplied) r.Devices.Clear(); // the same default allowlist for every job: written once
        if (Reusable)
        {
            r.MemoryLimit ??= -1;
            r.MemorySwap ??= -1;
        }
        // A pooled cgroup whose limits are already these (the last job's were the same) is left as it is.
        var limits = Limits(r);
        if (limits is not null && limits == _applied) return;
        _applied = null;
        _cg.Apply(r);
        _devicesApplied = true;
        _applied = limits;
    }

    private string? _applied;

    /// <summary>The limits a sandbox sets, as one string; null when <paramref name="r"/> sets anything else.</summary>
    private static string? Limits(CgroupResources r)
    {
        if (r.Devices.Count > 0 || r.CpuShares is not null || r.CpuQuota is not null || r.CpuPeriod is not null || r.CpusetCpus is not null
            || r.CpusetMems is not null || r.MemoryReservation is not null || r.HugepageLimits.Count > 0 || r.Unified.Count > 0
            || r.MemorySwappiness is not null || r.DisableOomKiller is not null || r.BlkioWeight is not null || r.CpuIdle is not null
            || r.CpuBurst is not null || r.CpuRealtimeRuntime is not null || r.CpuRealtimePeriod is not null)
            return null;
        return string.Create(CultureInfo.InvariantCulture, $"{r.MemoryLimit}|{r.MemorySwap}|{r.PidsLimit}");
    }

    public CgroupStats Stats()
    {
        var s = _cg.Stats();
        if (s.OomKills is { } k) s.OomKills = k >= _oomBase ? k - _oomBase : k;
        return s;
    }

    /// <summary>The memory hierarchy's directory (v1), for memory.failcnt.</summary>
    public string? MemoryDir => _cg.Directories.FirstOrDefault(d => d.Contains("/memory/", StringComparison.Ordinal));

    /// <summary>SIGKILLs whatever is in the cgroup until it is empty (or the timeout passes); returns whether it is.</summary>
    public bool KillAndWaitEmpty(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        int delayUs = 200;
        while (true)
        {
            var pids = AllPids();
            if (pids.Count == 0) return true;
            foreach (var p in pids) Proc.Kill(p, Signals.SIGKILL);
            if (DateTime.UtcNow > deadline) return false;
            Thread.Sleep(TimeSpan.FromMicroseconds(delayUs));
            delayUs = Math.Min(delayUs * 2, 20_000);
        }
    }

    /// <summary>The pids in cgroup.procs of every hierarchy (a process may sit in one and not another).</summary>
    public List<int> AllPids()
    {
        var all = new List<int>();
        foreach (var d in _cg.Directories)
        {
            string text;
            try { text = File.ReadAllText(System.IO.Path.Combine(d, "cgroup.procs")); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && !all.Contains(pid)) all.Add(pid);
        }
        return all;
    }

    /// <summary>
    /// Makes the cgroup ready for the next job: verified empty on every hierarchy, no child
    /// cgroups, memory charges reclaimed, counters reset. Throws when it cannot be made clean
    /// (the caller then throws the cgroup away).
    /// </summary>
    /// <summary>Usage a reset leaves charged (kernel objects, a few pages of cache) rather than reclaim: within a verdict's noise.</summary>
    private const ulong ForceEmptyAbove = 1UL << 20;

    public void Reset()
    {
        if (!KillAndWaitEmpty(TimeSpan.FromSeconds(2)))
            throw new CgroupException($"cgroup {Path}: processes left after SIGKILL");
        foreach (var d in _cg.Directories)
            if (Directory.EnumerateDirectories(d).Any())
                throw new CgroupException($"cgroup {d}: has child cgroups");
        if (MemoryDir is { } mem)
        {
            // Reclaims the page cache and tmpfs pages the last job left charged here, so the next
            // job starts at (nearly) zero usage and its peak is its own.
            // Only when it is worth it: forcing a few pages of slab out costs more than the whole job (~1 ms).
            if (ReadNumber(mem, "memory.usage_in_bytes") is > ForceEmptyAbove) TryWrite(mem, "memory.force_empty", "0");
            Write(mem, "memory.max_usage_in_bytes", "0");
            Write(mem, "memory.failcnt", "0");
            TryWrite(mem, "memory.memsw.max_usage_in_bytes", "0");
            TryWrite(mem, "memory.memsw.failcnt", "0");
        }
        if (_cg.Directories.FirstOrDefault(d => d.Contains("/cpuacct", StringComparison.Ordinal)) is { } acct)
            Write(acct, "cpuacct.usage", "0");
        if (_cg.Directories.FirstOrDefault(d => d.Contains("/cpuacct", StringComparison.Ordinal)) is { } a && ReadNumber(a, "cpuacct.usage") is not (0UL or null))
            throw new CgroupException($"cgroup {Path}: cpuacct.usage did not reset");
        _oomBase = _cg.Stats().OomKills ?? 0;
    }

    private static ulong? ReadNumber(string dir, string file)
    {
        try { return ulong.TryParse(File.ReadAllText(System.IO.Path.Combine(dir, file)).Trim(), out var v) ? v : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private static void Write(string dir, string file, string value) => File.WriteAllText(System.IO.Path.Combine(dir, file), value);

    private static void TryWrite(string dir, string file, string value)
    {
        try { Write(dir, file, value); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Removes the cgroup directories (after <see cref="KillAndWaitEmpty"/>).</summary>
    public void Dispose() => _cg.Destroy();
}

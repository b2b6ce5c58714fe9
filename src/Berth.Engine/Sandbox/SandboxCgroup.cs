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
    private ulong _memBase;
    /// <summary>cgroup.procs was read empty on every hierarchy since the last <see cref="Apply"/> (nothing can join in between).</summary>
    private bool _verifiedEmpty;
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

    /// <summary>
    /// The cgroup /berth/ID that an earlier process made and left reset (a sandbox pool's slot), with
    /// what that process knew of it (<see cref="Saved"/>); null when a directory of it is missing.
    /// </summary>
    public static SandboxCgroup? Open(string id, Saved saved)
    {
        var cg = (saved.Layout is { } layout ? Berth.Linux.Cgroups.Cgroups.FromLayout("/berth/" + id, layout) : null)
                 ?? Berth.Linux.Cgroups.Cgroups.ForControllers("/berth/" + id, Controllers);
        foreach (var d in cg.Directories)
            if (!Berth.Linux.Files.StatX.TryAt(-100 /* AT_FDCWD */, d, out _, out _)) return null;
        return new SandboxCgroup(cg)
        {
            _applied = saved.Applied, _devicesApplied = saved.DevicesApplied, _memBase = saved.MemBase, _oomBase = saved.OomBase,
        };
    }

    /// <summary>What a reset cgroup's next user must know: the limits in force, the baselines of the counters that cannot be reset.</summary>
    public sealed record Saved(string? Applied, bool DevicesApplied, ulong MemBase, ulong OomBase, string? Layout = null);

    public Saved Save() => new(_applied, _devicesApplied, _memBase, _oomBase, Berth.Linux.Cgroups.Cgroups.LayoutOf(_cg));

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
        _verifiedEmpty = false; // a job is about to join
        var limits = Limits(r);
        if (limits is not null && limits == _applied) return;
        _applied = null;
        _cg.Apply(r);
        _devicesApplied = true;
        _applied = limits;
    }

    private string? _applied;

    /// <summary>The limits in force as <see cref="Apply"/> wrote them (one string), or null when not known.</summary>
    public string? AppliedLimits => _devicesApplied ? _applied : null;

    /// <summary>
    /// Instead of <see cref="Apply"/> with the same resources again: true when <paramref name="limits"/>
    /// (an earlier <see cref="AppliedLimits"/>) are the ones in force; the cgroup is then taken for a job as it is.
    /// </summary>
    public bool TryKeep(string limits)
    {
        if (!_devicesApplied || _applied != limits) return false;
        _verifiedEmpty = false; // a job is about to join
        return true;
    }

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

    /// <summary>The figures a verdict reads: CPU time, peak memory, OOM kills (since the last reset).</summary>
    public CgroupStats Stats()
    {
        CgroupStats s;
        if (Reusable)
        {
            // v1: three files, read through fds kept open (pread at 0 shows the current value).
            s = new CgroupStats
            {
                CpuUsageNanos = CpuNanos(),
                // Less what the last jobs left charged (kernel objects freed later): the peak is this job's.
                MemoryMaxUsage = MemoryDir is { } mem && ReadNumber(mem, "memory.max_usage_in_bytes") is { } peak
                    ? (peak > _memBase ? peak - _memBase : 0) : null,
                OomKills = MemoryDir is { } m2 ? ReadKey(m2, "memory.oom_control", "oom_kill") : null,
            };
        }
        else s = _cg.Stats();
        if (s.OomKills is { } k) s.OomKills = k >= _oomBase ? k - _oomBase : k;
        return s;
    }

    /// <summary>Write-only fds of cgroup.procs on every hierarchy (owned by this object), for the jail stub to join with "0".</summary>
    public IReadOnlyList<int> ProcsWriteFds() => [.. _cg.Directories.Select(d => Fd(d, "cgroup.procs", write: true))];

    /// <summary>CPU time of the whole tree so far (the --time check polls it).</summary>
    public ulong? CpuNanos() => Reusable
        ? (AcctDir is { } acct ? ReadNumber(acct, "cpuacct.usage") : null)
        : _cg.Stats().CpuUsageNanos;

    private string? AcctDir => _acctDir ??= _cg.Directories.FirstOrDefault(d => d.Contains("/cpuacct", StringComparison.Ordinal));
    private string? _acctDir;
    private string? _memDir;

    /// <summary>The memory hierarchy's directory (v1), for memory.failcnt.</summary>
    public string? MemoryDir => _memDir ??= _cg.Directories.FirstOrDefault(d => d.Contains("/memory/", StringComparison.Ordinal));

    /// <summary>SIGKILLs whatever is in the cgroup until it is empty (or the timeout passes); returns whether it is.</summary>
    public bool KillAndWaitEmpty(TimeSpan timeout)
    {
        if (_verifiedEmpty) return true; // and nothing was left to fork since (see KillAllPids)
        var deadline = DateTime.UtcNow + timeout;
        int delayUs = 200;
        while (true)
        {
            var pids = AllPids();
            if (pids.Count == 0) return _verifiedEmpty = true;
            foreach (var p in pids) Proc.Kill(p, Signals.SIGKILL);
            if (DateTime.UtcNow > deadline) return false;
            Thread.Sleep(TimeSpan.FromMicroseconds(delayUs));
            delayUs = Math.Min(delayUs * 2, 20_000);
        }
    }

    /// <summary>
    /// SIGKILLs every process in the cgroup once. When there is none, the cgroup is verified empty for
    /// the rest of the job: no process is left to fork, and only berth puts one in (the next job, after
    /// <see cref="Apply"/>). This saves reading the five cgroup.procs files a second time. Returns how many it killed.
    /// </summary>
    public int KillAllPids()
    {
        var pids = AllPids();
        if (pids.Count == 0) _verifiedEmpty = true;
        foreach (var p in pids) Proc.Kill(p, Signals.SIGKILL);
        return pids.Count;
    }

    /// <summary>The pids in cgroup.procs of every hierarchy (a process may sit in one and not another).</summary>
    public unsafe List<int> AllPids()
    {
        var all = new List<int>();
        // Opened afresh every time (a kept fd would show the list of its first read), read with open/read:
        // a FileStream's setup cost more than the (usually empty) file.
        byte* small = stackalloc byte[4096];
        foreach (var d in _cg.Directories)
        {
            int fd;
            fixed (byte* path = ProcsPath(d)) fd = Berth.Linux.Interop.LibC.open(path, Berth.Linux.Interop.Consts.O_RDONLY | Berth.Linux.Interop.Consts.O_CLOEXEC, 0);
            if (fd < 0) continue;
            try
            {
                var text = new System.Text.StringBuilder();
                while (true)
                {
                    long n = Berth.Linux.Interop.LibC.read(fd, small, 4096);
                    if (n <= 0) break;
                    text.Append(System.Text.Encoding.ASCII.GetString(small, (int)n));
                }
                foreach (var line in text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && !all.Contains(pid)) all.Add(pid);
            }
            finally { Berth.Linux.Files.Fd.Close(fd); }
        }
        return all;
    }

    /// <summary>
    /// Makes the cgroup ready for the next job: verified empty on every hierarchy, no child
    /// cgroups, memory charges reclaimed, counters reset. Throws when it cannot be made clean
    /// (the caller then throws the cgroup away).
    /// </summary>
    /// <summary>memory.kmem.usage_in_bytes, 0 where the kernel has none (cgroup.memory=nokmem, or no kmem accounting).</summary>
    private ulong KernelMemory(string mem)
    {
        if (_noKmem) return 0;
        if (ReadNumber(mem, "memory.kmem.usage_in_bytes") is { } k) return k;
        _noKmem = true;
        return 0;
    }

    private bool _noKmem;

    /// <summary>Usage a reset leaves charged (kernel objects, a few pages of cache) rather than reclaim: within a verdict's noise.</summary>
    private const ulong ForceEmptyAbove = 1UL << 20;

    public void Reset()
    {
        // Verified empty since the job ended (the teardown does that before the box), or now.
        if (!_verifiedEmpty && !KillAndWaitEmpty(TimeSpan.FromSeconds(2)))
            throw new CgroupException($"cgroup {Path}: processes left after SIGKILL");
        // A cgroup directory's link count is 2 plus its child cgroups (kernfs): one stat instead of a listing.
        foreach (var d in _cg.Directories)
            if (!Berth.Linux.Files.StatX.TryAt(-100 /* AT_FDCWD */, d, out var st, out _) || st.Nlink != 2)
                throw new CgroupException($"cgroup {d}: has child cgroups");
        if (MemoryDir is { } mem)
        {
            // Reclaims the page cache and tmpfs pages the last job left charged here, so the next
            // job starts at (nearly) zero usage and its peak is its own.
            // Only what reclaim can free, and only when it is worth it: forcing a few pages of slab out costs
            // more than the whole job (~1 ms). Kernel memory the last job's objects still hold until RCU
            // frees them (~1 MiB after a tiny job, measured) is no one's to reclaim: force_empty spent
            // ~0.7 ms on it in 4 jobs of 10 and left it charged. Page cache and anonymous memory are.
            if (ReadNumber(mem, "memory.usage_in_bytes") is { } usage && usage > ForceEmptyAbove
                && usage - Math.Min(usage, KernelMemory(mem)) > ForceEmptyAbove)
                TryWrite(mem, "memory.force_empty", "0");
            Write(mem, "memory.max_usage_in_bytes", "0");
            // The peak restarts at what is still charged: the next job's figure is taken above it.
            _memBase = ReadNumber(mem, "memory.max_usage_in_bytes") ?? 0;
            Write(mem, "memory.failcnt", "0");
            TryWrite(mem, "memory.memsw.max_usage_in_bytes", "0");
            TryWrite(mem, "memory.memsw.failcnt", "0");
        }
        if (AcctDir is { } acct)
        {
            Write(acct, "cpuacct.usage", "0");
            if (ReadNumber(acct, "cpuacct.usage") is not (0UL or null))
                throw new CgroupException($"cgroup {Path}: cpuacct.usage did not reset");
        }
        _oomBase = 0;
        _oomBase = Stats().OomKills ?? 0;
    }

    // The counter files of a pooled cgroup stay open from job to job (a kernfs open costs more than
    // the read): pread at offset 0 shows the current value, a write sets it. cgroup.procs is not among
    // them: it is always opened afresh, so the pid list is never a cached one.
    private readonly Dictionary<string, int> _fds = [];

    private int Fd(string dir, string file, bool write)
    {
        var path = System.IO.Path.Combine(dir, file);
        var key = (write ? "w:" : "r:") + path;
        if (_fds.TryGetValue(key, out var fd)) return fd;
        fd = Berth.Linux.Files.Fd.Open(path, (write ? Berth.Linux.Interop.Consts.O_WRONLY : Berth.Linux.Interop.Consts.O_RDONLY) | Berth.Linux.Interop.Consts.O_CLOEXEC);
        _fds[key] = fd;
        return fd;
    }

    private unsafe string? ReadText(string dir, string file)
    {
        try
        {
            int fd = Fd(dir, file, write: false);
            var buf = stackalloc byte[512];
            long n = Berth.Linux.Interop.LibC.pread(fd, buf, 512, 0);
            return n < 0 ? null : System.Text.Encoding.ASCII.GetString(buf, (int)n);
        }
        catch (Berth.Linux.LinuxException) { return null; }
    }

    private ulong? ReadNumber(string dir, string file) =>
        ReadText(dir, file) is { } t && ulong.TryParse(t.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;

    private ulong? ReadKey(string dir, string file, string key)
    {
        if (ReadText(dir, file) is not { } t) return null;
        foreach (var line in t.Split('\n'))
        {
            var parts = line.Split(' ');
            if (parts.Length == 2 && parts[0] == key && ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var v)) return v;
        }
        return null;
    }

    private unsafe void Write(string dir, string file, string value)
    {
        int fd;
        try { fd = Fd(dir, file, write: true); }
        catch (Berth.Linux.LinuxException e) { throw new IOException($"{System.IO.Path.Combine(dir, file)}: {e.Message}"); }
        var bytes = System.Text.Encoding.ASCII.GetBytes(value);
        fixed (byte* b = bytes)
            if (Berth.Linux.Interop.LibC.write(fd, b, bytes.Length) < 0)
                throw new IOException($"write {value} to {System.IO.Path.Combine(dir, file)}: {Berth.Linux.LinuxException.Describe(System.Runtime.InteropServices.Marshal.GetLastPInvokeError())}");
    }

    private void TryWrite(string dir, string file, string value)
    {
        try { Write(dir, file, value); }
        catch (IOException) { }
    }

    /// <summary>cgroup.procs of a directory as a C string, made once per directory.</summary>
    private byte[] ProcsPath(string dir)
    {
        if (!_procsPaths.TryGetValue(dir, out var p)) _procsPaths[dir] = p = Berth.Linux.CString.Of(System.IO.Path.Combine(dir, "cgroup.procs"));
        return p;
    }

    private readonly Dictionary<string, byte[]> _procsPaths = [];

    /// <summary>Removes the cgroup directories (after <see cref="KillAndWaitEmpty"/>).</summary>
    public void Dispose()
    {
        foreach (var fd in _fds.Values) Berth.Linux.Files.Fd.Close(fd);
        _fds.Clear();
        _cg.Destroy();
    }
}

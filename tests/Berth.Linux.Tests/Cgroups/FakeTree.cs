using Berth.Linux.Cgroups;

namespace Berth.Linux.Tests.Cgroups;

/// <summary>
/// A temp directory standing in for /sys/fs/cgroup: regular files play control files.
/// Writes go through a recorder so tests can assert their order.
/// </summary>
internal sealed class FakeTree : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("berth-cg-").FullName;
    public RecordingFs Fs { get; }

    public FakeTree() => Fs = new RecordingFs(Root);

    /// <summary>Creates <paramref name="rel"/> (and its directory) with <paramref name="content"/>.</summary>
    public FakeTree File(string rel, string content = "")
    {
        var path = Path.Combine(Root, rel);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        System.IO.File.WriteAllText(path, content);
        return this;
    }

    /// <summary>Creates each file in <paramref name="names"/> empty, in directory <paramref name="dir"/>.</summary>
    public FakeTree Files(string dir, params string[] names)
    {
        foreach (var n in names) File(Path.Combine(dir, n));
        return this;
    }

    public FakeTree Dir(string rel)
    {
        Directory.CreateDirectory(Path.Combine(Root, rel));
        return this;
    }

    public string Read(string rel) => System.IO.File.ReadAllText(Path.Combine(Root, rel));
    public bool Exists(string rel) => Path.Exists(Path.Combine(Root, rel));

    public ICgroupManager Manager(string path = "/berth/c1") => Berth.Linux.Cgroups.Cgroups.For(path, Root, Fs);

    /// <summary>A v1 host like this one: one hierarchy per controller, name=systemd, empty cgroup2 at unified.</summary>
    public static FakeTree V1(bool memsw = true)
    {
        var t = new FakeTree();
        foreach (var c in new[] { "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "pids", "systemd" })
            t.File($"{c}/cgroup.procs");
        t.File("cpuset/cpuset.cpus", "0-3\n").File("cpuset/cpuset.mems", "0\n");
        t.File("unified/cgroup.controllers", "").File("unified/cgroup.procs");
        const string c1 = "berth/c1";
        t.Files($"memory/{c1}", "memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.swappiness",
            "memory.oom_control", "memory.usage_in_bytes", "memory.max_usage_in_bytes", "cgroup.procs");
        if (memsw) t.File($"memory/{c1}/memory.memsw.limit_in_bytes", "9223372036854771712\n");
        t.File($"memory/{c1}/memory.limit_in_bytes", "9223372036854771712\n");
        t.Files($"cpu/{c1}", "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us",
            "cpu.rt_period_us", "cpu.rt_runtime_us", "cpu.idle", "cgroup.procs");
        t.Files($"cpuacct/{c1}", "cpuacct.usage", "cgroup.procs");
        t.Files($"cpuset/{c1}", "cpuset.cpus", "cpuset.mems", "cgroup.procs");
        t.Files("cpuset/berth", "cpuset.cpus", "cpuset.mems");
        t.Files($"devices/{c1}", "devices.allow", "devices.deny", "cgroup.procs");
        t.Files($"freezer/{c1}", "freezer.state", "cgroup.procs");
        t.Files($"hugetlb/{c1}", "hugetlb.2MB.limit_in_bytes", "cgroup.procs");
        t.Files($"pids/{c1}", "pids.max", "pids.current", "cgroup.procs");
        t.Files($"blkio/{c1}", "cgroup.procs");
        t.Files($"systemd/{c1}", "cgroup.procs");
        return t;
    }

    /// <summary>A pure cgroup2 host with the common controllers.</summary>
    public static FakeTree V2()
    {
        var t = new FakeTree();
        t.File("cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
         .File("cgroup.subtree_control", "")
         .File("berth/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
         .File("berth/cgroup.subtree_control", "cpu memory\n");
        t.Files("berth/c1", "cgroup.controllers", "cgroup.subtree_control", "cgroup.procs", "cgroup.freeze",
            "cgroup.events", "memory.max", "memory.low", "memory.swap.max", "memory.current", "memory.peak",
            "memory.events", "memory.high", "cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle", "cpu.stat",
            "cpuset.cpus", "cpuset.mems", "pids.max", "pids.current", "io.weight", "hugetlb.2MB.max");
        return t;
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

/// <summary>The real file operations, with every write logged as (path relative to the tree, value).</summary>
internal sealed class RecordingFs(string root) : ICgroupFs
{
    private readonly ICgroupFs _real = CgroupFs.Instance;
    public List<(string File, string Value)> Writes { get; } = [];

    public IEnumerable<(string File, string Value)> WritesTo(string suffix) => Writes.Where(w => w.File.EndsWith(suffix, StringComparison.Ordinal));

    public bool FileExists(string path) => _real.FileExists(path);
    public bool DirExists(string path) => _real.DirExists(path);
    public string? TryRead(string path) => _real.TryRead(path);
    public void Write(string path, string value)
    {
        Writes.Add((Path.GetRelativePath(root, path), value));
        _real.Write(path, value);
    }
    public void MkdirAll(string path) => _real.MkdirAll(path);
    public int Rmdir(string path) => _real.Rmdir(path);
    public IEnumerable<string> SubDirectories(string path) => _real.SubDirectories(path);
}

using Berth.Linux.Cgroups;
using Xunit;

namespace Berth.Linux.Tests.Cgroups;

public class CgroupV1ManagerTests
{
    private const string C1 = "berth/c1";

    [Fact]
    public void Detects_v1_hierarchies_and_the_hybrid_unified_mount()
    {
        using var t = FakeTree.V1();
        var m = t.Manager();
        Assert.Equal("v1", m.Version);
        Assert.Equal("/berth/c1", m.Path);
        var dirs = m.Directories.Select(d => Path.GetRelativePath(t.Root, d)).Order().ToList();
        Assert.Equal(
            ["blkio/berth/c1", "cpu/berth/c1", "cpuacct/berth/c1", "cpuset/berth/c1", "devices/berth/c1", "freezer/berth/c1",
             "hugetlb/berth/c1", "memory/berth/c1", "pids/berth/c1", "systemd/berth/c1", "unified/berth/c1"], dirs);
    }

    [Fact]
    public void Comounted_hierarchy_behind_symlinks_counts_once()
    {
        using var t = new FakeTree();
        t.File("cpu,cpuacct/cgroup.procs").Files($"cpu,cpuacct/{C1}", "cpu.shares", "cpuacct.usage");
        t.File("memory/cgroup.procs");
        Directory.CreateSymbolicLink(Path.Combine(t.Root, "cpu"), "cpu,cpuacct");
        Directory.CreateSymbolicLink(Path.Combine(t.Root, "cpuacct"), "cpu,cpuacct");
        var m = t.Manager();
        Assert.Equal(2, m.Directories.Count);
        m.Apply(new CgroupResources { CpuShares = 512 });
        Assert.Equal("512", t.Read($"cpu,cpuacct/{C1}/cpu.shares"));
        t.File($"cpu,cpuacct/{C1}/cpuacct.usage", "12345\n");
        Assert.Equal(12345ul, m.Stats().CpuUsageNanos);
    }

    [Theory]
    [InlineData("/berth/../etc")]
    [InlineData("../x")]
    [InlineData("/a/b/..")]
    [InlineData("/")]
    [InlineData("")]
    public void Rejects_paths_that_climb_out_or_name_the_root(string path)
    {
        using var t = FakeTree.V1();
        var e = Assert.Throws<CgroupException>(() => t.Manager(path));
        Assert.Contains("cgroup: path", e.Message);
    }

    [Fact]
    public void Normalizes_relative_and_doubled_slashes()
    {
        Assert.Equal("/berth/x", Berth.Linux.Cgroups.Cgroups.Normalize("berth//x/"));
        Assert.Equal("/berth/x", Berth.Linux.Cgroups.Cgroups.Normalize("/./berth/x"));
    }

    [Fact]
    public void Create_makes_every_hierarchy_dir_including_unified()
    {
        using var t = new FakeTree();
        foreach (var c in new[] { "memory", "pids", "systemd" }) t.File($"{c}/cgroup.procs");
        t.File("unified/cgroup.controllers");
        var m = t.Manager("/berth/new");
        m.Create();
        m.Create(); // idempotent
        foreach (var d in m.Directories) Assert.True(Directory.Exists(d), d);
        Assert.True(t.Exists("unified/berth/new"));
    }

    [Fact]
    public void Create_initialises_empty_cpuset_levels_from_their_parent()
    {
        using var t = FakeTree.V1();
        t.File("cpuset/berth/cpuset.mems", "1\n"); // a level that already has a value keeps it
        t.Manager().Create();
        Assert.Equal("0-3", t.Read("cpuset/berth/cpuset.cpus"));
        Assert.Equal("1\n", t.Read("cpuset/berth/cpuset.mems"));
        Assert.Equal("0-3", t.Read($"cpuset/{C1}/cpuset.cpus"));
        Assert.Equal("1", t.Read($"cpuset/{C1}/cpuset.mems"));
    }

    [Fact]
    public void Lowering_memory_writes_the_limit_before_memsw()
    {
        using var t = FakeTree.V1(); // current limit: unlimited
        t.Manager().Apply(new CgroupResources { MemoryLimit = 100 << 20, MemorySwap = 200 << 20, MemoryReservation = 50 << 20 });
        Assert.Equal(
            [($"memory/{C1}/memory.limit_in_bytes", "104857600"), ($"memory/{C1}/memory.memsw.limit_in_bytes", "209715200"),
             ($"memory/{C1}/memory.soft_limit_in_bytes", "52428800")],
            t.Fs.Writes);
    }

    [Fact]
    public void Raising_memory_writes_memsw_before_the_limit()
    {
        using var t = FakeTree.V1();
        t.File($"memory/{C1}/memory.limit_in_bytes", "104857600\n");
        t.Manager().Apply(new CgroupResources { MemoryLimit = 200 << 20, MemorySwap = 400 << 20 });
        Assert.Equal(
            [($"memory/{C1}/memory.memsw.limit_in_bytes", "419430400"), ($"memory/{C1}/memory.limit_in_bytes", "209715200")],
            t.Fs.Writes);
    }

    [Fact]
    public void Unlimited_memory_lifts_memsw_too_and_first()
    {
        using var t = FakeTree.V1();
        t.File($"memory/{C1}/memory.limit_in_bytes", "104857600\n");
        t.Manager().Apply(new CgroupResources { MemoryLimit = -1 });
        Assert.Equal(
            [($"memory/{C1}/memory.memsw.limit_in_bytes", "-1"), ($"memory/{C1}/memory.limit_in_bytes", "-1")],
            t.Fs.Writes);
    }

    [Fact]
    public void Swap_below_the_limit_is_refused()
    {
        using var t = FakeTree.V1();
        var e = Assert.Throws<CgroupException>(() => t.Manager().Apply(new CgroupResources { MemoryLimit = 200, MemorySwap = 100 }));
        Assert.Contains("lower than the memory limit", e.Message);
        Assert.Empty(t.Fs.Writes);
    }

    [Fact]
    public void Without_swap_accounting_only_unenforceable_swap_values_pass()
    {
        using var t = FakeTree.V1(memsw: false);
        var m = t.Manager();
        var e = Assert.Throws<CgroupException>(() => m.Apply(new CgroupResources { MemoryLimit = 100, MemorySwap = 200 }));
        Assert.Contains("swap accounting is off", e.Message);
        Assert.Contains("memory.memsw.limit_in_bytes", e.Message);

        m.Apply(new CgroupResources { MemoryLimit = 100, MemorySwap = 100 });
        m.Apply(new CgroupResources { MemoryLimit = 100, MemorySwap = -1 });
        m.Apply(new CgroupResources { MemoryLimit = 100, MemorySwap = 0 });
        Assert.All(t.Fs.Writes, w => Assert.Equal(($"memory/{C1}/memory.limit_in_bytes", "100"), w));
        Assert.Equal(3, t.Fs.Writes.Count);
    }

    [Fact]
    public void Memory_extras_swappiness_and_oom_killer()
    {
        using var t = FakeTree.V1();
        t.Manager().Apply(new CgroupResources { MemorySwappiness = 10, DisableOomKiller = true });
        Assert.Equal("10", t.Read($"memory/{C1}/memory.swappiness"));
        Assert.Equal("1", t.Read($"memory/{C1}/memory.oom_control"));
    }

    [Fact]
    public void Cpu_writes_period_before_quota_and_rt_period_before_runtime()
    {
        using var t = FakeTree.V1();
        t.Manager().Apply(new CgroupResources
        {
            CpuShares = 512, CpuQuota = 50000, CpuPeriod = 200000, CpuBurst = 1000,
            CpuRealtimePeriod = 1000000, CpuRealtimeRuntime = 950000, CpuIdle = 0,
        });
        Assert.Equal(
            [($"cpu/{C1}/cpu.shares", "512"), ($"cpu/{C1}/cpu.cfs_period_us", "200000"), ($"cpu/{C1}/cpu.cfs_quota_us", "50000"),
             ($"cpu/{C1}/cpu.cfs_burst_us", "1000"), ($"cpu/{C1}/cpu.rt_period_us", "1000000"),
             ($"cpu/{C1}/cpu.rt_runtime_us", "950000"), ($"cpu/{C1}/cpu.idle", "0")],
            t.Fs.Writes);
    }

    [Fact]
    public void Cpuset_and_hugetlb_files()
    {
        using var t = FakeTree.V1();
        var r = new CgroupResources { CpusetCpus = "0-1", CpusetMems = "0" };
        r.HugepageLimits.Add(("2MB", 4 << 20));
        t.Manager().Apply(r);
        Assert.Equal("0-1", t.Read($"cpuset/{C1}/cpuset.cpus"));
        Assert.Equal("0", t.Read($"cpuset/{C1}/cpuset.mems"));
        Assert.Equal("4194304", t.Read($"hugetlb/{C1}/hugetlb.2MB.limit_in_bytes"));
    }

    [Theory]
    [InlineData(100L, "100")]
    [InlineData(0L, "max")]
    [InlineData(-1L, "max")]
    public void Pids_limit(long limit, string expected)
    {
        using var t = FakeTree.V1();
        t.Manager().Apply(new CgroupResources { PidsLimit = limit });
        Assert.Equal(expected, t.Read($"pids/{C1}/pids.max"));
    }

    [Fact]
    public void Device_rules_are_written_one_per_write_in_order()
    {
        using var t = FakeTree.V1();
        var r = new CgroupResources();
        r.Devices.AddRange([
            new DeviceRule(false, 'a', -1, -1, "rwm"),
            new DeviceRule(true, 'c', 1, 3, "rwm"),
            new DeviceRule(true, 'c', 136, -1, "rw"),
            new DeviceRule(false, 'c', 1, 3, "w"),
            new DeviceRule(true, 'b', -1, -1, "m"),
        ]);
        t.Manager().Apply(r);
        Assert.Equal(
            [($"devices/{C1}/devices.deny", "a *:* rwm"), ($"devices/{C1}/devices.allow", "c 1:3 rwm"),
             ($"devices/{C1}/devices.allow", "c 136:* rw"), ($"devices/{C1}/devices.deny", "c 1:3 w"),
             ($"devices/{C1}/devices.allow", "b *:* m")],
            t.Fs.Writes);
    }

    [Fact]
    public void Missing_blkio_weight_file_is_a_clear_error()
    {
        using var t = FakeTree.V1();
        var e = Assert.Throws<CgroupException>(() => t.Manager().Apply(new CgroupResources { BlkioWeight = 500 }));
        Assert.Contains("blkio.weight does not exist", e.Message);
    }

    [Fact]
    public void Unified_map_is_refused_on_v1_before_any_write()
    {
        using var t = FakeTree.V1();
        var r = new CgroupResources { MemoryLimit = 100 };
        r.Unified["memory.high"] = "50";
        var e = Assert.Throws<CgroupException>(() => t.Manager().Apply(r));
        Assert.Contains("cgroup v2", e.Message);
        Assert.Empty(t.Fs.Writes);
    }

    [Fact]
    public void Missing_controller_is_named()
    {
        using var t = new FakeTree();
        t.File("memory/cgroup.procs");
        var e = Assert.Throws<CgroupException>(() => t.Manager().Apply(new CgroupResources { PidsLimit = 10 }));
        Assert.Contains("pids controller", e.Message);
    }

    [Fact]
    public void Write_errors_name_the_value_and_the_file()
    {
        using var t = FakeTree.V1();
        File.Delete(Path.Combine(t.Root, $"pids/{C1}/pids.max"));
        var e = Assert.Throws<CgroupException>(() => t.Manager().Apply(new CgroupResources { PidsLimit = 7 }));
        Assert.Equal($"cgroup: write \"7\" to {t.Root}/pids/{C1}/pids.max: no such file or directory", e.Message);
        Assert.Equal(2, e.Errno);
    }

    [Fact]
    public void AddProcess_joins_every_hierarchy_and_unified()
    {
        using var t = FakeTree.V1();
        t.Dir($"unified/{C1}");
        t.File($"unified/{C1}/cgroup.procs");
        var m = t.Manager();
        m.AddProcess(4242);
        Assert.Equal(11, t.Fs.WritesTo("cgroup.procs").Count());
        Assert.All(t.Fs.WritesTo("cgroup.procs"), w => Assert.Equal("4242", w.Value));
        Assert.Equal("4242", t.Read($"unified/{C1}/cgroup.procs"));
    }

    [Fact]
    public void AddProcess_ignores_a_failing_unified_hierarchy()
    {
        using var t = FakeTree.V1(); // no unified/berth/c1: the write fails, quietly
        t.Manager().AddProcess(7);
        Assert.Equal("7", t.Read($"memory/{C1}/cgroup.procs"));
    }

    [Fact]
    public void Pids_are_read_recursively()
    {
        using var t = FakeTree.V1();
        t.File($"pids/{C1}/cgroup.procs", "10\n11\n").File($"pids/{C1}/sub/cgroup.procs", "12\n");
        Assert.Equal([10, 11, 12], t.Manager().Pids().Order());
    }

    [Fact]
    public void Freeze_and_thaw_through_freezer_state()
    {
        using var t = FakeTree.V1();
        var m = t.Manager();
        Assert.False(m.IsFrozen());
        m.Freeze();
        Assert.True(m.IsFrozen());
        Assert.Equal("FROZEN", t.Read($"freezer/{C1}/freezer.state"));
        m.Thaw();
        Assert.False(m.IsFrozen());
        Assert.Equal("THAWED", t.Read($"freezer/{C1}/freezer.state"));
    }

    [Fact]
    public void Stats_parse_the_v1_files()
    {
        using var t = FakeTree.V1();
        t.File($"memory/{C1}/memory.usage_in_bytes", "4096\n").File($"memory/{C1}/memory.max_usage_in_bytes", "8192\n")
         .File($"memory/{C1}/memory.limit_in_bytes", "104857600\n")
         .File($"memory/{C1}/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
         .File($"cpuacct/{C1}/cpuacct.usage", "999\n")
         .File($"pids/{C1}/pids.current", "5\n").File($"pids/{C1}/pids.max", "max\n");
        var s = t.Manager().Stats();
        Assert.Equal(4096ul, s.MemoryUsage);
        Assert.Equal(8192ul, s.MemoryMaxUsage);
        Assert.Equal(104857600ul, s.MemoryLimit);
        Assert.Equal(3ul, s.OomKills);
        Assert.Equal(999ul, s.CpuUsageNanos);
        Assert.Equal(5ul, s.PidsCurrent);
        Assert.Null(s.PidsLimit);
    }

    [Fact]
    public void Destroy_removes_children_first_and_is_idempotent()
    {
        using var t = new FakeTree();
        foreach (var c in new[] { "memory", "pids" }) t.File($"{c}/cgroup.procs");
        t.File("unified/cgroup.controllers");
        var m = t.Manager();
        m.Create();
        t.Dir($"memory/{C1}/sub/deeper");
        m.Destroy();
        Assert.All(m.Directories, d => Assert.False(Directory.Exists(d), d));
        Assert.True(t.Exists("memory/berth")); // only the container's own directory goes
        m.Destroy();
    }
}

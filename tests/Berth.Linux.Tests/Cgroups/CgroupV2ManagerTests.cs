using Berth.Linux.Cgroups;
using Xunit;

namespace Berth.Linux.Tests.Cgroups;

public class CgroupV2ManagerTests
{
    private const string C1 = "berth/c1";

    private static (CgroupV2Manager Manager, List<(string Dir, IReadOnlyList<DeviceRule> Rules)> Attached) Make(FakeTree t)
    {
        var attached = new List<(string, IReadOnlyList<DeviceRule>)>();
        return (new CgroupV2Manager("/berth/c1", t.Root, t.Fs, (d, r) => attached.Add((d, r))), attached);
    }

    [Fact]
    public void Detects_v2()
    {
        using var t = FakeTree.V2();
        var m = t.Manager();
        Assert.Equal("v2", m.Version);
        Assert.Equal([Path.Combine(t.Root, C1)], m.Directories);
    }

    [Fact]
    public void Create_enables_available_controllers_top_down_but_not_in_the_leaf()
    {
        using var t = FakeTree.V2();
        t.Manager().Create();
        Assert.Equal(
            [("cgroup.subtree_control", "+cpuset +cpu +io +memory +hugetlb +pids +rdma +misc"),
             ("berth/cgroup.subtree_control", "+cpuset +io +hugetlb +pids +rdma +misc")],
            t.Fs.Writes);
    }

    [Fact]
    public void Create_makes_missing_levels()
    {
        using var t = FakeTree.V2();
        t.Manager("/berth/new/inner").Create();
        Assert.True(Directory.Exists(Path.Combine(t.Root, "berth/new/inner")));
    }

    [Theory]
    [InlineData(0ul, null)]
    [InlineData(1ul, 1ul)]
    [InlineData(2ul, 1ul)]
    [InlineData(100ul, 4ul)]
    [InlineData(512ul, 20ul)]
    [InlineData(1024ul, 39ul)]
    [InlineData(2048ul, 79ul)]
    [InlineData(262144ul, 10000ul)]
    [InlineData(1_000_000ul, 10000ul)]
    public void Shares_to_weight(ulong shares, ulong? weight) => Assert.Equal(weight, V2Values.CpuWeight(shares));

    [Theory]
    [InlineData((ushort)0, null)]
    [InlineData((ushort)10, 1ul)]
    [InlineData((ushort)100, 910ul)]
    [InlineData((ushort)500, 4950ul)]
    [InlineData((ushort)1000, 10000ul)]
    public void Blkio_weight_to_io_weight(ushort blkio, ulong? io) => Assert.Equal(io, V2Values.IoWeight(blkio));

    [Theory]
    [InlineData(200L, 100L, "100")]
    [InlineData(100L, 100L, "0")]
    [InlineData(-1L, 100L, "max")]
    [InlineData(0L, 100L, null)]
    [InlineData(null, 100L, null)]
    [InlineData(null, -1L, "max")]
    [InlineData(0L, -1L, "max")]
    [InlineData(-1L, -1L, "max")]
    public void Swap_total_to_swap_max(long? swap, long? limit, string? expected) =>
        Assert.Equal(expected, V2Values.SwapMax(swap, limit));

    [Theory]
    [InlineData(50L, 100L, "lower than the memory limit")]
    [InlineData(100L, null, "needs a memory limit")]
    [InlineData(100L, -1L, "needs a memory limit")]
    public void Bad_swap_values(long? swap, long? limit, string message) =>
        Assert.Contains(message, Assert.Throws<CgroupException>(() => V2Values.SwapMax(swap, limit)).Message);

    [Theory]
    [InlineData(50000L, null, "50000 100000")]
    [InlineData(20000L, 50000ul, "20000 50000")]
    [InlineData(-1L, 200000ul, "max 200000")]
    [InlineData(-1L, null, "max 100000")]
    [InlineData(null, 50000ul, "max 50000")]
    [InlineData(0L, 0ul, null)]
    [InlineData(null, null, null)]
    public void Cpu_max(long? quota, ulong? period, string? expected) => Assert.Equal(expected, V2Values.CpuMax(quota, period));

    [Fact]
    public void Apply_writes_every_v2_file()
    {
        using var t = FakeTree.V2();
        var (m, attached) = Make(t);
        var r = new CgroupResources
        {
            MemoryLimit = 100 << 20, MemorySwap = 300 << 20, MemoryReservation = 50 << 20,
            CpuShares = 1024, CpuQuota = 50000, CpuPeriod = 100000, CpuBurst = 1000, CpuIdle = 1,
            CpusetCpus = "0-1", CpusetMems = "0", PidsLimit = -1, BlkioWeight = 500,
        };
        r.HugepageLimits.Add(("2MB", 2 << 20));
        r.Devices.Add(new DeviceRule(false, 'a', -1, -1, "rwm"));
        m.Apply(r);
        string Read(string f) => t.Read($"{C1}/{f}");
        Assert.Equal("104857600", Read("memory.max"));
        Assert.Equal("209715200", Read("memory.swap.max"));
        Assert.Equal("52428800", Read("memory.low"));
        Assert.Equal("39", Read("cpu.weight"));
        Assert.Equal("50000 100000", Read("cpu.max"));
        Assert.Equal("1000", Read("cpu.max.burst"));
        Assert.Equal("1", Read("cpu.idle"));
        Assert.Equal("0-1", Read("cpuset.cpus"));
        Assert.Equal("0", Read("cpuset.mems"));
        Assert.Equal("max", Read("pids.max"));
        Assert.Equal("4950", Read("io.weight"));
        Assert.Equal("2097152", Read("hugetlb.2MB.max"));
        var (dir, rules) = Assert.Single(attached);
        Assert.Equal(Path.Combine(t.Root, C1), dir);
        Assert.Equal([new DeviceRule(false, 'a', -1, -1, "rwm")], rules);
    }

    [Fact]
    public void Unlimited_memory_is_max_for_both()
    {
        using var t = FakeTree.V2();
        t.Manager().Apply(new CgroupResources { MemoryLimit = -1 });
        Assert.Equal("max", t.Read($"{C1}/memory.max"));
        Assert.Equal("max", t.Read($"{C1}/memory.swap.max"));
    }

    [Fact]
    public void Unified_values_are_written_last_and_win()
    {
        using var t = FakeTree.V2();
        var r = new CgroupResources { MemoryLimit = 1000 };
        r.Unified["memory.max"] = "2000";
        r.Unified["memory.high"] = "1500";
        t.Manager().Apply(r);
        Assert.Equal("2000", t.Read($"{C1}/memory.max"));
        Assert.Equal("1500", t.Read($"{C1}/memory.high"));
        Assert.Equal(($"{C1}/memory.max", "1000"), t.Fs.Writes[0]);
    }

    [Theory]
    [InlineData("../memory.max")]
    [InlineData("sub/memory.max")]
    [InlineData("..")]
    [InlineData("")]
    public void Unified_keys_must_be_file_names(string key)
    {
        using var t = FakeTree.V2();
        var r = new CgroupResources { PidsLimit = 5 };
        r.Unified[key] = "1";
        Assert.Throws<CgroupException>(() => t.Manager().Apply(r));
        Assert.Empty(t.Fs.Writes);
    }

    [Fact]
    public void Unified_key_for_a_missing_file_is_named()
    {
        using var t = FakeTree.V2();
        var r = new CgroupResources();
        r.Unified["rdma.max"] = "mlx4_0 hca_handle=2";
        var e = Assert.Throws<CgroupException>(() => t.Manager().Apply(r));
        Assert.Contains("linux.resources.unified[\"rdma.max\"]", e.Message);
    }

    [Fact]
    public void Realtime_cpu_is_refused_on_v2()
    {
        using var t = FakeTree.V2();
        var e = Assert.Throws<CgroupException>(() => t.Manager().Apply(new CgroupResources { CpuRealtimeRuntime = 1000 }));
        Assert.Contains("not supported on cgroup v2", e.Message);
    }

    [Fact]
    public void Freeze_waits_for_cgroup_events()
    {
        using var t = FakeTree.V2();
        var m = t.Manager();
        t.File($"{C1}/cgroup.events", "populated 1\nfrozen 1\n");
        m.Freeze();
        Assert.Equal("1", t.Read($"{C1}/cgroup.freeze"));
        Assert.True(m.IsFrozen());
        t.File($"{C1}/cgroup.events", "populated 1\nfrozen 0\n");
        m.Thaw();
        Assert.Equal("0", t.Read($"{C1}/cgroup.freeze"));
        Assert.False(m.IsFrozen());
    }

    [Fact]
    public void Stats_parse_the_v2_files()
    {
        using var t = FakeTree.V2();
        t.File($"{C1}/memory.current", "4096\n").File($"{C1}/memory.peak", "8192\n").File($"{C1}/memory.max", "max\n")
         .File($"{C1}/memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n")
         .File($"{C1}/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
         .File($"{C1}/pids.current", "3\n").File($"{C1}/pids.max", "64\n");
        var s = t.Manager().Stats();
        Assert.Equal(4096ul, s.MemoryUsage);
        Assert.Equal(8192ul, s.MemoryMaxUsage);
        Assert.Null(s.MemoryLimit);
        Assert.Equal(2ul, s.OomKills);
        Assert.Equal(1_500_000ul, s.CpuUsageNanos);
        Assert.Equal(3ul, s.PidsCurrent);
        Assert.Equal(64ul, s.PidsLimit);
    }

    [Fact]
    public void AddProcess_and_Pids()
    {
        using var t = FakeTree.V2();
        var m = t.Manager();
        m.AddProcess(99);
        Assert.Equal("99", t.Read($"{C1}/cgroup.procs"));
        t.File($"{C1}/child/cgroup.procs", "100\n");
        Assert.Equal([99, 100], m.Pids().Order());
    }

    [Fact]
    public void Destroy_removes_the_leaf_only()
    {
        using var t = new FakeTree();
        t.File("cgroup.controllers", "memory\n").File("cgroup.subtree_control");
        var m = t.Manager();
        m.Create();
        t.Dir($"{C1}/sub");
        m.Destroy();
        Assert.False(t.Exists(C1));
        Assert.True(t.Exists("berth"));
        m.Destroy();
    }
}

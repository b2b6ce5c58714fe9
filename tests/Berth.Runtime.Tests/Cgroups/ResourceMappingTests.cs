using Berth.Linux.Cgroups;
using Berth.Oci.Runtime;
using Berth.Runtime.Cgroups;
using Xunit;

namespace Berth.Runtime.Tests.Cgroups;

public class ResourceMappingTests
{
    [Fact]
    public void Null_resources_map_to_nothing()
    {
        var c = ResourceMapping.FromSpec(null);
        Assert.Null(c.MemoryLimit);
        Assert.Empty(c.Devices);
    }

    [Fact]
    public void Values_are_carried_over()
    {
        var c = ResourceMapping.FromSpec(new Resources
        {
            Memory = new Memory { Limit = 100 << 20, Reservation = 50 << 20, Swap = 200 << 20, Swappiness = 60, DisableOOMKiller = true, Kernel = 1 << 20 },
            Cpu = new Cpu { Shares = 512, Quota = 50000, Period = 100000, Cpus = "0-1,3", Mems = "0", Idle = 1, RealtimeRuntime = 950, RealtimePeriod = 1000 },
            Pids = new Pids { Limit = 64 },
            BlockIO = new BlockIo { Weight = 300 },
            HugepageLimits = [new HugepageLimit { PageSize = "2MB", Limit = 4 << 20 }],
            Unified = new() { ["memory.high"] = "1000" },
        });
        Assert.Equal(100L << 20, c.MemoryLimit);
        Assert.Equal(50L << 20, c.MemoryReservation);
        Assert.Equal(200L << 20, c.MemorySwap);
        Assert.Equal(60ul, c.MemorySwappiness);
        Assert.True(c.DisableOomKiller);
        Assert.Equal(512ul, c.CpuShares);
        Assert.Equal(50000L, c.CpuQuota);
        Assert.Equal(100000ul, c.CpuPeriod);
        Assert.Equal("0-1,3", c.CpusetCpus);
        Assert.Equal("0", c.CpusetMems);
        Assert.Equal(1L, c.CpuIdle);
        Assert.Equal(950L, c.CpuRealtimeRuntime);
        Assert.Equal(1000ul, c.CpuRealtimePeriod);
        Assert.Equal(64L, c.PidsLimit);
        Assert.Equal((ushort)300, c.BlkioWeight);
        Assert.Equal([("2MB", 4ul << 20)], c.HugepageLimits);
        Assert.Equal("1000", c.Unified["memory.high"]);
    }

    [Fact]
    public void Zero_means_unset_and_minus_one_unlimited()
    {
        var c = ResourceMapping.FromSpec(new Resources
        {
            Memory = new Memory { Limit = -1, Swap = 0, Reservation = 0, Swappiness = ulong.MaxValue },
            Cpu = new Cpu { Shares = 0, Quota = -1, Period = 0, Cpus = "" },
            BlockIO = new BlockIo { Weight = 0 },
        });
        Assert.Equal(-1L, c.MemoryLimit);
        Assert.Null(c.MemorySwap);
        Assert.Null(c.MemoryReservation);
        Assert.Null(c.MemorySwappiness);
        Assert.Null(c.CpuShares);
        Assert.Equal(-1L, c.CpuQuota);
        Assert.Null(c.CpuPeriod);
        Assert.Null(c.CpusetCpus);
        Assert.Null(c.BlkioWeight);
    }

    [Theory]
    [InlineData("limit", "linux.resources.memory.limit: -5 is not a valid limit")]
    [InlineData("reservation", "linux.resources.memory.reservation: -5 is not a valid limit")]
    [InlineData("swap", "linux.resources.memory.swap: -5 is not a valid limit")]
    public void Negative_memory_values_name_the_field(string field, string message)
    {
        var m = new Memory { Limit = 1000, Swap = 2000 };
        switch (field)
        {
            case "limit": m.Limit = -5; break;
            case "reservation": m.Reservation = -5; break;
            default: m.Swap = -5; break;
        }
        var e = Assert.Throws<CgroupSpecException>(() => ResourceMapping.FromSpec(new Resources { Memory = m }));
        Assert.StartsWith(message, e.Message);
    }

    [Theory]
    [InlineData(100L, 50L, "linux.resources.memory.swap: 50 is less than linux.resources.memory.limit (100)")]
    [InlineData(-1L, 50L, "linux.resources.memory.swap: 50 is less than linux.resources.memory.limit (-1)")]
    [InlineData(null, 50L, "linux.resources.memory.swap: 50 needs linux.resources.memory.limit")]
    public void Swap_must_cover_the_limit(long? limit, long swap, string message)
    {
        var e = Assert.Throws<CgroupSpecException>(() => ResourceMapping.FromSpec(new Resources { Memory = new Memory { Limit = limit, Swap = swap } }));
        Assert.StartsWith(message, e.Message);
    }

    [Theory]
    [InlineData("swappiness")]
    [InlineData("quota")]
    [InlineData("period")]
    [InlineData("cpus")]
    [InlineData("idle")]
    [InlineData("weight")]
    [InlineData("pageSize")]
    [InlineData("unified")]
    public void Other_bad_values_name_their_field(string field)
    {
        var r = new Resources();
        string expected;
        switch (field)
        {
            case "swappiness": r.Memory = new Memory { Swappiness = 101 }; expected = "linux.resources.memory.swappiness: 101"; break;
            case "quota": r.Cpu = new Cpu { Quota = -2 }; expected = "linux.resources.cpu.quota: -2"; break;
            case "period": r.Cpu = new Cpu { Period = 10 }; expected = "linux.resources.cpu.period: 10"; break;
            case "cpus": r.Cpu = new Cpu { Cpus = "0-x" }; expected = "linux.resources.cpu.cpus: \"0-x\""; break;
            case "idle": r.Cpu = new Cpu { Idle = 2 }; expected = "linux.resources.cpu.idle: 2"; break;
            case "weight": r.BlockIO = new BlockIo { Weight = 5 }; expected = "linux.resources.blockIO.weight: 5"; break;
            case "pageSize": r.HugepageLimits = [new HugepageLimit { PageSize = "../2MB" }]; expected = "linux.resources.hugepageLimits[0].pageSize: \"../2MB\""; break;
            default: r.Unified = new() { ["../x"] = "1" }; expected = "linux.resources.unified: \"../x\""; break;
        }
        var e = Assert.Throws<CgroupSpecException>(() => ResourceMapping.FromSpec(r));
        Assert.StartsWith(expected, e.Message);
    }

    [Fact]
    public void Device_defaults()
    {
        var c = ResourceMapping.FromSpec(new Resources
        {
            Devices = [new DeviceCgroup { Allow = false }, new DeviceCgroup { Allow = true, Type = "c", Major = 10, Access = "rw" }],
        });
        Assert.Equal([new DeviceRule(false, 'a', -1, -1, "rwm"), new DeviceRule(true, 'c', 10, -1, "rw")], c.Devices);
        Assert.Equal(["a *:* rwm", "c 10:* rw"], c.Devices.Select(d => d.V1Line));
    }

    [Fact]
    public void Bad_device_type_names_the_index()
    {
        var e = Assert.Throws<CgroupSpecException>(() => ResourceMapping.FromSpec(new Resources
        {
            Devices = [new DeviceCgroup { Allow = false }, new DeviceCgroup { Type = "x" }],
        }));
        Assert.Equal("linux.resources.devices[1].type: \"x\" must be a, b or c", e.Message);
    }

    [Theory]
    [InlineData("rwz")]
    [InlineData("rr")]
    public void Bad_device_access_names_the_index(string access)
    {
        var e = Assert.Throws<CgroupSpecException>(() => ResourceMapping.FromSpec(new Resources
        {
            Devices = [new DeviceCgroup { Type = "c", Access = access }],
        }));
        Assert.StartsWith($"linux.resources.devices[0].access: \"{access}\"", e.Message);
    }

    [Fact]
    public void Bad_device_number_names_the_field()
    {
        var e = Assert.Throws<CgroupSpecException>(() => ResourceMapping.FromSpec(new Resources
        {
            Devices = [new DeviceCgroup { Type = "c", Major = -7 }],
        }));
        Assert.StartsWith("linux.resources.devices[0].major: -7", e.Message);
    }

    [Fact]
    public void Default_allowed_devices()
    {
        Assert.Equal(
            ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"],
            ResourceMapping.DefaultAllowedDevices.Select(d => d.V1Line));
        Assert.All(ResourceMapping.DefaultAllowedDevices, d => Assert.True(d.Allow));
    }

    [Fact]
    public void Final_rule_list_is_spec_rules_then_defaults_then_created_devices()
    {
        var c = ResourceMapping.ForContainer(new Berth.Oci.Runtime.Linux
        {
            Resources = new Resources { Devices = [new DeviceCgroup { Allow = false, Access = "rwm" }] },
            Devices = [new Device { Path = "/dev/fuse", Type = "c", Major = 10, Minor = 229 }, new Device { Path = "/dev/p", Type = "p" }],
        });
        var lines = c.Devices.Select(d => (d.Allow, d.V1Line)).ToList();
        Assert.Equal((false, "a *:* rwm"), lines[0]);
        Assert.Equal(ResourceMapping.DefaultAllowedDevices.Select(d => (true, d.V1Line)), lines.Skip(1).Take(10));
        Assert.Equal((true, "c 10:229 rwm"), lines[11]);
        Assert.Equal(12, lines.Count);
    }

    [Fact]
    public void A_created_device_named_in_resources_keeps_the_access_given_there()
    {
        var c = ResourceMapping.ForContainer(new Berth.Oci.Runtime.Linux
        {
            Resources = new Resources
            {
                Devices = [new DeviceCgroup { Allow = false, Access = "rwm" }, new DeviceCgroup { Allow = true, Type = "c", Major = 10, Minor = 229, Access = "r" }],
            },
            Devices = [new Device { Path = "/dev/fuse", Type = "c", Major = 10, Minor = 229 }, new Device { Path = "/dev/other", Type = "c", Major = 10, Minor = 230 }],
        });
        var lines = c.Devices.Select(d => (d.Allow, d.V1Line)).ToList();
        Assert.Equal((true, "c 10:229 r"), lines[1]);
        Assert.DoesNotContain((true, "c 10:229 rwm"), lines);
        Assert.Equal((true, "c 10:230 rwm"), lines[^1]);
    }

    [Theory]
    [InlineData(null, "/berth/abc")]
    [InlineData("", "/berth/abc")]
    [InlineData("/machine/abc", "/machine/abc")]
    [InlineData("/machine//abc/", "/machine/abc")]
    [InlineData("custom/abc", "/custom/abc")]
    public void Cgroup_paths(string? cgroupsPath, string expected) => Assert.Equal(expected, CgroupPath.Resolve(cgroupsPath, "abc"));

    [Fact]
    public void Systemd_form_is_refused_with_a_pointer()
    {
        var e = Assert.Throws<CgroupSpecException>(() => CgroupPath.Resolve("system.slice:berth:abc", "abc"));
        Assert.Contains("--systemd-cgroup", e.Message);
        Assert.StartsWith("linux.cgroupsPath", e.Message);
    }

    [Theory]
    [InlineData("/berth/../../etc")]
    [InlineData("..")]
    [InlineData("/")]
    public void Bad_cgroup_paths(string path) =>
        Assert.StartsWith("linux.cgroupsPath", Assert.Throws<CgroupSpecException>(() => CgroupPath.Resolve(path, "abc")).Message);
}

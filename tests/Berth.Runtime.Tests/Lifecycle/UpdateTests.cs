using Berth.Oci.Runtime;
using Berth.Runtime.Lifecycle;

namespace Berth.Runtime.Tests.Lifecycle;

public class UpdateTests
{
    private const long Kib = 1024, Mib = 1024 * Kib, Gib = 1024 * Mib;

    [Theory]
    [InlineData("100", 100)]
    [InlineData("64m", 64 * Mib)]
    [InlineData("64M", 64 * Mib)]
    [InlineData("64MB", 64 * Mib)]
    [InlineData("64MiB", 64 * Mib)]
    [InlineData("64mb", 64 * Mib)]
    [InlineData("512k", 512 * Kib)]
    [InlineData("1g", Gib)]
    [InlineData("1.5g", 3 * Gib / 2)]
    [InlineData("2t", 2 * 1024 * Gib)]
    [InlineData("10 m", 10 * Mib)]
    [InlineData("1b", 1)]
    [InlineData("-1", -1)]
    public void Sizes_parse_as_runc_reads_them(string text, long expected) =>
        Assert.Equal(expected, Update.ParseSize(text));

    [Theory]
    [InlineData("")]
    [InlineData("10x")]
    [InlineData("m")]
    [InlineData("-2")]
    [InlineData("1.2.3m")]
    [InlineData("64mm")]
    [InlineData("99999999999p")]
    public void Bad_sizes_are_refused_with_the_text(string text)
    {
        var e = Assert.Throws<RuntimeError>(() => Update.ParseSize(text));
        Assert.Contains("invalid size", e.Message);
    }

    [Fact]
    public void Flags_map_to_the_fields_they_name_and_nothing_else()
    {
        var r = Update.FromFlags(new Dictionary<string, string>
        {
            ["memory"] = "64m", ["memory-reservation"] = "32m", ["memory-swap"] = "-1",
            ["cpu-share"] = "512", ["cpu-quota"] = "50000", ["cpu-period"] = "100000",
            ["cpu-rt-period"] = "1000000", ["cpu-rt-runtime"] = "950000",
            ["cpuset-cpus"] = "0-1", ["cpuset-mems"] = "0", ["pids-limit"] = "77", ["blkio-weight"] = "300",
        });
        Assert.Equal(64 * Mib, r.Memory!.Limit);
        Assert.Equal(32 * Mib, r.Memory.Reservation);
        Assert.Equal(-1, r.Memory.Swap);
        Assert.Null(r.Memory.Swappiness);
        Assert.Equal(512UL, r.Cpu!.Shares);
        Assert.Equal(50000, r.Cpu.Quota);
        Assert.Equal(100000UL, r.Cpu.Period);
        Assert.Equal(1000000UL, r.Cpu.RealtimePeriod);
        Assert.Equal(950000, r.Cpu.RealtimeRuntime);
        Assert.Equal("0-1", r.Cpu.Cpus);
        Assert.Equal("0", r.Cpu.Mems);
        Assert.Equal(77, r.Pids!.Limit);
        Assert.Equal((ushort)300, r.BlockIO!.Weight);
        Assert.Null(r.Devices);
    }

    [Fact]
    public void Docker_spelling_cpu_shares_is_accepted_and_untouched_groups_stay_null()
    {
        var r = Update.FromFlags(new Dictionary<string, string> { ["cpu-shares"] = "1024" });
        Assert.Equal(1024UL, r.Cpu!.Shares);
        Assert.Null(r.Memory);
        Assert.Null(r.Pids);
        Assert.Null(r.BlockIO);
    }

    [Theory]
    [InlineData("memory", "lots", "invalid value for memory")]
    [InlineData("cpu-share", "-5", "invalid value for cpu-share")]
    [InlineData("pids-limit", "many", "invalid value for pids-limit")]
    [InlineData("blkio-weight", "70000", "invalid value for blkio-weight")]
    public void Bad_flag_values_name_the_flag(string flag, string value, string message)
    {
        var e = Assert.Throws<RuntimeError>(() => Update.FromFlags(new Dictionary<string, string> { [flag] = value }));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Merge_keeps_what_the_update_leaves_out_or_zeroes()
    {
        var current = new Resources
        {
            Memory = new Memory { Limit = 64 * Mib, Swap = 128 * Mib },
            Cpu = new Cpu { Shares = 512, Quota = 20000, Cpus = "0" },
            Pids = new Pids { Limit = 50 },
            Devices = [new DeviceCgroup { Allow = false, Access = "rwm" }],
        };
        var update = new Resources
        {
            Memory = new Memory { Limit = 96 * Mib, Swap = 0 },
            Cpu = new Cpu { Quota = 0, Shares = 1024, Cpus = "" },
            Pids = new Pids { Limit = 0 },
        };
        var m = Update.Merge(current, update);
        Assert.Equal(96 * Mib, m.Memory!.Limit);
        Assert.Equal(128 * Mib, m.Memory.Swap);
        Assert.Equal(1024UL, m.Cpu!.Shares);
        Assert.Equal(20000, m.Cpu.Quota);
        Assert.Equal("0", m.Cpu.Cpus);
        Assert.Equal(50, m.Pids!.Limit);
        Assert.Single(m.Devices!);
        // The current object is not changed (it is what a failed update restores).
        Assert.Equal(64 * Mib, current.Memory.Limit);
        Assert.Equal(512UL, current.Cpu.Shares);
    }

    [Fact]
    public void Update_to_cgroup_leaves_device_rules_alone_unless_given()
    {
        var linux = new Berth.Oci.Runtime.Linux
        {
            Resources = new Resources { Devices = [new DeviceCgroup { Allow = false, Access = "rwm" }] },
        };
        var update = Update.FromFlags(new Dictionary<string, string> { ["memory"] = "64m", ["pids-limit"] = "-1" });
        var merged = Update.Merge(linux.Resources, update);
        var c = Update.ToCgroup(linux, merged, update);
        Assert.Equal(64 * Mib, c.MemoryLimit);
        Assert.Equal(-1, c.PidsLimit);
        Assert.Empty(c.Devices);

        var withDevices = new Resources { Devices = [new DeviceCgroup { Allow = false, Access = "rwm" }] };
        var c2 = Update.ToCgroup(linux, Update.Merge(linux.Resources, withDevices), withDevices);
        Assert.False(c2.Devices[0].Allow); // the deny-all first, then the defaults every container gets
        Assert.Contains(c2.Devices, d => d is { Allow: true, Type: 'c', Major: 1, Minor: 3 });
    }

    [Fact]
    public void Invalid_merged_values_fail_as_a_runtime_error()
    {
        var update = Update.FromFlags(new Dictionary<string, string> { ["memory-swap"] = "16m" });
        var merged = Update.Merge(new Resources { Memory = new Memory { Limit = 32 * Mib } }, update);
        var e = Assert.Throws<RuntimeError>(() => Update.ToCgroup(null, merged, update));
        Assert.Contains("memory.swap", e.Message);
    }

    [Fact]
    public void Resources_json_is_read_case_insensitively()
    {
        var r = Update.ParseResources("""{"Memory":{"limit":1048576},"cpu":{"shares":2}}""", "test");
        Assert.Equal(Mib, r.Memory!.Limit);
        Assert.Equal(2UL, r.Cpu!.Shares);
        Assert.Throws<RuntimeError>(() => Update.ParseResources("{", "test"));
    }
}

public class EventsAndPsTests
{
    [Theory]
    [InlineData("5s", 5000)]
    [InlineData("500ms", 500)]
    [InlineData("1m30s", 90000)]
    [InlineData("1.5s", 1500)]
    public void Intervals_parse_as_go_durations(string text, double ms) =>
        Assert.Equal(TimeSpan.FromMilliseconds(ms), Events.ParseInterval(text));

    [Theory]
    [InlineData("5")]
    [InlineData("0s")]
    [InlineData("fast")]
    [InlineData("")]
    public void Bad_intervals_are_refused(string text) =>
        Assert.Throws<RuntimeError>(() => Events.ParseInterval(text));

    [Theory]
    [InlineData(0, "?")]
    [InlineData((136 << 8) | 3, "pts/3")]
    [InlineData((4 << 8) | 1, "tty1")]
    [InlineData((4 << 8) | 64, "ttyS0")]
    public void Tty_numbers_are_named_as_ps_names_them(int nr, string name) =>
        Assert.Equal(name, Ps.TtyName(nr));

    [Theory]
    [InlineData(0, "00:00:00")]
    [InlineData(3723, "01:02:03")]
    [InlineData(90061, "1-01:01:01")]
    public void Cpu_time_is_formatted_as_ps_formats_it(long seconds, string text) =>
        Assert.Equal(text, Ps.CpuTime(seconds));

    [Fact]
    public void Ps_options_choose_the_table()
    {
        Assert.True(Ps.ParseOptions([]));
        Assert.True(Ps.ParseOptions(["-ef"]));
        Assert.True(Ps.ParseOptions(["-e", "-f"]));
        Assert.False(Ps.ParseOptions(["-e"]));
        Assert.Throws<RuntimeError>(() => Ps.ParseOptions(["-o", "pid"]));
        Assert.Throws<RuntimeError>(() => Ps.ParseOptions(["aux"]));
    }

    [Fact]
    public void Ps_json_is_an_array_even_when_empty()
    {
        Assert.Equal("[]", Ps.Json([]));
        Assert.Equal("[1,22]", Ps.Json([1, 22]));
    }
}

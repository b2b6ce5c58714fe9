using Berth.Engine.Containers;
using Berth.Engine.Sandbox;
using Xunit;

namespace Berth.Engine.Tests;

public sealed class SandboxSpecTests
{
    [Theory]
    [InlineData(true, 1UL, 0, 9, "TO")]
    [InlineData(false, 1UL, 0, 9, "ML")]
    [InlineData(false, 0UL, 0, 25, "OL")]
    [InlineData(false, 0UL, 0, 24, "TO")]
    [InlineData(false, 0UL, 0, 11, "SG")]
    [InlineData(false, 0UL, 3, 0, "RE")]
    [InlineData(false, 0UL, 0, 0, "OK")]
    public void Classify_orders_time_memory_output_signal_exit(bool timeKill, ulong oom, int code, int sig, string expected) =>
        Assert.Equal(expected, Verdict.Classify(timeKill, oom, code, sig));

    [Fact]
    public void Dir_rules_parse_like_isolates()
    {
        Assert.Equal(new DirRule("/opt/x", "/opt/x", false), DirRule.Parse("/opt/x"));
        Assert.Equal(new DirRule("/opt/x", "/y", false), DirRule.Parse("/opt/x:/y"));
        Assert.Equal(new DirRule("/opt/x", "/y", true), DirRule.Parse("/opt/x:/y:rw"));
        Assert.Equal(new DirRule("/opt/x", "/opt/x", true), DirRule.Parse("/opt/x:rw"));
        Assert.Throws<EngineError>(() => DirRule.Parse("rel"));
        Assert.Throws<EngineError>(() => DirRule.Parse("/a:/b/../etc"));
    }

    [Fact]
    public void Spec_drops_everything_and_sets_the_limits()
    {
        var o = new SandboxOptions { Command = ["/prog", "a"], Memory = 32 << 20, Processes = 10, FsizeKb = 100, Time = 1.5, Stack = 8 << 20 };
        var spec = SandboxSpec.Build(o, "/r/rootfs", "/r/box");
        var p = spec.Process!;
        Assert.Equal(["/prog", "a"], p.Args);
        Assert.Equal((SandboxOptions.Uid, SandboxOptions.Gid), (p.User!.Uid, p.User.Gid));
        Assert.True(p.NoNewPrivileges);
        Assert.Empty(p.Capabilities!.Bounding!);
        Assert.Empty(p.Capabilities.Effective!);
        Assert.Equal("/box", p.Cwd);
        var rl = p.Rlimits!.ToDictionary(r => r.Type);
        Assert.Equal(0UL, rl["RLIMIT_CORE"].Hard);
        Assert.Equal(102400UL, rl["RLIMIT_FSIZE"].Soft);
        Assert.Equal(64UL, rl["RLIMIT_NOFILE"].Soft);
        Assert.Equal(3UL, rl["RLIMIT_CPU"].Soft);
        Assert.Equal(8UL << 20, rl["RLIMIT_STACK"].Soft);
        Assert.True(spec.Root!.Readonly);
        Assert.Equal(32L << 20, spec.Linux!.Resources!.Memory!.Limit);
        Assert.Equal(32L << 20, spec.Linux.Resources.Memory.Swap);
        Assert.Equal(10L, spec.Linux.Resources.Pids!.Limit);
        Assert.Contains(spec.Linux.Namespaces!, n => n.Type == "network");
        var boxMount = spec.Mounts!.Single(m => m.Destination == "/box");
        Assert.Equal("/r/box", boxMount.Source);
        Assert.All(spec.Mounts!.Where(m => m.Destination is "/usr" or "/etc"), m => Assert.Contains("ro", m.Options!));
        // /proc holds the jail's processes only (subset=pid): no /proc path left to mask or bind read-only.
        Assert.Contains("subset=pid", spec.Mounts!.Single(m => m.Destination == "/proc").Options!);
        Assert.Empty(spec.Linux.ReadonlyPaths!);
        Assert.DoesNotContain(spec.Linux.MaskedPaths!, m => m.StartsWith("/proc/", StringComparison.Ordinal));
        Assert.Contains("/sys/kernel", spec.Linux.MaskedPaths!);

        var net = SandboxSpec.Build(new SandboxOptions { Command = ["/p"], Net = true }, "/r", "/b");
        Assert.DoesNotContain(net.Linux!.Namespaces!, n => n.Type == "network");
        Assert.Null(net.Linux.Resources!.Memory);
    }

    [Fact]
    public void Wall_time_defaults_from_the_cpu_time_limit()
    {
        Assert.Null(new SandboxOptions().EffectiveWallTime);
        Assert.Equal(4.0, new SandboxOptions { Time = 1 }.EffectiveWallTime);
        Assert.Equal(2.0, new SandboxOptions { Time = 1, WallTime = 2 }.EffectiveWallTime);
    }

    [Fact]
    public void Isolate_meta_omits_status_when_OK_and_json_puts_status_first()
    {
        var ok = new Verdict { Status = "OK", Time = 0.0123, WallTime = 0.02, MaxRssKb = 900 };
        Assert.Equal("exitcode:0\ntime:0.012\ntime-wall:0.020\nmax-rss:900\ncg-mem:900\n", ok.ToIsolate());
        var to = new Verdict { Status = "TO", ExitSig = 9, Killed = true, Message = "time limit exceeded" };
        Assert.StartsWith("status:TO\nexitsig:9\n", to.ToIsolate());
        Assert.Contains("killed:1\n", to.ToIsolate());
        Assert.StartsWith("{\"status\":\"TO\",", to.ToJson());
    }
}

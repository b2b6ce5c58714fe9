using Berth.Engine.Containers;
using Xunit;

namespace Berth.Engine.Tests;

public sealed class RunFlagsTests
{
    [Fact]
    public void Ulimit_soft_and_hard()
    {
        var r = RunFlags.ParseUlimit("nofile=512:1024");
        Assert.Equal(("RLIMIT_NOFILE", 512ul, 1024ul), (r.Type, r.Soft, r.Hard));
        var same = RunFlags.ParseUlimit("nproc=77");
        Assert.Equal((77ul, 77ul), (same.Soft, same.Hard));
        var unl = RunFlags.ParseUlimit("core=-1:unlimited");
        Assert.Equal((ulong.MaxValue, ulong.MaxValue), (unl.Soft, unl.Hard));
    }

    [Theory]
    [InlineData("nofile", "NAME=SOFT")]
    [InlineData("files=1", "unknown limit \"files\"")]
    [InlineData("nofile=2:1", "above the hard limit")]
    [InlineData("nofile=x", "\"x\" is not a number")]
    [InlineData("nofile=1:2:3", "NAME=SOFT")]
    public void Ulimit_errors(string spec, string fault)
    {
        var e = Assert.Throws<EngineError>(() => RunFlags.ParseUlimit(spec));
        Assert.Contains("--ulimit " + spec, e.Message);
        Assert.Contains(fault, e.Message);
    }

    [Fact]
    public void Device_forms()
    {
        Assert.Equal(new DeviceRequest("/dev/fuse", "/dev/fuse", "rwm"), RunFlags.ParseDevice("/dev/fuse"));
        Assert.Equal(new DeviceRequest("/dev/fuse", "/dev/f", "rwm"), RunFlags.ParseDevice("/dev/fuse:/dev/f"));
        Assert.Equal(new DeviceRequest("/dev/fuse", "/dev/fuse", "r"), RunFlags.ParseDevice("/dev/fuse:r"));
        Assert.Equal(new DeviceRequest("/dev/fuse", "/dev/f", "rw"), RunFlags.ParseDevice("/dev/fuse:/dev/f:rw"));
        Assert.Contains("not a combination", Assert.Throws<EngineError>(() => RunFlags.ParseDevice("/dev/a:/dev/b:rwx")).Message);
        Assert.Contains("must be absolute", Assert.Throws<EngineError>(() => RunFlags.ParseDevice("dev/a")).Message);
        Assert.Contains("\"..\"", Assert.Throws<EngineError>(() => RunFlags.ParseDevice("/dev/a:/dev/../etc/x")).Message);
    }

    [Fact]
    public void Env_file_is_literal_with_comments_and_host_passthrough()
    {
        var text = "# comment\nA=1\n\n   B=  spaced \nC=\"quoted\"\r\nFROMHOST\nMISSING\nD=x=y\n";
        var env = RunFlags.ParseEnvFile(text, "f", k => k == "FROMHOST" ? "h" : null);
        Assert.Equal(["A=1", "B=  spaced ", "C=\"quoted\"", "FROMHOST=h", "D=x=y"], env);
    }

    [Fact]
    public void Env_file_error_names_file_and_line()
    {
        var e = Assert.Throws<EngineError>(() => RunFlags.ParseEnvFile("A=1\nBAD KEY=2\n", "/tmp/envs", _ => null));
        Assert.Contains("/tmp/envs", e.Message);
        Assert.Contains("line 2", e.Message);
    }

    [Fact]
    public void Labels()
    {
        Assert.Equal(new KeyValuePair<string, string>("a.b", "c=d"), RunFlags.ParseLabel("a.b=c=d"));
        Assert.Equal(new KeyValuePair<string, string>("flag", ""), RunFlags.ParseLabel("flag"));
        Assert.Throws<EngineError>(() => RunFlags.ParseLabel("=x"));
    }
}

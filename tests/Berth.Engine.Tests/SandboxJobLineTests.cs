using Berth.Engine.Containers;
using Berth.Engine.Sandbox;
using Xunit;

namespace Berth.Engine.Tests;

/// <summary>`berth sandbox batch` job lines -> options, and the result line's shape.</summary>
public sealed class SandboxJobLineTests
{
    [Fact]
    public void Every_run_option_has_a_key()
    {
        var job = SandboxJobLine.Parse("""
            {"id":"s1","command":["./a.out","x"],"box":"/srv/b","dir":["/opt/x:/y:rw","/data"],"time":1.5,"wall-time":"4",
             "memory":"64m","processes":8,"fsize":"100","open-files":16,"stack":1048576,"box-size":"1g",
             "stdin":"in","stdout":"out","stderr":"err","net":true,"keep-output":true}
            """);
        var o = job.Options;
        Assert.Equal("s1", job.Id);
        Assert.Equal(["./a.out", "x"], o.Command);
        Assert.Equal("/srv/b", o.Box);
        Assert.Equal([new DirRule("/opt/x", "/y", true), new DirRule("/data", "/data", false)], o.Dirs);
        Assert.Equal(1.5, o.Time);
        Assert.Equal(4, o.WallTime);
        Assert.Equal(64L << 20, o.Memory);
        Assert.Equal(8, o.Processes);
        Assert.Equal(100, o.FsizeKb);
        Assert.Equal(16, o.OpenFiles);
        Assert.Equal(1048576, o.Stack);
        Assert.Equal(1L << 30, o.BoxSize);
        Assert.Equal(("in", "out", "err"), (o.Stdin, o.Stdout, o.Stderr));
        Assert.True(o.Net);
        Assert.True(o.KeepOutput);
    }

    [Fact]
    public void Defaults_are_runs()
    {
        var o = SandboxJobLine.Parse("""{"command":["/bin/true"]}""").Options;
        Assert.Equal(64, o.Processes);
        Assert.Equal(64, o.OpenFiles);
        Assert.Equal(128L << 20, o.BoxSize);
        Assert.Null(o.Memory);
        Assert.Null(o.Time);
        Assert.False(o.Net);
    }

    [Theory]
    [InlineData("not json", "invalid JSON")]
    [InlineData("[1]", "a job must be a JSON object")]
    [InlineData("{}", "\"command\": missing")]
    [InlineData("""{"command":"sh"}""", "\"command\": expected an array of strings")]
    [InlineData("""{"command":["sh",1]}""", "\"command\": expected an array of strings")]
    [InlineData("""{"command":["sh"],"bogus":1}""", "unknown key \"bogus\"")]
    [InlineData("""{"command":["sh"],"time":0}""", "\"time\": 0: expected seconds > 0")]
    [InlineData("""{"command":["sh"],"memory":"lots"}""", "\"memory\": lots: expected a size")]
    [InlineData("""{"command":["sh"],"processes":-1}""", "\"processes\": -1: expected a positive whole number")]
    [InlineData("""{"command":["sh"],"net":"yes"}""", "\"net\": expected true or false")]
    [InlineData("""{"command":["sh"],"keep-output":true}""", "\"keep-output\" needs \"box\"")]
    [InlineData("""{"command":["sh"],"dir":"relative"}""", "paths must be absolute")]
    public void Bad_lines_name_what_is_wrong(string line, string expected)
    {
        var e = Assert.Throws<EngineError>(() => SandboxJobLine.Parse(line));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Result_is_runs_json_with_line_and_id_appended()
    {
        var v = new Verdict { Status = "RE", ExitCode = 3, Message = "exited with error status 3" };
        var line = SandboxBatch.WithJob(v, 7, "a\"b");
        Assert.StartsWith(v.ToJson().TrimEnd()[..^1] + ",", line);
        Assert.EndsWith(",\"line\":7,\"id\":\"a\\u0022b\"}", line);
        Assert.Equal("status", System.Text.Json.JsonDocument.Parse(line).RootElement.EnumerateObject().First().Name);
        Assert.StartsWith("{\"status\":\"XX\"", SandboxBatch.Xx(2, null, "invalid JSON"));
        Assert.Contains("\"message\":\"line 2: invalid JSON\"", SandboxBatch.Xx(2, null, "invalid JSON"));
    }
}

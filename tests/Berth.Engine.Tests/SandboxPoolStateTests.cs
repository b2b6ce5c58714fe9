using System.Text.Json;
using Berth.Engine.Sandbox;
using Xunit;

namespace Berth.Engine.Tests;

/// <summary>A pool slot's state file (what one `sandbox run --pool` leaves the next) and the verdict's hand-written JSON.</summary>
public class SandboxPoolStateTests
{
    [Fact]
    public void A_state_survives_its_file_format_keys_with_newlines_and_backslashes_included()
    {
        var st = new SandboxPool.State(false, 128L << 20,
            new SandboxCgroup.Saved("-1|-1|64", true, 724992, 3, "v1 /sys/fs/cgroup/memory=memory /sys/fs/cgroup/cpu,cpuacct=cpu,cpuacct"),
            new SandboxPool.TemplateState(4242, 3968958, ["/dev/shm", "/tmp"], "/run/x/rootfs|a\\b\nc|;DevicePlan { Path = /dev/null }"));
        var back = SandboxPool.State.Parse(st.Format());
        Assert.NotNull(back);
        Assert.False(back.Busy);
        Assert.Equal(128L << 20, back.BoxSize);
        Assert.Equal(st.Cgroup, back.Cgroup);
        Assert.Equal(st.Template!.Key, back.Template!.Key);
        Assert.Equal((4242, 3968958UL), (back.Template.Pid, back.Template.StartTime));
        Assert.Equal(["/dev/shm", "/tmp"], back.Template.ScrubPaths);

        var busy = SandboxPool.State.Parse((st with { Busy = true }).Format());
        Assert.True(busy!.Busy);
        var empty = SandboxPool.State.Parse(SandboxPool.State.Empty.Format());
        Assert.Equal((false, null, null, null), (empty!.Busy, empty.BoxSize, empty.Cgroup, empty.Template));
    }

    [Theory]
    [InlineData("")]
    [InlineData("X\n")]
    [InlineData("R\nbox lots\n")]
    [InlineData("R\ntemplate 12 34 /tmp\n")]          // a template without its key
    [InlineData("R\ntemplate -1 34 /tmp\nkey k\n")]   // no such pid
    [InlineData("R\nsomething else\n")]
    [InlineData("R\ncgroup - 1 x 0\n")]
    public void A_state_this_code_did_not_write_is_refused(string text) => Assert.Null(SandboxPool.State.Parse(text));

    [Theory]
    [InlineData("a")]
    [InlineData("judge-2")]
    public void Pool_names_are_letters_digits_and_dashes(string name) => Assert.Equal(name, SandboxPool.CheckName(name));

    [Theory]
    [InlineData("")]
    [InlineData("-x")]
    [InlineData("../x")]
    [InlineData("a b")]
    [InlineData("abcdefghijklmnopqrstuvwxyz0123456789")]
    public void Other_pool_names_are_refused(string name) =>
        Assert.Throws<Berth.Engine.Containers.EngineError>(() => SandboxPool.CheckName(name));

    [Fact]
    public void The_verdict_json_escapes_what_json_requires_and_parses_back()
    {
        var v = new Verdict { Status = "RE", ExitCode = 3, Time = 0.0123456, WallTime = 1.5, MaxRssKb = 512, Message = "say \"hi\"\\\n\t\u0001 é <b>" };
        var json = v.ToJson();
        Assert.EndsWith("}\n", json);
        Assert.StartsWith("{\"status\":\"RE\",", json);
        var e = JsonDocument.Parse(json).RootElement;
        Assert.Equal(v.Message, e.GetProperty("message").GetString());
        Assert.Equal(0.012, e.GetProperty("time").GetDouble());
        Assert.Equal(1.5, e.GetProperty("wall_time").GetDouble());
        Assert.Equal(3, e.GetProperty("exitcode").GetInt32());
        Assert.False(e.GetProperty("killed").GetBoolean());
        Assert.Contains("\"time\":0.012,\"wall_time\":1.5,", json);
        Assert.Contains("\"wall_time\":0,", new Verdict { Status = "OK" }.ToJson());
    }
}

using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>OCI hooks run on the host with the state JSON on stdin, and their timeout is honoured.</summary>
public sealed class HookTests(TestEnvironment env) : IntegrationTest(env)
{
    private static readonly string[] Kinds = ["createRuntime", "prestart", "poststart", "poststop"];

    [Fact]
    public void Hooks_receive_the_state_on_stdin()
    {
        var c = NewContainer();
        string outDir = Path.Combine(c.WorkDir, "hook-out");
        Directory.CreateDirectory(outDir);
        string hook = c.HostScript("hook.sh", $"cat > {outDir}/$1.json; echo \"$HOOK_VAR\" > {outDir}/$1.env");
        foreach (var kind in Kinds) c.AddHook(kind, hook, ["hook.sh", kind], timeout: 10, env: ["HOOK_VAR=from-" + kind]);
        c.Args("sleep", "60");

        c.CreateOk();
        int pid = c.Pid();
        JsonObject State(string kind) =>
            JsonNode.Parse(TestContainer.WaitForFile(Path.Combine(outDir, kind + ".json")))!.AsObject();

        foreach (var kind in new[] { "createRuntime", "prestart" })
        {
            var s = State(kind);
            Assert.Equal(c.Id, (string?)s["id"]);
            Assert.Equal(c.BundleDir, (string?)s["bundle"]);
            Assert.Equal(pid, (int)s["pid"]!);
            Assert.Contains((string?)s["status"], new[] { "creating", "created" });
            Assert.Equal("from-" + kind, File.ReadAllText(Path.Combine(outDir, kind + ".env")).Trim());
        }
        Assert.False(File.Exists(Path.Combine(outDir, "poststart.json")), "poststart ran at create");

        c.StartOk();
        var poststart = State("poststart");
        Assert.Equal(c.Id, (string?)poststart["id"]);
        Assert.Equal(pid, (int)poststart["pid"]!);
        Assert.Equal("running", (string?)poststart["status"]);
        Assert.False(File.Exists(Path.Combine(outDir, "poststop.json")), "poststop ran before delete");

        Assert.True(c.Kill("KILL").Succeeded);
        c.WaitForStatus("stopped");
        var delete = c.Delete();
        Assert.True(delete.Succeeded, delete.ToString());
        var poststop = State("poststop");
        Assert.Equal(c.Id, (string?)poststop["id"]);
        Assert.Equal(c.BundleDir, (string?)poststop["bundle"]);
        Assert.Equal("stopped", (string?)poststop["status"]);
        c.AssertNoLeaks("after delete");
    }

    [Fact]
    public void Hook_exceeding_its_timeout_fails_the_create_cleanly()
    {
        var c = NewContainer();
        string hook = c.HostScript("slow-hook.sh", "exec sleep 20");
        c.AddHook("createRuntime", hook, timeout: 1);
        c.Args("sleep", "60");
        var started = DateTime.UtcNow;
        var r = c.Create();
        var took = DateTime.UtcNow - started;
        Assert.NotEqual(0, r.ExitCode);
        Assert.False(r.TimedOut, r.ToString());
        Assert.True(took < TimeSpan.FromSeconds(10), $"create took {took.TotalSeconds:F1}s with a 1s hook timeout");
        c.AssertNoLeaks("after the failed create");
    }

    [Fact]
    public void Failing_hook_fails_the_create_cleanly()
    {
        var c = NewContainer();
        string hook = c.HostScript("bad-hook.sh", "echo hook-says-no >&2; exit 3");
        c.AddHook("createRuntime", hook);
        c.Args("sleep", "60");
        var r = c.Create();
        Assert.NotEqual(0, r.ExitCode);
        c.AssertNoLeaks("after the failed create");
    }
}

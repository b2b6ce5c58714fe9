using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>
/// A bad config fails create with a non-zero status, an error on stderr that names the field and
/// the value, and nothing left behind: no state dir, cgroup, mount or process (berth's contract;
/// runc's wording differs).
/// </summary>
public sealed class BadConfigTests(TestEnvironment env) : IntegrationTest(env)
{
    private static void AssertFailsCleanly(TestContainer c, ProcResult r, params string[] mentions)
    {
        Assert.False(r.TimedOut, r.ToString());
        Assert.NotEqual(0, r.ExitCode);
        foreach (var m in mentions)
            Assert.True(r.Stderr.Contains(m, StringComparison.OrdinalIgnoreCase), $"stderr does not name '{m}':\n{r}");
        c.AssertNoLeaks("after the failed create");
    }

    [Fact]
    public void Malformed_json()
    {
        var c = NewContainer();
        c.WriteRawConfig("{ \"ociVersion\": \"1.0.2\", \"process\": { \"args\": [\"sh\" ");
        AssertFailsCleanly(c, c.Create(), "config.json");
    }

    [Fact]
    public void Wrongly_typed_field()
    {
        var c = NewContainer();
        c.Process["args"] = "sh -c true"; // must be an array
        AssertFailsCleanly(c, c.Create(), "args");
    }

    [Fact]
    public void Missing_rootfs()
    {
        var c = NewContainer();
        c.Config["root"]!["path"] = "no-such-rootfs";
        AssertFailsCleanly(c, c.Create(), "root", "no-such-rootfs");
    }

    [Fact]
    public void Unknown_capability()
    {
        var c = NewContainer();
        c.Process["capabilities"]!["bounding"]!.AsArray().Add("CAP_BOGUS_CAP");
        AssertFailsCleanly(c, c.Create(), "capabilit", "CAP_BOGUS_CAP");
    }

    [Fact]
    public void Unknown_namespace()
    {
        var c = NewContainer();
        c.Namespaces.Add(new JsonObject { ["type"] = "bogusns" });
        AssertFailsCleanly(c, c.Create(), "namespace", "bogusns");
    }

    [Fact]
    public void Bad_mount_type()
    {
        var c = NewContainer();
        c.AddMount("/mnt-bad", "notafs", "none");
        AssertFailsCleanly(c, c.Create(), "mount", "notafs", "/mnt-bad");
    }

    [Fact]
    public void Missing_bind_mount_source()
    {
        var c = NewContainer();
        string missing = "/nonexistent-source-" + c.Id;
        c.AddBindMount(missing, "/data");
        AssertFailsCleanly(c, c.Create(), "mount", missing);
    }

    [Fact]
    public void Missing_process_args()
    {
        var c = NewContainer();
        c.Process.Remove("args");
        AssertFailsCleanly(c, c.Create(), "args");
    }

    [Fact]
    public void Missing_executable_fails_at_start_or_create_without_leaks()
    {
        var c = NewContainer();
        c.Args("/no/such/binary");
        var r = c.Run();
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("/no/such/binary", r.Stderr);
        c.AssertNoLeaks("after the failed run");
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>The runc-compatible CLI surface: --version, spec, --log/--log-format json.</summary>
public sealed class CliTests(TestEnvironment env) : IntegrationTest(env)
{
    [Fact]
    public void Version_prints_a_version()
    {
        var c = NewContainer();
        var r = c.RuntimeWith(["--version"], withRoot: false);
        Assert.True(r.Succeeded, r.ToString());
        Assert.Contains("version", r.Stdout, StringComparison.OrdinalIgnoreCase);
        Assert.Matches(@"\d+\.\d+", r.Stdout);
    }

    [Fact]
    public void Spec_writes_a_config_that_run_accepts()
    {
        var c = NewContainer();
        string dir = Path.Combine(c.WorkDir, "spec-bundle");
        Directory.CreateDirectory(dir);
        TestEnvironment.MakeTraversable(dir);
        var spec = c.Runtime("spec", "--bundle", dir);
        Assert.True(spec.Succeeded, spec.ToString());

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        Assert.StartsWith("1.", (string?)config["ociVersion"]);
        Assert.Equal("rootfs", (string?)config["root"]?["path"]);
        var namespaces = config["linux"]!["namespaces"]!.AsArray().Select(n => (string?)n!["type"]).ToList();
        foreach (var ns in new[] { "pid", "network", "ipc", "uts", "mount" }) Assert.Contains(ns, namespaces);
        Assert.NotEmpty(config["linux"]!["maskedPaths"]!.AsArray());
        Assert.NotEmpty(config["linux"]!["readonlyPaths"]!.AsArray());

        // The only edits: a program that exits, and no terminal (the tests have none).
        config["process"]!["args"] = new JsonArray("sh", "-c", "echo spec-ok");
        config["process"]!["terminal"] = false;
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        var cp = ProcessRunner.Host("cp", "-a", Path.Combine(c.BundleDir, "rootfs"), Path.Combine(dir, "rootfs"));
        Assert.True(cp.Succeeded, cp.ToString());

        var run = c.Runtime("run", "--bundle", dir, c.Id);
        Assert.True(run.Succeeded, run.ToString());
        Assert.Equal("spec-ok", run.Stdout.Trim());
    }

    [Fact]
    public void Spec_rootless_writes_a_user_namespace()
    {
        var c = NewContainer();
        string dir = Path.Combine(c.WorkDir, "spec-rootless");
        Directory.CreateDirectory(dir);
        var spec = c.Runtime("spec", "--rootless", "--bundle", dir);
        Assert.True(spec.Succeeded, spec.ToString());
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        Assert.Contains("user", config["linux"]!["namespaces"]!.AsArray().Select(n => (string?)n!["type"]));
        Assert.NotEmpty(config["linux"]!["uidMappings"]!.AsArray());
    }

    [Fact]
    public void Json_log_records_an_error_with_level_msg_and_time()
    {
        var c = NewContainer();
        string log = Path.Combine(c.WorkDir, "runtime.log");
        var r = c.RuntimeWith(["--log", log, "--log-format", "json", "--root", c.StateRoot, "state", c.Id], withRoot: false);
        Assert.NotEqual(0, r.ExitCode);
        Assert.True(File.Exists(log), "no log file written:\n" + r);

        var records = Lines(File.ReadAllText(log)).Select(line =>
        {
            try { return JsonNode.Parse(line)!.AsObject(); }
            catch (JsonException e) { throw new Xunit.Sdk.XunitException($"log line is not JSON ({e.Message}): {line}"); }
        }).ToList();
        Assert.NotEmpty(records);
        foreach (var rec in records)
        {
            Assert.False(string.IsNullOrEmpty((string?)rec["level"]), rec.ToJsonString());
            Assert.NotNull(rec["msg"]);
            Assert.True(DateTimeOffset.TryParse((string?)rec["time"], out _), "bad time in " + rec.ToJsonString());
        }
        Assert.Contains(records, rec => (string?)rec["level"] == "error");
    }

    [Fact]
    public void Help_exits_zero()
    {
        var c = NewContainer();
        var r = c.RuntimeWith(["--help"], withRoot: false);
        Assert.True(r.Succeeded, r.ToString());
        foreach (var cmd in new[] { "create", "start", "run", "state", "kill", "delete", "list", "spec" })
            Assert.Contains(cmd, r.Stdout);
    }

    [Fact]
    public void Unknown_command_fails()
    {
        var c = NewContainer();
        var r = c.Runtime("no-such-command");
        Assert.NotEqual(0, r.ExitCode);
    }
}

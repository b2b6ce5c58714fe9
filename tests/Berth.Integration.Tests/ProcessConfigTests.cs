using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>process.* in config.json: capabilities, rlimits, user, env, cwd, umask.</summary>
public sealed class ProcessConfigTests(TestEnvironment env) : IntegrationTest(env)
{
    private static readonly string[] DefaultCaps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

    public static TheoryData<string, string[], string[]> CapabilitySets => new()
    {
        // name, bounding = effective = permitted, inheritable (ambient = the bounding list)
        { "default", DefaultCaps, [] },
        { "empty", [], [] },
        { "sys-admin", [.. DefaultCaps, "CAP_SYS_ADMIN"], ["CAP_SYS_ADMIN"] },
        { "chown-only", ["CAP_CHOWN"], ["CAP_CHOWN"] },
    };

    /// <summary>
    /// The container process (cat itself, exec'd by the runtime with noNewPrivileges) reads its own
    /// status. Expected masks follow the kernel's rules: an ambient capability exists only when it is
    /// also permitted and inheritable, so CapAmb = ambient ∩ inheritable ∩ permitted.
    /// </summary>
    [Theory]
    [MemberData(nameof(CapabilitySets))]
    public void Capabilities_in_proc_status_match_the_config(string name, string[] caps, string[] inheritable)
    {
        var c = NewContainer("caps-" + name);
        c.Capabilities(bounding: caps, effective: caps, permitted: caps, inheritable: inheritable, ambient: caps);
        c.Args("cat", "/proc/self/status");
        var status = Kernel.ParseStatus(c.RunOk());

        ulong set = Kernel.CapMask(caps), inh = Kernel.CapMask(inheritable);
        Assert.Equal($"{set:x16}", status["CapBnd"]);
        Assert.Equal($"{set:x16}", status["CapPrm"]);
        Assert.Equal($"{set:x16}", status["CapEff"]);
        Assert.Equal($"{inh:x16}", status["CapInh"]);
        Assert.Equal($"{set & inh:x16}", status["CapAmb"]);
        Assert.Equal("1", status["NoNewPrivs"]);
    }

    /// <summary>
    /// The program starts with every signal at its default action and none blocked, as under runc and
    /// crun: ignored signals and the mask survive execve, and the .NET runtime ignores SIGPIPE, so
    /// without the reset `yes | head -1` style pipelines in containers would spin on EPIPE.
    /// </summary>
    [Fact]
    public void The_program_gets_default_signal_dispositions_and_an_empty_mask()
    {
        var c = NewContainer("sigs");
        c.Args("cat", "/proc/self/status");
        AssertDefaultSignals(Kernel.ParseStatus(c.RunOk()));
    }

    /// <summary>The same for a process that `exec` adds to a running container.</summary>
    [Fact]
    public void An_exec_process_gets_default_signal_dispositions_and_an_empty_mask()
    {
        var c = NewContainer("sigs-exec");
        c.Args("sleep", "30");
        Assert.True(c.Create().Succeeded);
        Assert.True(c.Start().Succeeded);
        try
        {
            var r = c.Runtime("exec", c.Id, "cat", "/proc/self/status");
            Assert.True(r.Succeeded, r.ToString());
            AssertDefaultSignals(Kernel.ParseStatus(r.Stdout));
        }
        finally { c.Runtime("delete", "--force", c.Id); }
    }

    private static void AssertDefaultSignals(IReadOnlyDictionary<string, string> status)
    {
        Assert.Equal("0000000000000000", status["SigIgn"]);
        Assert.Equal("0000000000000000", status["SigBlk"]);
    }

    [Fact]
    public void Rlimits_are_applied()
    {
        var c = NewContainer();
        c.Process["rlimits"] = new JsonArray(
            new JsonObject { ["type"] = "RLIMIT_NOFILE", ["soft"] = 512, ["hard"] = 1000 },
            new JsonObject { ["type"] = "RLIMIT_CORE", ["soft"] = 1024, ["hard"] = 2048 });
        c.Sh("ulimit -n; ulimit -Hn; cat /proc/self/limits");
        var lines = Lines(c.RunOk());
        Assert.Equal("512", lines[0]);
        Assert.Equal("1000", lines[1]);
        string[] Limit(string title) =>
            lines.Single(l => l.StartsWith(title, StringComparison.Ordinal))[title.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[..2];
        Assert.Equal(["512", "1000"], Limit("Max open files"));
        Assert.Equal(["1024", "2048"], Limit("Max core file size"));
    }

    [Fact]
    public void Uid_gid_and_additional_groups_are_applied()
    {
        var c = NewContainer();
        c.Process["user"] = new JsonObject { ["uid"] = 1000, ["gid"] = 1000, ["additionalGids"] = new JsonArray(100, 5) };
        c.Sh("cat /proc/self/status; echo ===; id");
        var parts = c.RunOk().Split("===\n");
        var status = Kernel.ParseStatus(parts[0]);
        Assert.Equal(["1000", "1000", "1000", "1000"], status["Uid"].Split('\t', ' ').Where(s => s.Length > 0));
        Assert.Equal(["1000", "1000", "1000", "1000"], status["Gid"].Split('\t', ' ').Where(s => s.Length > 0));
        Assert.Equal([5, 100], status["Groups"].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).Order());
        Assert.StartsWith("uid=1000(user) gid=1000(user)", parts[1].Trim());
    }

    [Fact]
    public void Env_and_cwd_are_applied_and_host_env_does_not_leak()
    {
        var c = NewContainer();
        c.ProcessEnv.Add("FOO=bar baz");
        c.ProcessEnv.Add("EMPTY=");
        c.Process["cwd"] = "/home/user";
        c.Sh("pwd; readlink /proc/self/cwd; echo \"FOO=[$FOO]\"; echo ===; env");
        var parts = c.RunOk().Split("===\n");
        var lines = Lines(parts[0]);
        Assert.Equal("/home/user", lines[0]);
        Assert.Equal("/home/user", lines[1]);
        Assert.Equal("FOO=[bar baz]", lines[2]);
        var envLines = Lines(parts[1]);
        Assert.Contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", envLines);
        Assert.Contains("TERM=xterm", envLines);
        Assert.Contains("EMPTY=", envLines);
        Assert.DoesNotContain(envLines, l => l.StartsWith(ProcessRunner.HostOnlyVariable + "=", StringComparison.Ordinal));
        Assert.DoesNotContain(envLines, l => l.StartsWith("DOTNET_", StringComparison.Ordinal));
    }

    [Fact]
    public void Umask_is_applied()
    {
        var c = NewContainer();
        c.ReadonlyRoot(false);
        c.Process["user"]!["umask"] = 23; // 0027
        c.Sh("umask; touch /probe; stat -c %a /probe");
        Assert.Equal(["0027", "640"], Lines(c.RunOk()));
    }

    [Fact]
    public void No_new_privileges_off_is_honoured()
    {
        var c = NewContainer();
        c.Process["noNewPrivileges"] = false;
        c.Args("cat", "/proc/self/status");
        Assert.Equal("0", Kernel.ParseStatus(c.RunOk())["NoNewPrivs"]);
    }
}

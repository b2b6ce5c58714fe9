using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>`run` flags checked where the kernel shows them: /proc/self/limits, status, sysctls, devices, sockets.</summary>
public sealed class EngineRunFlagsTests(TestEnvironment env) : IntegrationTest(env)
{
    private const string Image = "berth.local/busybox";

    [Fact]
    public void Env_file_ulimit_sysctl_read_only_and_no_new_privileges()
    {
        using var e = new EngineStorage(Env);
        var envFile = Path.Combine(e.Dir, "app.env");
        File.WriteAllText(envFile, "# settings\nA=from-file\nB=two words\nOVER=file\n");
        var r = e.Run("run", "--rm", "--env-file", envFile, "-e", "OVER=flag", "--ulimit", "nofile=321:654", "--ulimit", "nproc=77",
            "--sysctl", "net.ipv4.ip_forward=1", "--read-only", "--security-opt", "no-new-privileges", Image, "sh", "-c",
            "echo \"$A|$B|$OVER\"; grep -E '^Max (open files|processes)' /proc/self/limits; cat /proc/sys/net/ipv4/ip_forward; " +
            "grep NoNewPrivs /proc/self/status; touch /rootfs-write && echo wrote; touch /tmp/x && echo tmp-wrote");
        Assert.Equal(1, r.ExitCode);
        var lines = Lines(r.Stdout);
        Assert.Equal("from-file|two words|flag", lines[0]);
        Assert.Matches(@"^Max processes\s+77\s+77\s", lines.Single(l => l.StartsWith("Max processes", StringComparison.Ordinal)));
        Assert.Matches(@"^Max open files\s+321\s+654\s", lines.Single(l => l.StartsWith("Max open files", StringComparison.Ordinal)));
        Assert.Contains("1", lines);
        Assert.Contains("NoNewPrivs:\t1", lines);
        Assert.DoesNotContain("wrote", lines);
        Assert.Contains("Read-only file system", r.Stderr);

        var bad = e.Run("run", "--rm", "--ulimit", "nofile=9:1", Image, "true");
        Assert.Contains("--ulimit nofile=9:1", bad.Stderr);
        var noFile = e.Run("run", "--rm", "--env-file", Path.Combine(e.Dir, "missing.env"), Image, "true");
        Assert.Contains("missing.env: no such file", noFile.Stderr);
    }

    [Fact]
    public void User_by_name_workdir_hostname_and_entrypoint()
    {
        using var e = new EngineStorage(Env);
        var r = e.Run("run", "--rm", "-u", "nobody:users", "-w", "/tmp/wd", "--hostname", "boxname", "--entrypoint", "sh", Image,
            "-c", "id -u; id -g; pwd; hostname");
        Assert.True(r.Succeeded, r.ToString());
        Assert.Equal(["65534", "100", "/tmp/wd", "boxname"], Lines(r.Stdout));
        var unknown = e.Run("run", "--rm", "-u", "ghost", Image, "true");
        Assert.Contains("user \"ghost\" is not in the image's /etc/passwd", unknown.Stderr);
    }

    [Fact]
    public void Device_flag_makes_the_node_and_the_device_cgroup_lets_it_be_opened()
    {
        using var e = new EngineStorage(Env);
        // An ordinary node made on the host (loop-control's numbers: no default rule allows 10:237).
        var node = Path.Combine(e.Dir, "lc");
        Assert.True(ProcessRunner.Host("mknod", node, "c", "10", "237").Succeeded);
        var ok = e.Run("run", "--rm", "--device", $"{node}:/dev/mine", Image, "sh", "-c", "stat -c '%t:%T %F' /dev/mine; exec 3</dev/mine && echo opened");
        Assert.True(ok.Succeeded, ok.ToString());
        Assert.Equal(["a:ed character special file", "opened"], Lines(ok.Stdout));
        // :r gives read access only: the device cgroup refuses an open for writing.
        var ro = e.Run("run", "--rm", "--device", $"{node}:/dev/mine:r", Image, "sh", "-c", "exec 3</dev/mine && echo read; exec 4<>/dev/mine && echo written");
        Assert.NotEqual(0, ro.ExitCode);
        Assert.Equal(["read"], Lines(ro.Stdout));
        Assert.Contains("Operation not permitted", ro.Stderr);
        // The same node bind-mounted without --device: the cgroup refuses the open.
        var denied = e.Run("run", "--rm", "-v", $"{node}:/dev/mine", Image, "sh", "-c", "exec 3</dev/mine && echo opened");
        Assert.NotEqual(0, denied.ExitCode);
        Assert.Contains("Operation not permitted", denied.Stderr);
        var notDev = e.Run("run", "--rm", "--device", envFileLike(e), Image, "true");
        Assert.Contains("is not a character or block device", notDev.Stderr);
    }

    private static string envFileLike(EngineStorage e)
    {
        var f = Path.Combine(e.Dir, "plain");
        File.WriteAllText(f, "");
        return f;
    }

    [Fact]
    public void A_non_root_user_with_cap_add_net_bind_service_binds_port_80()
    {
        using var e = new EngineStorage(Env);
        var r = e.Run("run", "--rm", "--network", "none", "-u", "1000", "--cap-add", "NET_BIND_SERVICE", Image, "sh", "-c",
            "grep -E '^Cap(Eff|Amb)' /proc/self/status; nc -l -p 80 & sleep 0.3; netstat -ltn | grep -c ':80 '; kill $!");
        Assert.True(r.Succeeded, r.ToString());
        Assert.Equal(["CapEff:\t0000000000000400", "CapAmb:\t0000000000000400", "1"], Lines(r.Stdout));
        var without = e.Run("run", "--rm", "--network", "none", "-u", "1000", Image, "sh", "-c", "grep CapEff /proc/self/status; nc -l -p 80");
        Assert.Contains("CapEff:\t0000000000000000", without.Stdout);
        Assert.Contains("Permission denied", without.Stderr);
    }

    [Fact]
    public void Label_shows_in_inspect_and_platform_must_match_the_image()
    {
        using var e = new EngineStorage(Env);
        e.Ok("run", "--name", "lab", "--label", "team=infra", "--label", "flag", Image, "true");
        var labels = JsonNode.Parse(e.Ok("inspect", "lab"))!.AsArray().Single()!["Config"]!["Labels"]!;
        Assert.Equal("infra", (string?)labels["team"]);
        Assert.Equal("", (string?)labels["flag"]);
        var other = System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "linux/amd64" : "linux/arm64";
        var wrong = e.Run("run", "--rm", "--platform", other, Image, "true");
        Assert.NotEqual(0, wrong.ExitCode);
        Assert.Contains($"--platform {other}: image berth.local/busybox:latest is linux/", wrong.Stderr);
        var garbage = e.Run("run", "--rm", "--platform", "garbage", Image, "true");
        Assert.Equal(125, garbage.ExitCode);
        Assert.Contains("--platform garbage: invalid platform", garbage.Stderr);
        var native = System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "linux/arm64" : "linux/amd64";
        e.Ok("run", "--rm", "--platform", native, Image, "true");
    }
}

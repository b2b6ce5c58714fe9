using System.Text.Json;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>
/// `berth sandbox run` (issue 7, first slice): verdicts, limits, isolation, and that nothing is
/// left after any run. Programs are the host's static busybox (installed by scripts/build).
/// </summary>
public sealed class SandboxTests(TestEnvironment env) : IntegrationTest(env)
{
    private const string Busybox = "/bin/busybox";
    private string Berth => Path.Combine(Path.GetDirectoryName(Env.RuntimePath)!, "berth");
    private static string Scratch => Path.Combine(TestEnvironment.ScratchRoot, "sandbox");

    /// <summary>Runs `berth sandbox run OPTIONS -- busybox sh -c SCRIPT MARKER`, checks cleanup, returns the verdict and stdout.</summary>
    private (JsonElement Meta, ProcResult Result) Sandbox(string script, params string[] options) => SandboxWith("", script, options);

    private (JsonElement Meta, ProcResult Result) SandboxWith(string prelude, string script, params string[] options)
    {
        var marker = "bt-sandbox-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));
        Directory.CreateDirectory(Scratch);
        var meta = Path.Combine(Scratch, marker + ".meta");
        var r = ProcessRunner.Run(Berth, ["sandbox", "run", "--meta", meta, .. options, "--", Busybox, "sh", "-c", script, marker], Scratch,
            prelude: $"{prelude}export BERTH_SANDBOX_TAG={marker}");
        Assert.False(r.TimedOut, r.ToString());
        Assert.True(File.Exists(meta), r.ToString());
        var json = JsonDocument.Parse(File.ReadAllText(meta)).RootElement;
        Assert.Equal("status", json.EnumerateObject().First().Name);
        Assert.NotEqual("XX", json.GetProperty("status").GetString());
        AssertNothingLeft(marker);
        return (json, r);
    }

    /// <summary>Nothing of this run's jail (its id carries the marker through BERTH_SANDBOX_TAG): run dir, cgroups, mounts, processes.</summary>
    private static void AssertNothingLeft(string marker)
    {
        var runs = "/run/berth/sandbox/runs";
        if (Directory.Exists(runs)) Assert.Empty(Directory.GetFileSystemEntries(runs, $"*{marker}*"));
        foreach (var h in Directory.GetDirectories("/sys/fs/cgroup"))
            foreach (var d in Directory.EnumerateDirectories(h, $"sandbox-{marker}*", new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = 3 }))
                Assert.Fail($"cgroup left: {d}");
        Assert.DoesNotContain(marker, File.ReadAllText("/proc/self/mountinfo"));
        foreach (var p in Directory.GetDirectories("/proc").Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)))
        {
            string cmdline;
            try { cmdline = File.ReadAllText($"/proc/{p}/cmdline"); } catch (IOException) { continue; }
            Assert.DoesNotContain(marker, cmdline);
        }
    }

    private static string Status(JsonElement m) => m.GetProperty("status").GetString()!;

    [Fact]
    public void Exit_status_and_signals_become_OK_RE_SG()
    {
        var (ok, r) = Sandbox("echo hello");
        Assert.Equal("OK", Status(ok));
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("hello", r.Stdout.Trim());

        var (re, r3) = Sandbox("exit 3");
        Assert.Equal("RE", Status(re));
        Assert.Equal(3, re.GetProperty("exitcode").GetInt32());
        Assert.Equal(1, r3.ExitCode);

        // The program is not the jail's PID 1, so a signal it sends itself lands.
        var (sg, _) = Sandbox("kill -SEGV $$");
        Assert.Equal("SG", Status(sg));
        Assert.Equal(11, sg.GetProperty("exitsig").GetInt32());
    }

    [Fact]
    public void Cpu_time_and_wall_time_limits_give_TO()
    {
        var (to, _) = Sandbox("while :; do :; done", "--time", "0.5", "--wall-time", "10");
        Assert.Equal("TO", Status(to));
        Assert.True(to.GetProperty("time").GetDouble() >= 0.5, to.ToString());
        Assert.True(to.GetProperty("killed").GetBoolean());

        var (wall, _) = Sandbox("sleep 10", "--wall-time", "0.5");
        Assert.Equal("TO", Status(wall));
        Assert.True(wall.GetProperty("wall_time").GetDouble() is >= 0.5 and < 5, wall.ToString());
        Assert.True(wall.GetProperty("time").GetDouble() < 0.5);
    }

    /// <summary>
    /// --image: the root is the image's layers (berth's store; the embedded default is loaded on first
    /// use), read-only, instead of the host's system directories; /box and /tmp work as before, the
    /// layers are not changed, and an unknown image is an XX naming it with nothing left behind.
    /// </summary>
    [Fact]
    public void An_image_root_replaces_the_host_directories()
    {
        var storage = Path.Combine(Scratch, "images-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)));
        try
        {
            var prelude = $"export BERTH_STORAGE={storage}; ";
            var (ok, r) = SandboxWith(prelude,
                "[ -x /bin/busybox ] || exit 1; [ ! -e /usr/bin/python3 ] || exit 2; ! touch /etc/berth-x 2>/dev/null || exit 3; " +
                "echo hi > /box/out && echo hi > /tmp/t || exit 4; [ $(id -u) = 65534 ] || exit 5; [ -e /etc/berth-x ] && exit 6; echo image-root",
                "--image", "berth.local/busybox");
            Assert.True(Status(ok) == "OK", ok + "\n" + r);
            Assert.Equal("image-root", r.Stdout.Trim());
            Assert.True(Directory.Exists(Path.Combine(storage, "layers")) || Directory.GetDirectories(storage).Length > 0, "the default image was not loaded into the store");
            Assert.Empty(Directory.GetFiles(storage, "berth-x", SearchOption.AllDirectories)); // the layers were not written

            var marker = "bt-sandbox-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));
            var meta = Path.Combine(Scratch, marker + ".meta");
            var bad = ProcessRunner.Run(Berth, ["sandbox", "run", "--meta", meta, "--image", "no-such-image:1", "--", Busybox, "true", marker], Scratch,
                prelude: $"{prelude}export BERTH_SANDBOX_TAG={marker}");
            Assert.NotEqual(0, bad.ExitCode);
            var xx = JsonDocument.Parse(File.ReadAllText(meta)).RootElement;
            Assert.Equal("XX", Status(xx));
            Assert.Contains("--image no-such-image:1: no such image", xx.GetProperty("message").GetString());
            AssertNothingLeft(marker);
        }
        finally
        {
            if (Directory.Exists(storage)) Directory.Delete(storage, recursive: true);
        }
    }

    /// <summary>
    /// --extra-time (isolate's): a program over --time but done within the extra time is not killed, and
    /// its real CPU time is reported with TO; one that goes on is killed at time + extra.
    /// </summary>
    [Fact]
    public void Extra_time_lets_a_program_finish_and_still_gives_TO()
    {
        // A CPU loop of about 1 s, whatever the machine: it stops itself when its own CPU time passes 0.9 s.
        const string spin = "while :; do t=$(cut -d' ' -f14,15 /proc/$$/stat); set -- $t; [ $(( $1 + $2 )) -ge 90 ] && break; i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; done; exit 0";
        var (late, _) = Sandbox(spin, "--time", "0.3", "--extra-time", "5", "--wall-time", "30");
        Assert.Equal("TO", Status(late));
        Assert.False(late.GetProperty("killed").GetBoolean(), late.ToString());
        Assert.Equal(0, late.GetProperty("exitcode").GetInt32());
        Assert.True(late.GetProperty("time").GetDouble() is > 0.8 and < 5.3, late.ToString());
        Assert.Equal("time limit exceeded", late.GetProperty("message").GetString());

        var (killed, _) = Sandbox("while :; do :; done", "--time", "0.3", "--extra-time", "0.4", "--wall-time", "30");
        Assert.Equal("TO", Status(killed));
        Assert.True(killed.GetProperty("killed").GetBoolean(), killed.ToString());
        Assert.True(killed.GetProperty("time").GetDouble() >= 0.7, killed.ToString());

        var bad = ProcessRunner.Run(Berth, ["sandbox", "run", "--extra-time", "1", "--", Busybox, "true"], Scratch);
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--extra-time needs --time", bad.Stderr);
    }

    [Fact]
    public void Memory_output_and_process_limits()
    {
        // awk doubles a string in its own memory: user page faults, so the cgroup OOM-kills it.
        var (ml, _) = Sandbox("awk 'BEGIN { s = \"x\"; while (1) s = s s }'", "--memory", "32m");
        Assert.Equal("ML", Status(ml));
        Assert.True(ml.GetProperty("max_rss").GetInt64() > 16 * 1024, ml.ToString());

        var (ol, _) = Sandbox("head -c 200000 /dev/zero > /box/big", "--fsize", "100");
        Assert.Equal("OL", Status(ol));
        Assert.Equal(25, ol.GetProperty("exitsig").GetInt32());

        // busybox sh exits when fork fails: look for what did not happen.
        var (fork, r) = Sandbox("for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 5 & done; echo all-forked",
            "--processes", "10", "--wall-time", "10");
        Assert.DoesNotContain("all-forked", r.Stdout);
        Assert.NotEqual("OK", Status(fork));
        Assert.True(fork.GetProperty("wall_time").GetDouble() < 5, fork.ToString()); // the sleepers died with the jail
    }

    [Fact]
    public void The_box_is_a_fresh_copy_and_stdio_files_live_in_it()
    {
        var box = Path.Combine(Scratch, "box-" + Environment.TickCount64);
        Directory.CreateDirectory(Path.Combine(box, "sub"));
        File.WriteAllText(Path.Combine(box, "in.txt"), "input\n");
        File.WriteAllText(Path.Combine(box, "sub", "keep"), "clean\n");
        var (m, r) = Sandbox("read line; echo \"got $line\" >&2; cat /box/err.txt > /dev/null; pwd; echo dirty > /box/sub/keep; " +
                             "echo new > /box/new; rm /box/in.txt; cat /box/sub/keep",
            "--box", box, "--stdin", "in.txt", "--stderr", "err.txt");
        Assert.Equal("OK", Status(m));
        Assert.Equal(["/box", "dirty"], Lines(r.Stdout));
        Assert.Equal("input\n", File.ReadAllText(Path.Combine(box, "in.txt")));
        Assert.Equal("clean\n", File.ReadAllText(Path.Combine(box, "sub", "keep")));
        Assert.False(File.Exists(Path.Combine(box, "new")));
        Assert.False(File.Exists(Path.Combine(box, "err.txt")));

        // --keep-output: the box's final content replaces the caller's DIR.
        var (kept, _) = Sandbox("echo result > /box/answer; rm /box/in.txt; ln -s /etc/shadow /box/link", "--box", box, "--keep-output");
        Assert.Equal("OK", Status(kept));
        Assert.Equal("result\n", File.ReadAllText(Path.Combine(box, "answer")));
        Assert.False(File.Exists(Path.Combine(box, "in.txt")));
        Assert.False(File.Exists(Path.Combine(box, "link")) || new FileInfo(Path.Combine(box, "link")).LinkTarget is not null);
        Assert.Equal("clean\n", File.ReadAllText(Path.Combine(box, "sub", "keep")));

        // The root is read-only; /tmp is private and writable.
        var (ro, r2) = Sandbox("touch /usr/x 2>/dev/null && echo wrote-usr; touch /etc/x 2>/dev/null && echo wrote-etc; " +
                                "echo t > /tmp/t && cat /tmp/t");
        Assert.Equal("OK", Status(ro));
        Assert.Equal(["t"], Lines(r2.Stdout));
    }

    [Fact]
    public void Jail_has_no_network_no_privileges_and_an_unprivileged_uid()
    {
        var (m, r) = Sandbox("ls /sys/class/net; id -u; id -g; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs):' /proc/self/status; " +
                             "ulimit -c; echo pid=$$; tr '\\0' ' ' < /proc/1/cmdline; echo; cat /proc/1/environ 2>/dev/null; " +
                             "env | grep -c BERTH_IT_HOST_ONLY");
        Assert.Equal("RE", Status(m)); // the last grep -c finds nothing: exit 1
        Assert.Equal(
            ["lo", "65534", "65534", "CapPrm:\t0000000000000000", "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000",
             "NoNewPrivs:\t1", "0", "pid=2", "berth-sandbox-init", "0"],
            Lines(r.Stdout));

        var (net, rn) = Sandbox("ls /sys/class/net", "--net");
        Assert.Equal("OK", Status(net));
        Assert.True(Lines(rn.Stdout).Length > 1, rn.Stdout);
    }

    [Fact]
    public void Background_children_are_killed_and_counted_and_isolate_meta_format()
    {
        var (m, _) = Sandbox("sleep 30 & sleep 30 & exit 0", "--wall-time", "10");
        Assert.Equal("OK", Status(m));
        Assert.Equal(2, m.GetProperty("orphans").GetInt32());
        Assert.True(m.GetProperty("wall_time").GetDouble() < 5);

        var meta = Path.Combine(Scratch, "isolate-" + Environment.TickCount64 + ".meta");
        var r = ProcessRunner.Run(Berth, ["sandbox", "run", "--meta", meta, "--meta-format", "isolate", "--", Busybox, "sh", "-c", "kill -SEGV $$"], Scratch);
        Assert.Equal(1, r.ExitCode);
        var lines = File.ReadAllLines(meta);
        Assert.Equal("status:SG", lines[0]);
        Assert.Contains("exitsig:11", lines);
        Assert.Contains(lines, l => l.StartsWith("time:", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("time-wall:", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("max-rss:", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("cg-mem:", StringComparison.Ordinal));
    }

    [Fact]
    public void Stopping_berth_kills_the_jail_and_cleans_up()
    {
        var marker = "bt-sandbox-term-" + Environment.TickCount64;
        Directory.CreateDirectory(Scratch);
        using var p = ProcessRunner.Start(Berth, ["sandbox", "run", "--", Busybox, "sh", "-c", "sleep 30", marker], Scratch,
            prelude: $"export BERTH_SANDBOX_TAG={marker}");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!File.ReadAllText("/proc/self/mountinfo").Contains(marker) && DateTime.UtcNow < deadline) Thread.Sleep(20);
        Thread.Sleep(200);
        ProcessRunner.Host("kill", "-TERM", p.Pid.ToString());
        var r = p.Wait(TimeSpan.FromSeconds(10));
        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith("{\"status\":\"XX\"", r.Stdout);
        Assert.Contains("interrupted", r.Stdout);
        AssertNothingLeft(marker);
    }

    /// <summary>
    /// The jail stub (docs/adr/0016): PID 1 is the stub, not berth, and as unprivileged as the program
    /// (uid, no capabilities, no_new_privs), so no process of the jail can reach berth's binary (CVE-2019-5736).
    /// </summary>
    [Fact]
    public void The_jail_is_built_by_the_stub_and_its_pid_1_is_unprivileged()
    {
        var (m, r) = Sandbox("cat /proc/1/comm; grep -E '^(Uid|Gid|CapEff|CapPrm|CapBnd|NoNewPrivs):' /proc/1/status; " +
                             "readlink /proc/1/exe || echo exe-hidden");
        Assert.Equal("OK", Status(m));
        Assert.Equal(
            ["berth-sandbox-i", "Uid:\t65534\t65534\t65534\t65534", "Gid:\t65534\t65534\t65534\t65534",
             "CapPrm:\t0000000000000000", "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "NoNewPrivs:\t1", "exe-hidden"],
            Lines(r.Stdout));
    }

    /// <summary>
    /// Compiled filters are kept in /run/berth/sandbox/cache (root-only) for the next run; a cache file
    /// anyone else could have written is not trusted: the filter is compiled again and the file replaced.
    /// </summary>
    [Fact]
    public void Compiled_filters_are_cached_root_only_and_a_writable_cache_file_is_ignored()
    {
        const string dir = "/run/berth/sandbox/cache";
        // An empty cache (it is only a cache): the first run compiles and stores the one entry for its options.
        if (Directory.Exists(dir)) foreach (var f in Directory.GetFiles(dir, "seccomp-*")) File.Delete(f);
        var (first, _) = Sandbox("true");
        Assert.Equal("OK", Status(first));
        Assert.Equal((UnixFileMode)0b111_000_000, File.GetUnixFileMode(dir));
        var mine = Directory.GetFiles(dir, "seccomp-*").ToList();
        Assert.Single(mine);
        Assert.All(mine, f => Assert.Equal((UnixFileMode)0b110_000_000, File.GetUnixFileMode(f)));
        foreach (var f in mine) File.SetUnixFileMode(f, (UnixFileMode)0b110_110_110);
        var (sv, _) = Sandbox("unshare -n true");
        Assert.Equal("SV", Status(sv));
        Assert.Equal("unshare", sv.GetProperty("violation").GetProperty("syscall").GetString());
        // Not trusted, compiled again, and replaced by a root-only file.
        Assert.Contains(mine, f => File.Exists(f) && File.GetUnixFileMode(f) == (UnixFileMode)0b110_000_000);
    }

    /// <summary>BERTH_SANDBOX_JAIL=runtime: the runtime's init builds the jail (other architectures' path), same verdicts.</summary>
    [Fact]
    public void The_runtime_init_path_gives_the_same_verdicts()
    {
        var (ok, r) = SandboxWith("export BERTH_SANDBOX_JAIL=runtime; ", "id -u; echo pid=$$; exit 3");
        Assert.Equal("RE", Status(ok));
        Assert.Equal(3, ok.GetProperty("exitcode").GetInt32());
        Assert.Equal(["65534", "pid=2"], Lines(r.Stdout));
        var (to, _) = SandboxWith("export BERTH_SANDBOX_JAIL=runtime; ", "while :; do :; done", "--time", "0.3");
        Assert.Equal("TO", Status(to));
    }

    [Fact]
    public void Dir_rules_and_rlimits_reach_the_program()
    {
        var data = Path.Combine(Scratch, "data-" + Environment.TickCount64);
        var outDir = data + "-out";
        Directory.CreateDirectory(data);
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(data, "f"), "from-host\n");
        ProcessRunner.Host("chmod", "777", outDir);
        var (m, r) = Sandbox("cat /data/f; echo x > /data/g 2>/dev/null && echo wrote-ro; echo y > /out/h && echo wrote-rw; " +
                             "ulimit -n; ulimit -s; ulimit -f",
            "--dir", data + ":/data", "--dir", outDir + ":/out:rw", "--open-files", "32", "--stack", "4m", "--fsize", "2048");
        Assert.Equal("OK", Status(m));
        Assert.Equal(["from-host", "wrote-rw", "32", "4096", "4096"], Lines(r.Stdout));
        Assert.False(File.Exists(Path.Combine(data, "g")));
        Assert.Equal("y\n", File.ReadAllText(Path.Combine(outDir, "h")));
    }
}

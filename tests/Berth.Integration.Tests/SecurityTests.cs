using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Berth.Integration.Tests;

/// <summary>
/// One regression test (or more) per security invariant in the architecture guide.
/// </summary>
public sealed class SecurityTests(TestEnvironment env, ITestOutputHelper log) : IntegrationTest(env)
{
    // A capable container: the masks must hold even when capabilities would not stop the access.
    private static readonly string[] CapableSet =
    [
        "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN", "CAP_SYS_RAWIO",
        "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE", "CAP_NET_ADMIN",
        "CAP_LINUX_IMMUTABLE", "CAP_FOWNER",
    ];

    private static void MakeCapable(TestContainer c) =>
        c.Capabilities(CapableSet, CapableSet, CapableSet, [], []);

    // ------------------------------------------------------------ CVE-2024-21626: leaked fds

    /// <summary>The runtime is started with extra open fds (a file and a host directory, no CLOEXEC):
    /// the container process must see only 0, 1, 2 (and the fd ls itself opened).</summary>
    [Fact]
    public void Cve_2024_21626_no_host_fd_reaches_the_container()
    {
        var c = NewContainer();
        c.Args("ls", "-l", "/proc/self/fd");
        var r = c.RuntimeWith(["run", "--bundle", c.BundleDir, c.Id],
            prelude: "exec 5</etc/hostname; exec 6</tmp; exec 7</sys/fs/cgroup; exec 9</");
        Assert.True(r.Succeeded, r.ToString());

        var fds = Lines(r.Stdout).Where(l => l.StartsWith('l'))
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(f => { int arrow = Array.IndexOf(f, "->"); return int.Parse(arrow > 0 ? f[arrow - 1] : f[^1]); })
            .Order().ToList();
        Assert.True(fds.SequenceEqual([0, 1, 2, 3]), "fds inside: " + string.Join(",", fds) + "\n" + r);
        var targets = Lines(r.Stdout).Where(l => l.Contains(" -> ")).Select(l => l[(l.IndexOf(" -> ", StringComparison.Ordinal) + 4)..]).ToList();
        foreach (var hostPath in new[] { "/etc/hostname", "/tmp", "/sys/fs/cgroup", "/" })
            Assert.DoesNotContain(hostPath, targets);
        Assert.DoesNotContain(targets, t => t.StartsWith(c.StateRoot, StringComparison.Ordinal));
    }

    /// <summary>Seen from the host while it runs: the container's process holds fds 0-2 only.</summary>
    [Fact]
    public void Cve_2024_21626_running_container_holds_only_stdio()
    {
        var c = NewContainer();
        c.Args("sleep", "60");
        c.SaveConfig();
        var create = c.RuntimeWith(["create", "--bundle", c.BundleDir, c.Id], prelude: "exec 5</etc/hostname; exec 6</tmp");
        Assert.True(create.Succeeded, create.ToString());
        c.StartOk();
        c.WaitForStatus("running");
        int pid = c.Pid();
        var fds = Directory.GetFileSystemEntries($"/proc/{pid}/fd").Select(p => int.Parse(Path.GetFileName(p))).Order().ToList();
        var targets = fds.Select(fd => $"{fd} -> {new FileInfo($"/proc/{pid}/fd/{fd}").LinkTarget}");
        Assert.True(fds.SequenceEqual([0, 1, 2]), "fds of the container process: " + string.Join(", ", targets));
    }

    /// <summary>--preserve-fds N passes exactly fds 3..3+N-1; other inherited fds stay out.</summary>
    [Theory]
    [InlineData(0, "")]
    [InlineData(1, "has3")]
    [InlineData(2, "has3 has4")]
    public void Preserve_fds_passes_exactly_the_requested_fds(int preserve, string expected)
    {
        var c = NewContainer("preserve-" + preserve);
        c.Sh("for f in 3 4 5 6 7 8 9; do [ -e /proc/self/fd/$f ] && printf 'has%s ' $f; done; echo");
        string[] flags = preserve > 0 ? ["--preserve-fds", preserve.ToString()] : [];
        var r = c.RuntimeWith(["run", "--bundle", c.BundleDir, .. flags, c.Id],
            prelude: "exec 3</etc/hostname; exec 4</etc/hostname; exec 5</etc/hostname; exec 6</tmp");
        Assert.True(r.Succeeded, r.ToString());
        Assert.Equal(expected, r.Stdout.Trim());
    }

    /// <summary>The CVE itself: process.cwd = /proc/self/fd/N must never leave the process with a
    /// working directory outside the container's root. Either the run fails, or walking ".." from the
    /// cwd ends at the container's own root.</summary>
    [Fact]
    public void Cve_2024_21626_cwd_through_proc_self_fd_stays_inside()
    {
        for (int fd = 3; fd <= 9; fd++)
        {
            using var c = new TestContainer(Env, "cwd-fd" + fd);
            c.Process["cwd"] = $"/proc/self/fd/{fd}";
            c.Sh("a=$(stat -c %d:%i /); b=$(stat -c %d:%i ../../../../../../../../../../../..); " +
                 "if [ \"$a\" = \"$b\" ]; then echo INSIDE; else echo ESCAPED; ls ../../../../../../../../../..; fi");
            var r = c.RuntimeWith(["run", "--bundle", c.BundleDir, c.Id],
                prelude: "exec 5</sys/fs/cgroup; exec 6</tmp; exec 7</; exec 8</run; exec 9</etc");
            Assert.False(r.TimedOut, r.ToString());
            Assert.DoesNotContain("ESCAPED", r.Stdout);
            if (r.ExitCode == 0) Assert.Equal("INSIDE", Lines(r.Stdout).FirstOrDefault());
            c.AssertNoLeaks($"after cwd=/proc/self/fd/{fd}");
        }
    }

    // ------------------------------------------------------------ CVE-2019-5736: /proc/self/exe

    private string CopyOfRuntime(TestContainer c)
    {
        // Attack a private copy, never the binary under test (nor /usr/sbin/runc).
        string dir = Path.Combine(c.WorkDir, "runtime-copy");
        Directory.CreateDirectory(dir);
        string copy = Path.Combine(dir, Path.GetFileName(Env.RuntimePath));
        File.Copy(Env.RuntimePath, copy);
        File.SetUnixFileMode(copy, TestEnvironment.Mode755);
        return copy;
    }

    /// <summary>A container whose program is /proc/self/exe: whatever that executes, the runtime
    /// binary is unchanged afterwards and nothing hangs.</summary>
    [Fact]
    public void Cve_2019_5736_container_running_proc_self_exe_cannot_change_the_runtime()
    {
        var c = NewContainer();
        string copy = CopyOfRuntime(c);
        c.RuntimePath = copy;
        string before = Kernel.Sha256(copy);
        c.ReadonlyRoot(false);
        c.Args("/proc/self/exe");
        var r = c.Run();
        Assert.False(r.TimedOut, r.ToString());
        Assert.Equal(before, Kernel.Sha256(copy));
        c.AssertNoLeaks("after run");
    }

    /// <summary>
    /// The attack: a process in the container's pid namespace opens /proc/1/exe while PID 1 is still
    /// the runtime's init (created, not started), then, once init has exec'd the user program, reopens
    /// it for writing through /proc/self/fd and appends a byte. A second container joins the first's
    /// pid namespace to play the attacker, with CAP_SYS_PTRACE and CAP_DAC_OVERRIDE so that only the
    /// runtime's protection (a sealed copy, a read-only mount, ...) stands in the way.
    /// </summary>
    [Fact]
    public void Cve_2019_5736_runtime_binary_cannot_be_written_through_proc_pid_exe()
    {
        var victim = NewContainer("victim");
        string copy = CopyOfRuntime(victim);
        string before = Kernel.Sha256(copy);
        victim.RuntimePath = copy;
        victim.Args("sleep", "60");
        victim.CreateOk();
        int victimPid = victim.Pid();

        var attacker = NewContainer("attacker");
        attacker.RuntimePath = copy;
        MakeCapable(attacker);
        attacker.AddNamespace("pid", $"/proc/{victimPid}/ns/pid");
        string share = attacker.ShareDir("/out");
        attacker.Sh(
            "readlink /proc/1/exe > /out/link 2>&1; " +
            "if head -c 1 /proc/1/exe > /dev/null 2>>/out/err; then exec 3</proc/1/exe; echo opened > /out/open; else echo denied > /out/open; fi; " +
            "if printf '' >> /proc/1/exe; then echo WRITABLE > /out/direct; else echo denied > /out/direct; fi 2>>/out/err; " +
            "echo ready > /out/ready; " +
            "while [ ! -e /out/go ]; do sleep 0.05; done; " +
            "if [ -e /proc/self/fd/3 ] && printf '\\n' >> /proc/self/fd/3; then echo WROTE > /out/reopen; else echo denied > /out/reopen; fi 2>>/out/err; " +
            "echo done > /out/done; exec sleep 60");
        var run = attacker.Run("-d");
        Assert.True(run.Succeeded, run.ToString());
        TestContainer.WaitForFile(Path.Combine(share, "ready"));

        victim.StartOk();
        victim.WaitForStatus("running");
        File.WriteAllText(Path.Combine(share, "go"), "go");
        TestContainer.WaitForFile(Path.Combine(share, "done"));

        string Read(string f) => File.Exists(Path.Combine(share, f)) ? File.ReadAllText(Path.Combine(share, f)).Trim() : "(none)";
        string report = $"/proc/1/exe -> {Read("link")}; open: {Read("open")}; direct write: {Read("direct")}; " +
                        $"reopen via fd: {Read("reopen")}; errors: {Read("err")}";
        log.WriteLine(report);
        Assert.True(Kernel.Sha256(copy) == before, "the runtime binary was modified from inside a container: " + report);
        Assert.NotEqual("WRITABLE", Read("direct"));
        Assert.NotEqual("WROTE", Read("reopen"));
    }

    /// <summary>Opens <paramref name="path"/> for writing and writes a byte; true only if both worked.</summary>
    private static bool TryWrite(string path, out string error)
    {
        try
        {
            using var h = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
            RandomAccess.Write(h, "x"u8, 0);
            error = "";
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { error = e.Message; return false; }
    }

    /// <summary>
    /// With a new pid namespace, create does not re-execute the runtime: the created init is a sealed
    /// stub from the moment any other process could see it: the jail stub that built the container
    /// (docs/adr/0017), or with berth's own init the exec stub it execs (docs/adr/0013). Even host root
    /// cannot write it, neither while it waits for start nor through an fd kept past the program's exec.
    /// </summary>
    [Theory]
    [InlineData("stub", "/memfd:berth-jail")]
    [InlineData("dotnet", "/memfd:berth-exec")]
    public void Cve_2019_5736_created_init_is_a_sealed_stub_not_the_runtime(string init, string memfd)
    {
        var c = NewContainer();
        if (init == "dotnet") c.UseDotnetInit();
        string copy = CopyOfRuntime(c);
        string before = Kernel.Sha256(copy);
        c.RuntimePath = copy;
        c.Args("sleep", "60");
        c.CreateOk();
        int pid = c.Pid();
        string exe = new FileInfo($"/proc/{pid}/exe").LinkTarget ?? "";
        Assert.StartsWith(memfd, exe);
        using var kept = File.OpenHandle($"/proc/{pid}/exe", FileMode.Open, FileAccess.Read);
        Assert.False(TryWrite($"/proc/{pid}/exe", out _), "the waiting exec stub was writable");

        c.StartOk();
        c.WaitForStatus("running");
        for (int i = 0; i < 100 && (new FileInfo($"/proc/{pid}/exe").LinkTarget ?? "").StartsWith("/memfd:", StringComparison.Ordinal); i++)
            Thread.Sleep(20);
        Assert.DoesNotContain("memfd", new FileInfo($"/proc/{pid}/exe").LinkTarget ?? "");
        Assert.False(TryWrite($"/proc/self/fd/{kept.DangerousGetHandle()}", out string err), "the exec stub was writable after the program's exec");
        log.WriteLine($"reopen for write: {err}");
        Assert.Equal(before, Kernel.Sha256(copy));
    }

    /// <summary>
    /// A container that joins another's pid namespace cannot use the exec stub (processes there could
    /// watch its init while it is still the runtime): create re-executes the runtime from a read-only
    /// copy first, as before, and the created init's executable cannot be opened for writing.
    /// </summary>
    [Fact]
    public void Cve_2019_5736_joined_pid_namespace_falls_back_to_the_protected_reexec()
    {
        var first = NewContainer("first");
        first.Args("sleep", "60");
        first.CreateOk();
        var second = NewContainer("second");
        string copy = CopyOfRuntime(second);
        string before = Kernel.Sha256(copy);
        second.RuntimePath = copy;
        second.Args("sleep", "60");
        second.AddNamespace("pid", $"/proc/{first.Pid()}/ns/pid");
        second.CreateOk();
        int pid = second.Pid();
        string exe = new FileInfo($"/proc/{pid}/exe").LinkTarget ?? "";
        log.WriteLine($"init of the joining container: {exe}");
        Assert.DoesNotContain("memfd:berth-exec", exe);
        Assert.NotEqual(copy, exe);
        Assert.False(TryWrite($"/proc/{pid}/exe", out string err), "the joining container's init runs a writable runtime");
        log.WriteLine($"write: {err}");
        Assert.Equal(before, Kernel.Sha256(copy));
    }

    // ------------------------------------------------------------ CVE-2021-30465: mount targets

    /// <summary>Mount destinations that are symlinks out of the rootfs (absolute, and ../..): the
    /// mount must land inside the rootfs (the container sees it where the link resolves within its
    /// root), or the run must fail; nothing may appear at the host path.</summary>
    [Fact]
    public void Cve_2021_30465_symlinked_mount_destination_stays_inside_rootfs()
    {
        var c = NewContainer();
        string source = Path.Combine(c.WorkDir, "mount-source");
        Directory.CreateDirectory(source);
        string marker = "marker-" + c.Id;
        File.WriteAllText(Path.Combine(source, marker), "payload");

        string hostAbs = Path.Combine(c.WorkDir, "outside-abs");
        string hostRel = Path.Combine(c.WorkDir, "outside-rel");
        Directory.CreateDirectory(hostAbs);
        Directory.CreateDirectory(hostRel);
        int depth = c.RootFs.Split('/', StringSplitOptions.RemoveEmptyEntries).Length;
        File.CreateSymbolicLink(Path.Combine(c.RootFs, "evil-abs"), hostAbs);
        File.CreateSymbolicLink(Path.Combine(c.RootFs, "evil-rel"),
            string.Concat(Enumerable.Repeat("../", depth + 3)) + hostRel.TrimStart('/'));

        c.AddBindMount(source, "/evil-abs", readOnly: true);
        c.AddBindMount(source, "/evil-rel", readOnly: true);
        c.Sh($"echo ABS=$(cat /evil-abs/{marker}); echo REL=$(cat /evil-rel/{marker}); echo ===; cat /proc/self/mountinfo; " +
             $"echo ready > /tmp/ready 2>/dev/null; sleep 1");

        using var run = c.RunInBackground();
        // While it runs (and after): nothing at the host paths, no host mount there.
        Thread.Sleep(500);
        AssertHostUntouched();
        var r = run.Wait(TimeSpan.FromSeconds(30));
        Assert.False(r.TimedOut, r.ToString());
        AssertHostUntouched();
        if (r.ExitCode == 0)
        {
            Assert.Contains("ABS=payload", r.Stdout);
            Assert.Contains("REL=payload", r.Stdout);
        }
        c.AssertNoLeaks("after run");

        void AssertHostUntouched()
        {
            foreach (var dir in new[] { hostAbs, hostRel })
            {
                Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
                Assert.DoesNotContain(Kernel.ParseMountInfo(File.ReadAllText("/proc/self/mountinfo")), m => m.MountPoint == dir);
            }
        }
    }

    // ------------------------------------------------------------ CVE-2025-31133: masked/read-only /proc

    private static readonly string[] MaskedFiles = ["/proc/kcore", "/proc/timer_list", "/proc/keys", "/proc/sched_debug", "/proc/latency_stats"];
    private static readonly string[] ReadonlyFiles = ["/proc/sysrq-trigger", "/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches"];

    // Opening for append and writing nothing is harmless even where the open succeeds.
    private static readonly string ProbeMasks =
        $"for p in {string.Join(' ', MaskedFiles)}; do " +
        "  [ -e $p ] || continue; n=$(head -c 4096 $p 2>/dev/null | wc -c); echo \"read $p $n\"; done; " +
        $"for p in {string.Join(' ', ReadonlyFiles)}; do " +
        "  if printf '' >> $p 2>/dev/null; then echo \"write $p WRITABLE\"; else echo \"write $p DENIED\"; fi; done; " +
        "n=$(ls /sys/firmware 2>/dev/null | wc -l); echo \"list /sys/firmware $n\"";

    private static Dictionary<string, string> ParseProbe(string stdout) =>
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', 3)).Where(f => f.Length == 3)
            .ToDictionary(f => f[0] + " " + f[1], f => f[2].Trim());

    private static bool OnHost(string path) => File.Exists(path) || Directory.Exists(path);

    [Fact]
    public void Cve_2025_31133_masked_and_readonly_proc_paths_hold()
    {
        var c = NewContainer();
        MakeCapable(c);
        c.Sh(ProbeMasks);
        string output = c.RunOk();
        var probe = ParseProbe(output);

        Assert.True(OnHost("/proc/timer_list"), "this host has no /proc/timer_list to probe");
        foreach (var p in MaskedFiles.Where(OnHost))
        {
            Assert.True(probe.TryGetValue("read " + p, out var n), $"{p} exists on the host but not in the container:\n{output}");
            Assert.True(n == "0", $"{p}: read {n} bytes through the mask");
        }
        foreach (var p in ReadonlyFiles.Where(OnHost))
            Assert.True(probe["write " + p] == "DENIED", $"{p} is writable in the container:\n{output}");
        if (OnHost("/sys/firmware")) Assert.Equal("0", probe["list /sys/firmware"]);
    }

    /// <summary>Control for the test above: without maskedPaths/readonlyPaths the same capable
    /// container can read and open those files, so the masks (not missing capabilities) are what hold.</summary>
    [Fact]
    public void Masked_paths_control_without_masks_the_probes_succeed()
    {
        var c = NewContainer();
        MakeCapable(c);
        c.Linux["maskedPaths"] = new JsonArray();
        c.Linux["readonlyPaths"] = new JsonArray();
        c.Sh(ProbeMasks);
        string output = c.RunOk();
        var probe = ParseProbe(output);
        Assert.NotEqual("0", probe["read /proc/timer_list"]);
        if (OnHost("/proc/kcore")) Assert.NotEqual("0", probe["read /proc/kcore"]);
        foreach (var p in ReadonlyFiles.Where(OnHost))
            Assert.True(probe["write " + p] == "WRITABLE", $"{p} could not be opened for writing even without readonlyPaths:\n{output}");
        if (OnHost("/sys/firmware")) Assert.NotEqual("0", probe["list /sys/firmware"]);
    }

    /// <summary>
    /// The CVE-2025-31133 trick: the container's /dev/null is a symlink to a sysctl when the runtime
    /// masks paths with it. Here the config has no /dev tmpfs, so the rootfs's own dev/null (a
    /// symlink to /proc/sys/kernel/core_pattern) is what the runtime finds. The masked files must
    /// still read empty (never the core_pattern), /proc/sys stays read-only, and the host's
    /// core_pattern stays as it was. The container script never writes to /dev/null itself; even
    /// so, a vulnerable runtime can let the host's core_pattern change (runc 1.1.5 did, here), so
    /// the test restores it.
    /// </summary>
    [Fact]
    public void Cve_2025_31133_dev_null_symlink_does_not_unmask()
    {
        const string corePatternFile = "/proc/sys/kernel/core_pattern";
        string corePattern = File.ReadAllText(corePatternFile);
        try
        {
            var c = NewContainer();
            MakeCapable(c);
            foreach (var m in c.Mounts.Where(m => (string?)m!["destination"] == "/dev").ToList()) c.Mounts.Remove(m);
            Directory.CreateDirectory(Path.Combine(c.RootFs, "dev"));
            File.CreateSymbolicLink(Path.Combine(c.RootFs, "dev", "null"), corePatternFile);
            c.Sh("for p in /proc/sysrq-trigger /proc/sys/kernel/hostname; do [ -e $p ] || continue; " +
                 "if printf '' >> $p 2>&1; then echo \"RO-WRITABLE $p\"; else echo \"RO-DENIED $p\"; fi; done; " +
                 "for p in /proc/kcore /proc/timer_list /proc/keys; do [ -e $p ] || continue; echo \"== $p\"; head -c 4096 $p 2>&1; echo; done");
            var r = c.Run();
            Assert.False(r.TimedOut, r.ToString());
            string after = File.ReadAllText(corePatternFile);
            Assert.True(corePattern == after, $"the host's core_pattern changed from '{corePattern.Trim()}' to '{after.Trim()}'\n{r}");
            if (r.ExitCode == 0)
            {
                Assert.DoesNotContain("RO-WRITABLE", r.Stdout);
            Assert.Contains("RO-DENIED /proc/sys/kernel/hostname", r.Stdout);
                foreach (var section in r.Stdout.Split("== ", StringSplitOptions.RemoveEmptyEntries))
                {
                    var lines = section.Split('\n', 2);
                    string content = lines.Length > 1 ? lines[1].Trim() : "";
                    if (lines[0].StartsWith("/proc/", StringComparison.Ordinal))
                        Assert.True(content.Length == 0 || content.Contains("Permission denied") || content.Contains("Operation not permitted"),
                            $"{lines[0]} is not masked:\n{content}");
                }
            }
            c.AssertNoLeaks("after run");
        }
        finally
        {
            if (File.ReadAllText(corePatternFile) != corePattern) File.WriteAllText(corePatternFile, corePattern);
        }
    }
}

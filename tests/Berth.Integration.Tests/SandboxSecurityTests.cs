using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>
/// `berth sandbox run`, the security half of issue 7: the built-in seccomp allowlist, the
/// supervisor's audit log, --on-violation log|deny|kill|quarantine, --seccomp FILE, and the
/// hostile-program battery (probes/hostile.c, compiled once with gcc -static). Every run must end
/// with the right verdict and nothing left behind (<see cref="AssertNothingLeft"/>).
/// </summary>
public sealed class SandboxSecurityTests(TestEnvironment env) : IntegrationTest(env)
{
    private static readonly object s_lock = new();
    private static string? s_box;
    private string Berth => Path.Combine(Path.GetDirectoryName(Env.RuntimePath)!, "berth");
    private static string Scratch => Path.Combine(TestEnvironment.ScratchRoot, "sandbox-sec");

    /// <summary>
    /// The box every test copies from: the hostile probe, a C, a Python and a Java solution of "sum
    /// the numbers on stdin", and their input. Built once per test run.
    /// </summary>
    private string Box()
    {
        lock (s_lock)
        {
            if (s_box is not null) return s_box;
            var box = Path.Combine(Scratch, "box");
            Directory.CreateDirectory(box);
            var probes = Path.Combine(Env.RepoRoot, "tests", "Berth.Integration.Tests", "probes");
            var r = ProcessRunner.Host("gcc", "-static", "-O2", "-Wall", "-o", Path.Combine(box, "hostile"), Path.Combine(probes, "hostile.c"), "-lpthread");
            Assert.True(r.Succeeded, "gcc -static hostile.c (gcc and libc6-dev are needed):\n" + r);
            File.WriteAllText(Path.Combine(box, "sum.c"),
                "#include <stdio.h>\nint main(void){long long s=0,x;while(scanf(\"%lld\",&x)==1)s+=x;printf(\"%lld\\n\",s);return 0;}\n");
            r = ProcessRunner.Host("gcc", "-O2", "-o", Path.Combine(box, "sum"), Path.Combine(box, "sum.c"));
            Assert.True(r.Succeeded, r.ToString());
            File.WriteAllText(Path.Combine(box, "sum.py"), "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n");
            File.WriteAllText(Path.Combine(box, "Sum.java"),
                "import java.io.*;\npublic class Sum { public static void main(String[] a) throws IOException {\n" +
                "  BufferedReader r = new BufferedReader(new InputStreamReader(System.in)); long s = 0; String l;\n" +
                "  while ((l = r.readLine()) != null) for (String t : l.trim().split(\"\\\\s+\")) if (!t.isEmpty()) s += Long.parseLong(t);\n" +
                "  System.out.println(s); } }\n");
            r = ProcessRunner.Host("javac", "-d", box, Path.Combine(box, "Sum.java"));
            Assert.True(r.Succeeded, "javac (openjdk-17-jdk-headless, installed by scripts/build):\n" + r);
            File.WriteAllText(Path.Combine(box, "in.txt"), "1 2 3\n40 50\n-6\n");
            return s_box = box;
        }
    }

    /// <summary>Runs `berth sandbox run --box BOX OPTIONS -- COMMAND`, checks cleanup, returns the verdict and berth's result.</summary>
    private (JsonElement Meta, ProcResult Result) Sandbox(string[] options, string[] command, string? prelude = null, bool allowXX = false, string? box = null)
    {
        var marker = "bt-sbsec-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        Directory.CreateDirectory(Scratch);
        var meta = Path.Combine(Scratch, marker + ".meta");
        // The marker rides as the last argument where the program ignores it, so leak checks can find its processes.
        var r = ProcessRunner.Run(Berth, ["sandbox", "run", "--box", box ?? Box(), "--meta", meta, .. options, "--", .. command, marker], Scratch,
            prelude: $"export BERTH_SANDBOX_TAG={marker}" + (prelude is null ? "" : "\n" + prelude));
        Assert.False(r.TimedOut, r.ToString());
        Assert.True(File.Exists(meta), r.ToString());
        var json = JsonDocument.Parse(File.ReadAllText(meta)).RootElement;
        if (!allowXX) Assert.True(Status(json) != "XX", json.ToString());
        AssertNothingLeft(marker);
        return (json, r);
    }

    /// <summary>
    /// Nothing of this run's jail is left: its ids carry the marker (BERTH_SANDBOX_TAG), so other
    /// sandboxes running on the machine at the same time do not count. Run dir, cgroups, mounts, processes.
    /// </summary>
    private static void AssertNothingLeft(string marker)
    {
        var runs = "/run/berth/sandbox/runs";
        if (Directory.Exists(runs)) Assert.Empty(Directory.GetFileSystemEntries(runs, $"*{marker}*"));
        foreach (var h in Directory.GetDirectories("/sys/fs/cgroup"))
            foreach (var d in Directory.EnumerateDirectories(h, $"sandbox-{marker}*", new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = 3 }))
                Assert.Fail($"cgroup left: {d}");
        Assert.DoesNotContain(marker, File.ReadAllText("/proc/self/mountinfo"));
        // berth's cgroup warm-up child (MigrationWarmup, not waited for) may outlive a quick XX by a few ms.
        var deadline = DateTime.UtcNow.AddSeconds(1);
        List<string> left;
        while ((left = ProcessesWith(marker)).Count > 0 && DateTime.UtcNow < deadline) Thread.Sleep(20);
        Assert.Empty(left);
    }

    private static List<string> ProcessesWith(string marker)
    {
        var found = new List<string>();
        foreach (var p in Directory.GetDirectories("/proc").Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)))
        {
            string cmdline;
            try { cmdline = File.ReadAllText($"/proc/{p}/cmdline"); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            if (cmdline.Contains(marker, StringComparison.Ordinal)) found.Add($"{p}: {cmdline.Replace('\0', ' ')}");
        }
        return found;
    }

    private (JsonElement Meta, ProcResult Result) Hostile(string mode, params string[] options) =>
        Sandbox(options, ["/box/hostile", mode]);

    private static string Status(JsonElement m) => m.GetProperty("status").GetString()!;

    private static string NewPath(string name)
    {
        Directory.CreateDirectory(Scratch);
        return Path.Combine(Scratch, name + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
    }

    /// <summary>Each forbidden call: the jail is killed (SV), the attempt is in the meta result and one audit line.</summary>
    [Theory]
    [InlineData("ptrace", "ptrace")]
    [InlineData("mount", "mount")]
    [InlineData("unshare", "unshare")]
    [InlineData("clone", "clone")] // clone(CLONE_NEWUSER): clone without namespace flags is allowed (threads test)
    [InlineData("setns", "setns")]
    [InlineData("keyctl", "keyctl")]
    [InlineData("bpf", "bpf")]
    [InlineData("perf", "perf_event_open")]
    [InlineData("io_uring", "io_uring_setup")]
    [InlineData("socket", "socket")] // AF_INET without --net
    public void Forbidden_calls_kill_the_jail_with_SV_and_are_audited(string mode, string syscall)
    {
        var audit = NewPath("audit") + ".jsonl";
        var (m, r) = Hostile(mode, "--audit", audit);
        Assert.Equal("SV", Status(m));
        Assert.Equal(1, r.ExitCode);
        Assert.True(m.GetProperty("killed").GetBoolean());
        Assert.Equal(9, m.GetProperty("exitsig").GetInt32());
        Assert.Equal(1, m.GetProperty("violations").GetInt32());
        Assert.DoesNotContain("rc=", r.Stdout); // it never got past the call
        var v = m.GetProperty("violation");
        Assert.Equal(syscall, v.GetProperty("syscall").GetString());
        Assert.Equal("kill", v.GetProperty("action").GetString());
        var lines = File.ReadAllLines(audit);
        Assert.Single(lines);
        var a = JsonDocument.Parse(lines[0]).RootElement;
        Assert.Equal(syscall, a.GetProperty("syscall").GetString());
        Assert.Equal("hostile", a.GetProperty("comm").GetString());
        Assert.True(a.GetProperty("pid").GetInt32() > 1);
        Assert.Equal(System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "aarch64" : "x86_64",
            a.GetProperty("arch").GetString());
        Assert.Equal(6, a.GetProperty("args").GetArrayLength());
        Assert.True(DateTime.Parse(a.GetProperty("time").GetString()!).ToUniversalTime() > DateTime.UtcNow.AddMinutes(-1));
        if (mode == "unshare") Assert.Equal("0x10000000", a.GetProperty("args")[0].GetString()); // CLONE_NEWUSER
    }

    /// <summary>The foreign ABIs the probe can call: x32 and the i386 gate exist on x86_64 hosts only.</summary>
    public static TheoryData<string, string> ForeignAbis =>
        System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64
            ? new() { { "x32", "x32" }, { "int80", "x86" } }
            : new();

    /// <summary>Only the native ABI passes: an x32 call or the i386 gate is killed by the filter itself (SIGSYS), read back from the kernel's audit log.</summary>
    [Theory]
    [MemberData(nameof(ForeignAbis))]
    public void Other_abis_are_killed_by_the_filter_with_SV(string mode, string arch)
    {
        // The record comes from the kernel's audit printk, which is rate limited machine-wide (10 per 5 s):
        // when earlier tests used the budget up, the run is repeated once the window has passed.
        string audit = "";
        JsonElement m = default;
        ProcResult r = null!;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            if (attempt > 0) Thread.Sleep(5500);
            audit = NewPath("audit-abi");
            (m, r) = Hostile(mode, "--audit", audit);
            if (File.Exists(audit) && File.ReadAllLines(audit).Length > 0) break;
        }
        Assert.Equal("SV", Status(m));
        Assert.Equal(31, m.GetProperty("exitsig").GetInt32());
        Assert.DoesNotContain("rc=", r.Stdout);
        var line = JsonDocument.Parse(File.ReadAllLines(audit).Single()).RootElement;
        Assert.Equal("getpid", line.GetProperty("syscall").GetString());
        Assert.Equal(arch, line.GetProperty("arch").GetString());
        Assert.Equal("kernel-audit", line.GetProperty("source").GetString());
    }

    [Fact]
    public void Log_lets_the_call_run_and_deny_fails_it_with_EPERM_both_recorded()
    {
        var audit = NewPath("audit-log");
        var (log, rl) = Hostile("ptrace", "--on-violation", "log", "--audit", audit);
        Assert.Equal("OK", Status(log));
        Assert.Equal("ptrace rc=0 errno=0", rl.Stdout.Trim()); // PTRACE_TRACEME really ran
        Assert.Equal(1, log.GetProperty("violations").GetInt32());
        Assert.Equal("allow", log.GetProperty("violation").GetProperty("action").GetString());
        Assert.Single(File.ReadAllLines(audit));

        var (deny, rd) = Hostile("mount", "--on-violation", "deny");
        Assert.Equal("OK", Status(deny));
        Assert.Equal("mount rc=-1 errno=EPERM", rd.Stdout.Trim());
        Assert.Equal(1, deny.GetProperty("violations").GetInt32());
        Assert.Equal("deny", deny.GetProperty("violation").GetProperty("action").GetString());
    }

    [Fact]
    public void Every_notification_is_answered_under_a_flood_and_a_race()
    {
        // Past 10,000 records the audit log only counts; the program is never left waiting.
        var audit = NewPath("audit-flood");
        var (f, rf) = Sandbox(["--on-violation", "deny", "--audit", audit, "--wall-time", "20"], ["/box/hostile", "flood", "1000"]);
        Assert.Equal("OK", Status(f));
        Assert.Equal("calls=1000 failed=1000", rf.Stdout.Trim());
        Assert.Equal(1000, f.GetProperty("violations").GetInt32());
        Assert.Equal(1000, File.ReadAllLines(audit).Length);
        var (big, rb) = Sandbox(["--on-violation", "deny", "--audit", audit, "--wall-time", "30"], ["/box/hostile", "flood", "10500"]);
        Assert.Equal("OK", Status(big));
        Assert.Equal("calls=10500 failed=10500", rb.Stdout.Trim());
        Assert.Equal(10500, big.GetProperty("violations").GetInt32());
        var lines = File.ReadAllLines(audit);
        Assert.Equal(10001, lines.Length);
        Assert.Equal("{\"dropped\":500}", lines[^1]);

        // Eight threads racing into forbidden calls: kill mode holds them all and the kill ends them all.
        var (k, _) = Hostile("racers", "--wall-time", "10");
        Assert.Equal("SV", Status(k));
        Assert.True(k.GetProperty("wall_time").GetDouble() < 5, k.ToString());
        Assert.InRange(k.GetProperty("violations").GetInt32(), 1, 8);
        var (l, rl) = Hostile("racers", "--on-violation", "log", "--wall-time", "10");
        Assert.Equal("OK", Status(l));
        Assert.Equal("racers done", rl.Stdout.Trim());
        Assert.Equal(400, l.GetProperty("violations").GetInt32());
    }

    /// <summary>
    /// Quarantine: a program that wrote loot into the box and left a child running is frozen,
    /// its box snapshotted with hashes, its processes listed, then killed and rolled back.
    /// </summary>
    [Fact]
    public void Quarantine_freezes_snapshots_collects_kills_and_rolls_back()
    {
        var evidence = NewPath("evidence");
        var before = Hashes(Box());
        var (m, r) = Sandbox(["--on-violation", "quarantine", "--evidence", evidence, "--wall-time", "10"],
            ["/bin/busybox", "sh", "-c", "echo stolen > /box/loot; echo changed > /box/in.txt; sleep 30 & " +
             "until grep -q sleep /proc/$!/cmdline; do :; done; exec /box/hostile keyctl"]);
        Assert.Equal("SV", Status(m));
        Assert.True(m.GetProperty("wall_time").GetDouble() < 5, m.ToString()); // the sleeper did not hold the jail
        Assert.Contains("quarantined", m.GetProperty("message").GetString());
        Assert.Equal(before, Hashes(Box())); // the caller's box is untouched

        var files = Directory.GetFiles(evidence).Select(f => Path.GetFileName(f)!).Order().ToArray();
        Assert.Equal(["audit.jsonl", "box.sha256", "box.tar", "incident.json", "processes.json", "verdict.json"], files);
        var incident = JsonDocument.Parse(File.ReadAllText(Path.Combine(evidence, "incident.json"))).RootElement;
        Assert.Equal("cgroup freezer", incident.GetProperty("freeze").GetString());
        Assert.Equal("keyctl", incident.GetProperty("violation").GetProperty("syscall").GetString());
        Assert.True(incident.GetProperty("box_rolled_back").GetBoolean());
        Assert.True(incident.GetProperty("caller_box_unchanged").GetBoolean());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(evidence, "box.tar")))),
            incident.GetProperty("box_tar_sha256").GetString());

        // The tar holds the box as the program left it, and the manifest's hashes match its content.
        var inTar = new Dictionary<string, string>();
        using (var tar = new TarReader(File.OpenRead(Path.Combine(evidence, "box.tar"))))
            while (tar.GetNextEntry() is { } e)
                if (e.EntryType == TarEntryType.RegularFile)
                {
                    using var ms = new MemoryStream();
                    e.DataStream!.CopyTo(ms);
                    inTar[e.Name] = Convert.ToHexStringLower(SHA256.HashData(ms.ToArray()));
                    if (e.Name == "loot") Assert.Equal("stolen\n", System.Text.Encoding.UTF8.GetString(ms.ToArray()));
                    if (e.Name == "in.txt") Assert.Equal("changed\n", System.Text.Encoding.UTF8.GetString(ms.ToArray()));
                }
        var manifest = File.ReadAllLines(Path.Combine(evidence, "box.sha256")).Select(l => l.Split("  ./")).ToDictionary(p => p[1], p => p[0]);
        Assert.Equal(inTar.OrderBy(k => k.Key), manifest.OrderBy(k => k.Key));
        Assert.Contains("loot", manifest.Keys);
        Assert.Contains("hostile", manifest.Keys);

        // Every process of the jail, frozen in place: the reaper, the violator, the background sleeper.
        var procs = JsonDocument.Parse(File.ReadAllText(Path.Combine(evidence, "processes.json"))).RootElement.EnumerateArray().ToList();
        Assert.Contains(procs, p => p.GetProperty("cmdline").GetString() == "berth-sandbox-init");
        // Nothing of the jail runs berth's binary: PID 1 is the sealed jail stub (docs/adr/0016).
        Assert.All(procs, p => Assert.DoesNotContain("bin/berth", p.GetProperty("exe").GetString() ?? ""));
        Assert.Contains(procs, p => p.GetProperty("cmdline").GetString()!.StartsWith("/box/hostile keyctl", StringComparison.Ordinal));
        Assert.Contains(procs, p => p.GetProperty("cmdline").GetString() == "sleep 30");
        Assert.All(procs, p => Assert.Contains("Uid:\t65534", p.GetProperty("status").GetString()));
        Assert.Contains(procs, p => p.GetProperty("fds").EnumerateArray().Any(f => f.GetProperty("fd").GetInt32() == 1));
        var violator = procs.First(p => p.GetProperty("cmdline").GetString()!.StartsWith("/box/hostile", StringComparison.Ordinal));
        Assert.Matches(@"State:\s+[DST]", violator.GetProperty("status").GetString()); // frozen, not running
        Assert.Contains("keyctl", File.ReadAllText(Path.Combine(evidence, "audit.jsonl")));
        Assert.Equal("SV", JsonDocument.Parse(File.ReadAllText(Path.Combine(evidence, "verdict.json"))).RootElement.GetProperty("status").GetString());
    }

    [Fact]
    public void C_Python_and_Java_solutions_get_OK_under_the_built_in_profile()
    {
        var (c, rc) = Sandbox(["--stdin", "in.txt", "--time", "2"], ["/box/sum"]);
        Assert.Equal("OK", Status(c));
        Assert.Equal("90", rc.Stdout.Trim());
        Assert.Equal(0, c.GetProperty("violations").GetInt32());

        var (py, rp) = Sandbox(["--stdin", "in.txt", "--time", "5", "--memory", "128m"], ["python3", "/box/sum.py"]);
        Assert.Equal("OK", Status(py));
        Assert.Equal("90", rp.Stdout.Trim());
        Assert.Equal(0, py.GetProperty("violations").GetInt32());

        // The JVM maps a large heap and starts ~20 threads: more memory and pids than the defaults.
        var (java, rj) = Sandbox(["--stdin", "in.txt", "--time", "5", "--wall-time", "20", "--memory", "512m", "--processes", "128"],
            ["java", "-Xmx128m", "-XX:+UseSerialGC", "-cp", "/box", "Sum"]);
        Assert.Equal("OK", Status(java));
        Assert.Equal("90", rj.Stdout.Trim());
        Assert.Equal(0, java.GetProperty("violations").GetInt32());
    }

    [Fact]
    public void Threads_unix_sockets_and_net_sockets_with_net_are_allowed()
    {
        var (t, rt) = Hostile("threads");
        Assert.Equal("OK", Status(t));
        Assert.Equal("threads=16", rt.Stdout.Trim());

        var (u, ru) = Hostile("unix");
        Assert.Equal("OK", Status(u));
        Assert.StartsWith("unix rc=", ru.Stdout);
        Assert.DoesNotContain("rc=-1", ru.Stdout);

        var (n, rn) = Hostile("socket", "--net");
        Assert.Equal("OK", Status(n));
        Assert.DoesNotContain("rc=-1", rn.Stdout);
        Assert.Equal(0, n.GetProperty("violations").GetInt32());
    }

    [Fact]
    public void Resource_bombs_are_contained()
    {
        var (fork, _) = Hostile("forkbomb", "--processes", "16", "--time", "0.5", "--wall-time", "10");
        Assert.Equal("TO", Status(fork));

        var (mem, _) = Hostile("membomb", "--memory", "32m");
        Assert.Equal("ML", Status(mem));
        Assert.True(mem.GetProperty("max_rss").GetInt64() <= 32 * 1024, mem.ToString());

        var (disk, _) = Hostile("diskfill", "--fsize", "1024");
        Assert.Equal("OL", Status(disk));

        var (output, _) = Hostile("output", "--stdout", "out.txt", "--fsize", "256");
        Assert.Equal("OL", Status(output));
        Assert.Equal(25, output.GetProperty("exitsig").GetInt32());
    }

    [Fact]
    public void Host_processes_and_data_stay_out_of_reach()
    {
        // A host process with a unique name: the jail must neither see it nor kill it.
        var name = "bthost" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var exe = Path.Combine(Scratch, name);
        Directory.CreateDirectory(Scratch);
        File.Copy("/bin/sleep", exe, overwrite: true);
        using var host = ProcessRunner.Start(exe, ["30"], Scratch);
        try
        {
            var box = NewPath("probebox");
            Directory.CreateDirectory(box);
            File.WriteAllText(Path.Combine(box, "marker"), name + "\n");
            File.Copy(Path.Combine(Box(), "hostile"), Path.Combine(box, "hostile"));
            var (p, rp) = Sandbox(["--stdin", "marker"], ["/box/hostile", "procsys"], box: box);
            Assert.Equal("OK", Status(p));
            // Only the jail's reaper and the program itself; no host process name in /proc; no kernel files
            // at all in /proc (subset=pid: kallsyms, sys/kernel/hostname cannot be opened); no host path in
            // its mountinfo, no cgroup tree.
            Assert.Equal("pids=2 leaked=0 kallsyms=-1 hostname=-1 hostpaths=0", rp.Stdout.Trim());

            var (k, rk) = Sandbox([], ["/box/hostile", "kill", host.Pid.ToString()]);
            Assert.Equal("OK", Status(k));
            Assert.Equal("kill rc=-1 errno=ESRCH", rk.Stdout.Trim());
            Assert.True(Directory.Exists($"/proc/{host.Pid}"), "the host process was killed from the jail");
        }
        finally { ProcessRunner.Host("kill", host.Pid.ToString()); }

        var (w, rw) = Hostile("write");
        Assert.Equal("OK", Status(w));
        Assert.Equal(["/usr/x=EROFS", "/etc/passwd=EACCES", "/x=EROFS", "/proc/sys/kernel/hostname=ENOENT", "/sys/kernel/x=EROFS",
            "/dev/x=EACCES", "/box/ok=written"], Lines(rw.Stdout));
    }

    [Fact]
    public void Escaped_children_are_killed_and_counted_and_setuid_gives_nothing()
    {
        // setsid() children outside the main process's session still die with the jail.
        var (o, ro) = Hostile("orphans", "--wall-time", "10");
        Assert.Equal("OK", Status(o));
        Assert.Equal("parent-exits", ro.Stdout.Trim());
        Assert.Equal(3, o.GetProperty("orphans").GetInt32());
        Assert.True(o.GetProperty("wall_time").GetDouble() < 5);

        // A setuid-root binary from a host directory: no_new_privs (and nosuid) keep the euid.
        var dir = NewPath("suid");
        Directory.CreateDirectory(dir);
        var bin = Path.Combine(dir, "hostile");
        File.Copy(Path.Combine(Box(), "hostile"), bin);
        ProcessRunner.Host("chown", "0:0", bin);
        ProcessRunner.Host("chmod", "4755", bin);
        TestEnvironment.MakeTraversable(dir);
        var (s, rs) = Sandbox(["--dir", dir + ":/suid"], ["/suid/hostile", "euid"]);
        Assert.Equal("OK", Status(s));
        Assert.Equal("euid=65534 uid=65534", rs.Stdout.Trim());
    }

    [Fact]
    public void Custom_seccomp_profile_replaces_the_built_in_one()
    {
        var profile = NewPath("profile") + ".json";
        File.WriteAllText(profile, """
            {"defaultAction": "SCMP_ACT_ALLOW",
             "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
                          {"names": ["keyctl"], "action": "SCMP_ACT_NOTIFY"}]}
            """);
        // Not in the profile: ptrace runs. ERRNO rules are the profile's own denial, not a violation.
        var (p, rp) = Hostile("ptrace", "--seccomp", profile);
        Assert.Equal("OK", Status(p));
        Assert.Equal("ptrace rc=0 errno=0", rp.Stdout.Trim());
        var (mnt, rm) = Hostile("mount", "--seccomp", profile);
        Assert.Equal("mount rc=-1 errno=EXDEV", rm.Stdout.Trim());
        Assert.Equal(0, mnt.GetProperty("violations").GetInt32());
        // NOTIFY rules are violations, supervised as with the built-in profile.
        var (k, _) = Hostile("keyctl", "--seccomp", profile);
        Assert.Equal("SV", Status(k));
        Assert.Equal("keyctl", k.GetProperty("violation").GetProperty("syscall").GetString());

        // A broken profile: a clear error naming the file, exit 2, nothing left.
        File.WriteAllText(profile, """{"defaultAction": "SCMP_ACT_BOGUS"}""");
        var (bad, rb) = Sandbox(["--seccomp", profile], ["/box/hostile", "euid"], allowXX: true);
        Assert.Equal("XX", Status(bad));
        Assert.Equal(2, rb.ExitCode);
        Assert.Contains(profile, bad.GetProperty("message").GetString());
    }

    /// <summary>Without user notification (forced here; a kernel before 5.5): the filter acts alone and the kernel's audit records feed the log.</summary>
    [Fact]
    public void Without_notification_the_filter_kills_or_denies_and_the_kernel_audit_is_read()
    {
        const string prelude = "export BERTH_SANDBOX_NO_NOTIFY=1";
        var audit = NewPath("audit-fallback");
        var (k, _) = Sandbox(["--audit", audit], ["/box/hostile", "bpf"], prelude);
        Assert.Equal("SV", Status(k));
        Assert.Equal(31, k.GetProperty("exitsig").GetInt32()); // SIGSYS from SCMP_ACT_KILL_PROCESS
        // The kernel's seccomp records reach /dev/kmsg through printk's rate limit (10 per 5 s here), which
        // the other sandbox tests running beside this one can exhaust: the record is best effort (as
        // docs/sandbox.md says), so check it when it came, and never more than one.
        var lines = File.ReadAllLines(audit);
        Assert.True(lines.Length <= 1, string.Join('\n', lines));
        if (lines.Length == 1)
        {
            var line = JsonDocument.Parse(lines[0]).RootElement;
            Assert.Equal("bpf", line.GetProperty("syscall").GetString());
            Assert.Equal("kernel-audit", line.GetProperty("source").GetString());
            Assert.Equal("kill", line.GetProperty("action").GetString());
        }

        var (d, rd) = Sandbox(["--on-violation", "deny"], ["/box/hostile", "ptrace"], prelude);
        Assert.Equal("OK", Status(d));
        Assert.Equal("ptrace rc=-1 errno=EPERM", rd.Stdout.Trim());

        // Quarantine: the filter has killed the program already, so the bundle is collected after the fact.
        var evidence = NewPath("evidence-fallback");
        var (q, _) = Sandbox(["--on-violation", "quarantine", "--evidence", evidence],
            ["/bin/busybox", "sh", "-c", "echo stolen > /box/loot; exec /box/hostile perf"], prelude);
        Assert.Equal("SV", Status(q));
        var incident = JsonDocument.Parse(File.ReadAllText(Path.Combine(evidence, "incident.json"))).RootElement;
        Assert.True(incident.GetProperty("caller_box_unchanged").GetBoolean());
        Assert.Contains("./loot", File.ReadAllText(Path.Combine(evidence, "box.sha256")));
    }

    /// <summary>`sandbox batch` jobs go through the same path: the profile, the modes and quarantine per job line.</summary>
    [Fact]
    public void Batch_jobs_get_the_same_security_verdicts()
    {
        var marker = "bt-sbsec-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        var audit = NewPath("batch-audit");
        var evidence = NewPath("batch-evidence");
        string Line(string extra, params string[] command) =>
            "{\"command\":" + JsonSerializer.Serialize(command.Append(marker)) + ",\"box\":" + JsonSerializer.Serialize(Box()) + extra + "}";
        var file = NewPath("batch") + ".jsonl";
        File.WriteAllLines(file, [
            Line(",\"audit\":" + JsonSerializer.Serialize(audit), "/box/hostile", "ptrace"),
            Line(",\"on-violation\":\"deny\"", "/box/hostile", "mount"),
            Line(",\"stdin\":\"in.txt\"", "/box/sum"),
            Line(",\"on-violation\":\"quarantine\",\"evidence\":" + JsonSerializer.Serialize(evidence), "/box/hostile", "bpf"),
            Line("", "/box/hostile", "threads"),
        ]);
        var r = ProcessRunner.Run(Berth, ["sandbox", "batch", file, "--parallel", "2"], Scratch, TimeSpan.FromSeconds(60),
            prelude: $"export BERTH_SANDBOX_TAG={marker}");
        Assert.False(r.TimedOut, r.ToString());
        var results = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["SV", "OK", "OK", "SV", "OK"], results.Select(Status));
        Assert.Equal("ptrace", results[0].GetProperty("violation").GetProperty("syscall").GetString());
        Assert.Equal("deny", results[1].GetProperty("violation").GetProperty("action").GetString());
        Assert.Equal(0, results[2].GetProperty("violations").GetInt32());
        Assert.Equal("bpf", results[3].GetProperty("violation").GetProperty("syscall").GetString());
        Assert.Contains("ptrace", File.ReadAllText(audit));
        Assert.True(File.Exists(Path.Combine(evidence, "incident.json")));
        AssertNothingLeft(marker);
    }

    [Fact]
    public void Bad_security_options_are_refused_and_leave_nothing()
    {
        var r = ProcessRunner.Run(Berth, ["sandbox", "run", "--on-violation", "explode", "--", "/bin/true"], Scratch);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--on-violation explode", r.Stderr);
        r = ProcessRunner.Run(Berth, ["sandbox", "run", "--on-violation", "quarantine", "--", "/bin/true"], Scratch);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("needs --evidence", r.Stderr);
        r = ProcessRunner.Run(Berth, ["sandbox", "run", "--seccomp", "/nonexistent/profile.json", "--", "/bin/true"], Scratch);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("/nonexistent/profile.json", r.Stderr);
        var full = NewPath("full-evidence");
        Directory.CreateDirectory(full);
        File.WriteAllText(Path.Combine(full, "old"), "x");
        var (m, rm) = Sandbox(["--on-violation", "quarantine", "--evidence", full], ["/box/hostile", "euid"], allowXX: true);
        Assert.Equal("XX", Status(m));
        Assert.Equal(2, rm.ExitCode);
        Assert.Contains("not empty", m.GetProperty("message").GetString());
    }

    private static Dictionary<string, string> Hashes(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Order()
            .ToDictionary(f => Path.GetRelativePath(dir, f), f => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(f))));
}

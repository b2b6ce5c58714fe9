using System.Text.Json;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>
/// `berth sandbox pool` and `sandbox run --pool` (issue 7, throughput of one run per submission):
/// runs reuse a slot's jail yet see nothing of the last run, verdicts are those of a fresh jail,
/// a run that dies mid-job leaves a slot the next run destroys and rebuilds, every slot taken means
/// a fresh jail, and `pool rm` leaves nothing (template, cgroups, mounts, run dirs).
/// </summary>
public sealed class SandboxPoolTests(TestEnvironment env) : IntegrationTest(env)
{
    private const string Busybox = "/bin/busybox";
    private string Berth => Path.Combine(Path.GetDirectoryName(Env.RuntimePath)!, "berth");
    private static string Scratch => Path.Combine(TestEnvironment.ScratchRoot, "sandbox-pool");

    private static string Name() => "bt-pool-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(5));

    private ProcResult Berthx(params string[] args) => ProcessRunner.Run(Berth, args, Scratch, TimeSpan.FromSeconds(60));

    private void Init(string pool, int slots)
    {
        Directory.CreateDirectory(Scratch);
        var r = Berthx("sandbox", "pool", "init", pool, "--slots", slots.ToString());
        Assert.True(r.ExitCode == 0, r.ToString());
    }

    /// <summary>`sandbox run --pool POOL OPTIONS -- busybox sh -c SCRIPT`: the verdict and the process result.</summary>
    private (JsonElement Meta, ProcResult Result) Run(string pool, string script, params string[] options)
    {
        var r = ProcessRunner.Run(Berth, ["sandbox", "run", "--pool", pool, .. options, "--", Busybox, "sh", "-c", script], Scratch, TimeSpan.FromSeconds(60));
        Assert.False(r.TimedOut, r.ToString());
        var last = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "";
        Assert.True(last.StartsWith("{\"status\":", StringComparison.Ordinal), r.ToString());
        return (JsonDocument.Parse(last).RootElement, r);
    }

    private static string Status(JsonElement m) => m.GetProperty("status").GetString()!;

    /// <summary>`pool ls`: (state, template pid) per slot.</summary>
    private List<(string State, int Template)> Slots(string pool)
    {
        var r = Berthx("sandbox", "pool", "ls", pool);
        Assert.True(r.ExitCode == 0, r.ToString());
        return [.. r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' '))
            .Select(f => (f[2], f[3] == "-" ? 0 : int.Parse(f[3])))];
    }

    /// <summary>Removes the pool and checks that nothing of it is left.</summary>
    private void RemoveAndCheck(string pool, IEnumerable<int> templates)
    {
        var r = Berthx("sandbox", "pool", "rm", pool);
        Assert.True(r.ExitCode == 0, r.ToString());
        AssertGone(pool, templates);
    }

    /// <summary>Nothing of pool NAME is left: its directory (or one renamed aside), run dirs, cgroups, mounts, templates.</summary>
    private static void AssertGone(string pool, IEnumerable<int> templates)
    {
        Assert.False(Directory.Exists($"/run/berth/sandbox/pools/{pool}"));
        Assert.Empty(Directory.GetFileSystemEntries("/run/berth/sandbox/pools", $".{pool}.*"));
        Assert.Empty(Directory.GetFileSystemEntries("/run/berth/sandbox/runs", $"sandbox-pool-{pool}-*"));
        foreach (var h in Directory.GetDirectories("/sys/fs/cgroup"))
            foreach (var d in Directory.EnumerateDirectories(h, $"sandbox-pool-{pool}-*", new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = 3 }))
                Assert.Fail($"cgroup left: {d}");
        Assert.DoesNotContain($"sandbox-pool-{pool}-", File.ReadAllText("/proc/self/mountinfo"));
        foreach (var pid in templates)
            Assert.True(!File.Exists($"/proc/{pid}/status") || File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ"), $"template {pid} left");
    }

    [Fact]
    public void Runs_share_a_slot_yet_see_nothing_of_the_last_run_and_rm_leaves_nothing()
    {
        var pool = Name();
        Init(pool, 1);
        var box = Path.Combine(Scratch, pool + "-box");
        Directory.CreateDirectory(box);
        File.WriteAllText(Path.Combine(box, "input"), "42\n");
        try
        {
            Assert.Equal([("empty", 0)], Slots(pool));
            // The first run writes into the box, /tmp and /dev/shm and leaves a background child.
            var (first, r1) = Run(pool, "cat /box/input; echo x > /box/mine; echo y > /tmp/mine; echo z > /dev/shm/mine; (sleep 30 &) ; echo done",
                "--box", box);
            Assert.Equal("OK", Status(first));
            Assert.Contains("42", r1.Stdout);
            var slots = Slots(pool);
            Assert.Equal("ready", slots[0].State);
            int template = slots[0].Template;
            // The template's PID 1: the sandbox uid, no capabilities, no_new_privs.
            var st = File.ReadAllText($"/proc/{template}/status");
            Assert.Contains("Uid:\t65534\t65534\t65534\t65534", st);
            Assert.Contains("CapEff:\t0000000000000000", st);
            Assert.Contains("NoNewPrivs:\t1", st);
            // It outlives the run that made it: it holds none of that run's files (stdio is /dev/null), only its own pipe.
            foreach (var fd in Directory.GetFiles($"/proc/{template}/fd"))
            {
                var target = new FileInfo(fd).LinkTarget ?? "";
                Assert.True(target == "/dev/null" || (Path.GetFileName(fd) == "4" && target.StartsWith("pipe:", StringComparison.Ordinal)), $"template fd {fd} -> {target}");
            }

            // The second run gets the same template, a fresh box, empty /tmp and /dev/shm, no process of the first.
            var (second, r2) = Run(pool, "ls -A /box /tmp /dev/shm; cat /box/input", "--box", box);
            Assert.Equal("OK", Status(second));
            Assert.DoesNotContain("mine", r2.Stdout);
            Assert.Contains("42", r2.Stdout);
            Assert.Equal(template, Slots(pool)[0].Template);
            Assert.Equal(["input"], Directory.GetFileSystemEntries(box).Select(Path.GetFileName));

            // Verdicts are those of a fresh jail.
            Assert.Equal("RE", Status(Run(pool, "exit 3").Meta));
            Assert.Equal("TO", Status(Run(pool, "while :; do :; done", "--time", "0.3", "--wall-time", "5").Meta));
            Assert.Equal("ML", Status(Run(pool, "awk 'BEGIN { s = \"x\"; while (1) s = s s }'", "--memory", "32m").Meta));
            Assert.Equal("SG", Status(Run(pool, "kill -SEGV $$").Meta));
            var (ok, _) = Run(pool, "echo again");
            Assert.Equal("OK", Status(ok));
            Assert.Equal("ready", Slots(pool)[0].State);
        }
        finally
        {
            var templates = Slots(pool).Select(s => s.Template).Where(p => p > 0).ToList();
            RemoveAndCheck(pool, templates);
        }
    }

    /// <summary>cgroup.procs of the pool's slot 0 on the pids hierarchy (v1) or the unified one (v2).</summary>
    private static string ProcsFile(string pool) =>
        new[] { $"/sys/fs/cgroup/pids/berth/sandbox-pool-{pool}-0/cgroup.procs", $"/sys/fs/cgroup/berth/sandbox-pool-{pool}-0/cgroup.procs" }
            .First(File.Exists);

    [Fact]
    public void A_run_killed_mid_job_leaves_a_slot_that_the_next_run_destroys_and_rebuilds()
    {
        var pool = Name();
        Init(pool, 1);
        try
        {
            Assert.Equal("OK", Status(Run(pool, "true").Meta));
            int before = Slots(pool)[0].Template;
            // A run whose berth dies (SIGKILL) while its program runs: the slot stays marked busy.
            var procs = ProcsFile(pool);
            var r = ProcessRunner.Run("/bin/sh", ["-c",
                $"{Berth} sandbox run --pool {pool} -- {Busybox} sleep 60 & b=$!; " +
                $"for i in $(seq 200); do sleep 0.05; [ $(wc -l < {procs}) -ge 2 ] && break; done; kill -9 $b; wait $b; echo killed"],
                Scratch, TimeSpan.FromSeconds(30));
            Assert.Contains("killed", r.Stdout);
            Assert.Equal("busy", Slots(pool)[0].State);
            var orphans = File.ReadAllLines(procs).Where(l => l.Length > 0).ToList();
            Assert.NotEmpty(orphans);

            // The next run destroys all of it (the program of the dead run included) and builds the slot anew.
            Assert.Equal("OK", Status(Run(pool, "true").Meta));
            var after = Slots(pool)[0];
            Assert.Equal("ready", after.State);
            Assert.NotEqual(before, after.Template);
            Assert.False(File.Exists($"/proc/{before}/status") && !File.ReadAllText($"/proc/{before}/status").Contains("State:\tZ"));
            foreach (var pid in orphans)
                Assert.True(!File.Exists($"/proc/{pid}/status") || File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ"),
                    $"the dead run's process {pid} is still there");
            Assert.DoesNotContain(File.ReadAllLines(procs), l => l.Length > 0);
        }
        finally { RemoveAndCheck(pool, Slots(pool).Select(s => s.Template).Where(p => p > 0).ToList()); }
    }

    [Fact]
    public void With_every_slot_taken_a_run_gets_a_fresh_jail()
    {
        var pool = Name();
        Init(pool, 1);
        try
        {
            // flock(1) holds the only slot's lock while berth runs, as a run in flight would.
            var r = ProcessRunner.Run("/usr/bin/flock", ["-n", $"/run/berth/sandbox/pools/{pool}/slot-0", "-c",
                $"{Berth} sandbox run --pool {pool} -- {Busybox} sh -c 'cat /proc/self/cgroup | grep pids'"], Scratch, TimeSpan.FromSeconds(30));
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("\"status\":\"OK\"", r.Stdout);
            Assert.DoesNotContain($"sandbox-pool-{pool}", r.Stdout);
            Assert.Equal("empty", Slots(pool)[0].State);
        }
        finally { RemoveAndCheck(pool, []); }
    }

    [Fact]
    public void Rm_waits_for_the_run_in_flight_and_a_removal_that_died_midway_is_finished_by_the_next_init()
    {
        var pool = Name();
        Init(pool, 1);
        // A run in flight when rm starts: rm waits for it, and it still gets its verdict.
        var r = ProcessRunner.Run("/bin/sh", ["-c",
            $"{Berth} sandbox run --pool {pool} -- {Busybox} sh -c 'sleep 0.5; echo slept' > run.out & b=$!; " +
            $"for i in $(seq 100); do sleep 0.02; [ $({Berth} sandbox pool ls {pool} | awk '{{print $3}}') = in-use ] && break; done; " +
            $"{Berth} sandbox pool rm {pool}; echo rm=$?; wait $b; echo run=$?; cat run.out"], Scratch, TimeSpan.FromSeconds(30));
        Assert.Contains("rm=0", r.Stdout);
        Assert.Contains("run=0", r.Stdout);
        Assert.Contains("slept", r.Stdout);
        Assert.Contains("\"status\":\"OK\"", r.Stdout);
        AssertGone(pool, []);

        // A removal that died after renaming the pool aside: its slots (template, cgroups, mount) are still there.
        Init(pool, 1);
        Assert.Equal("OK", Status(Run(pool, "true").Meta));
        int template = Slots(pool)[0].Template;
        Directory.Move($"/run/berth/sandbox/pools/{pool}", $"/run/berth/sandbox/pools/.{pool}.rm-999999");
        Init(pool, 1); // finishes that removal first
        Assert.False(Directory.Exists($"/run/berth/sandbox/pools/.{pool}.rm-999999"));
        Assert.Equal([("empty", 0)], Slots(pool));
        RemoveAndCheck(pool, [template]);
    }

    [Fact]
    public void A_fifo_in_the_callers_box_is_skipped_by_the_copy_and_by_quarantines_hashes()
    {
        var pool = Name();
        Init(pool, 1);
        var box = Path.Combine(Scratch, pool + "-fifo-box");
        Directory.CreateDirectory(Path.Combine(box, "sub"));
        File.WriteAllText(Path.Combine(box, "sub", "a.txt"), "hi\n");
        File.CreateSymbolicLink(Path.Combine(box, "link"), "sub/a.txt");
        Assert.Equal(0, ProcessRunner.Run("/usr/bin/mkfifo", [Path.Combine(box, "fifo")], Scratch, TimeSpan.FromSeconds(10)).ExitCode);
        var evidence = Path.Combine(Scratch, pool + "-evidence");
        try
        {
            // Opening the fifo (to copy or hash it) would block the run for ever; the test's timeout would show it.
            var (m, r) = Run(pool, "cat /box/link; ls /box; unshare -m true", "--box", box, "--on-violation", "quarantine", "--evidence", evidence);
            Assert.Equal("SV", Status(m));
            Assert.Contains("hi", r.Stdout);
            Assert.DoesNotContain("fifo", r.Stdout);
            Assert.True(File.Exists(Path.Combine(evidence, "incident.json")));
            Assert.Equal("ready", Slots(pool)[0].State);
        }
        finally { RemoveAndCheck(pool, Slots(pool).Select(s => s.Template).Where(p => p > 0).ToList()); }
    }

    [Fact]
    public void Stopping_a_pooled_run_kills_its_jail_and_the_slot_is_destroyed_not_reused_half_clean()
    {
        var pool = Name();
        Init(pool, 1);
        try
        {
            Assert.Equal("OK", Status(Run(pool, "true").Meta));
            int template = Slots(pool)[0].Template;
            var procs = ProcsFile(pool);
            using var p = ProcessRunner.Start(Berth, ["sandbox", "run", "--pool", pool, "--", Busybox, "sleep", "30"], Scratch);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (File.ReadAllLines(procs).Length < 2 && DateTime.UtcNow < deadline) Thread.Sleep(20);
            ProcessRunner.Host("kill", "-TERM", p.Pid.ToString());
            var r = p.Wait(TimeSpan.FromSeconds(10));
            Assert.Equal(2, r.ExitCode);
            Assert.StartsWith("{\"status\":\"XX\"", r.Stdout);
            Assert.Contains("interrupted", r.Stdout);
            // XX: the slot was destroyed (template, cgroup, tmpfs); the next run builds it anew.
            Assert.Equal([("empty", 0)], Slots(pool));
            Assert.False(File.Exists(procs));
            Assert.True(!File.Exists($"/proc/{template}/status") || File.ReadAllText($"/proc/{template}/status").Contains("State:\tZ"));
            Assert.Equal("OK", Status(Run(pool, "true").Meta));
        }
        finally { RemoveAndCheck(pool, Slots(pool).Select(s => s.Template).Where(p => p > 0).ToList()); }
    }

    [Fact]
    public void A_kept_box_is_used_only_while_nothing_changed_it_and_a_write_through_a_shared_mapping_is_found()
    {
        var pool = Name();
        Init(pool, 1);
        var box = Path.Combine(Scratch, pool + "-kept-box");
        Directory.CreateDirectory(box);
        File.WriteAllText(Path.Combine(box, "input"), "42\n");
        var state = $"/run/berth/sandbox/pools/{pool}/slot-0";
        try
        {
            Assert.Equal("OK", Status(Run(pool, "cat /box/input", "--box", box).Meta));
            // Between runs no one but root can reach the kept box through the host's paths (the jail uses its mounts).
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode("/run/berth/sandbox/runs"));
            // Nothing changed the box: the slot keeps it (its image is in the state) for the next run with this DIR.
            Assert.Contains("keep ", File.ReadAllText(state));
            var (m1, r1) = Run(pool, "cat /box/input; stat -c '%U %a' /box/input; echo 7 > /box/input", "--box", box);
            Assert.Equal("OK", Status(m1));
            Assert.Contains("42", r1.Stdout);
            Assert.Contains("nobody 644", r1.Stdout);
            // A write (ctime moved): the box was emptied after that run; the next one gets DIR's bytes again.
            Assert.DoesNotContain("keep ", File.ReadAllText(state));
            Assert.Contains("42", Run(pool, "cat /box/input", "--box", box).Result.Stdout);
            Assert.Contains("keep ", File.ReadAllText(state));

            // A write through a shared mapping: found by the times where the kernel moves them (6.x tmpfs does),
            // else by the next run's comparison of the bytes (BoxImage.VerifyBytes, unit-tested).
            var (m2, r2) = Run(pool, "python3 -c \"import mmap; f = open('/box/input', 'r+b'); m = mmap.mmap(f.fileno(), 0); m[0:2] = b'99'; m.flush()\"; cat /box/input",
                "--box", box);
            Assert.Equal("OK", Status(m2));
            Assert.Contains("99", r2.Stdout);
            var (m3, r3) = Run(pool, "cat /box/input", "--box", box);
            Assert.Equal("OK", Status(m3));
            Assert.Contains("42", r3.Stdout);
            Assert.DoesNotContain("99", r3.Stdout);

            // The caller changes DIR: the next run copies it.
            File.WriteAllText(Path.Combine(box, "input"), "43\n");
            Assert.Contains("43", Run(pool, "cat /box/input", "--box", box).Result.Stdout);
            // A file the job adds is not kept either.
            Run(pool, "touch /box/extra", "--box", box);
            Assert.Equal("input\n", Run(pool, "ls /box", "--box", box).Result.Stdout.Split("{")[0]);
            Assert.Equal(["input"], Directory.GetFileSystemEntries(box).Select(Path.GetFileName));
        }
        finally { RemoveAndCheck(pool, Slots(pool).Select(s => s.Template).Where(p => p > 0).ToList()); }
    }

    [Fact]
    public void The_compiled_job_a_slot_keeps_is_used_only_for_the_same_options_and_reports_as_a_fresh_one()
    {
        var pool = Name();
        Init(pool, 1);
        var box = Path.Combine(Scratch, pool + "-jail-box");
        Directory.CreateDirectory(box);
        try
        {
            Assert.Contains("first", Run(pool, "echo first").Result.Stdout);
            Assert.True(File.Exists($"/run/berth/sandbox/pools/{pool}/jail-0"));
            // The stub may be spawned from a helper pinned away from berth's CPU: the program has berth's CPUs.
            string Cpus(string status) => status.Split('\n').First(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal));
            for (int i = 0; i < 3; i++)
                Assert.Contains(Cpus(File.ReadAllText("/proc/self/status")), Run(pool, "cat /proc/self/status").Result.Stdout);
            // Other arguments, other limits: not the kept program.
            Assert.Contains("second", Run(pool, "echo second").Result.Stdout);
            Assert.Contains("second", Run(pool, "echo second").Result.Stdout);
            var (lim, rl) = Run(pool, "ulimit -n", "--open-files", "17");
            Assert.Equal("OK", Status(lim));
            Assert.Contains("17", rl.Stdout);
            Assert.Contains("64", Run(pool, "ulimit -n").Result.Stdout);
            // A program that is not there: the same verdict from a compiled job as from a fresh one, twice.
            string Missing()
            {
                var r = ProcessRunner.Run(Berth, ["sandbox", "run", "--pool", pool, "--box", box, "--", "./missing"], Scratch, TimeSpan.FromSeconds(60));
                return r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
            }
            var fresh = ProcessRunner.Run(Berth, ["sandbox", "run", "--box", box, "--", "./missing"], Scratch, TimeSpan.FromSeconds(60));
            var expected = JsonDocument.Parse(fresh.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last()).RootElement;
            for (int i = 0; i < 2; i++)
            {
                var got = JsonDocument.Parse(Missing()).RootElement;
                Assert.Equal(Status(expected), Status(got));
                Assert.Equal(expected.GetProperty("message").GetString(), got.GetProperty("message").GetString());
            }
            // A damaged file is a miss, not an error.
            File.WriteAllText($"/run/berth/sandbox/pools/{pool}/jail-0", "garbage");
            Assert.Contains("third", Run(pool, "echo third").Result.Stdout);
        }
        finally { RemoveAndCheck(pool, Slots(pool).Select(s => s.Template).Where(p => p > 0).ToList()); }
    }

    [Fact]
    public void A_box_that_cannot_be_made_ready_before_the_exec_is_XX_and_the_program_never_runs()
    {
        var pool = Name();
        Init(pool, 1);
        var box = Path.Combine(Scratch, pool + "-deep-box");
        var deep = box;
        for (int i = 0; i < 70; i++) deep = Path.Combine(deep, "d");
        Directory.CreateDirectory(deep);
        var outDir = Path.Combine(Scratch, pool + "-out");
        Directory.CreateDirectory(outDir);
        File.SetUnixFileMode(outDir, (UnixFileMode)0x1ff);
        try
        {
            Assert.Equal("OK", Status(Run(pool, "true", "--dir", $"{outDir}:/out:rw").Meta)); // the slot and its template exist
            int template = Slots(pool)[0].Template;
            var (m, _) = Run(pool, "touch /out/ran", "--dir", $"{outDir}:/out:rw", "--box", box);
            Assert.Equal("XX", Status(m));
            Assert.Contains("nested more than 64 levels", m.GetProperty("message").GetString());
            Assert.False(File.Exists(Path.Combine(outDir, "ran")), "the program ran without its box");
            // XX: the slot was destroyed (its template and cgroup with it); the next run builds it anew.
            Assert.Equal([("empty", 0)], Slots(pool));
            Assert.True(!File.Exists($"/proc/{template}/status") || File.ReadAllText($"/proc/{template}/status").Contains("State:\tZ"));
            Assert.Equal("OK", Status(Run(pool, "touch /out/ran", "--dir", $"{outDir}:/out:rw").Meta));
            Assert.True(File.Exists(Path.Combine(outDir, "ran")));
        }
        finally
        {
            RemoveAndCheck(pool, Slots(pool).Select(s => s.Template).Where(p => p > 0).ToList());
            Directory.Delete(box, recursive: true);
            Directory.Delete(outDir, recursive: true);
        }
    }

    [Fact]
    public void Bad_pool_input_is_refused_with_a_clear_error()
    {
        Directory.CreateDirectory(Scratch);
        var noPool = Berthx("sandbox", "run", "--pool", "bt-no-such-pool", "--", Busybox, "true");
        Assert.Equal(2, noPool.ExitCode);
        Assert.Contains("no sandbox pool bt-no-such-pool", noPool.Stderr);

        var badName = Berthx("sandbox", "pool", "init", "../x");
        Assert.Equal(2, badName.ExitCode);
        Assert.Contains("letters, digits and '-'", badName.Stderr);

        var pool = Name();
        var zero = Berthx("sandbox", "pool", "init", pool, "--slots", "0");
        Assert.Equal(2, zero.ExitCode);
        Assert.False(Directory.Exists($"/run/berth/sandbox/pools/{pool}"));

        Init(pool, 2);
        try
        {
            var other = Berthx("sandbox", "pool", "init", pool, "--slots", "3");
            Assert.Equal(2, other.ExitCode);
            Assert.Contains("exists with 2 slots", other.Stderr);
            Assert.Equal(0, Berthx("sandbox", "pool", "init", pool, "--slots", "2").ExitCode); // the same again: nothing to do
        }
        finally { RemoveAndCheck(pool, []); }
        Assert.Equal(2, Berthx("sandbox", "pool", "rm", pool).ExitCode);
    }
}

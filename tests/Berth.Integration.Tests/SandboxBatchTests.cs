using System.Text.Json;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>
/// `berth sandbox batch` (issue 7, throughput): results in input order and equal to `run`'s
/// verdicts, jobs isolated from each other (in parallel and one after another in the same
/// worker), bad lines reported as XX while the rest runs, and nothing left afterwards.
/// </summary>
public sealed class SandboxBatchTests(TestEnvironment env) : IntegrationTest(env)
{
    private const string Busybox = "/bin/busybox";
    private string Berth => Path.Combine(Path.GetDirectoryName(Env.RuntimePath)!, "berth");
    private static string Scratch => Path.Combine(TestEnvironment.ScratchRoot, "sandbox-batch");

    private static string Marker() => "bt-batch-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));

    /// <summary>A job line running `busybox sh -c SCRIPT MARKER` with extra keys.</summary>
    private static string Job(string script, string marker, string extra = "") =>
        "{\"command\":" + JsonSerializer.Serialize(new[] { Busybox, "sh", "-c", script, marker }) + extra + "}";

    /// <summary>Runs a batch file of <paramref name="lines"/>; checks the cleanup; returns the parsed results and the process result.</summary>
    private (List<JsonElement> Results, ProcResult Run) Batch(string marker, IEnumerable<string> lines, int parallel, string prelude = "")
    {
        Directory.CreateDirectory(Scratch);
        var file = Path.Combine(Scratch, marker + ".jsonl");
        File.WriteAllLines(file, lines);
        var r = ProcessRunner.Run(Berth, ["sandbox", "batch", file, "--parallel", parallel.ToString()], Scratch, TimeSpan.FromSeconds(60),
            prelude: $"export BERTH_SANDBOX_TAG={marker}; {prelude}");
        Assert.False(r.TimedOut, r.ToString());
        var results = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        foreach (var res in results) Assert.Equal("status", res.EnumerateObject().First().Name);
        AssertNothingLeft(marker);
        return (results, r);
    }

    /// <summary>Nothing of this test's jails (ids carry the marker through BERTH_SANDBOX_TAG) is left: run dirs, cgroups, mounts, processes.</summary>
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
            string cmdline, environ;
            try { cmdline = File.ReadAllText($"/proc/{p}/cmdline"); environ = File.ReadAllText($"/proc/{p}/environ"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            Assert.DoesNotContain(marker, cmdline);
            Assert.False(cmdline.Contains("batch-worker") && environ.Contains(marker), $"batch worker {p} left");
        }
    }

    private static string Status(JsonElement m) => m.GetProperty("status").GetString()!;

    [Fact]
    public void Results_come_in_input_order_with_the_verdicts_of_run()
    {
        var marker = Marker();
        var cases = new (string Script, string[] RunOptions, string Extra)[]
        {
            ("echo ok", [], ""),
            ("exit 3", [], ""),
            ("while :; do :; done", ["--time", "0.3", "--wall-time", "5"], ",\"time\":0.3,\"wall-time\":5"),
            ("awk 'BEGIN { s = \"x\"; while (1) s = s s }'", ["--memory", "32m"], ",\"memory\":\"32m\""),
            ("kill -SEGV $$", [], ""),
            ("head -c 200000 /dev/zero > /box/big", ["--fsize", "100"], ",\"fsize\":100"),
            ("sleep 5", ["--wall-time", "0.3"], ",\"wall-time\":\"0.3\""),
        };
        var (results, r) = Batch(marker, cases.Select((c, i) => Job(c.Script, marker, c.Extra + $",\"id\":\"job{i}\"")), parallel: 3);
        Assert.Equal(cases.Length, results.Count);
        Assert.Equal(["OK", "RE", "TO", "ML", "SG", "OL", "TO"], results.Select(Status));
        for (int i = 0; i < cases.Length; i++)
        {
            Assert.Equal(i + 1, results[i].GetProperty("line").GetInt32());
            Assert.Equal($"job{i}", results[i].GetProperty("id").GetString());
        }
        Assert.Equal(3, results[1].GetProperty("exitcode").GetInt32());
        Assert.Equal(11, results[4].GetProperty("exitsig").GetInt32());
        Assert.Equal(0, r.ExitCode); // every job got a verdict (none XX)

        // The same jobs through `run` give the same statuses.
        for (int i = 0; i < cases.Length; i++)
        {
            var meta = Path.Combine(Scratch, $"{marker}-{i}.meta");
            ProcessRunner.Run(Berth, ["sandbox", "run", "--meta", meta, .. cases[i].RunOptions, "--", Busybox, "sh", "-c", cases[i].Script, marker], Scratch,
                prelude: $"export BERTH_SANDBOX_TAG={marker}");
            var single = JsonDocument.Parse(File.ReadAllText(meta)).RootElement;
            Assert.Equal(Status(single), Status(results[i]));
            Assert.Equal(single.GetProperty("exitcode").GetInt32(), results[i].GetProperty("exitcode").GetInt32());
            Assert.Equal(single.GetProperty("exitsig").GetInt32(), results[i].GetProperty("exitsig").GetInt32());
        }
        AssertNothingLeft(marker);
    }

    [Fact]
    public void Parallel_jobs_do_not_see_each_others_files()
    {
        var marker = Marker();
        // Each job leaves a file in /box, /tmp and /dev/shm, waits while the others do the same, then checks it is alone.
        const string script = "id=$(od -An -N8 -tx8 /dev/urandom | tr -d ' '); [ -n \"$id\" ] || exit 9; for d in /box /tmp /dev/shm; do echo $id > $d/mark-$id; done; sleep 0.4; " +
                              "for d in /box /tmp /dev/shm; do n=$(ls $d | grep -c mark-); [ $n = 1 ] || exit 1; done; " +
                              "[ $(cat /proc/[0-9]*/comm | grep -c '^sleep$') = 0 ] || exit 2";
        var (results, r) = Batch(marker, Enumerable.Range(0, 4).Select(_ => Job(script, marker)), parallel: 4);
        Assert.Equal(4, results.Count);
        Assert.All(results, x => Assert.Equal("OK", Status(x)));
        Assert.Equal(0, r.ExitCode);
    }

    /// <summary>A --box DIR holding "input" = "clean", and its job-JSON key.</summary>
    private (string Box, string BoxKey) CleanBox(string marker)
    {
        var box = Path.Combine(Scratch, "box-" + marker);
        Directory.CreateDirectory(box);
        File.WriteAllText(Path.Combine(box, "input"), "clean\n");
        return (box, ",\"box\":" + JsonSerializer.Serialize(box));
    }

    [Fact]
    public void Leftovers_of_a_job_do_not_reach_the_next_one_in_the_same_worker()
    {
        var marker = Marker();
        var (box, boxKey) = CleanBox(marker);
        // A host directory the first job points symlinks at: emptying the jail's /tmp must not follow them.
        var canary = Path.Combine(Scratch, "canary-" + marker);
        Directory.CreateDirectory(canary);
        File.WriteAllText(Path.Combine(canary, "keep"), "host\n");
        // Job 1 dirties everything it can, leaves a background process, and uses CPU and memory.
        var dirty = Job("echo dirty > /box/input; echo x > /box/extra; echo y > /tmp/extra; echo z > /dev/shm/extra; " +
                        $"ln -s {canary} /tmp/link; ln -s {canary}/keep /dev/shm/link; mkdir -p /tmp/a/b/c && ln -s {canary} /tmp/a/b/c/up; " +
                        "sleep 30 & i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; " +
                        "awk 'BEGIN { s = \"x\"; for (i = 0; i < 22; i++) s = s s }'", marker, boxKey);
        // Job 2 (same worker: --parallel 1) checks it got a clean box, /tmp, /dev/shm and process table.
        var check = Job("[ \"$(cat /box/input)\" = clean ] || exit 1; [ ! -e /box/extra ] || exit 2; [ ! -e /tmp/extra ] || exit 3; " +
                        "[ ! -e /dev/shm/extra ] || exit 4; [ $(cat /proc/[0-9]*/comm | grep -c '^sleep$') = 0 ] || exit 5; " +
                        "[ -z \"$(ls -A /tmp)\" ] && [ -z \"$(ls -A /dev/shm)\" ] || exit 8; " +
                        // The template jail's PID 1 (docs/adr/0016) is as unprivileged as the job.
                        "grep -q '^Uid:.65534.65534' /proc/1/status || exit 6; grep -q '^CapEff:.0000000000000000' /proc/1/status || exit 7", marker, boxKey);
        var (results, _) = Batch(marker, [dirty, check], parallel: 1);
        Assert.Equal(["OK", "OK"], results.Select(Status));
        Assert.Equal(1, results[0].GetProperty("orphans").GetInt32());
        // The pooled cgroup was reset: the second job's CPU time and peak memory are its own.
        Assert.True(results[1].GetProperty("time").GetDouble() < results[0].GetProperty("time").GetDouble(), string.Join('\n', results));
        Assert.True(results[1].GetProperty("max_rss").GetInt64() < results[0].GetProperty("max_rss").GetInt64() / 2, string.Join('\n', results));
        Assert.True(results[1].GetProperty("wall_time").GetDouble() < 5);
        Assert.Equal("clean\n", File.ReadAllText(Path.Combine(box, "input")));
        Assert.Equal("host\n", File.ReadAllText(Path.Combine(canary, "keep")));
    }

    /// <summary>
    /// A box the last job left untouched is kept for the next job with the same DIR (BoxImage); anything
    /// changed, even through a shared mapping (on tmpfs that changes no time), is found and the box copied afresh:
    /// by the kernel's fanotify write events, and (BERTH_SANDBOX_BOX_WATCH=0) by comparing the bytes.
    /// </summary>
    [Theory]
    [InlineData("")]
    [InlineData("export BERTH_SANDBOX_BOX_WATCH=0")]
    public void A_kept_box_is_verified_byte_for_byte_even_against_writes_through_a_mapping(string prelude)
    {
        var marker = Marker();
        var (box, boxKey) = CleanBox(marker);
        var check = Job("[ \"$(cat /box/input)\" = clean ] || exit 1; [ \"$(ls -A /box)\" = input ] || exit 2", marker, boxKey);
        var mmap = "{\"command\":" + JsonSerializer.Serialize(new[] { "/usr/bin/python3", "-c",
            "import mmap; f = open('/box/input', 'r+b'); m = mmap.mmap(f.fileno(), 0); m[0:5] = b'DIRTY'; m.flush()" }) + boxKey + "}";
        var rename = Job("mv /box/input /box/x && mv /box/x /box/input", marker, boxKey);
        // Times a job sets on its files are set back before the next job: it finds the copy's mtime.
        var touch = Job("stat -c %Y /box/input > /tmp/t; touch -d '2001-02-03 04:05:06' /box/input", marker, boxKey);
        var sameTime = Job("[ $(stat -c %Y /box/input) != $(date -d '2001-02-03 04:05:06' +%s) ] || exit 3", marker, boxKey);
        var (results, _) = Batch(marker, [check, check, mmap, check, rename, check, touch, sameTime, check], parallel: 1, prelude);
        Assert.Equal(Enumerable.Repeat("OK", 9), results.Select(Status));
        Assert.Equal("clean\n", File.ReadAllText(Path.Combine(box, "input")));
    }

    /// <summary>A worker switches roots between jobs: an --image job, a host-directory job, the image again.</summary>
    [Fact]
    public void Jobs_with_and_without_an_image_share_a_worker()
    {
        var marker = Marker();
        var storage = Path.Combine(Scratch, "images-" + marker);
        try
        {
            var image = Job("[ ! -e /usr/bin/python3 ] && [ -x /bin/busybox ] || exit 1; echo x > /box/o", marker, ",\"image\":\"berth.local/busybox\"");
            var host = Job("[ -e /usr/bin/python3 ] || exit 1", marker);
            var (results, _) = Batch(marker, [image, image, host, image], parallel: 1, $"export BERTH_STORAGE={storage}");
            Assert.Equal(["OK", "OK", "OK", "OK"], results.Select(Status));
        }
        finally
        {
            if (Directory.Exists(storage)) Directory.Delete(storage, recursive: true);
        }
    }

    [Fact]
    public void Bad_lines_give_XX_naming_the_line_and_the_rest_still_runs()
    {
        var marker = Marker();
        var (results, r) = Batch(marker,
        [
            Job("exit 0", marker),
            "not json",
            "",
            "{\"command\":\"sh\"}",
            "{\"command\":[\"/bin/true\"],\"bogus\":1}",
            "{\"command\":[\"/bin/true\"],\"memory\":\"lots\"}",
            Job("exit 0", marker),
        ], parallel: 2);
        Assert.Equal(6, results.Count); // the blank line is skipped
        Assert.Equal(["OK", "XX", "XX", "XX", "XX", "OK"], results.Select(Status));
        Assert.Equal([1, 2, 4, 5, 6, 7], results.Select(x => x.GetProperty("line").GetInt32()));
        Assert.StartsWith("line 2: invalid JSON", results[1].GetProperty("message").GetString());
        Assert.Contains("\"command\": expected an array", results[2].GetProperty("message").GetString());
        Assert.Contains("unknown key \"bogus\"", results[3].GetProperty("message").GetString());
        Assert.Contains("\"memory\": lots", results[4].GetProperty("message").GetString());
        Assert.Equal(1, r.ExitCode);
    }
}

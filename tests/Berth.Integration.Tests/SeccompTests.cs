using System.Text;
using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Berth.Integration.Tests;

/// <summary>
/// Differential test of linux.seccomp against crun: the same profile in the same bundle, run by
/// berth and by crun, on a battery of probes (probes/probe.c: one raw syscall each, in a forked
/// child, reporting ok / errno N / signal N) and ordinary programs (sh, ls, cat, sleep). Every
/// outcome must equal crun's. crun is not optional: if it is missing or cannot run a container
/// here, the test fails (scripts/build installs it; scripts/test binds hugetlb to v1 for it).
/// </summary>
public sealed class SeccompTests(TestEnvironment env, ITestOutputHelper output) : IntegrationTest(env)
{
    private const string Crun = "/usr/bin/crun";
    private const string PodmanProfile = "/usr/share/containers/seccomp.json";

    /// <summary>Runs in the container: the probes, the ordinary programs, then the seccomp lines of /proc/self/status.</summary>
    private const string Script = """
        probe all
        ls / >/dev/null; echo "ls: exit $?"
        cat /etc/passwd >/dev/null; echo "cat: exit $?"
        sleep 0; echo "sleep: exit $?"
        sh -c 'exit 3'; echo "sh: exit $?"
        grep -E '^Seccomp(_filters)?:' /proc/self/status | tr -s '\t ' ' '
        """;

    private static readonly object s_probeLock = new();
    private static readonly Dictionary<string, string> s_compiled = [];

    /// <summary>podman-default-admin: podman's profile for a container with CAP_SYS_ADMIN and friends,
    /// so includes.caps/excludes.caps pick other rules (mount, bpf, clone without the flag mask...).</summary>
    public static TheoryData<string> Profiles => new() { "podman-default", "podman-default-admin", "strict-allowlist" };

    private static readonly string[] s_adminCaps =
        ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF", "CAP_PERFMON", "CAP_SYSLOG"];

    [Theory]
    [MemberData(nameof(Profiles))]
    public void Probes_match_crun(string profileName)
    {
        Assert.True(File.Exists(Crun), $"{Crun} is missing: the seccomp differential test needs crun (scripts/build installs it)");
        string[]? caps = profileName == "podman-default-admin" ? s_adminCaps : null;
        var seccomp = Profile(profileName, caps ?? (IReadOnlyCollection<string>)TemplateBounding());

        var berth = RunProbes(seccomp, Env.RuntimePath, caps);
        var crun = RunProbes(seccomp, Crun, caps);
        var unconfined = RunProbes(null, Env.RuntimePath, caps);

        output.WriteLine($"profile {profileName}");
        output.WriteLine("| probe | unconfined | crun | berth |");
        output.WriteLine("|---|---|---|---|");
        var names = crun.Keys.Union(berth.Keys).Union(unconfined.Keys).ToList();
        foreach (var name in names)
        {
            string Get(Dictionary<string, string> d) => d.TryGetValue(name, out var v) ? v : "(missing)";
            string mark = Get(berth) == Get(crun) ? "" : " **differs**";
            output.WriteLine($"| {name} | {Get(unconfined)} | {Get(crun)} | {Get(berth)}{mark} |");
        }

        // crun must really have run the battery under the filter, or the comparison proves nothing.
        Assert.Equal("2", crun.GetValueOrDefault("Seccomp"));
        Assert.Equal("0", unconfined.GetValueOrDefault("Seccomp"));
        foreach (var probe in ProbeNames()) Assert.True(crun.ContainsKey(probe), $"crun's run has no result for probe {probe}");

        var diffs = names.Where(n => berth.GetValueOrDefault(n) != crun.GetValueOrDefault(n))
            .Select(n => $"{n}: berth {berth.GetValueOrDefault(n) ?? "(missing)"}, crun {crun.GetValueOrDefault(n) ?? "(missing)"}")
            .ToList();
        Assert.True(diffs.Count == 0, $"profile {profileName}: berth differs from crun on {diffs.Count} probe(s):\n  " + string.Join("\n  ", diffs));

        // The kernel's view in berth's container: filter mode, and exactly one filter (berth's).
        Assert.Equal("2", berth["Seccomp"]);
        Assert.Equal("1", berth["Seccomp_filters"]);

        // Ordinary programs work under the profile; the profile really blocks something.
        foreach (var prog in new[] { "ls", "cat", "sleep" }) Assert.Equal("exit 0", berth[prog]);
        Assert.Equal("exit 3", berth["sh"]);
        Assert.Equal("ok", berth["chmod"]);
        Assert.Equal("ok", berth["getpid"]);
        // The profile changes outcomes (guards against both runtimes silently ignoring it).
        // podman's profile (containers/common 0.50) lets user namespaces, mount, keyctl, ptrace and
        // vsock through; it refuses bpf, io_uring and perf without capabilities, personality values
        // outside its list (compared on all 64 bits) and syscalls it does not know (fchmodat2).
        string[] blocked = profileName == "podman-default" ? ["bpf", "io_uring_setup", "perf_event_open", "personality_100000008", "fchmodat2"]
            : profileName == "podman-default-admin" ? ["io_uring_setup", "personality_100000008", "fchmodat2"]
            : ["unshare_user", "clone_newuser", "clone3_newuser", "ptrace_traceme", "bpf", "mount", "keyctl", "socket_vsock",
               "io_uring_setup", "personality_8", "personality_20008", "i386_getpid", "x32_getpid"];
        foreach (var probe in blocked)
            Assert.True(berth[probe] != unconfined[probe], $"{probe}: the profile did not change the outcome ({berth[probe]})");
    }

    /// <summary>The OCI linux.seccomp section for a named profile.</summary>
    private JsonObject Profile(string name, IReadOnlyCollection<string> bounding)
    {
        if (name.StartsWith("podman-default", StringComparison.Ordinal))
        {
            Assert.True(File.Exists(PodmanProfile),
                $"{PodmanProfile} is missing: apt-get install golang-github-containers-common (scripts/build installs it)");
            var file = JsonNode.Parse(File.ReadAllText(PodmanProfile))!.AsObject();
            // The container's bounding set decides includes/excludes.caps, as podman would for it.
            return SeccompProfileFile.ToOci(file, bounding, "SCMP_ARCH_X86_64", "amd64", SeccompProfileFile.RunningKernel());
        }
        string path = Path.Combine(Env.RepoRoot, "tests", "Berth.Integration.Tests", "profiles", name + ".json");
        return JsonNode.Parse(File.ReadAllText(path))!.AsObject();
    }

    private List<string> TemplateBounding()
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Env.TemplateBundle, "config.json")))!;
        return config["process"]!["capabilities"]!["bounding"]!.AsArray().Select(c => (string)c!).ToList();
    }

    /// <summary>One container, probe battery and programs; returns name -> outcome (plus Seccomp, Seccomp_filters).</summary>
    private Dictionary<string, string> RunProbes(JsonObject? seccomp, string runtime, string[]? caps,
        [System.Runtime.CompilerServices.CallerMemberName] string caller = "")
    {
        var c = NewContainer(caller);
        if (caps is not null) c.Capabilities(caps, caps, caps, [], caps);
        c.RuntimePath = runtime;
        File.Copy(Probe(), Path.Combine(c.RootFs, "bin", "probe"));
        File.SetUnixFileMode(Path.Combine(c.RootFs, "bin", "probe"), TestEnvironment.Mode755);
        c.ProcessEnv.Add("PROBE_IN_CONTAINER=1");
        if (seccomp is not null) c.Linux["seccomp"] = seccomp.DeepClone();
        c.Sh(Script);
        var r = c.Run();
        string who = runtime == Crun ? "crun" : "berth";
        Assert.False(r.TimedOut, $"{who} timed out:\n{r}");
        var result = new Dictionary<string, string>();
        foreach (var line in Lines(r.Stdout))
        {
            int colon = line.IndexOf(':');
            if (colon <= 0) continue;
            result[line[..colon]] = line[(colon + 1)..].Trim();
        }
        result["container exit"] = r.ExitCode.ToString();
        if (r.ExitCode != 0 || result.Count < 5) output.WriteLine($"{who} run:\n{r}");
        Assert.True(r.ExitCode == 0, $"{who} did not run the battery (exit {r.ExitCode}):\n{r}");
        return result;
    }

    private IEnumerable<string> ProbeNames()
    {
        string src = File.ReadAllText(ProbeSource());
        foreach (var line in src.Split('\n'))
        {
            var t = line.Trim();
            if (t.StartsWith("{\"", StringComparison.Ordinal) && t.Contains(", p_", StringComparison.Ordinal))
                yield return t[2..t.IndexOf('"', 2)];
        }
    }

    private string ProbeSource() => Path.Combine(Env.RepoRoot, "tests", "Berth.Integration.Tests", "probes", "probe.c");

    private string Probe() => Compiled("probe");

    /// <summary>Compiles probes/NAME.c with gcc -static once per test run.</summary>
    private string Compiled(string name)
    {
        lock (s_probeLock)
        {
            if (s_compiled.TryGetValue(name, out var done) && File.Exists(done)) return done;
            string outPath = Path.Combine(TestEnvironment.ScratchRoot, name);
            string src = Path.Combine(Env.RepoRoot, "tests", "Berth.Integration.Tests", "probes", name + ".c");
            var r = ProcessRunner.Host("gcc", "-static", "-O2", "-Wall", "-o", outPath, src);
            Assert.True(r.Succeeded && File.Exists(outPath), $"gcc -static of probes/{name}.c failed (gcc and libc6-dev are needed):\n" + r);
            return s_compiled[name] = outPath;
        }
    }

    // ---------------------------------------------------------------- user notification

    /// <summary>
    /// linux.seccomp.listenerPath: the runtime sends the notify fd and the container process state
    /// to the listener (probes/listener.c), which answers getpriority with EXDEV. berth and crun
    /// must give the container the same outcome and the listener the same kind of state.
    /// </summary>
    [Fact]
    public void Listener_receives_the_notify_fd_and_answers_like_crun()
    {
        Assert.True(File.Exists(Crun), $"{Crun} is missing: the seccomp differential test needs crun (scripts/build installs it)");
        var berth = RunWithListener(Env.RuntimePath);
        var crun = RunWithListener(Crun);
        output.WriteLine($"crun: {crun.Probes} | listener: {crun.Listener.Replace('\n', ' ')} | state: {crun.State.ToJsonString()}");
        output.WriteLine($"berth: {berth.Probes} | listener: {berth.Listener.Replace('\n', ' ')} | state: {berth.State.ToJsonString()}");

        Assert.Equal(crun.Probes, berth.Probes);
        Assert.Contains("getpriority_process: errno 18", berth.Probes);   // the listener's answer (EXDEV)
        Assert.Contains("getppid: ok", berth.Probes);                    // not notified
        Assert.Contains("notified 140", berth.Listener);                 // getpriority on x86_64

        var s = berth.State;
        Assert.Equal(new[] { "seccompFd" }, s["fds"]!.AsArray().Select(x => (string)x!).ToArray());
        Assert.Equal("berth-it-metadata", (string?)s["metadata"]);
        Assert.True((int)s["pid"]! > 0, "pid in the process state");
        Assert.Equal((int)s["pid"]!, (int)s["state"]!["pid"]!);
        Assert.Equal(berth.Id, (string?)s["state"]!["id"]);
        Assert.False(string.IsNullOrEmpty((string?)s["ociVersion"]), "ociVersion in the process state");
        Assert.Equal((string?)crun.State["state"]!["status"], (string?)s["state"]!["status"]);
        Assert.Equal(Path.GetFullPath(berth.Bundle), (string?)s["state"]!["bundle"]);
    }

    /// <summary>No agent at listenerPath: the container must not start, and nothing is left behind.</summary>
    [Fact]
    public void Listener_that_is_not_there_fails_the_create()
    {
        var c = NewContainer();
        c.Linux["seccomp"] = new JsonObject
        {
            ["defaultAction"] = "SCMP_ACT_ALLOW",
            ["listenerPath"] = Path.Combine(c.WorkDir, "nobody-listens.sock"),
            ["syscalls"] = new JsonArray(new JsonObject { ["names"] = new JsonArray("getpriority"), ["action"] = "SCMP_ACT_NOTIFY" }),
        };
        c.Args("true");
        var r = c.Create();
        Assert.False(r.Succeeded, "create succeeded without a listener:\n" + r);
        Assert.Contains("listenerPath", r.Stderr);
        Assert.Contains("nobody-listens.sock", r.Stderr);
        c.AssertNoLeaks("after a failed create");
    }

    private sealed record ListenerRun(string Id, string Bundle, string Probes, string Listener, JsonObject State);

    private ListenerRun RunWithListener(string runtime, [System.Runtime.CompilerServices.CallerMemberName] string caller = "")
    {
        var c = NewContainer(caller);
        c.RuntimePath = runtime;
        string who = runtime == Crun ? "crun" : "berth";
        File.Copy(Probe(), Path.Combine(c.RootFs, "bin", "probe"));
        File.SetUnixFileMode(Path.Combine(c.RootFs, "bin", "probe"), TestEnvironment.Mode755);
        c.ProcessEnv.Add("PROBE_IN_CONTAINER=1");
        string sock = Path.Combine(c.WorkDir, "listener.sock");
        string stateFile = Path.Combine(c.WorkDir, "listener-state.json");
        c.Linux["seccomp"] = new JsonObject
        {
            ["defaultAction"] = "SCMP_ACT_ALLOW",
            ["listenerPath"] = sock,
            ["listenerMetadata"] = "berth-it-metadata",
            ["syscalls"] = new JsonArray(new JsonObject { ["names"] = new JsonArray("getpriority"), ["action"] = "SCMP_ACT_NOTIFY" }),
        };
        c.Args("probe", "getpriority_process", "getppid", "getpriority_pgrp");

        using var listener = ProcessRunner.Start(Compiled("listener"), [sock, stateFile, "18", "2"], c.WorkDir);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!listener.StdoutSoFar.Contains("listening") && !listener.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(20);
        if (!listener.StdoutSoFar.Contains("listening"))
            Assert.Fail("the listener did not start: " + listener.Wait(TimeSpan.FromSeconds(1)));

        var r = c.Run();
        var l = listener.Wait(TimeSpan.FromSeconds(15));
        Assert.True(r.Succeeded, $"{who} run with a seccomp listener failed:\n{r}\nlistener: {l}");
        Assert.True(l.Succeeded, $"{who}: the listener failed:\n{l}");
        var state = JsonNode.Parse(File.ReadAllText(stateFile))!.AsObject();
        return new ListenerRun(c.Id, c.BundleDir, r.Stdout.Trim(), l.Stdout, state);
    }
}

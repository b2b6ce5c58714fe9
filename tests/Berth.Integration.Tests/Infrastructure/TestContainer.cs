using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit;

namespace Berth.Integration.Tests.Infrastructure;

/// <summary>
/// One container under test: a unique id, its own --root state dir under /run/berth-tests, a
/// private copy of the make-bundle bundle, config.json editing, and runtime invocations.
/// Dispose always cleans up (delete --force, leftover mounts and processes, temp dirs), also when
/// the test failed.
/// </summary>
public sealed class TestContainer : IDisposable
{
    private static readonly JsonSerializerOptions s_indented = new() { WriteIndented = true };
    private bool _rawConfig;
    private int _shares;

    public TestEnvironment Env { get; }
    public string Id { get; }
    public string StateRoot { get; }
    public string WorkDir { get; }
    public string BundleDir { get; }
    public string RootFs => Path.Combine(BundleDir, "rootfs");
    public string ConfigPath => Path.Combine(BundleDir, "config.json");
    public JsonObject Config { get; }

    /// <summary>The runtime binary this container is driven with (a test may point it at a copy).</summary>
    public string RuntimePath { get; set; }

    /// <summary>Every container carries this variable, so the leak check can find its processes.</summary>
    public string EnvMarker => $"BERTH_TEST_ID={Id}";

    public TestContainer(TestEnvironment env, [CallerMemberName] string name = "c")
    {
        Env = env;
        RuntimePath = env.RuntimePath;
        string slug = new string(name.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray());
        if (slug.Length > 24) slug = slug[..24];
        Id = $"bt-{slug.Trim('-')}-{Guid.NewGuid().ToString("N")[..8]}";
        StateRoot = Path.Combine(TestEnvironment.StateRootParent, Id);
        WorkDir = Path.Combine(TestEnvironment.ScratchRoot, Id);
        BundleDir = Path.Combine(WorkDir, "bundle");

        Directory.CreateDirectory(WorkDir);
        TestEnvironment.MakeTraversable(WorkDir);
        var cp = ProcessRunner.Host("cp", "-a", env.TemplateBundle, BundleDir);
        Assert.True(cp.Succeeded, "copying the template bundle failed:\n" + cp);
        TestEnvironment.MakeTraversable(BundleDir);

        Config = JsonNode.Parse(File.ReadAllText(ConfigPath))!.AsObject();
        ProcessEnv.Add(EnvMarker);
    }

    // ---------------------------------------------------------------- config editing

    public JsonObject Process => Config["process"]!.AsObject();
    public JsonObject Linux => (Config["linux"] ??= new JsonObject()).AsObject();
    public JsonArray ProcessEnv => (Process["env"] ??= new JsonArray()).AsArray();
    public JsonArray Mounts => (Config["mounts"] ??= new JsonArray()).AsArray();
    public JsonArray Namespaces => (Linux["namespaces"] ??= new JsonArray()).AsArray();
    public JsonObject Resources => (Linux["resources"] ??= new JsonObject()).AsObject();
    public JsonObject Hooks => (Config["hooks"] ??= new JsonObject()).AsObject();

    public TestContainer Args(params string[] args)
    {
        Process["args"] = new JsonArray(args.Select(a => (JsonNode?)JsonValue.Create(a)).ToArray());
        return this;
    }

    /// <summary>args = sh -c SCRIPT</summary>
    public TestContainer Sh(string script) => Args("sh", "-c", script);

    public TestContainer ReadonlyRoot(bool readOnly)
    {
        Config["root"]!["readonly"] = readOnly;
        return this;
    }

    public TestContainer AddMount(string destination, string type, string source, params string[] options)
    {
        var m = new JsonObject { ["destination"] = destination, ["type"] = type, ["source"] = source };
        if (options.Length > 0) m["options"] = new JsonArray(options.Select(o => (JsonNode?)JsonValue.Create(o)).ToArray());
        Mounts.Add(m);
        return this;
    }

    public TestContainer AddBindMount(string hostPath, string destination, bool readOnly = false) =>
        AddMount(destination, "bind", hostPath, "rbind", readOnly ? "ro" : "rw");

    /// <summary>A fresh host dir (mode 0777) bind-mounted read-write at <paramref name="destination"/>.</summary>
    public string ShareDir(string destination = "/out")
    {
        string dir = Path.Combine(WorkDir, $"share{++_shares}");
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, TestEnvironment.Mode777);
        // The mount point exists in the rootfs already: a user-namespaced runtime cannot create
        // it in a rootfs owned by host root.
        Directory.CreateDirectory(RootFs + destination);
        AddBindMount(dir, destination);
        return dir;
    }

    public TestContainer AddNamespace(string type, string? path = null)
    {
        RemoveNamespace(type);
        var ns = new JsonObject { ["type"] = type };
        if (path is not null) ns["path"] = path;
        Namespaces.Add(ns);
        return this;
    }

    public TestContainer RemoveNamespace(string type)
    {
        foreach (var n in Namespaces.Where(n => (string?)n!["type"] == type).ToList()) Namespaces.Remove(n);
        return this;
    }

    public TestContainer Capabilities(string[] bounding, string[] effective, string[] permitted, string[] inheritable, string[] ambient)
    {
        static JsonArray A(string[] xs) => new(xs.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());
        Process["capabilities"] = new JsonObject
        {
            ["bounding"] = A(bounding), ["effective"] = A(effective), ["permitted"] = A(permitted),
            ["inheritable"] = A(inheritable), ["ambient"] = A(ambient),
        };
        return this;
    }

    /// <summary>Adds a hook of the given kind (prestart, createRuntime, poststart, poststop, ...).</summary>
    public TestContainer AddHook(string kind, string path, string[]? args = null, int? timeout = null, string[]? env = null)
    {
        var hook = new JsonObject { ["path"] = path };
        if (args is not null) hook["args"] = new JsonArray(args.Select(a => (JsonNode?)JsonValue.Create(a)).ToArray());
        if (env is not null) hook["env"] = new JsonArray(env.Select(a => (JsonNode?)JsonValue.Create(a)).ToArray());
        if (timeout is not null) hook["timeout"] = timeout.Value;
        var list = (Hooks[kind] ??= new JsonArray()).AsArray();
        list.Add(hook);
        return this;
    }

    /// <summary>Writes an executable script in the test's work dir (on the host) and returns its path.</summary>
    public string HostScript(string name, string body)
    {
        string path = Path.Combine(WorkDir, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, TestEnvironment.Mode755);
        return path;
    }

    /// <summary>Replaces config.json with exactly this text (for malformed-config tests).</summary>
    public void WriteRawConfig(string text)
    {
        File.WriteAllText(ConfigPath, text);
        _rawConfig = true;
    }

    public void SaveConfig()
    {
        if (_rawConfig) return;
        // Every runtime call saves: a `state` poll must not truncate config.json under a `run` that
        // is reading it, so write only changes, and atomically.
        string json = Config.ToJsonString(s_indented);
        if (json == _savedConfig && File.Exists(ConfigPath)) return;
        string tmp = ConfigPath + ".tmp";
        File.WriteAllText(tmp, json);
        File.Move(tmp, ConfigPath, overwrite: true);
        _savedConfig = json;
    }

    private string? _savedConfig;

    // ---------------------------------------------------------------- runtime invocations

    /// <summary>Shell lines run before every runtime invocation of this container (e.g. an environment variable).</summary>
    public string? Prelude { get; set; }

    /// <summary>The runtime's own container init (a fork of berth) instead of the jail stub (docs/adr/0017).</summary>
    public void UseDotnetInit() => Prelude = "export BERTH_RUNTIME_INIT=dotnet";

    /// <summary>RUNTIME --root STATE_ROOT ARGS...</summary>
    public ProcResult Runtime(params string[] args) => RuntimeWith(args);

    public ProcResult RuntimeWith(string[] args, string? prelude = null, string? stdin = null, TimeSpan? timeout = null,
        bool withRoot = true)
    {
        SaveConfig();
        var all = withRoot ? new[] { "--root", StateRoot }.Concat(args) : args;
        return ProcessRunner.Run(RuntimePath, all, WorkDir, timeout, prelude ?? Prelude, stdin, workingDirectory: WorkDir);
    }

    public RunningProcess RuntimeStart(string[] args, string? prelude = null)
    {
        SaveConfig();
        return ProcessRunner.Start(RuntimePath, new[] { "--root", StateRoot }.Concat(args), WorkDir, prelude ?? Prelude, workingDirectory: WorkDir);
    }

    /// <summary>run --bundle BUNDLE [flags] ID, in the foreground; the container's exit status is the result's.</summary>
    public ProcResult Run(params string[] flags) =>
        Runtime(["run", "--bundle", BundleDir, .. flags, Id]);

    /// <summary>Starts a foreground run in the background so the test can act on the running container.</summary>
    public RunningProcess RunInBackground(params string[] flags) =>
        RuntimeStart(["run", "--bundle", BundleDir, .. flags, Id]);

    public ProcResult Create(params string[] flags) => Runtime(["create", "--bundle", BundleDir, .. flags, Id]);
    public ProcResult Start() => Runtime("start", Id);
    public ProcResult State() => Runtime("state", Id);
    public ProcResult Kill(string? signal = null) => signal is null ? Runtime("kill", Id) : Runtime("kill", Id, signal);
    public ProcResult Delete(bool force = false) => force ? Runtime("delete", "--force", Id) : Runtime("delete", Id);

    /// <summary>Runs successfully or fails the test with the runtime's output.</summary>
    public string RunOk(params string[] flags)
    {
        var r = Run(flags);
        Assert.True(r.Succeeded, "run failed:\n" + r);
        return r.Stdout;
    }

    public void CreateOk(params string[] flags)
    {
        var r = Create(flags);
        Assert.True(r.Succeeded, "create failed:\n" + r);
    }

    public void StartOk()
    {
        var r = Start();
        Assert.True(r.Succeeded, "start failed:\n" + r);
    }

    public JsonObject StateJson()
    {
        var r = State();
        Assert.True(r.Succeeded, "state failed:\n" + r);
        try { return JsonNode.Parse(r.Stdout)!.AsObject(); }
        catch (JsonException e) { throw new Xunit.Sdk.XunitException($"state printed no JSON object ({e.Message}):\n{r}"); }
    }

    public string Status() => (string)StateJson()["status"]!;

    public int Pid()
    {
        int pid = (int)StateJson()["pid"]!;
        Assert.True(pid > 0, $"state pid is {pid}");
        return pid;
    }

    public void WaitForStatus(string status, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            var r = State();
            if (r.Succeeded)
            {
                last = (string?)JsonNode.Parse(r.Stdout)?["status"] ?? "";
                if (last == status) return;
            }
            else last = r.ToString();
            Thread.Sleep(50);
        }
        Assert.Fail($"container {Id} never reached status '{status}'; last: {last}");
    }

    /// <summary>create + start with the configured args; waits until running and returns the pid.</summary>
    public int CreateAndStart(params string[] createFlags)
    {
        CreateOk(createFlags);
        StartOk();
        WaitForStatus("running");
        return Pid();
    }

    /// <summary>Polls a file the container writes through a share dir.</summary>
    public static string WaitForFile(string path, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(path))
            {
                string text = File.ReadAllText(path);
                if (text.Length > 0) return text;
            }
            Thread.Sleep(50);
        }
        throw new Xunit.Sdk.XunitException($"{path} never appeared");
    }

    // ---------------------------------------------------------------- leaks and cleanup

    public List<LeakCheck.Leak> FindLeaks() => LeakCheck.Find(Id, StateRoot, BundleDir, EnvMarker);

    /// <summary>Asserts nothing of this container is left (polling briefly: killed processes take a moment to go).</summary>
    public void AssertNoLeaks(string context = "")
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        List<LeakCheck.Leak> leaks;
        while (true)
        {
            leaks = FindLeaks();
            if (leaks.Count == 0 || DateTime.UtcNow > deadline) break;
            Thread.Sleep(100);
        }
        Assert.True(leaks.Count == 0,
            $"container {Id} left things behind{(context.Length > 0 ? " " + context : "")}:\n  " + string.Join("\n  ", leaks));
    }

    public void Dispose()
    {
        var problems = new StringBuilder();
        try
        {
            ProcessRunner.Run(RuntimePath, ["--root", StateRoot, "delete", "--force", Id], WorkDir, TimeSpan.FromSeconds(20));
        }
        catch (Exception e) { problems.AppendLine(e.Message); }

        // Leftovers of a failed test: kill processes that carry this container's marker or bundle.
        for (int attempt = 0; attempt < 20; attempt++)
        {
            var procs = LeakCheck.Processes(BundleDir, EnvMarker, Id);
            if (procs.Count == 0) break;
            foreach (var (pid, _) in procs)
            {
                try { System.Diagnostics.Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
            }
            Thread.Sleep(100);
        }

        // Unmount anything still mounted in our work dir (deepest first) before removing files:
        // rm through a leaked bind mount would delete host files.
        try
        {
            var mounts = Kernel.ParseMountInfo(File.ReadAllText("/proc/self/mountinfo"))
                .Select(m => m.MountPoint)
                .Where(p => p.StartsWith(WorkDir + "/", StringComparison.Ordinal))
                .OrderByDescending(p => p.Length).ToList();
            foreach (var mp in mounts) ProcessRunner.Host("umount", "-l", mp);
        }
        catch (IOException) { }

        foreach (var dir in LeakCheck.CgroupDirs(Id).OrderByDescending(d => d.Length))
        {
            try { Directory.Delete(dir); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }

        TryDelete(StateRoot);
        TryDelete(WorkDir);
    }

    private static void TryDelete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

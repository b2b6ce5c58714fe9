using System.Globalization;
using System.Text.Json;
using Berth.Linux.Files;

namespace Berth.Engine.Containers;

/// <summary>One engine container's record (meta.json in its directory).</summary>
public sealed class EngineContainer
{
    public string Id { get; set; } = "";
    public string Name { get; set; } = "";
    public string Image { get; set; } = "";
    public string ImageId { get; set; } = "";
    public string Command { get; set; } = "";
    public DateTime Created { get; set; }
    public bool AutoRemove { get; set; }
    public int? ExitCode { get; set; }
    /// <summary>The diff-ids of the layers under its overlay, so prune keeps them while it exists.</summary>
    public List<string> Layers { get; set; } = [];
    /// <summary>The image's ExposedPorts ("80/tcp"), for inspect's Config.ExposedPorts and NetworkSettings.Ports.</summary>
    public List<string> ExposedPorts { get; set; } = [];
    public string ShortId => Id[..12];
    // The monitor's part (docs/adr/0009): how the container starts again, and its last run.
    public bool Tty { get; set; }
    public bool Init { get; set; }
    public string RestartPolicy { get; set; } = "no";
    public long LogMaxSize { get; set; }
    public int LogMaxFile { get; set; }
    public string? StopSignal { get; set; }
    public int? StopTimeout { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public bool OomKilled { get; set; }
    public int RestartCount { get; set; }
    /// <summary>The container's init while it runs (host pid), 0 otherwise.</summary>
    public int Pid { get; set; }
    /// <summary>The monitor's pid and its start time (pid reuse), 0 when none ever ran.</summary>
    public int MonitorPid { get; set; }
    public ulong MonitorStartTime { get; set; }
    /// <summary>Exited, with a restart pending (the monitor waits out the back-off).</summary>
    public bool Restarting { get; set; }
}

/// <summary>
/// The engine's containers under STORAGE/containers/ID: meta.json, the OCI bundle (config.json),
/// and the overlay's upper, work and merged directories. The runtime's state lives apart, under
/// /run/berth/engine, as podman keeps crun's.
/// </summary>
public sealed class EngineStore(string storageRoot)
{
    public const string RuntimeRoot = "/run/berth/engine";
    public string Root { get; } = Path.Combine(storageRoot, "containers");

    public string Dir(string id) => Path.Combine(Root, id);
    public string Upper(string id) => Path.Combine(Dir(id), "upper");
    public string Work(string id) => Path.Combine(Dir(id), "work");
    public string Merged(string id) => Path.Combine(Dir(id), "merged");

    public IEnumerable<EngineContainer> List()
    {
        if (!Directory.Exists(Root)) yield break;
        foreach (var d in Directory.GetDirectories(Root).Order(StringComparer.Ordinal))
        {
            var c = TryLoad(Path.GetFileName(d));
            if (c is not null) yield return c;
        }
    }

    public EngineContainer? TryLoad(string id)
    {
        var path = Path.Combine(Dir(id), "meta.json");
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var o = doc.RootElement;
            string S(string n) => o.TryGetProperty(n, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
            return new EngineContainer
            {
                Id = S("id"), Name = S("name"), Image = S("image"), ImageId = S("imageId"), Command = S("command"),
                Created = DateTime.Parse(S("created"), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal),
                AutoRemove = o.TryGetProperty("autoRemove", out var ar) && ar.ValueKind == JsonValueKind.True,
                ExitCode = o.TryGetProperty("exitCode", out var ec) && ec.ValueKind == JsonValueKind.Number ? ec.GetInt32() : null,
                Layers = o.TryGetProperty("layers", out var ls) && ls.ValueKind == JsonValueKind.Array
                    ? ls.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : [],
                ExposedPorts = o.TryGetProperty("exposedPorts", out var ep) && ep.ValueKind == JsonValueKind.Array
                    ? ep.EnumerateArray().Select(x => x.GetString() ?? "").Where(x => x.Length > 0).ToList() : [],
                Tty = B(o, "tty"), Init = B(o, "init"), RestartPolicy = S("restartPolicy") is { Length: > 0 } rp ? rp : "no",
                LogMaxSize = L(o, "logMaxSize") ?? 0, LogMaxFile = (int)(L(o, "logMaxFile") ?? 0),
                StopSignal = S("stopSignal") is { Length: > 0 } ss ? ss : null, StopTimeout = (int?)L(o, "stopTimeout"),
                StartedAt = T(S("startedAt")), FinishedAt = T(S("finishedAt")), OomKilled = B(o, "oomKilled"),
                RestartCount = (int)(L(o, "restartCount") ?? 0), Pid = (int)(L(o, "pid") ?? 0),
                MonitorPid = (int)(L(o, "monitorPid") ?? 0), MonitorStartTime = (ulong)(L(o, "monitorStartTime") ?? 0),
                Restarting = B(o, "restarting"),
            };
        }
        catch (Exception e) when (e is JsonException or FormatException or IOException) { return null; }
    }

    private static bool B(JsonElement o, string n) => o.TryGetProperty(n, out var v) && v.ValueKind == JsonValueKind.True;
    private static long? L(JsonElement o, string n) => o.TryGetProperty(n, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : null;
    private static DateTime? T(string s) => s.Length == 0 ? null : DateTime.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);

    /// <summary>Read-modify-write of meta.json under an flock of the container's directory (the CLI and the monitor's helpers both write it).</summary>
    public EngineContainer? Update(string id, Action<EngineContainer> change)
    {
        using var dirLock = new DirLock(Dir(id));
        var c = TryLoad(id);
        if (c is null) return null;
        change(c);
        Save(c);
        return c;
    }

    private sealed unsafe class DirLock : IDisposable
    {
        private readonly int _fd;
        public DirLock(string dir)
        {
            _fd = Berth.Linux.Files.Fd.TryOpen(dir, Berth.Linux.Interop.Consts.O_RDONLY | Berth.Linux.Interop.Consts.O_DIRECTORY);
            if (_fd >= 0) while (Berth.Linux.Interop.LibC.flock(_fd, 2 /* LOCK_EX */) != 0 &&
                System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Berth.Linux.Interop.Consts.EINTR) { }
        }
        public void Dispose() { if (_fd >= 0) Berth.Linux.Interop.LibC.close(_fd); }
    }

    public void Save(EngineContainer c)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("id", c.Id);
            w.WriteString("name", c.Name);
            w.WriteString("image", c.Image);
            w.WriteString("imageId", c.ImageId);
            w.WriteString("command", c.Command);
            w.WriteString("created", c.Created.ToString("O", CultureInfo.InvariantCulture));
            w.WriteBoolean("autoRemove", c.AutoRemove);
            if (c.ExitCode is { } code) w.WriteNumber("exitCode", code);
            w.WriteStartArray("layers");
            foreach (var l in c.Layers) w.WriteStringValue(l);
            w.WriteEndArray();
            if (c.ExposedPorts.Count > 0)
            {
                w.WriteStartArray("exposedPorts");
                foreach (var port in c.ExposedPorts) w.WriteStringValue(port);
                w.WriteEndArray();
            }
            w.WriteBoolean("tty", c.Tty);
            w.WriteBoolean("init", c.Init);
            w.WriteString("restartPolicy", c.RestartPolicy);
            if (c.LogMaxSize > 0) w.WriteNumber("logMaxSize", c.LogMaxSize);
            if (c.LogMaxFile > 0) w.WriteNumber("logMaxFile", c.LogMaxFile);
            if (c.StopSignal is not null) w.WriteString("stopSignal", c.StopSignal);
            if (c.StopTimeout is { } st) w.WriteNumber("stopTimeout", st);
            if (c.StartedAt is { } sa) w.WriteString("startedAt", sa.ToString("O", CultureInfo.InvariantCulture));
            if (c.FinishedAt is { } fa) w.WriteString("finishedAt", fa.ToString("O", CultureInfo.InvariantCulture));
            w.WriteBoolean("oomKilled", c.OomKilled);
            w.WriteNumber("restartCount", c.RestartCount);
            w.WriteNumber("pid", c.Pid);
            w.WriteNumber("monitorPid", c.MonitorPid);
            w.WriteNumber("monitorStartTime", c.MonitorStartTime);
            w.WriteBoolean("restarting", c.Restarting);
            w.WriteEndObject();
        }
        AtomicFile.Write(Path.Combine(Dir(c.Id), "meta.json"), ms.ToArray());
    }

    /// <summary>By full id, unique id prefix, or name.</summary>
    public EngineContainer Find(string reference)
    {
        var all = List().ToList();
        var byName = all.FirstOrDefault(c => c.Name == reference);
        if (byName is not null) return byName;
        var byId = all.Where(c => c.Id.StartsWith(reference, StringComparison.Ordinal)).ToList();
        return byId.Count switch
        {
            1 => byId[0],
            0 => throw new EngineError($"no such container: {reference}"),
            _ => throw new EngineError($"container id prefix \"{reference}\" is ambiguous"),
        };
    }
}

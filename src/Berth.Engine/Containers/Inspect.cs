using System.Text;
using System.Text.Json;
using Berth.Runtime.State;

namespace Berth.Engine.Containers;

/// <summary>`berth inspect`: the docker-compatible document (the fields tools read most).</summary>
public static class Inspect
{
    public static string Json(EngineStore store, StateStore runtime, IEnumerable<EngineContainer> containers)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartArray();
            foreach (var c in containers) Write(w, store, runtime, c);
            w.WriteEndArray();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void Write(Utf8JsonWriter w, EngineStore store, StateStore runtime, EngineContainer c)
    {
        Berth.Oci.Runtime.Spec? spec = null;
        try { spec = Berth.Runtime.Spec.SpecLoader.Load(store.Dir(c.Id)); }
        catch (Berth.Runtime.Spec.SpecException) { }
        string status = "exited";
        int pid = 0;
        if (runtime.Exists(c.Id))
        {
            var rc = Container.Load(runtime, c.Id);
            status = rc.Status() switch { "stopped" => "exited", var s => s };
            pid = status is "running" or "paused" or "created" ? rc.Record.InitPid : 0;
        }
        else if (c.Restarting && ContainerService.MonitorAlive(c)) status = "restarting";
        else if (c.StartedAt is null && c.ExitCode is null) status = "created";
        var args = spec?.Process?.Args ?? [];
        w.WriteStartObject();
        w.WriteString("Id", c.Id);
        w.WriteString("Created", c.Created.ToString("O"));
        w.WriteString("Path", args.FirstOrDefault() ?? "");
        WriteArray(w, "Args", args.Skip(1));
        w.WriteStartObject("State");
        w.WriteString("Status", status);
        w.WriteBoolean("Running", status == "running");
        w.WriteBoolean("Paused", status == "paused");
        w.WriteNumber("Pid", pid);
        w.WriteNumber("ExitCode", c.ExitCode ?? 0);
        w.WriteBoolean("Restarting", status == "restarting");
        w.WriteBoolean("OOMKilled", c.OomKilled);
        w.WriteBoolean("Dead", false);
        w.WriteString("StartedAt", Time(c.StartedAt));
        w.WriteString("FinishedAt", Time(c.FinishedAt));
        w.WriteNumber("RestartCount", c.RestartCount);
        w.WriteEndObject();
        w.WriteNumber("RestartCount", c.RestartCount);
        w.WriteString("LogPath", Path.Combine(store.Dir(c.Id), Monitor.ContainerMonitor.LogFile));
        w.WriteStartObject("HostConfig");
        w.WriteStartObject("RestartPolicy");
        var policy = Monitor.RestartPolicy.Parse(c.RestartPolicy);
        w.WriteString("Name", policy.Name);
        w.WriteNumber("MaximumRetryCount", policy.MaxRetries);
        w.WriteEndObject();
        w.WriteBoolean("AutoRemove", c.AutoRemove);
        w.WriteStartObject("LogConfig");
        w.WriteString("Type", "json-file");
        w.WriteStartObject("Config");
        var log = c.LogMaxSize > 0 ? new Monitor.LogOptions(c.LogMaxSize, Math.Max(1, c.LogMaxFile)) : Monitor.LogOptions.Default;
        w.WriteString("max-size", log.MaxSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteString("max-file", log.MaxFile.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteString("Image", c.ImageId);
        w.WriteString("Name", "/" + c.Name);
        w.WriteStartObject("Config");
        w.WriteString("Hostname", spec?.Hostname ?? "");
        w.WriteString("User", spec?.Process is { } p ? $"{p.User.Uid}:{p.User.Gid}" : "");
        WriteArray(w, "Env", spec?.Process?.Env ?? []);
        WriteArray(w, "Cmd", args);
        w.WriteString("Image", c.Image);
        w.WriteString("WorkingDir", spec?.Process?.Cwd ?? "/");
        w.WriteBoolean("Tty", spec?.Process?.Terminal ?? false);
        w.WriteStartObject("ExposedPorts");
        foreach (var port in c.ExposedPorts)
        {
            w.WriteStartObject(port);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteStartObject("Labels");
        foreach (var (k, v) in spec?.Annotations ?? [])
            if (k.StartsWith(RunExtras.LabelPrefix, StringComparison.Ordinal)) w.WriteString(k[RunExtras.LabelPrefix.Length..], v);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteStartArray("Mounts");
        var volumes = new Volumes.VolumeStore(Path.GetDirectoryName(store.Root)!);
        foreach (var m in spec?.Mounts?.Where(m => m.Type == "tmpfs" && !DefaultDestinations.Contains(m.Destination)) ?? [])
        {
            w.WriteStartObject();
            w.WriteString("Type", "tmpfs");
            w.WriteString("Source", "");
            w.WriteString("Destination", m.Destination);
            w.WriteBoolean("RW", !(m.Options?.Contains("ro") ?? false));
            w.WriteEndObject();
        }
        foreach (var m in spec?.Mounts?.Where(m => m.Type == "bind") ?? [])
        {
            w.WriteStartObject();
            if (volumes.NameOfDataPath(m.Source) is { } volume)
            {
                w.WriteString("Type", "volume");
                w.WriteString("Name", volume);
                w.WriteString("Driver", "local");
            }
            else w.WriteString("Type", "bind");
            w.WriteString("Source", m.Source);
            w.WriteString("Destination", m.Destination);
            w.WriteBoolean("RW", !(m.Options?.Contains("ro") ?? false));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartObject("GraphDriver");
        w.WriteString("Name", "overlay");
        w.WriteStartObject("Data");
        w.WriteString("UpperDir", store.Upper(c.Id));
        w.WriteString("WorkDir", store.Work(c.Id));
        w.WriteString("MergedDir", store.Merged(c.Id));
        w.WriteEndObject();
        w.WriteEndObject();
        Berth.Engine.Network.NetworkInspect.Write(w, store.Dir(c.Id), status is "running" or "paused" or "created");
        w.WriteEndObject();
    }

    /// <summary>docker's form: RFC 3339 with nanoseconds, the zero time when unset.</summary>
    private static string Time(DateTime? t) =>
        t is { } v ? v.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'00Z'", System.Globalization.CultureInfo.InvariantCulture) : "0001-01-01T00:00:00Z";
    private static readonly HashSet<string> DefaultDestinations =
        [.. (Berth.Runtime.Spec.DefaultSpec.Create(rootless: false).Mounts ?? []).Select(m => m.Destination)];

    private static void WriteArray(Utf8JsonWriter w, string name, IEnumerable<string> items)
    {
        w.WriteStartArray(name);
        foreach (var i in items) w.WriteStringValue(i);
        w.WriteEndArray();
    }
}

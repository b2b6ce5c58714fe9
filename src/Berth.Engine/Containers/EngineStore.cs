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
    public string ShortId => Id[..12];
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
            };
        }
        catch (Exception e) when (e is JsonException or FormatException or IOException) { return null; }
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

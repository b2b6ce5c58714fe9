using Berth.Engine.Containers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Berth.Images.Store;
using Berth.Linux.Files;

namespace Berth.Engine.Volumes;

/// <summary>A named volume: a directory berth owns, mounted into containers by bind.</summary>
public sealed record Volume(string Name, string Mountpoint, DateTime Created, bool Anonymous, bool Seeded);

/// <summary>
/// Named volumes under STORAGE/volumes/NAME: `_data` (what containers see, docker's layout) and
/// `volume.json`. Creation and removal serialise on an exclusive flock of volumes/.lock; a run holds
/// it shared from resolving its volumes until its config.json names them, so `volume rm` sees every
/// user (a volume is in use while a container's config mounts it, running or not, as docker counts).
/// </summary>
public sealed class VolumeStore(string storageRoot)
{
    public string Root { get; } = Path.Combine(storageRoot, "volumes");

    public string Dir(string name) => Path.Combine(Root, name);
    public string DataPath(string name) => Path.Combine(Root, name, "_data");

    public FileLock LockShared() { Directory.CreateDirectory(Root); return FileLock.Shared(Path.Combine(Root, ".lock")); }
    public FileLock LockExclusive() { Directory.CreateDirectory(Root); return FileLock.Exclusive(Path.Combine(Root, ".lock")); }

    /// <summary>The volume whose data directory is <paramref name="path"/>, or null.</summary>
    public string? NameOfDataPath(string? path)
    {
        if (path is null || !path.StartsWith(Root + "/", StringComparison.Ordinal) || !path.EndsWith("/_data", StringComparison.Ordinal)) return null;
        var name = path[(Root.Length + 1)..^6];
        return MountSpec.IsValidVolumeName(name) ? name : null;
    }

    public Volume? TryGet(string name)
    {
        if (!MountSpec.IsValidVolumeName(name)) return null;
        var meta = Path.Combine(Dir(name), "volume.json");
        if (!File.Exists(meta) || !Directory.Exists(DataPath(name))) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(meta));
            var o = doc.RootElement;
            return new Volume(name, DataPath(name),
                DateTime.Parse(o.GetProperty("created").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal),
                o.TryGetProperty("anonymous", out var a) && a.ValueKind == JsonValueKind.True,
                o.TryGetProperty("seeded", out var s) && s.ValueKind == JsonValueKind.True);
        }
        catch (Exception e) when (e is JsonException or FormatException or KeyNotFoundException or InvalidOperationException) { return null; }
    }

    public Volume Get(string name) => TryGet(name) ?? throw new EngineError($"no such volume: {name}");

    public IEnumerable<Volume> List()
    {
        if (!Directory.Exists(Root)) yield break;
        foreach (var d in Directory.GetDirectories(Root).Order(StringComparer.Ordinal))
            if (TryGet(Path.GetFileName(d)) is { } v) yield return v;
    }

    /// <summary>Creates the volume unless it exists (call under a lock); <c>Created</c> says which.</summary>
    public (Volume Volume, bool Created) Ensure(string? name, bool anonymous = false)
    {
        name ??= Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        MountSpec.CheckVolumeName(name, "volume");
        if (TryGet(name) is { } existing) return (existing, false);
        if (Directory.Exists(Dir(name))) Files.FsTree.RemoveAll(Dir(name)); // a half-made one (crash between mkdir and volume.json)
        Directory.CreateDirectory(DataPath(name));
        File.SetUnixFileMode(DataPath(name), (UnixFileMode)0x1ed);
        var v = new Volume(name, DataPath(name), DateTime.UtcNow, anonymous, Seeded: false);
        Save(v);
        return (v, true);
    }

    public void MarkSeeded(Volume v) => Save(v with { Seeded = true });

    private void Save(Volume v)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("name", v.Name);
            w.WriteString("created", v.Created.ToString("O", CultureInfo.InvariantCulture));
            w.WriteBoolean("anonymous", v.Anonymous);
            w.WriteBoolean("seeded", v.Seeded);
            w.WriteEndObject();
        }
        AtomicFile.Write(Path.Combine(Dir(v.Name), "volume.json"), ms.ToArray());
    }

    /// <summary>Deletes the volume and its data (call under the exclusive lock, after checking users).</summary>
    public void Delete(string name)
    {
        MountSpec.CheckVolumeName(name, "volume rm");
        Files.FsTree.RemoveAll(Dir(name));
    }

    /// <summary>The JSON `volume inspect` prints (docker's fields).</summary>
    public static void WriteJson(Utf8JsonWriter w, Volume v)
    {
        w.WriteStartObject();
        w.WriteString("Name", v.Name);
        w.WriteString("Driver", "local");
        w.WriteString("Mountpoint", v.Mountpoint);
        w.WriteString("CreatedAt", v.Created.ToString("O", CultureInfo.InvariantCulture));
        w.WriteString("Scope", "local");
        w.WriteStartObject("Labels");
        if (v.Anonymous) w.WriteString("io.berth.anonymous", "true");
        w.WriteEndObject();
        w.WriteStartObject("Options");
        w.WriteEndObject();
        w.WriteEndObject();
    }
}

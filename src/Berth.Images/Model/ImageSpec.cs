using System.Text.Json;
using System.Text.Json.Serialization;

namespace Berth.Images.Model;

// The OCI image-spec documents berth reads and writes. Docker's v2 schema 2 manifests and
// manifest lists have the same shape and are read by the same types.

public sealed class Descriptor
{
    public string MediaType { get; set; } = "";
    public string Digest { get; set; } = "";
    public long Size { get; set; }
    public List<string>? Urls { get; set; }
    public Dictionary<string, string>? Annotations { get; set; }
    public Platform? Platform { get; set; }
    public string? ArtifactType { get; set; }
}

public sealed class Platform
{
    public string Architecture { get; set; } = "";
    public string Os { get; set; } = "";
    [JsonPropertyName("os.version")] public string? OsVersion { get; set; }
    [JsonPropertyName("os.features")] public List<string>? OsFeatures { get; set; }
    public string? Variant { get; set; }

    public override string ToString() => string.IsNullOrEmpty(Variant) ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";
}

public sealed class ImageIndex
{
    public int SchemaVersion { get; set; } = 2;
    public string? MediaType { get; set; }
    public List<Descriptor> Manifests { get; set; } = [];
    public Dictionary<string, string>? Annotations { get; set; }
}

public sealed class ImageManifest
{
    public int SchemaVersion { get; set; } = 2;
    public string? MediaType { get; set; }
    public string? ArtifactType { get; set; }
    public Descriptor Config { get; set; } = new();
    public List<Descriptor> Layers { get; set; } = [];
    public Descriptor? Subject { get; set; }
    public Dictionary<string, string>? Annotations { get; set; }
}

public sealed class ImageConfig
{
    public DateTimeOffset? Created { get; set; }
    public string? Author { get; set; }
    public string Architecture { get; set; } = "";
    public string Os { get; set; } = "";
    public string? Variant { get; set; }
    public ContainerConfig? Config { get; set; }
    public RootFs Rootfs { get; set; } = new();
    public List<HistoryEntry>? History { get; set; }

    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class ContainerConfig
{
    public string? User { get; set; }
    public List<string>? Env { get; set; }
    public List<string>? Entrypoint { get; set; }
    public List<string>? Cmd { get; set; }
    public string? WorkingDir { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
    public string? StopSignal { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class RootFs
{
    public string Type { get; set; } = "layers";
    [JsonPropertyName("diff_ids")] public List<string> DiffIds { get; set; } = [];
}

public sealed class HistoryEntry
{
    public DateTimeOffset? Created { get; set; }
    [JsonPropertyName("created_by")] public string? CreatedBy { get; set; }
    public string? Author { get; set; }
    public string? Comment { get; set; }
    [JsonPropertyName("empty_layer")] public bool? EmptyLayer { get; set; }
}

public sealed class OciLayoutMarker
{
    public string ImageLayoutVersion { get; set; } = "1.0.0";
}

/// <summary>One entry of a docker-archive's manifest.json (what `docker save` writes).</summary>
public sealed class DockerArchiveEntry
{
    [JsonPropertyName("Config")] public string Config { get; set; } = "";
    [JsonPropertyName("RepoTags")] public List<string>? RepoTags { get; set; }
    [JsonPropertyName("Layers")] public List<string> Layers { get; set; } = [];
}

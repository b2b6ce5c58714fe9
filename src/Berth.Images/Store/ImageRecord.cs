namespace Berth.Images.Store;

/// <summary>What the store knows about one image; the manifest and config blobs hold the rest.</summary>
public sealed class ImageRecord
{
    /// <summary>The config digest, as docker and podman name images.</summary>
    public string Id { get; set; } = "";
    public string Manifest { get; set; } = "";
    public string ManifestMediaType { get; set; } = MediaTypes.Manifest;
    public List<string> Names { get; set; } = [];
    public DateTimeOffset? Created { get; set; }
    public DateTimeOffset Loaded { get; set; }
    /// <summary>Sum of the layer blobs' sizes (compressed, as stored).</summary>
    public long Size { get; set; }
    public string Platform { get; set; } = "";

    public string ShortId => Id.StartsWith("sha256:", StringComparison.Ordinal) ? Id[7..19] : Id;
}

/// <summary>The whole metadata file: small, rewritten atomically under an exclusive lock.</summary>
public sealed class ImageDatabase
{
    public int Version { get; set; } = 1;
    public List<ImageRecord> Images { get; set; } = [];
}

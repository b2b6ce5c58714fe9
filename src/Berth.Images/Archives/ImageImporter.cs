using System.Formats.Tar;
using System.Text.Json;
using Berth.Images.Content;
using Berth.Images.Layers;
using Berth.Images.Model;
using Berth.Images.Platforms;
using Berth.Images.Store;

namespace Berth.Images.Archives;

/// <summary>
/// `berth load`: an OCI image layout directory, an oci-archive tar, or a docker-archive tar
/// (docker/podman save; plain or gzip/zstd-compressed). Archives are read in one streaming pass:
/// blobs go straight into the store, verified against the digest they are named by; the small
/// documents (index.json, manifest.json) are kept and resolved at the end. Index entries with
/// several platforms are narrowed to one (<see cref="Platform"/>, default this host).
/// </summary>
public sealed class ImageImporter(ImageStore store)
{
    public Platform? Platform { get; init; }
    /// <summary>Called with the bytes read so far from the input.</summary>
    public Action<long>? Progress { get; init; }
    /// <summary>Unpack layers into the layer cache after loading (what a later run needs).</summary>
    public bool UnpackLayers { get; init; } = true;
    public UnpackOptions? UnpackOptions { get; init; }

    private readonly Dictionary<string, Digest> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _links = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _docs = new(StringComparer.Ordinal);
    private string? _layoutDir;

    public List<ImageRecord> Load(string path)
    {
        using var l = store.LockShared();
        List<(Digest Manifest, List<string> Names)> found;
        if (Directory.Exists(path))
        {
            _layoutDir = path;
            var index = Path.Combine(path, "index.json");
            if (!File.Exists(index)) throw new ImageFormatException($"{path}: not an OCI image layout (no index.json)");
            found = ResolveOci(File.ReadAllBytes(index), path);
        }
        else
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file or directory");
            ReadArchive(path);
            if (_docs.TryGetValue("index.json", out var index)) found = ResolveOci(index, path);
            else if (_docs.TryGetValue("manifest.json", out var dm)) found = ResolveDocker(dm, path);
            else throw new ImageFormatException($"{path}: neither an oci-archive (index.json) nor a docker-archive (manifest.json)");
            // A docker 25+ archive has both; its manifest.json carries the names.
            if (_docs.TryGetValue("manifest.json", out var names) && found.All(f => f.Names.Count == 0))
                found = MergeDockerNames(found, names);
        }
        var result = new List<ImageRecord>();
        foreach (var (m, names) in found)
        {
            var rec = store.Register(m, names);
            if (UnpackLayers) store.EnsureLayers(rec, UnpackOptions);
            result.Add(rec);
        }
        return result;
    }

    private void ReadArchive(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var counted = new HashingStream(file, leaveOpen: true);
        using var tarStream = Compression.Decompress(counted, out _);
        using var reader = new TarReader(tarStream);
        long lastReport = 0;
        while (reader.GetNextEntry(copyData: false) is { } e)
        {
            if (Progress is not null && counted.BytesRead - lastReport > (4 << 20)) { Progress(counted.BytesRead); lastReport = counted.BytesRead; }
            var name = TarPath.Normalize(e.Name);
            switch (e.EntryType)
            {
                case TarEntryType.SymbolicLink:
                    _links[name] = TarPath.Normalize(Path.Combine(Path.GetDirectoryName(name) ?? "", e.LinkName));
                    continue;
                case TarEntryType.HardLink:
                    _links[name] = TarPath.Normalize(e.LinkName);
                    continue;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                    break;
                default:
                    continue;
            }
            if (e.DataStream is null) continue;
            if (name is "index.json" or "manifest.json" or "oci-layout" or "repositories")
            {
                if (e.Length > ContentStore.MaxDocumentBytes) throw new SizeLimitException($"{path}: {name} is larger than {ContentStore.MaxDocumentBytes} bytes");
                var ms = new MemoryStream();
                e.DataStream.CopyTo(ms);
                _docs[name] = ms.ToArray();
            }
            else if (name.StartsWith("blobs/sha256/", StringComparison.Ordinal) && Digest.IsHex(name[13..]))
            {
                var d = new Digest(name[13..]);
                if (!store.Content.Has(d)) store.Content.Write(e.DataStream, d, e.Length, $"{path}: {name}");
                _files[name] = d;
            }
            else if (name.EndsWith("/json", StringComparison.Ordinal) || name.EndsWith("/VERSION", StringComparison.Ordinal))
                continue; // legacy docker per-layer metadata, not needed
            else
                _files[name] = store.Content.Write(e.DataStream, subject: $"{path}: {name}");
        }
        Progress?.Invoke(counted.BytesRead);
    }

    /// <summary>Makes sure a blob named by an index or manifest is in the store (copied from a layout dir if needed).</summary>
    private void Need(Descriptor d, string subject)
    {
        var digest = Digest.Parse(d.Digest);
        if (store.Content.Has(digest)) return;
        if (_layoutDir is not null)
        {
            var p = Path.Combine(_layoutDir, "blobs", "sha256", digest.Hex);
            if (File.Exists(p))
            {
                using var s = File.OpenRead(p);
                store.Content.Write(s, digest, d.Size, $"{subject}: {d.Digest}");
                return;
            }
        }
        throw new ImageFormatException($"{subject}: blob {d.Digest} ({d.MediaType}) is not in the archive");
    }

    private List<(Digest, List<string>)> ResolveOci(byte[] indexJson, string subject)
    {
        var index = ImagesJson.Parse(indexJson, ImagesJson.Default.ImageIndex, $"{subject}: index.json");
        var want = Platform ?? PlatformMatcher.Host();
        var descs = index.Manifests;
        if (descs.Count == 0) throw new ImageFormatException($"{subject}: index.json lists no images");
        // Several unnamed entries that all carry a platform are one multi-arch image, not several images.
        if (descs.Count > 1 && descs.All(d => d.Platform is not null) && descs.All(d => NamesOf(d).Count == 0))
            descs = [PlatformMatcher.Select(descs, want)];
        var found = new List<(Digest, List<string>)>();
        foreach (var d in descs) found.Add((ResolveDescriptor(d, want, subject, 0), NamesOf(d)));
        return found;
    }

    private Digest ResolveDescriptor(Descriptor d, Platform want, string subject, int depth)
    {
        if (depth > 4) throw new ImageFormatException($"{subject}: indexes nested too deep");
        Need(d, subject);
        var digest = Digest.Parse(d.Digest);
        var bytes = store.Content.ReadVerified(digest, subject);
        bool isIndex = MediaTypes.IsIndex(d.MediaType) || (!MediaTypes.IsManifest(d.MediaType) && LooksLikeIndex(bytes));
        if (isIndex)
        {
            var inner = ImagesJson.Parse(bytes, ImagesJson.Default.ImageIndex, $"{subject}: index {d.Digest}");
            return ResolveDescriptor(PlatformMatcher.Select(inner.Manifests, want), want, subject, depth + 1);
        }
        var m = ImagesJson.Parse(bytes, ImagesJson.Default.ImageManifest, $"{subject}: manifest {d.Digest}");
        Need(m.Config, subject);
        foreach (var layer in m.Layers)
        {
            if (!MediaTypes.IsLayer(layer.MediaType))
                throw new ImageFormatException($"{subject}: layer {layer.Digest} has media type {layer.MediaType}, which berth cannot unpack");
            Need(layer, subject);
        }
        return digest;
    }

    private static bool LooksLikeIndex(byte[] json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("manifests", out _);
    }

    /// <summary>The names an index entry gives: containerd's full name, or a ref.name that is a full reference.</summary>
    internal static List<string> NamesOf(Descriptor d)
    {
        var a = d.Annotations;
        if (a is null) return [];
        if (a.TryGetValue(MediaTypes.AnnotationContainerdName, out var full) && full.Length > 0) return [full];
        if (a.TryGetValue(MediaTypes.AnnotationRefName, out var r) && (r.Contains('/') || r.Contains(':'))) return [r];
        return [];
    }

    private Digest FileDigest(string archivePath, string subject)
    {
        var p = TarPath.Normalize(archivePath);
        for (int hops = 0; hops < 16 && _links.TryGetValue(p, out var next); hops++) p = next;
        if (_files.TryGetValue(p, out var d)) return d;
        throw new ImageFormatException($"{subject}: {archivePath} is named in manifest.json but not in the archive");
    }

    private List<(Digest, List<string>)> ResolveDocker(byte[] manifestJson, string subject)
    {
        var entries = ImagesJson.Parse(manifestJson, ImagesJson.Default.ListDockerArchiveEntry, $"{subject}: manifest.json");
        var found = new List<(Digest, List<string>)>();
        foreach (var e in entries)
        {
            var config = FileDigest(e.Config, subject);
            var configBytes = store.Content.ReadVerified(config, $"{subject}: {e.Config}");
            var manifest = new ImageManifest
            {
                MediaType = MediaTypes.Manifest,
                Config = new Descriptor { MediaType = MediaTypes.Config, Digest = config.ToString(), Size = configBytes.Length },
            };
            foreach (var layerPath in e.Layers)
            {
                var ld = FileDigest(layerPath, subject);
                manifest.Layers.Add(new Descriptor
                {
                    MediaType = Compression.LayerMediaType(Compression.SniffFile(store.Content.PathOf(ld))),
                    Digest = ld.ToString(),
                    Size = store.Content.SizeOf(ld),
                });
            }
            var md = store.Content.Write(JsonSerializer.SerializeToUtf8Bytes(manifest, ImagesJson.Default.ImageManifest));
            found.Add((md, e.RepoTags ?? []));
        }
        return found;
    }

    private List<(Digest, List<string>)> MergeDockerNames(List<(Digest Manifest, List<string> Names)> found, byte[] manifestJson)
    {
        var entries = ImagesJson.Parse(manifestJson, ImagesJson.Default.ListDockerArchiveEntry, "manifest.json");
        if (entries.Count != found.Count) return found;
        return found.Select((f, i) => (f.Manifest, entries[i].RepoTags ?? [])).ToList();
    }
}

using System.Text.Json;
using Berth.Images.Content;
using Berth.Images.Layers;
using Berth.Images.Model;
using Berth.Linux.Interop;

namespace Berth.Images.Store;

/// <summary>
/// The image store under one root (default /var/lib/berth, or --storage / BERTH_STORAGE):
/// blobs (<see cref="ContentStore"/>), unpacked layers (<see cref="LayerCache"/>) and names
/// (<see cref="MetadataStore"/>). Anything that adds content holds the store lock shared; prune holds
/// it exclusive, so it never deletes a blob an import has written but not yet registered.
/// </summary>
public sealed class ImageStore
{
    public const string EnvVar = "BERTH_STORAGE";
    public const string DefaultRoot = "/var/lib/berth";

    public string Root { get; }
    public ContentStore Content { get; }
    public LayerCache Layers { get; }
    public MetadataStore Metadata { get; }
    private readonly string _storeLock;

    public ImageStore(string root)
    {
        Root = root;
        Directory.CreateDirectory(root);
        Content = new ContentStore(root);
        Layers = new LayerCache(root);
        Metadata = new MetadataStore(root);
        _storeLock = Path.Combine(root, "store.lock");
    }

    public static string ResolveRoot(string? flag) =>
        flag ?? (Environment.GetEnvironmentVariable(EnvVar) is { Length: > 0 } e ? e : DefaultRoot);

    public FileLock LockShared() => FileLock.Shared(_storeLock);
    public FileLock LockExclusive() => FileLock.Exclusive(_storeLock);

    public List<ImageRecord> List() => Metadata.Read().Images;

    /// <summary>A name ("busybox", "x:1"), an id ("sha256:HEX" or a unique hex prefix) or a manifest digest.</summary>
    public ImageRecord Resolve(string reference) => Find(Metadata.Read(), reference) ?? throw new ImageNotFoundException(reference);

    internal static ImageRecord? Find(ImageDatabase db, string reference)
    {
        foreach (var c in ImageName.Candidates(reference))
            if (db.Images.FirstOrDefault(i => i.Names.Contains(c)) is { } byName) return byName;
        var r = reference.StartsWith("sha256:", StringComparison.Ordinal) ? reference[7..] : reference;
        if (r.Length >= 4 && r.All(Uri.IsHexDigit))
        {
            var hits = db.Images.Where(i => i.Id[7..].StartsWith(r, StringComparison.Ordinal) || i.Manifest[7..].StartsWith(r, StringComparison.Ordinal)).ToList();
            if (hits.Count == 1) return hits[0];
            if (hits.Count > 1) throw new ArgumentException($"image id prefix {reference} is ambiguous ({hits.Count} images); give more digits");
        }
        return null;
    }

    public ImageManifest ReadManifest(ImageRecord img) =>
        ImagesJson.Parse(Content.ReadVerified(Digest.Parse(img.Manifest), "manifest"), ImagesJson.Default.ImageManifest, $"manifest {img.Manifest}");

    public ImageConfig ReadConfig(ImageManifest m) =>
        ImagesJson.Parse(Content.ReadVerified(Digest.Parse(m.Config.Digest), "config"), ImagesJson.Default.ImageConfig, $"config {m.Config.Digest}");

    /// <summary>The unpacked layer directories of an image (<see cref="EnsureLayers"/> first), its last layer first: an overlay's lowerdir order.</summary>
    public List<string> LayerDirsTopFirst(ImageConfig config) =>
        config.Rootfs.DiffIds.AsEnumerable().Reverse().Select(d => Layers.PathOf(Digest.Parse(d))).ToList();

    /// <summary>
    /// Records the image whose manifest blob is <paramref name="manifestDigest"/> (its config and layers
    /// must be stored) and gives it <paramref name="names"/>, taking them from any image that had them.
    /// </summary>
    public ImageRecord Register(Digest manifestDigest, IEnumerable<string> names)
    {
        var manifest = ImagesJson.Parse(Content.ReadVerified(manifestDigest, "manifest"), ImagesJson.Default.ImageManifest, $"manifest {manifestDigest}");
        var config = ReadConfig(manifest);
        if (config.Rootfs.DiffIds.Count != manifest.Layers.Count)
            throw new ImageFormatException($"manifest {manifestDigest}: {manifest.Layers.Count} layers but the config lists {config.Rootfs.DiffIds.Count} diff_ids");
        foreach (var l in manifest.Layers)
            if (!Content.Has(Digest.Parse(l.Digest)))
                throw new ImageFormatException($"manifest {manifestDigest}: layer {l.Digest} is not in the archive or the store");
        var normalized = names.Select(ImageName.Normalize).Distinct().ToList();
        return Metadata.Update(db =>
        {
            var id = manifest.Config.Digest;
            var rec = db.Images.FirstOrDefault(i => i.Id == id && i.Manifest == manifestDigest.ToString());
            if (rec is null)
            {
                rec = new ImageRecord
                {
                    Id = id,
                    Manifest = manifestDigest.ToString(),
                    ManifestMediaType = manifest.MediaType ?? MediaTypes.Manifest,
                    Created = config.Created,
                    Loaded = DateTimeOffset.UtcNow,
                    Size = manifest.Layers.Sum(l => l.Size),
                    Platform = new Platform { Os = config.Os, Architecture = config.Architecture, Variant = config.Variant }.ToString(),
                };
                db.Images.Add(rec);
            }
            foreach (var n in normalized)
            {
                foreach (var other in db.Images) if (other != rec) other.Names.Remove(n);
                if (!rec.Names.Contains(n)) rec.Names.Add(n);
            }
            // An image that lost its last name to this one stays, untagged (as docker's "<none>").
            return rec;
        });
    }

    public void Tag(string reference, string newName)
    {
        var n = ImageName.Normalize(newName);
        Metadata.Update(db =>
        {
            var rec = Find(db, reference) ?? throw new ImageNotFoundException(reference);
            foreach (var other in db.Images) other.Names.Remove(n);
            rec.Names.Add(n);
            return 0;
        });
    }

    /// <summary>
    /// docker's rmi: a name that is one of several only loses the name; otherwise the image goes
    /// (its blobs stay until prune). An id with several names needs <paramref name="force"/>.
    /// </summary>
    public (ImageRecord Image, bool Deleted, string? Untagged) Remove(string reference, bool force, Func<ImageRecord, bool>? inUse = null)
    {
        return Metadata.Update(db =>
        {
            var rec = Find(db, reference) ?? throw new ImageNotFoundException(reference);
            var byName = ImageName.Candidates(reference).FirstOrDefault(rec.Names.Contains);
            if (byName is not null && rec.Names.Count > 1)
            {
                rec.Names.Remove(byName);
                return (rec, false, (string?)byName);
            }
            if (byName is null && rec.Names.Count > 1 && !force)
                throw new InvalidOperationException($"image {rec.ShortId} has several names ({string.Join(", ", rec.Names)}); remove them one by one or use --force");
            if (inUse?.Invoke(rec) == true && !force)
                throw new InvalidOperationException($"image {rec.ShortId} is used by a container; remove the container first or use --force");
            db.Images.Remove(rec);
            return (rec, true, byName);
        });
    }

    /// <summary>Deletes blobs and unpacked layers no image refers to, and leftovers of crashed writers.</summary>
    /// <param name="inUseLayers">diff-ids that containers still mount (their image may be gone): kept.</param>
    public PruneResult Prune(IEnumerable<Digest>? inUseLayers = null)
    {
        using var l = LockExclusive();
        var keepBlobs = new HashSet<Digest>();
        var keepLayers = new HashSet<Digest>(inUseLayers ?? []);
        foreach (var img in Metadata.Read().Images)
        {
            var md = Digest.Parse(img.Manifest);
            keepBlobs.Add(md);
            if (!Content.Has(md)) continue;
            var m = ReadManifest(img);
            keepBlobs.Add(Digest.Parse(m.Config.Digest));
            foreach (var layer in m.Layers) keepBlobs.Add(Digest.Parse(layer.Digest));
            if (Content.Has(Digest.Parse(m.Config.Digest)))
                foreach (var d in ReadConfig(m).Rootfs.DiffIds) keepLayers.Add(Digest.Parse(d));
        }
        var result = new PruneResult();
        foreach (var b in Content.List().ToList())
            if (!keepBlobs.Contains(b)) { result.Bytes += Content.SizeOf(b); Content.Delete(b); result.Blobs++; }
        foreach (var d in Layers.List().ToList())
            if (!keepLayers.Contains(d)) { Layers.Delete(d); result.Layers++; }
        result.Leftovers = Content.CleanIngest() + Layers.CleanTemporary();
        return result;
    }

    /// <summary>Unpacks every layer of <paramref name="img"/> into the layer cache (verifying blob and diff-id).</summary>
    public int EnsureLayers(ImageRecord img, UnpackOptions? opts = null)
    {
        opts ??= new UnpackOptions { Whiteouts = LibC.geteuid() == 0 ? WhiteoutMode.Overlay : WhiteoutMode.Apply, CreateDevices = LibC.geteuid() == 0 };
        var m = ReadManifest(img);
        var diffIds = ReadConfig(m).Rootfs.DiffIds;
        int made = 0;
        for (int i = 0; i < m.Layers.Count; i++)
        {
            var blob = Digest.Parse(m.Layers[i].Digest);
            if (Layers.Ensure(Digest.Parse(diffIds[i]), () => Content.OpenVerified(blob, $"layer {blob}"), opts)) made++;
        }
        return made;
    }

    /// <summary>Applies every layer of <paramref name="img"/>, in order, onto <paramref name="target"/> (a flat rootfs).</summary>
    public void Materialize(ImageRecord img, string target, UnpackOptions? opts = null)
    {
        opts ??= new UnpackOptions();
        if (opts.Whiteouts != WhiteoutMode.Apply) throw new ArgumentException("a flat rootfs needs WhiteoutMode.Apply");
        Directory.CreateDirectory(target);
        var m = ReadManifest(img);
        var diffIds = ReadConfig(m).Rootfs.DiffIds;
        for (int i = 0; i < m.Layers.Count; i++)
        {
            var blob = Digest.Parse(m.Layers[i].Digest);
            using var s = Content.OpenVerified(blob, $"layer {blob}");
            LayerUnpacker.Unpack(s, target, opts, Digest.Parse(diffIds[i]));
        }
    }

    public static string ToJson(ImageManifest m) => JsonSerializer.Serialize(m, ImagesJson.Default.ImageManifest);
}

public sealed class PruneResult
{
    public int Blobs { get; set; }
    public int Layers { get; set; }
    public long Bytes { get; set; }
    public int Leftovers { get; set; }
}

using System.Formats.Tar;
using System.Text.Json;
using Berth.Images.Content;
using Berth.Images.Model;
using Berth.Images.Store;

namespace Berth.Images.Archives;

public enum ArchiveFormat { OciArchive, DockerArchive }

/// <summary>
/// `berth save`: images to an oci-archive (OCI layout in a tar, blobs as stored) or a docker-archive
/// (legacy `docker save` form: CONFIGHEX.json, DIFFID/layer.tar uncompressed, manifest.json), which
/// docker, podman and skopeo all read. Every blob is verified before it is written; the output
/// appears under its name only when complete.
/// </summary>
public sealed class ImageExporter(ImageStore store)
{
    public static ArchiveFormat ParseFormat(string? s) => s switch
    {
        null or "oci-archive" or "oci" => ArchiveFormat.OciArchive,
        "docker-archive" or "docker" => ArchiveFormat.DockerArchive,
        _ => throw new ArgumentException($"unknown archive format \"{s}\" (oci-archive or docker-archive)"),
    };

    public void Save(IReadOnlyList<string> references, string output, ArchiveFormat format)
    {
        using var l = store.LockShared();
        var images = new List<(ImageRecord Image, List<string> Names)>();
        foreach (var r in references)
        {
            var img = store.Resolve(r);
            var asked = ImageName.Candidates(r).FirstOrDefault(img.Names.Contains);
            images.Add((img, asked is not null ? [asked] : img.Names.ToList()));
        }
        var dir = Path.GetDirectoryName(Path.GetFullPath(output))!;
        var tmp = Path.Combine(dir, $".{Path.GetFileName(output)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            using (var tar = new TarWriter(fs, TarEntryFormat.Pax, leaveOpen: true))
            {
                if (format == ArchiveFormat.OciArchive) WriteOci(tar, images);
                else WriteDocker(tar, images);
            }
            File.Move(tmp, output, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    private void WriteOci(TarWriter tar, List<(ImageRecord Image, List<string> Names)> images)
    {
        WriteDoc(tar, "oci-layout", JsonSerializer.SerializeToUtf8Bytes(new OciLayoutMarker(), ImagesJson.Default.OciLayoutMarker));
        var index = new ImageIndex { MediaType = MediaTypes.Index };
        var written = new HashSet<Digest>();
        foreach (var (img, names) in images)
        {
            var md = Digest.Parse(img.Manifest);
            var m = store.ReadManifest(img);
            var desc = new Descriptor { MediaType = img.ManifestMediaType, Digest = img.Manifest, Size = store.Content.SizeOf(md) };
            if (names.Count == 0) index.Manifests.Add(desc);
            foreach (var n in names)
                index.Manifests.Add(new Descriptor
                {
                    MediaType = desc.MediaType, Digest = desc.Digest, Size = desc.Size,
                    Annotations = new() { [MediaTypes.AnnotationRefName] = n, [MediaTypes.AnnotationContainerdName] = n },
                });
            foreach (var d in new[] { md, Digest.Parse(m.Config.Digest) }.Concat(m.Layers.Select(x => Digest.Parse(x.Digest))))
                if (written.Add(d)) WriteBlob(tar, d, $"blobs/sha256/{d.Hex}");
        }
        WriteDoc(tar, "index.json", JsonSerializer.SerializeToUtf8Bytes(index, ImagesJson.Default.ImageIndex));
    }

    private void WriteDocker(TarWriter tar, List<(ImageRecord Image, List<string> Names)> images)
    {
        var entries = new List<DockerArchiveEntry>();
        var written = new HashSet<string>();
        foreach (var (img, names) in images)
        {
            var m = store.ReadManifest(img);
            var config = store.ReadConfig(m);
            var cd = Digest.Parse(m.Config.Digest);
            var entry = new DockerArchiveEntry { Config = $"{cd.Hex}.json", RepoTags = names.Where(n => !n.Contains('@')).ToList() };
            if (written.Add(entry.Config)) WriteBlob(tar, cd, entry.Config);
            for (int i = 0; i < m.Layers.Count; i++)
            {
                var diffId = Digest.Parse(config.Rootfs.DiffIds[i]);
                var name = $"{diffId.Hex}/layer.tar";
                entry.Layers.Add(name);
                if (written.Add(name)) WriteUncompressedLayer(tar, Digest.Parse(m.Layers[i].Digest), diffId, name);
            }
            entries.Add(entry);
        }
        WriteDoc(tar, "manifest.json", JsonSerializer.SerializeToUtf8Bytes(entries, ImagesJson.Default.ListDockerArchiveEntry));
    }

    private void WriteBlob(TarWriter tar, Digest d, string name)
    {
        if (!store.Content.Verify(d)) throw new DigestMismatchException($"blob {d} in the store", d, "different content");
        var e = new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)0x1a4, ModificationTime = DateTimeOffset.UnixEpoch };
        using var s = File.OpenRead(store.Content.PathOf(d));
        e.DataStream = s;
        tar.WriteEntry(e);
    }

    /// <summary>docker-archive layers are plain tars; decompressing also checks the diff-id.</summary>
    private void WriteUncompressedLayer(TarWriter tar, Digest blob, Digest diffId, string name)
    {
        var tmp = Path.Combine(store.Root, "ingest", $"{Environment.ProcessId}-{Guid.NewGuid():N}.tar");
        try
        {
            using (var src = store.Content.OpenVerified(blob, $"layer {blob}"))
            using (var plain = Compression.Decompress(src, out _))
            using (var hashed = new HashingStream(plain, leaveOpen: true))
            using (var outFs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                hashed.CopyTo(outFs);
                src.CopyTo(Stream.Null);
                if (hashed.Digest() is var got && got != diffId) throw new DigestMismatchException($"layer {blob} (uncompressed)", diffId, got.ToString());
            }
            var e = new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)0x1a4, ModificationTime = DateTimeOffset.UnixEpoch };
            using var s = File.OpenRead(tmp);
            e.DataStream = s;
            tar.WriteEntry(e);
        }
        finally
        {
            File.Delete(tmp);
        }
    }

    private static void WriteDoc(TarWriter tar, string name, byte[] data)
    {
        var e = new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)0x1a4, ModificationTime = DateTimeOffset.UnixEpoch, DataStream = new MemoryStream(data) };
        tar.WriteEntry(e);
    }
}

using System.Diagnostics;
using System.Formats.Tar;
using System.Text;
using System.Text.Json;
using Berth.Images.Content;
using Berth.Images.Model;
using Berth.Images.Platforms;
using Berth.Images.Store;

namespace Berth.Images.Archives;

/// <summary>
/// berth's default image, <c>berth.local/busybox:latest</c>, made from a static busybox with no
/// registry (docs/adr/0007-default-image.md): one uncompressed layer (/bin/busybox, an applet link
/// per `busybox --list-full` entry, /etc/passwd, /etc/group, the usual empty directories), a
/// config with Cmd ["sh"] and PATH, written as an oci-archive. Reproducible: entries sorted, uid/gid
/// 0, every mtime and the created time the Unix epoch, ustar headers (no pax times), JSON written in
/// a fixed order; the same busybox bytes give the same archive bytes, hence the same digests.
/// </summary>
public static class DefaultImage
{
    public const string Name = "berth.local/busybox:latest";
    /// <summary>The file scripts/build writes beside the binary.</summary>
    public const string ArchiveFileName = "berth-busybox.oci.tar";
    public const string PathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    public static readonly DateTimeOffset Epoch = DateTimeOffset.UnixEpoch;

    private static readonly string[] Dirs =
        ["bin", "dev", "etc", "home", "proc", "root", "run", "sbin", "sys", "tmp", "usr", "usr/bin", "usr/sbin", "var", "var/tmp"];
    private static readonly string[] AppletDirs = ["bin", "sbin", "usr/bin", "usr/sbin"];

    private const string Passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    private const string Group = "root:x:0:\ntty:x:5:\nusers:x:100:\nnogroup:x:65534:\n";

    /// <summary>The first statically linked busybox among the usual places, or null.</summary>
    public static string? FindStaticBusybox()
    {
        foreach (var p in new[] { "/bin/busybox", "/usr/bin/busybox" })
            if (File.Exists(p) && IsStaticElf(p)) return p;
        return null;
    }

    /// <summary>An ELF executable with no PT_INTERP program header (needs no dynamic loader).</summary>
    public static bool IsStaticElf(string path)
    {
        using var f = File.OpenRead(path);
        var h = new byte[64];
        if (f.ReadAtLeast(h, 64, throwOnEndOfStream: false) < 64 || h[0] != 0x7f || h[1] != 'E' || h[2] != 'L' || h[3] != 'F' || h[4] != 2 || h[5] != 1)
            return false; // only 64-bit little-endian is expected here
        long phoff = BitConverter.ToInt64(h, 0x20);
        int phentsize = BitConverter.ToUInt16(h, 0x36), phnum = BitConverter.ToUInt16(h, 0x38);
        var ph = new byte[phentsize];
        for (int i = 0; i < phnum; i++)
        {
            f.Position = phoff + (long)i * phentsize;
            if (f.ReadAtLeast(ph, phentsize, throwOnEndOfStream: false) < phentsize) return false;
            if (BitConverter.ToUInt32(ph, 0) == 3) return false; // PT_INTERP
        }
        return true;
    }

    /// <summary>`busybox --list-full`: applet paths such as "bin/ls", "usr/bin/[".</summary>
    public static List<string> Applets(string busybox)
    {
        var psi = new ProcessStartInfo(busybox, "--list-full") { RedirectStandardOutput = true, UseShellExecute = false };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot run {busybox}");
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{busybox} --list-full exited {p.ExitCode}");
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
    }

    /// <summary>"1.35.0 (Debian 1:1.35.0-4+deb12u1+b1)" from the "BusyBox v..." banner inside the binary.</summary>
    public static string? Version(ReadOnlySpan<byte> busybox)
    {
        int at = busybox.IndexOf("BusyBox v"u8);
        if (at < 0) return null;
        var rest = busybox[(at + 9)..];
        int end = rest.IndexOfAny((byte)0, (byte)'\n');
        if (end < 0 || end > 120) end = Math.Min(rest.Length, 40);
        var v = Encoding.ASCII.GetString(rest[..end]).Trim();
        return v.EndsWith(" multi-call binary.", StringComparison.Ordinal) ? v[..^19] : v;
    }

    /// <summary>The layer: an uncompressed tar, entries sorted, owned by 0:0, mtime the epoch.</summary>
    public static byte[] BuildLayer(ReadOnlySpan<byte> busybox, IEnumerable<string> applets)
    {
        var entries = new SortedDictionary<string, Func<UstarTarEntry>>(StringComparer.Ordinal);
        foreach (var d in Dirs)
        {
            var mode = d is "tmp" or "var/tmp" ? 0x3ff : d == "root" ? 0x1c0 : 0x1ed; // 1777, 0700, 0755
            entries[d + "/"] = () => new UstarTarEntry(TarEntryType.Directory, d + "/") { Mode = (UnixFileMode)mode };
        }
        var bb = busybox.ToArray();
        entries["bin/busybox"] = () => new UstarTarEntry(TarEntryType.RegularFile, "bin/busybox") { Mode = (UnixFileMode)0x1ed, DataStream = new MemoryStream(bb) };
        entries["etc/passwd"] = () => new UstarTarEntry(TarEntryType.RegularFile, "etc/passwd") { Mode = (UnixFileMode)0x1a4, DataStream = new MemoryStream(Encoding.ASCII.GetBytes(Passwd)) };
        entries["etc/group"] = () => new UstarTarEntry(TarEntryType.RegularFile, "etc/group") { Mode = (UnixFileMode)0x1a4, DataStream = new MemoryStream(Encoding.ASCII.GetBytes(Group)) };
        foreach (var raw in applets)
        {
            var a = raw.Trim().TrimStart('/');
            int slash = a.LastIndexOf('/');
            var (dir, name) = slash < 0 ? ("bin", a) : (a[..slash], a[(slash + 1)..]);
            if (name.Length == 0 || name is "." or ".." || name.Length > 90) continue;
            if (!AppletDirs.Contains(dir)) dir = "bin";
            var path = $"{dir}/{name}";
            if (entries.ContainsKey(path)) continue;
            var target = dir switch { "bin" => "busybox", "sbin" => "../bin/busybox", _ => "../../bin/busybox" };
            entries[path] = () => new UstarTarEntry(TarEntryType.SymbolicLink, path) { LinkName = target, Mode = (UnixFileMode)0x1ff };
        }
        var ms = new MemoryStream();
        using (var w = new TarWriter(ms, TarEntryFormat.Ustar, leaveOpen: true))
        {
            foreach (var make in entries.Values)
            {
                var e = make();
                e.ModificationTime = Epoch;
                e.Uid = 0; e.Gid = 0; e.UserName = "root"; e.GroupName = "root";
                w.WriteEntry(e);
            }
        }
        return ms.ToArray();
    }

    /// <summary>The image config: fixed key order, created at the epoch.</summary>
    public static byte[] BuildConfig(Digest diffId, string architecture, string? busyboxVersion)
    {
        var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("created", "1970-01-01T00:00:00Z");
            w.WriteString("architecture", architecture);
            w.WriteString("os", "linux");
            w.WriteStartObject("config");
            w.WriteStartArray("Env"); w.WriteStringValue(PathEnv); w.WriteEndArray();
            w.WriteStartArray("Cmd"); w.WriteStringValue("sh"); w.WriteEndArray();
            w.WriteString("WorkingDir", "/");
            w.WriteStartObject("Labels");
            w.WriteString("org.opencontainers.image.title", "berth default image (busybox)");
            if (busyboxVersion is not null) w.WriteString("org.opencontainers.image.version", busyboxVersion);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartObject("rootfs");
            w.WriteString("type", "layers");
            w.WriteStartArray("diff_ids"); w.WriteStringValue(diffId.ToString()); w.WriteEndArray();
            w.WriteEndObject();
            w.WriteStartArray("history");
            w.WriteStartObject();
            w.WriteString("created", "1970-01-01T00:00:00Z");
            w.WriteString("created_by", $"berth image default: static busybox{(busyboxVersion is null ? "" : " v" + busyboxVersion)}, applet links, /etc/passwd, /etc/group");
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    /// <summary>Writes the default image as an oci-archive to <paramref name="output"/>; returns the manifest digest.</summary>
    public static Digest WriteArchive(ReadOnlySpan<byte> busybox, IEnumerable<string> applets, Stream output, string? architecture = null)
    {
        var layer = BuildLayer(busybox, applets);
        var layerDigest = Digest.Of(layer); // uncompressed: the diff-id is the blob digest
        var config = BuildConfig(layerDigest, architecture ?? PlatformMatcher.Host().Architecture, Version(busybox));
        var configDigest = Digest.Of(config);
        var manifest = JsonSerializer.SerializeToUtf8Bytes(new ImageManifest
        {
            MediaType = MediaTypes.Manifest,
            Config = new Descriptor { MediaType = MediaTypes.Config, Digest = configDigest.ToString(), Size = config.Length },
            Layers = [new Descriptor { MediaType = MediaTypes.Layer, Digest = layerDigest.ToString(), Size = layer.Length }],
        }, ImagesJson.Default.ImageManifest);
        var manifestDigest = Digest.Of(manifest);
        var index = JsonSerializer.SerializeToUtf8Bytes(new ImageIndex
        {
            MediaType = MediaTypes.Index,
            Manifests = [new Descriptor
            {
                MediaType = MediaTypes.Manifest, Digest = manifestDigest.ToString(), Size = manifest.Length,
                Annotations = new() { [MediaTypes.AnnotationRefName] = Name, [MediaTypes.AnnotationContainerdName] = Name },
            }],
        }, ImagesJson.Default.ImageIndex);
        var layout = JsonSerializer.SerializeToUtf8Bytes(new OciLayoutMarker(), ImagesJson.Default.OciLayoutMarker);

        var files = new SortedDictionary<string, byte[]>(StringComparer.Ordinal)
        {
            [$"blobs/sha256/{layerDigest.Hex}"] = layer,
            [$"blobs/sha256/{configDigest.Hex}"] = config,
            [$"blobs/sha256/{manifestDigest.Hex}"] = manifest,
        };
        using var w = new TarWriter(output, TarEntryFormat.Ustar, leaveOpen: true);
        void Put(TarEntryType type, string name, byte[]? data)
        {
            var e = new UstarTarEntry(type, name)
            {
                Mode = (UnixFileMode)(data is null ? 0x1ed : 0x1a4), ModificationTime = Epoch, Uid = 0, Gid = 0,
                UserName = "root", GroupName = "root",
            };
            if (data is not null) e.DataStream = new MemoryStream(data);
            w.WriteEntry(e);
        }
        Put(TarEntryType.RegularFile, "oci-layout", layout);
        Put(TarEntryType.Directory, "blobs/", null);
        Put(TarEntryType.Directory, "blobs/sha256/", null);
        foreach (var (name, data) in files) Put(TarEntryType.RegularFile, name, data);
        Put(TarEntryType.RegularFile, "index.json", index);
        return manifestDigest;
    }

    /// <summary>Builds the archive from a busybox file into <paramref name="output"/> (written beside, renamed when complete).</summary>
    public static Digest WriteArchiveFile(string busybox, string output)
    {
        if (!IsStaticElf(busybox)) throw new ArgumentException($"{busybox} is not a statically linked 64-bit ELF (install busybox-static)");
        var bytes = File.ReadAllBytes(busybox);
        var applets = Applets(busybox);
        var tmp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(output))!, $".{Path.GetFileName(output)}.{Environment.ProcessId}.tmp");
        try
        {
            Digest d;
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write))
                d = WriteArchive(bytes, applets, fs);
            File.Move(tmp, output, overwrite: true);
            return d;
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>Where the prebuilt archive is looked for: beside the running binary.</summary>
    public static string? PrebuiltArchive()
    {
        var exe = Berth.Linux.Processes.SealedExe.OriginalPath;
        if (exe is null || !exe.StartsWith('/') || Path.GetDirectoryName(exe) is not { } dir) return null;
        var p = Path.Combine(dir, ArchiveFileName);
        return File.Exists(p) ? p : null;
    }

    /// <summary>
    /// Loads the default image into <paramref name="store"/>: from <paramref name="archive"/>, else the
    /// archive beside the binary, else built now from this host's static busybox (same bytes if it is
    /// the same busybox).
    /// </summary>
    public static ImageRecord Load(ImageStore store, string? archive = null, string? busybox = null)
    {
        archive ??= busybox is null ? PrebuiltArchive() : null;
        string? tmp = null;
        try
        {
            if (archive is null)
            {
                var bb = busybox ?? FindStaticBusybox()
                    ?? throw new InvalidOperationException($"no {ArchiveFileName} beside the berth binary and no static busybox on this host (apt-get install busybox-static)");
                Directory.CreateDirectory(Path.Combine(store.Root, "ingest"));
                tmp = Path.Combine(store.Root, "ingest", $"default-{Environment.ProcessId}-{Guid.NewGuid():N}.tar");
                WriteArchiveFile(bb, tmp);
                archive = tmp;
            }
            var loaded = new ImageImporter(store).Load(archive);
            return loaded.Single();
        }
        finally
        {
            if (tmp is not null && File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary><paramref name="store"/>.Resolve, loading the default image the first time it is named.</summary>
    public static ImageRecord Resolve(ImageStore store, string reference)
    {
        try { return store.Resolve(reference); }
        catch (ImageNotFoundException) when (Names(reference))
        {
            Load(store);
            return store.Resolve(reference);
        }
    }

    /// <summary>True when <paramref name="reference"/> names the default image ("berth.local/busybox", with or without ":latest").</summary>
    public static bool Names(string reference) => ImageName.Candidates(reference).Contains(Name);
}

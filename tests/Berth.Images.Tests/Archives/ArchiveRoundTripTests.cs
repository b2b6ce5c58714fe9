using System.Formats.Tar;
using System.Text;
using System.Text.Json;
using Berth.Images.Archives;
using Berth.Images.Content;
using Berth.Images.Model;
using Berth.Images.Store;
using Berth.Images.Tests.Store;

namespace Berth.Images.Tests.Archives;

public class ArchiveRoundTripTests
{
    [Theory]
    [InlineData(ArchiveFormat.OciArchive)]
    [InlineData(ArchiveFormat.DockerArchive)]
    public void Save_then_load_into_another_store_keeps_names_and_content(ArchiveFormat format)
    {
        using var t = new TempDir();
        var a = new ImageStore(t.Sub("a"));
        var img = a.Register(StoreFixture.AddImage(a, "etc/motd", "hi").Manifest, ["example.com/app:1"]);
        var archive = Path.Combine(t.Path, "x.tar");
        new ImageExporter(a).Save(["example.com/app:1"], archive, format);

        var b = new ImageStore(t.Sub("b"));
        var loaded = new ImageImporter(b).Load(archive).Single();
        Assert.Equal(["example.com/app:1"], loaded.Names);
        Assert.Equal(img.Id, loaded.Id); // the config is the same bytes either way
        if (format == ArchiveFormat.OciArchive) Assert.Equal(img.Manifest, loaded.Manifest);
        var layerDir = b.Layers.PathOf(Digest.Parse(b.ReadConfig(b.ReadManifest(loaded)).Rootfs.DiffIds[0]));
        Assert.Equal("hi", File.ReadAllText(Path.Combine(layerDir, "etc/motd")));
    }

    [Fact]
    public void An_oci_layout_directory_loads()
    {
        using var t = new TempDir();
        var a = new ImageStore(t.Sub("a"));
        a.Register(StoreFixture.AddImage(a, "f", "1").Manifest, ["layout:v1"]);
        var archive = Path.Combine(t.Path, "x.tar");
        new ImageExporter(a).Save(["layout:v1"], archive, ArchiveFormat.OciArchive);
        var dir = t.Sub("layout");
        TarFile.ExtractToDirectory(archive, dir, overwriteFiles: false);
        var b = new ImageStore(t.Sub("b"));
        Assert.Equal(["layout:v1"], new ImageImporter(b).Load(dir).Single().Names);
    }

    [Fact]
    public void A_docker_archive_as_docker_save_writes_it_loads_even_gzipped_with_linked_layers()
    {
        using var t = new TempDir();
        var layer = new TarBuilder().File("bin/x", "x").Bytes();
        var diff = Digest.Of(layer);
        var config = Encoding.UTF8.GetBytes($$$"""{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/x"]},"rootfs":{"type":"layers","diff_ids":["{{{diff}}}","{{{diff}}}"]}}""");
        var cfgName = Digest.Of(config).Hex + ".json";
        var ms = new MemoryStream();
        using (var w = new TarWriter(ms, TarEntryFormat.Ustar, leaveOpen: true))
        {
            void Add(string n, byte[] d) => w.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, n) { DataStream = new MemoryStream(d) });
            Add(cfgName, config);
            Add("aaa/layer.tar", layer);
            Add("aaa/json", "{}"u8.ToArray());
            Add("aaa/VERSION", "1.0"u8.ToArray());
            w.WriteEntry(new UstarTarEntry(TarEntryType.SymbolicLink, "bbb/layer.tar") { LinkName = "../aaa/layer.tar" });
            Add("manifest.json", Encoding.UTF8.GetBytes($$"""[{"Config":"{{cfgName}}","RepoTags":["busybox:latest"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}]"""));
        }
        var archive = Path.Combine(t.Path, "docker.tar.gz");
        File.WriteAllBytes(archive, TarBuilder.Gzip(ms.ToArray()));
        var s = new ImageStore(t.Sub("s"));
        var img = new ImageImporter(s).Load(archive).Single();
        Assert.Equal(["busybox:latest"], img.Names);
        Assert.Equal(2, s.ReadManifest(img).Layers.Count);
        Assert.Equal(MediaTypes.Layer, s.ReadManifest(img).Layers[0].MediaType);
        Assert.Equal(img.Id, s.Resolve("busybox").Id);
    }

    [Fact]
    public void A_blob_whose_content_is_not_its_name_is_refused_and_not_stored()
    {
        using var t = new TempDir();
        var bogus = new string('a', 64);
        var ms = new MemoryStream();
        using (var w = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"blobs/sha256/{bogus}") { DataStream = new MemoryStream("evil"u8.ToArray()) });
        var archive = Path.Combine(t.Path, "bad.tar");
        File.WriteAllBytes(archive, ms.ToArray());
        var s = new ImageStore(t.Sub("s"));
        Assert.Throws<DigestMismatchException>(() => new ImageImporter(s).Load(archive));
        Assert.False(s.Content.Has(new Digest(bogus)));
    }

    [Fact]
    public void Oci_names_come_from_full_references_only()
    {
        Assert.Equal(["docker.io/library/a:1"], ImageImporter.NamesOf(new Descriptor { Annotations = new() { [MediaTypes.AnnotationRefName] = "docker.io/library/a:1" } }));
        Assert.Empty(ImageImporter.NamesOf(new Descriptor { Annotations = new() { [MediaTypes.AnnotationRefName] = "latest" } }));
        Assert.Equal(["b:2"], ImageImporter.NamesOf(new Descriptor { Annotations = new() { [MediaTypes.AnnotationContainerdName] = "b:2", [MediaTypes.AnnotationRefName] = "2" } }));
    }

    internal static byte[] Json<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info) => JsonSerializer.SerializeToUtf8Bytes(value, info);
}

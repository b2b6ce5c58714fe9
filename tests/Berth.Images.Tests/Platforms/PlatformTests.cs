using System.Formats.Tar;
using Berth.Images.Archives;
using Berth.Images.Content;
using Berth.Images.Model;
using Berth.Images.Platforms;
using Berth.Images.Store;
using Berth.Images.Tests.Archives;
using Berth.Images.Tests.Store;

namespace Berth.Images.Tests.Platforms;

public class PlatformTests
{
    private static Descriptor D(string platform)
    {
        var p = PlatformMatcher.Parse(platform);
        return new Descriptor { MediaType = MediaTypes.Manifest, Digest = platform, Platform = p };
    }

    private static readonly List<Descriptor> Index =
        [D("linux/amd64"), D("linux/amd64/v3"), D("linux/arm64/v8"), D("linux/arm/v6"), D("linux/arm/v7"), D("windows/amd64")];

    [Theory]
    [InlineData("linux/amd64/v4", "linux/amd64/v3")] // the highest level the host can run
    [InlineData("linux/amd64/v3", "linux/amd64/v3")]
    [InlineData("linux/amd64/v2", "linux/amd64")]    // v3 is above a v2 host: baseline
    [InlineData("linux/amd64", "linux/amd64")]       // no variant: v1
    [InlineData("linux/arm64", "linux/arm64/v8")]    // arm64 means v8
    [InlineData("linux/aarch64/v8", "linux/arm64/v8")]
    [InlineData("linux/arm/v7", "linux/arm/v7")]
    [InlineData("linux/arm/v6", "linux/arm/v6")]
    [InlineData("linux/arm", "linux/arm/v7")]
    [InlineData("windows/amd64", "windows/amd64")]
    public void Selects_the_best_manifest_for_a_platform(string want, string picked) =>
        Assert.Equal(picked, PlatformMatcher.Select(Index, PlatformMatcher.Parse(want)).Digest);

    [Fact]
    public void No_match_lists_what_the_index_has()
    {
        var e = Assert.Throws<NoMatchingPlatformException>(() => PlatformMatcher.Select(Index, PlatformMatcher.Parse("linux/s390x")));
        Assert.Contains("linux/s390x", e.Message);
        Assert.Contains("linux/amd64/v3, linux/arm64/v8", e.Message);
        Assert.Throws<NoMatchingPlatformException>(() => PlatformMatcher.Select(Index, PlatformMatcher.Parse("linux/arm/v5")));
    }

    [Theory]
    [InlineData("linux")]
    [InlineData("linux/")]
    [InlineData("a/b/c/d")]
    public void Bad_platform_strings_are_refused(string s) => Assert.Throws<ArgumentException>(() => PlatformMatcher.Parse(s));

    [Fact]
    public void The_host_platform_is_detected()
    {
        var h = PlatformMatcher.Host();
        Assert.Equal("linux", h.Os);
        if (h.Architecture == "amd64") Assert.Matches("^v[1-4]$", h.Variant!);
    }

    /// <summary>A crafted oci-archive whose index holds an amd64 and an arm64 image.</summary>
    [Fact]
    public void Loading_a_multi_arch_index_keeps_the_chosen_platform()
    {
        using var t = new TempDir();
        var src = new ImageStore(t.Sub("src"));
        var amd = StoreFixture.AddImage(src, "arch", "amd64", "amd64").Manifest;
        var arm = StoreFixture.AddImage(src, "arch", "arm64", "arm64", "v8").Manifest;
        var inner = new ImageIndex
        {
            MediaType = MediaTypes.Index,
            Manifests =
            [
                new Descriptor { MediaType = MediaTypes.Manifest, Digest = amd.ToString(), Size = src.Content.SizeOf(amd), Platform = new Platform { Os = "linux", Architecture = "amd64" } },
                new Descriptor { MediaType = MediaTypes.Manifest, Digest = arm.ToString(), Size = src.Content.SizeOf(arm), Platform = new Platform { Os = "linux", Architecture = "arm64", Variant = "v8" } },
            ],
        };
        var innerDigest = src.Content.Write(ArchiveRoundTripTests.Json(inner, ImagesJson.Default.ImageIndex));
        var top = new ImageIndex
        {
            Manifests = [new Descriptor { MediaType = MediaTypes.Index, Digest = innerDigest.ToString(), Size = src.Content.SizeOf(innerDigest),
                Annotations = new() { [MediaTypes.AnnotationRefName] = "multi:latest" } }],
        };
        var archive = Path.Combine(t.Path, "multi.tar");
        using (var fs = File.Create(archive))
        using (var w = new TarWriter(fs))
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "index.json") { DataStream = new MemoryStream(ArchiveRoundTripTests.Json(top, ImagesJson.Default.ImageIndex)) });
            foreach (var d in src.Content.List())
                w.WriteEntry(src.Content.PathOf(d), $"blobs/sha256/{d.Hex}");
        }
        foreach (var (platform, content) in new[] { ("linux/arm64", "arm64"), ("linux/amd64", "amd64") })
        {
            var s = new ImageStore(t.Sub("dst-" + content));
            var img = new ImageImporter(s) { Platform = PlatformMatcher.Parse(platform) }.Load(archive).Single();
            Assert.Equal(["multi:latest"], img.Names);
            Assert.StartsWith(platform, img.Platform);
            var layer = s.Layers.PathOf(Digest.Parse(s.ReadConfig(s.ReadManifest(img)).Rootfs.DiffIds[0]));
            Assert.Equal(content, File.ReadAllText(Path.Combine(layer, "arch")));
        }
        var e = Assert.Throws<NoMatchingPlatformException>(() =>
            new ImageImporter(new ImageStore(t.Sub("none"))) { Platform = PlatformMatcher.Parse("linux/riscv64") }.Load(archive));
        Assert.Contains("linux/amd64, linux/arm64/v8", e.Message);
    }
}

using System.Formats.Tar;
using System.Text;
using Berth.Images.Archives;
using Berth.Images.Content;
using Berth.Images.Store;

namespace Berth.Images.Tests.Archives;

/// <summary>The default image is built by a function of the busybox bytes alone: same bytes in, same archive out.</summary>
public class DefaultImageTests
{
    // A stand-in for busybox: the builder only copies it (and reads its version banner).
    private static readonly byte[] FakeBusybox = Encoding.ASCII.GetBytes("\x7f" + "ELF fake\0BusyBox v1.35.0 (Debian 1:1.35.0-4) multi-call binary.\0rest");
    private static readonly string[] Applets = ["usr/bin/[", "bin/sh", "bin/ls", "sbin/ifconfig", "usr/sbin/chroot", "bin/busybox", "../escape", "weird/dir/x"];

    private static byte[] Archive(IEnumerable<string>? applets = null)
    {
        var ms = new MemoryStream();
        DefaultImage.WriteArchive(FakeBusybox, applets ?? Applets, ms, "amd64");
        return ms.ToArray();
    }

    [Fact]
    public void Two_builds_give_the_same_bytes()
    {
        var a = Archive();
        var b = Archive(Applets.Reverse()); // input order does not matter: entries are sorted
        Assert.Equal(Digest.Of(a), Digest.Of(b));
        Assert.Equal(DefaultImage.BuildLayer(FakeBusybox, Applets), DefaultImage.BuildLayer(FakeBusybox, Applets.Reverse()));
    }

    [Fact]
    public void A_different_busybox_gives_a_different_image()
    {
        var other = FakeBusybox.Append((byte)1).ToArray();
        var ms = new MemoryStream();
        DefaultImage.WriteArchive(other, Applets, ms, "amd64");
        Assert.NotEqual(Digest.Of(Archive()), Digest.Of(ms.ToArray()));
    }

    [Fact]
    public void The_layer_is_sorted_owned_by_root_and_dated_the_epoch()
    {
        var layer = DefaultImage.BuildLayer(FakeBusybox, Applets);
        using var r = new TarReader(new MemoryStream(layer));
        var names = new List<string>();
        while (r.GetNextEntry() is { } e)
        {
            names.Add(e.Name);
            Assert.Equal(TarEntryFormat.Ustar, e.Format);
            Assert.Equal(0, e.Uid);
            Assert.Equal(0, e.Gid);
            Assert.Equal(DateTimeOffset.UnixEpoch, e.ModificationTime);
            if (e.Name == "usr/bin/[") Assert.Equal("../../bin/busybox", e.LinkName);
            if (e.Name == "sbin/ifconfig") Assert.Equal("../bin/busybox", e.LinkName);
            if (e.Name == "bin/sh") Assert.Equal("busybox", e.LinkName);
            if (e.Name == "bin/busybox") Assert.Equal(TarEntryType.RegularFile, e.EntryType);
        }
        Assert.Equal(names.OrderBy(n => n, StringComparer.Ordinal), names);
        Assert.Equal(names.Distinct(), names);
        Assert.Contains("etc/passwd", names);
        Assert.Contains("tmp/", names);
        Assert.DoesNotContain(names, n => n.Contains(".."));
        Assert.Contains("bin/x", names); // an applet in an unexpected dir goes to bin
    }

    [Fact]
    public void Loading_it_twice_gives_the_same_image_and_it_unpacks_to_a_root()
    {
        using var t = new TempDir();
        var archive = Path.Combine(t.Path, "default.tar");
        File.WriteAllBytes(archive, Archive());
        var store = new ImageStore(t.Sub("store"));
        var first = DefaultImage.Load(store, archive);
        var second = DefaultImage.Load(store, archive);
        Assert.Equal(first.Id, second.Id);
        Assert.Equal(first.Manifest, second.Manifest);
        Assert.Equal([DefaultImage.Name], second.Names);
        Assert.Single(store.List());

        var other = new ImageStore(t.Sub("other"));
        Assert.Equal(first.Manifest, DefaultImage.Load(other, archive).Manifest);

        var config = store.ReadConfig(store.ReadManifest(first));
        Assert.Equal(["sh"], config.Config!.Cmd);
        Assert.Equal([DefaultImage.PathEnv], config.Config.Env);
        Assert.Equal("amd64", config.Architecture);
        Assert.Equal(DateTimeOffset.UnixEpoch, config.Created);

        var root = t.Sub("root");
        store.Materialize(first, root, new Berth.Images.Layers.UnpackOptions { PreserveOwnership = false });
        Assert.Equal(FakeBusybox, File.ReadAllBytes(Path.Combine(root, "bin/busybox")));
        Assert.Equal("busybox", new FileInfo(Path.Combine(root, "bin/sh")).LinkTarget);
        Assert.StartsWith("root:x:0:0:", File.ReadAllText(Path.Combine(root, "etc/passwd")));
    }

    [Fact]
    public void The_version_is_read_from_the_banner()
    {
        Assert.Equal("1.35.0 (Debian 1:1.35.0-4)", DefaultImage.Version(FakeBusybox));
        Assert.Null(DefaultImage.Version("nothing"u8));
    }

    [Fact]
    public void Names_matches_the_short_and_full_reference()
    {
        Assert.True(DefaultImage.Names("berth.local/busybox"));
        Assert.True(DefaultImage.Names("berth.local/busybox:latest"));
        Assert.False(DefaultImage.Names("busybox"));
    }
}

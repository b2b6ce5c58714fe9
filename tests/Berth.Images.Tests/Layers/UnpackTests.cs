using Berth.Images.Content;
using Berth.Images.Layers;

namespace Berth.Images.Tests.Layers;

public class UnpackTests
{
    private static readonly UnpackOptions Opts = new() { PreserveOwnership = false };

    private static UnpackResult Apply(byte[] tar, string target, UnpackOptions? o = null) =>
        LayerUnpacker.Unpack(new MemoryStream(tar), target, o ?? Opts);

    [Fact]
    public void Files_dirs_links_modes_and_times_are_preserved()
    {
        using var t = new TempDir();
        var root = t.Sub("root");
        var tar = new TarBuilder()
            .Dir("etc/", (UnixFileMode)0x1c0)
            .File("etc/hostname", "box\n", (UnixFileMode)0x1a0)
            .File("bin/tool", "#!/bin/sh\n", (UnixFileMode)0x9ed) // setuid 4755
            .Symlink("bin/sh", "/bin/tool")
            .HardLink("bin/tool2", "bin/tool")
            .Bytes();
        var r = Apply(tar, root);
        Assert.Equal(5, r.Entries);
        Assert.Equal("box\n", File.ReadAllText(Path.Combine(root, "etc/hostname")));
        Assert.Equal((UnixFileMode)0x1a0, File.GetUnixFileMode(Path.Combine(root, "etc/hostname")));
        Assert.Equal((UnixFileMode)0x1c0, File.GetUnixFileMode(Path.Combine(root, "etc")));
        Assert.Equal((UnixFileMode)0x9ed, File.GetUnixFileMode(Path.Combine(root, "bin/tool")));
        Assert.Equal("/bin/tool", new FileInfo(Path.Combine(root, "bin/sh")).LinkTarget);
        Assert.Equal(TarBuilder.Mtime, new DateTimeOffset(File.GetLastWriteTimeUtc(Path.Combine(root, "etc/hostname"))));
        Assert.Equal(TarBuilder.Mtime, new DateTimeOffset(Directory.GetLastWriteTimeUtc(Path.Combine(root, "etc"))));
        Assert.Equal(2u, LinkCount(Path.Combine(root, "bin/tool")));
        Assert.Equal(Digest.Of(tar).ToString(), r.DiffId);
    }

    [Fact]
    public void Gzip_and_zstd_layers_unpack_and_the_diff_id_is_the_uncompressed_digest()
    {
        using var t = new TempDir();
        var tar = new TarBuilder().File("a", "1").Bytes();
        var r1 = Apply(TarBuilder.Gzip(tar), t.Sub("g"));
        var r2 = Apply(TarBuilder.Zstd(tar), t.Sub("z"));
        Assert.Equal(Digest.Of(tar).ToString(), r1.DiffId);
        Assert.Equal(Digest.Of(tar).ToString(), r2.DiffId);
        Assert.Equal("1", File.ReadAllText(Path.Combine(t.Path, "z/a")));
    }

    [Fact]
    public void A_wrong_diff_id_is_refused()
    {
        using var t = new TempDir();
        var tar = new TarBuilder().File("a", "1").Bytes();
        Assert.Throws<DigestMismatchException>(() =>
            LayerUnpacker.Unpack(new MemoryStream(tar), t.Sub("r"), Opts, Digest.Of("other"u8)));
    }

    [Fact]
    public void Whiteouts_and_opaque_directories_hide_lower_layers()
    {
        using var t = new TempDir();
        var root = t.Sub("root");
        Apply(new TarBuilder().File("a/x", "x").File("a/y", "y").File("b", "b").File("c/keep", "k").Bytes(), root);
        Apply(new TarBuilder()
            .File(".wh.b", "")
            .Dir("a/")
            .File("a/.wh..wh..opq", "")
            .File("a/z", "z")
            .File("c/.wh.missing", "")
            .Bytes(), root);
        Assert.False(File.Exists(Path.Combine(root, "b")));
        Assert.Equal(["z"], Directory.GetFileSystemEntries(Path.Combine(root, "a")).Select(Path.GetFileName));
        Assert.True(File.Exists(Path.Combine(root, "c/keep")));
        Assert.False(File.Exists(Path.Combine(root, ".wh.b")));
    }

    [Fact]
    public void Opaque_marker_after_the_layers_own_children_keeps_them()
    {
        using var t = new TempDir();
        var root = t.Sub("root");
        Apply(new TarBuilder().File("a/old", "o").Bytes(), root);
        Apply(new TarBuilder().File("a/new", "n").File("a/.wh..wh..opq", "").Bytes(), root);
        Assert.Equal(["new"], Directory.GetFileSystemEntries(Path.Combine(root, "a")).Select(Path.GetFileName));
    }

    [Fact]
    public void Device_nodes_are_skipped_unless_asked_for()
    {
        using var t = new TempDir();
        var root = t.Sub("root");
        var r = Apply(new TarBuilder().CharDevice("dev/null", 1, 3).File("ok", "1").Bytes(), root);
        Assert.Equal(1, r.SkippedDevices);
        Assert.False(File.Exists(Path.Combine(root, "dev/null")));
        Assert.True(File.Exists(Path.Combine(root, "ok")));
    }

    internal static unsafe uint LinkCount(string path)
    {
        var buf = stackalloc byte[256];
        fixed (byte* p = Berth.Linux.CString.Of(path))
            Assert.Equal(0, Berth.Linux.Interop.LibC.statx(-100, p, 0x100, 0x7ff, buf));
        return *(uint*)(buf + 16);
    }
}

using Berth.Images.Layers;

namespace Berth.Images.Tests.Layers;

/// <summary>
/// Every hostile-layer case from the architecture's security invariants: whatever the unpacker
/// decides (apply inside the root, or refuse), nothing outside the target changes.
/// </summary>
public class HostileLayerTests
{
    private static readonly UnpackOptions Opts = new() { PreserveOwnership = false };

    private sealed class Scene : IDisposable
    {
        private readonly TempDir _t = new();
        public string Root { get; }
        public string Outside { get; }
        public string Secret { get; }

        public Scene()
        {
            Root = _t.Sub("root");
            Outside = _t.Sub("outside");
            Secret = Path.Combine(Outside, "secret");
            File.WriteAllText(Secret, "host secret");
        }

        /// <summary>Applies the tar; a refusal (exception) is as good as a confined write.</summary>
        public Exception? Apply(byte[] tar, UnpackOptions? o = null)
        {
            try { LayerUnpacker.Unpack(new MemoryStream(tar), Root, o ?? Opts); return null; }
            catch (Exception e) when (e is ImageFormatException or Berth.Linux.LinuxException) { return e; }
        }

        public void AssertOutsideUntouched()
        {
            Assert.Equal(["secret"], Directory.GetFileSystemEntries(Outside).Select(Path.GetFileName));
            Assert.Equal("host secret", File.ReadAllText(Secret));
            Assert.Equal(1u, UnpackTests.LinkCount(Secret));
            // Nothing new beside root and outside either (a climb out of root lands in their parent).
            Assert.Equal(["outside", "root"], Directory.GetFileSystemEntries(Path.GetDirectoryName(Root)!).Select(Path.GetFileName).Order());
        }

        public void Dispose() => _t.Dispose();
    }

    [Fact]
    public void Dot_dot_entries_stay_inside()
    {
        using var s = new Scene();
        Assert.Null(s.Apply(new TarBuilder().File("../../outside/secret", "pwned").File("a/../../../x", "1").Bytes()));
        s.AssertOutsideUntouched();
        Assert.Equal("pwned", File.ReadAllText(Path.Combine(s.Root, "outside/secret")));
        Assert.True(File.Exists(Path.Combine(s.Root, "x")));
    }

    [Fact]
    public void Absolute_entry_names_are_relative_to_the_target()
    {
        using var s = new Scene();
        Assert.Null(s.Apply(new TarBuilder().File(s.Secret, "pwned").Bytes()));
        s.AssertOutsideUntouched();
        Assert.Equal("pwned", File.ReadAllText(Path.Combine(s.Root, s.Secret.TrimStart('/'))));
    }

    [Fact]
    public void A_write_through_an_absolute_symlink_pointing_out_stays_inside()
    {
        using var s = new Scene();
        s.Apply(new TarBuilder().Symlink("evil", s.Outside).File("evil/secret", "pwned").File("evil/new", "pwned").Bytes());
        s.AssertOutsideUntouched();
    }

    [Fact]
    public void A_write_through_a_relative_symlink_climbing_out_stays_inside()
    {
        using var s = new Scene();
        s.Apply(new TarBuilder().Symlink("up", "../../../../../../../../" + s.Outside.TrimStart('/')).File("up/secret", "pwned").Bytes());
        s.AssertOutsideUntouched();
    }

    [Fact]
    public void A_symlink_to_a_file_outside_is_replaced_not_written_through()
    {
        using var s = new Scene();
        Assert.Null(s.Apply(new TarBuilder().Symlink("f", s.Secret).File("f", "pwned").Bytes()));
        s.AssertOutsideUntouched();
        Assert.Null(new FileInfo(Path.Combine(s.Root, "f")).LinkTarget);
        Assert.Equal("pwned", File.ReadAllText(Path.Combine(s.Root, "f")));
    }

    [Fact]
    public void A_hard_link_to_an_outside_file_is_not_made()
    {
        using var s = new Scene();
        s.Apply(new TarBuilder().HardLink("hl", s.Secret).Bytes());
        s.Apply(new TarBuilder().HardLink("hl2", "../outside/secret").Bytes());
        s.Apply(new TarBuilder().Symlink("ln", s.Secret).HardLink("hl3", "ln").File("hl3", "pwned").Bytes());
        s.AssertOutsideUntouched();
    }

    [Fact]
    public void A_hard_link_through_a_symlinked_directory_stays_inside()
    {
        using var s = new Scene();
        s.Apply(new TarBuilder().Symlink("d", s.Outside).HardLink("hl", "d/secret").Bytes());
        s.AssertOutsideUntouched();
    }

    [Fact]
    public void Duplicate_entries_last_one_wins()
    {
        using var s = new Scene();
        Assert.Null(s.Apply(new TarBuilder().File("f", "one").File("f", "two").Dir("d/").File("d/x", "1").Dir("d/").Bytes()));
        Assert.Equal("two", File.ReadAllText(Path.Combine(s.Root, "f")));
        Assert.True(File.Exists(Path.Combine(s.Root, "d/x")));
        s.AssertOutsideUntouched();
    }

    [Fact]
    public void A_directory_replaced_by_a_link_then_written_through_stays_inside()
    {
        using var s = new Scene();
        s.Apply(new TarBuilder().Dir("d/").File("d/a", "1").Symlink("d", s.Outside).File("d/secret", "pwned").File("d/b", "pwned").Bytes());
        s.AssertOutsideUntouched();
        Assert.Equal(s.Outside, new FileInfo(Path.Combine(s.Root, "d")).LinkTarget);
    }

    [Fact]
    public void A_whiteout_cannot_delete_outside()
    {
        using var s = new Scene();
        s.Apply(new TarBuilder().Symlink("o", s.Outside).File("o/.wh.secret", "").File("../outside/.wh.secret", "").File("o/.wh..wh..opq", "").Bytes());
        s.AssertOutsideUntouched();
    }

    [Fact]
    public void A_decompression_bomb_stops_at_the_size_limit()
    {
        using var s = new Scene();
        var bomb = TarBuilder.Gzip(new TarBuilder().Zeros("zeros", 64L << 20).Bytes());
        Assert.True(bomb.Length < 1 << 20); // 64 MiB of zeros compress to well under 1 MiB
        var e = s.Apply(bomb, Opts with { MaxBytes = 4 << 20 });
        Assert.IsType<SizeLimitException>(e);
        Assert.True(new FileInfo(Path.Combine(s.Root, "zeros")).Length <= 4 << 20);
        s.AssertOutsideUntouched();
    }

    [Fact]
    public void Nul_bytes_in_names_are_refused()
    {
        using var s = new Scene();
        Assert.Throws<ImageFormatException>(() => TarPath.Normalize("a\0b"));
    }

    [Theory]
    [InlineData("../../etc/passwd", "etc/passwd")]
    [InlineData("/abs/x", "abs/x")]
    [InlineData("./a/./b/", "a/b")]
    [InlineData("a/b/../../..", "")]
    [InlineData("a//b", "a/b")]
    public void Names_are_cleaned_lexically(string name, string want) => Assert.Equal(want, TarPath.Normalize(name));
}

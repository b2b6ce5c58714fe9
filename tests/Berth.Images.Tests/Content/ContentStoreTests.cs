using Berth.Images.Content;

namespace Berth.Images.Tests.Content;

public class ContentStoreTests
{
    [Theory]
    [InlineData("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true)]
    [InlineData("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", false)]
    [InlineData("sha256:0123", false)]
    [InlineData("sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", false)]
    [InlineData("sha256:../../../../etc/passwd/0123456789abcdef0123456789abcdef01234567", false)]
    [InlineData("", false)]
    public void Digests_parse_strictly(string s, bool ok) => Assert.Equal(ok, Digest.TryParse(s, out _));

    [Fact]
    public void A_blob_is_stored_under_its_digest_and_read_back_verified()
    {
        using var t = new TempDir();
        var cs = new ContentStore(t.Path);
        var d = cs.Write(new MemoryStream("hello"u8.ToArray()), Digest.Of("hello"u8));
        Assert.Equal(Path.Combine(t.Path, "blobs/sha256", d.Hex), cs.PathOf(d));
        Assert.Equal("hello"u8.ToArray(), cs.ReadVerified(d));
        Assert.Empty(Directory.GetFiles(Path.Combine(t.Path, "ingest")));
    }

    [Fact]
    public void Content_that_does_not_match_its_digest_is_not_stored()
    {
        using var t = new TempDir();
        var cs = new ContentStore(t.Path);
        var claimed = Digest.Of("expected"u8);
        Assert.Throws<DigestMismatchException>(() => cs.Write(new MemoryStream("other"u8.ToArray()), claimed));
        Assert.False(cs.Has(claimed));
        Assert.Empty(cs.List());
        Assert.Empty(Directory.GetFiles(Path.Combine(t.Path, "ingest")));
    }

    [Fact]
    public void A_blob_corrupted_on_disk_is_detected_on_read()
    {
        using var t = new TempDir();
        var cs = new ContentStore(t.Path);
        var d = cs.Write("original"u8);
        File.WriteAllText(cs.PathOf(d), "tampered");
        Assert.Throws<DigestMismatchException>(() => cs.ReadVerified(d));
        using var s = cs.OpenVerified(d);
        Assert.Throws<DigestMismatchException>(() => s.CopyTo(Stream.Null));
        Assert.False(cs.Verify(d));
    }

    [Fact]
    public void A_wrong_size_is_refused()
    {
        using var t = new TempDir();
        var cs = new ContentStore(t.Path);
        Assert.Throws<ImageFormatException>(() => cs.Write(new MemoryStream("abc"u8.ToArray()), Digest.Of("abc"u8), expectedSize: 4));
    }
}

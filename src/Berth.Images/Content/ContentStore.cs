using System.Security.Cryptography;

namespace Berth.Images.Content;

/// <summary>
/// Blobs by digest in OCI layout form, <c>ROOT/blobs/sha256/HEX</c>. A blob is written to
/// <c>ROOT/ingest</c>, hashed while it is copied, fsynced and renamed into place only when its
/// digest is the expected one: a name under blobs/ always holds complete content. Two writers of
/// the same blob race harmlessly (same bytes, atomic rename). Reads verify again: a blob corrupted
/// on disk is reported, never used.
/// </summary>
public sealed class ContentStore
{
    public string Root { get; }
    private readonly string _blobs;
    private readonly string _ingest;

    /// <summary>Manifests, configs and indexes are small; a larger one is refused, not read into memory.</summary>
    public const int MaxDocumentBytes = 8 << 20;

    public ContentStore(string root)
    {
        Root = root;
        _blobs = Path.Combine(root, "blobs", "sha256");
        _ingest = Path.Combine(root, "ingest");
        Directory.CreateDirectory(_blobs);
        Directory.CreateDirectory(_ingest);
    }

    public string PathOf(Digest d) => Path.Combine(_blobs, d.Hex);
    public bool Has(Digest d) => File.Exists(PathOf(d));
    public long SizeOf(Digest d) => new FileInfo(PathOf(d)).Length;

    /// <summary>
    /// Copies <paramref name="source"/> into the store. With <paramref name="expected"/> the content
    /// must hash to it (else <see cref="DigestMismatchException"/> and nothing is stored).
    /// </summary>
    public Digest Write(Stream source, Digest? expected = null, long expectedSize = -1, string? subject = null, Action<long>? progress = null)
    {
        var tmp = Path.Combine(_ingest, $"{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long total = 0;
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                var buf = new byte[1 << 20];
                int n;
                while ((n = source.Read(buf)) > 0)
                {
                    hash.AppendData(buf, 0, n);
                    fs.Write(buf, 0, n);
                    total += n;
                    progress?.Invoke(total);
                }
                fs.Flush(flushToDisk: true);
            }
            var got = Digest.From(hash);
            if (expected is { } e && e != got)
                throw new DigestMismatchException(subject ?? e.ToString(), e, got.ToString());
            if (expectedSize >= 0 && total != expectedSize)
                throw new ImageFormatException($"{subject ?? got.ToString()}: size {total} bytes, but its descriptor says {expectedSize}");
            // Already there (another writer, an earlier import): keep the existing file.
            if (!File.Exists(PathOf(got))) File.Move(tmp, PathOf(got), overwrite: true);
            return got;
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    public Digest Write(ReadOnlySpan<byte> data, Digest? expected = null, string? subject = null)
    {
        var got = Digest.Of(data);
        if (expected is { } e && e != got) throw new DigestMismatchException(subject ?? e.ToString(), e, got.ToString());
        if (Has(got)) return got;
        var tmp = Path.Combine(_ingest, $"{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                fs.Write(data);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, PathOf(got), overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
        return got;
    }

    /// <summary>A small document (manifest, index, config), read whole and verified.</summary>
    public byte[] ReadVerified(Digest d, string? subject = null)
    {
        var path = PathOf(d);
        if (!File.Exists(path)) throw new ImageFormatException($"{subject ?? d.ToString()}: blob {d} is missing from the store");
        if (new FileInfo(path).Length > MaxDocumentBytes)
            throw new SizeLimitException($"{subject ?? d.ToString()}: blob {d} is larger than {MaxDocumentBytes} bytes; not an image document");
        var data = File.ReadAllBytes(path);
        var got = Digest.Of(data);
        if (got != d) throw new DigestMismatchException(subject ?? $"blob {d}", d, got.ToString());
        return data;
    }

    /// <summary>A stream over a blob that throws <see cref="DigestMismatchException"/> at its end if the content is not <paramref name="d"/>.</summary>
    public Stream OpenVerified(Digest d, string? subject = null)
    {
        var path = PathOf(d);
        if (!File.Exists(path)) throw new ImageFormatException($"{subject ?? d.ToString()}: blob {d} is missing from the store");
        return new VerifyingStream(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16), d, subject ?? $"blob {d}");
    }

    /// <summary>Re-hashes a blob; false when it does not match its name.</summary>
    public bool Verify(Digest d)
    {
        using var s = OpenVerified(d);
        try { s.CopyTo(Stream.Null); return true; }
        catch (DigestMismatchException) { return false; }
    }

    public IEnumerable<Digest> List()
    {
        foreach (var f in Directory.EnumerateFiles(_blobs))
            if (Digest.IsHex(Path.GetFileName(f))) yield return new Digest(Path.GetFileName(f));
    }

    public void Delete(Digest d) => File.Delete(PathOf(d));

    /// <summary>Removes half-written blobs left by a crashed writer (only under the store's exclusive lock).</summary>
    public int CleanIngest()
    {
        int n = 0;
        foreach (var f in Directory.EnumerateFiles(_ingest)) { File.Delete(f); n++; }
        return n;
    }
}

/// <summary>Hashes while read; at EOF compares with the expected digest.</summary>
internal sealed class VerifyingStream(Stream inner, Digest expected, string subject) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private bool _checked;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        if (n > 0) _hash.AppendData(buffer[..n]);
        else if (buffer.Length > 0 && !_checked)
        {
            _checked = true;
            var got = Digest.From(_hash);
            if (got != expected) throw new DigestMismatchException(subject, expected, got.ToString());
        }
        return n;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => inner.Length;
    public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) { inner.Dispose(); _hash.Dispose(); }
        base.Dispose(disposing);
    }
}

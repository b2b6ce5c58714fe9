using System.IO.Compression;

namespace Berth.Images.Content;

public enum CompressionKind { None, Gzip, Zstd }

/// <summary>
/// Layer compression is detected from the first bytes, not trusted from the media type:
/// docker archives carry no media type, and some tools mislabel.
/// </summary>
public static class Compression
{
    public static CompressionKind Sniff(ReadOnlySpan<byte> head) =>
        head.Length >= 2 && head[0] == 0x1f && head[1] == 0x8b ? CompressionKind.Gzip
        : head.Length >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd ? CompressionKind.Zstd
        : CompressionKind.None;

    public static CompressionKind SniffFile(string path)
    {
        Span<byte> head = stackalloc byte[4];
        using var f = File.OpenRead(path);
        int n = f.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        return Sniff(head[..n]);
    }

    /// <summary>Wraps <paramref name="raw"/> in the decompressor its first bytes call for.</summary>
    public static Stream Decompress(Stream raw, out CompressionKind kind)
    {
        var head = new byte[4];
        int n = raw.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        kind = Sniff(head.AsSpan(0, n));
        Stream joined = new PrefixedStream(head.AsMemory(0, n), raw);
        return kind switch
        {
            CompressionKind.Gzip => new GZipStream(joined, CompressionMode.Decompress),
            CompressionKind.Zstd => new ZstdSharp.DecompressionStream(joined),
            _ => joined,
        };
    }

    public static string LayerMediaType(CompressionKind kind) => kind switch
    {
        CompressionKind.Gzip => MediaTypes.LayerGzip,
        CompressionKind.Zstd => MediaTypes.LayerZstd,
        _ => MediaTypes.Layer,
    };
}

/// <summary>Bytes already read for sniffing, then the rest of the stream.</summary>
internal sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream rest) : Stream
{
    private ReadOnlyMemory<byte> _prefix = prefix;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_prefix.Length > 0)
        {
            int n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            return n;
        }
        return rest.Read(buffer);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    protected override void Dispose(bool disposing)
    {
        if (disposing) rest.Dispose();
        base.Dispose(disposing);
    }
}

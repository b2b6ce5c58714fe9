using System.Formats.Tar;
using System.IO.Compression;
using System.Text;

namespace Berth.Images.Tests;

/// <summary>Crafted tars for layer tests: each helper writes one PAX entry.</summary>
public sealed class TarBuilder
{
    private readonly MemoryStream _ms = new();
    private readonly TarWriter _w;
    public static readonly DateTimeOffset Mtime = new(2020, 1, 2, 3, 4, 5, TimeSpan.Zero);

    public TarBuilder() => _w = new TarWriter(_ms, TarEntryFormat.Pax, leaveOpen: true);

    public TarBuilder File(string name, string content, UnixFileMode mode = (UnixFileMode)0x1a4, Dictionary<string, string>? pax = null)
    {
        var e = pax is null ? new PaxTarEntry(TarEntryType.RegularFile, name) : new PaxTarEntry(TarEntryType.RegularFile, name, pax);
        e.Mode = mode;
        e.ModificationTime = Mtime;
        e.DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content));
        _w.WriteEntry(e);
        return this;
    }

    public TarBuilder Dir(string name, UnixFileMode mode = (UnixFileMode)0x1ed)
    {
        _w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, name) { Mode = mode, ModificationTime = Mtime });
        return this;
    }

    public TarBuilder Symlink(string name, string target)
    {
        _w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target, ModificationTime = Mtime });
        return this;
    }

    public TarBuilder HardLink(string name, string target)
    {
        _w.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = target, ModificationTime = Mtime });
        return this;
    }

    public TarBuilder CharDevice(string name, int major, int minor)
    {
        _w.WriteEntry(new PaxTarEntry(TarEntryType.CharacterDevice, name) { DeviceMajor = major, DeviceMinor = minor, Mode = (UnixFileMode)0x1b6 });
        return this;
    }

    public TarBuilder Zeros(string name, long size)
    {
        var e = new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new ZeroStream(size) };
        _w.WriteEntry(e);
        return this;
    }

    public byte[] Bytes()
    {
        _w.Dispose();
        return _ms.ToArray();
    }

    public static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    public static byte[] Zstd(byte[] data)
    {
        using var c = new ZstdSharp.Compressor(3);
        return c.Wrap(data).ToArray();
    }
}

/// <summary>A seekable stream of zeros (TarWriter needs the length up front).</summary>
public sealed class ZeroStream(long length) : Stream
{
    private long _pos;
    public override int Read(byte[] buffer, int offset, int count)
    {
        int n = (int)Math.Min(count, length - _pos);
        Array.Clear(buffer, offset, n);
        _pos += n;
        return n;
    }
    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _pos; set => _pos = value; }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => _pos = origin switch { SeekOrigin.Begin => offset, SeekOrigin.Current => _pos + offset, _ => length + offset };
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>A temp directory removed at the end of the test.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("berth-images-test-").FullName;
    public string Sub(string name)
    {
        var p = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(p);
        return p;
    }
    public void Dispose()
    {
        try { global::Berth.Images.Store.LayerCache.RemoveTree(Path); } catch (IOException) { }
    }
}

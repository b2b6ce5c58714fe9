namespace Berth.Engine.Monitor;

/// <summary>Receives the records a <see cref="LineBuffer"/> cuts.</summary>
public interface ILineSink
{
    void Line(bool stderr, ReadOnlySpan<byte> text);
}

/// <summary>
/// Cuts one stream's bytes into log records: each complete line (with its "\n"), or
/// <see cref="MaxLine"/> bytes of a longer one (a partial record, as docker cuts at 16 KiB), and
/// what is left when the stream ends.
/// </summary>
public sealed class LineBuffer(bool stderr)
{
    public const int MaxLine = 16 * 1024;
    private readonly byte[] _pending = new byte[MaxLine];
    private int _length;

    public bool Stderr => stderr;

    public void Feed(ReadOnlySpan<byte> data, ILineSink sink)
    {
        while (data.Length > 0)
        {
            int nl = data.IndexOf((byte)'\n');
            int take = nl >= 0 ? nl + 1 : data.Length;
            if (_length == 0 && nl >= 0 && take <= MaxLine)
            {
                sink.Line(stderr, data[..take]); // the common case: no copy
                data = data[take..];
                continue;
            }
            take = Math.Min(take, MaxLine - _length);
            data[..take].CopyTo(_pending.AsSpan(_length));
            _length += take;
            data = data[take..];
            if (_pending[_length - 1] == (byte)'\n' || _length == MaxLine) Flush(sink);
        }
    }

    /// <summary>Emits what is pending (a last line without "\n").</summary>
    public void Flush(ILineSink sink)
    {
        if (_length == 0) return;
        sink.Line(stderr, _pending.AsSpan(0, _length));
        _length = 0;
    }
}

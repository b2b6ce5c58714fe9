using Berth.Linux;
using Berth.Linux.Interop;

namespace Berth.Engine.Monitor;

/// <summary>
/// The container's log file (JSON lines, <see cref="LogLine"/>), rotated by renaming
/// PATH -> PATH.1 -> ... PATH.(max-file - 1) when the next record would pass max-size; with
/// max-file=1 the file is truncated instead. Raw fds and one reused buffer: it runs in the monitor.
/// </summary>
public sealed unsafe class LogWriter : ILineSink, IDisposable
{
    private readonly string _path;
    private readonly LogOptions _options;
    private readonly byte[] _record = new byte[LogLine.MaxLength(LineBuffer.MaxLine)];
    private int _fd = -1;
    private long _size;

    public LogWriter(string path, LogOptions options)
    {
        _path = path;
        _options = options;
        Open();
    }

    /// <summary>Rotations so far (for tests and the bench).</summary>
    public int Rotations { get; private set; }

    private void Open()
    {
        fixed (byte* p = CString.Of(_path))
            _fd = LibC.open(p, Consts.O_WRONLY | Consts.O_CREAT | Consts.O_APPEND | Consts.O_CLOEXEC, 0x1a0 /* 0640 */);
        if (_fd < 0) throw LinuxException.Last("open log file", _path);
        _size = LibC.lseek(_fd, 0, LibC.SEEK_END);
        if (_size < 0) _size = 0;
    }

    public void Line(bool stderr, ReadOnlySpan<byte> text)
    {
        var ts = stackalloc long[2];
        LibC.clock_gettime(LibC.CLOCK_REALTIME, ts);
        int n = LogLine.Encode(_record, stderr, ts[0], (int)ts[1], text);
        if (_size > 0 && _size + n > _options.MaxSize) Rotate();
        fixed (byte* p = _record)
        {
            int off = 0;
            while (off < n)
            {
                var w = LibC.write(_fd, p + off, n - off);
                if (w < 0)
                {
                    if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
                    return; // disk full or gone: drop the record rather than block the container
                }
                off += (int)w;
            }
        }
        _size += n;
    }

    /// <summary>A note from the monitor itself (e.g. a restart that failed), as a stderr record.</summary>
    public void Note(string text) => Line(true, System.Text.Encoding.UTF8.GetBytes("berth: " + text + "\n"));

    private void Rotate()
    {
        Rotations++;
        if (_options.MaxFile <= 1)
        {
            LibC.ftruncate(_fd, 0);
            _size = 0;
            return;
        }
        for (int k = _options.MaxFile - 1; k >= 1; k--)
        {
            var from = k == 1 ? _path : $"{_path}.{k - 1}";
            fixed (byte* f = CString.Of(from))
            fixed (byte* t = CString.Of($"{_path}.{k}"))
                LibC.renameat(Consts.AT_FDCWD, f, Consts.AT_FDCWD, t);
        }
        LibC.close(_fd);
        Open();
    }

    public void Dispose()
    {
        if (_fd >= 0) LibC.close(_fd);
        _fd = -1;
    }
}

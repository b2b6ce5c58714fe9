using System.Text;
using System.Text.Json;

namespace Berth.Engine.Monitor;

/// <summary>One record of the container's log.</summary>
public readonly record struct LogRecord(bool Stderr, string Time, string Text);

/// <summary>
/// `berth logs`: reads the monitor's JSON-lines files (rotated ones first, oldest first), the
/// last N records, and follows the live file across rotations until the monitor is gone.
/// </summary>
public static class LogReader
{
    /// <summary>Parses one line; null for a line that is not a record (a torn write, garbage).</summary>
    public static LogRecord? Parse(ReadOnlySpan<byte> line)
    {
        try
        {
            var r = new Utf8JsonReader(line);
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) return null;
            string? log = null, stream = null, time = null;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                var name = r.GetString();
                if (!r.Read()) return null;
                if (r.TokenType == JsonTokenType.String)
                {
                    switch (name)
                    {
                        case "log": log = r.GetString(); break;
                        case "stream": stream = r.GetString(); break;
                        case "time": time = r.GetString(); break;
                    }
                }
                else r.Skip();
            }
            return log is null ? null : new LogRecord(stream == "stderr", time ?? "", log);
        }
        catch (JsonException) { return null; }
    }

    /// <summary>The files of a log, oldest first: PATH.(n-1) ... PATH.1, PATH.</summary>
    public static List<string> Files(string path)
    {
        var rotated = new List<(int N, string Path)>();
        var dir = Path.GetDirectoryName(path)!;
        var name = Path.GetFileName(path);
        if (Directory.Exists(dir))
            foreach (var f in Directory.GetFiles(dir, name + ".*"))
                if (Path.GetFileName(f).Length > name.Length + 1 && int.TryParse(Path.GetFileName(f)[(name.Length + 1)..], out var n)) rotated.Add((n, f));
        var files = rotated.OrderByDescending(r => r.N).Select(r => r.Path).ToList();
        if (File.Exists(path)) files.Add(path);
        return files;
    }

    /// <summary>Every complete record in <paramref name="data"/>; <paramref name="consumed"/> stops before a trailing partial line.</summary>
    public static List<LogRecord> Records(ReadOnlySpan<byte> data, out int consumed)
    {
        var list = new List<LogRecord>();
        consumed = 0;
        while (true)
        {
            int nl = data[consumed..].IndexOf((byte)'\n');
            if (nl < 0) break;
            if (Parse(data.Slice(consumed, nl)) is { } rec) list.Add(rec);
            consumed += nl + 1;
        }
        return list;
    }

    /// <summary>Writes records as `logs` prints them: each to its stream, with the time first for --timestamps.</summary>
    public static void Print(IEnumerable<LogRecord> records, Stream stdout, Stream stderr, bool timestamps)
    {
        foreach (var r in records)
        {
            var s = r.Stderr ? stderr : stdout;
            if (timestamps) s.Write(Encoding.UTF8.GetBytes(r.Time + " "));
            s.Write(Encoding.UTF8.GetBytes(r.Text));
        }
        stdout.Flush();
        stderr.Flush();
    }

    /// <summary>
    /// `logs [-f] [--tail N] [-t]`: prints the last <paramref name="tail"/> records (all when
    /// null) and, with <paramref name="follow"/>, what comes after, until <paramref name="live"/>
    /// says the monitor is gone and nothing new is left.
    /// </summary>
    public static void Run(string path, int? tail, bool follow, bool timestamps, Func<bool> live, Stream stdout, Stream stderr)
    {
        var records = new List<LogRecord>();
        var files = Files(path);
        int consumedLive = 0;
        for (int i = 0; i < files.Count; i++)
        {
            byte[] data;
            try { data = File.ReadAllBytes(files[i]); }
            catch (FileNotFoundException) { continue; } // rotated away meanwhile
            records.AddRange(Records(data, out var consumed));
            if (files[i] == path) consumedLive = consumed;
        }
        IEnumerable<LogRecord> shown = records;
        if (tail is { } n) shown = records.Skip(Math.Max(0, records.Count - n));
        Print(shown, stdout, stderr, timestamps);
        if (!follow) return;
        Follow(path, consumedLive, timestamps, live, stdout, stderr);
    }

    private static void Follow(string path, long offset, bool timestamps, Func<bool> live, Stream stdout, Stream stderr)
    {
        FileStream? fs = null;
        long inode = 0;
        var pending = new MemoryStream();
        var buf = new byte[65536];
        try
        {
            while (true)
            {
                bool alive = live(); // before reading: what the monitor wrote before it ended is read below
                if (fs is null && File.Exists(path))
                {
                    try
                    {
                        fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                        inode = Inode(path);
                        fs.Position = Math.Min(offset, fs.Length);
                    }
                    catch (FileNotFoundException) { fs = null; }
                }
                if (fs is not null)
                {
                    if (fs.Length < fs.Position) { fs.Position = 0; pending.SetLength(0); } // truncated (max-file=1)
                    bool rotated = File.Exists(path) && Inode(path) != inode;
                    int n;
                    while ((n = fs.Read(buf, 0, buf.Length)) > 0) pending.Write(buf, 0, n);
                    var data = pending.GetBuffer().AsSpan(0, (int)pending.Length);
                    var recs = Records(data, out var used);
                    Print(recs, stdout, stderr, timestamps);
                    var rest = data[used..].ToArray();
                    pending.SetLength(0);
                    pending.Write(rest);
                    // Rotated before that read: the old file is finished; go on with the new one.
                    if (rotated)
                    {
                        fs.Dispose();
                        fs = null;
                        offset = 0;
                        pending.SetLength(0);
                        continue;
                    }
                }
                if (!alive) return;
                Thread.Sleep(50);
            }
        }
        finally { fs?.Dispose(); }
    }

    /// <summary>statx's stx_ino (offset 32), -1 when the file is gone.</summary>
    private static unsafe long Inode(string path)
    {
        var buf = stackalloc byte[256];
        fixed (byte* p = Berth.Linux.CString.Of(path))
            if (Berth.Linux.Interop.LibC.statx(Berth.Linux.Interop.Consts.AT_FDCWD, p, 0, 0x100 /* STATX_INO */, buf) != 0) return -1;
        return *(long*)(buf + 32);
    }
}

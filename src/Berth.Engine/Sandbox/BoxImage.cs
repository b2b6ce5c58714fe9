using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;

namespace Berth.Engine.Sandbox;

/// <summary>
/// A batch slot's box as copied from the caller's DIR: <see cref="Source"/> is DIR's fingerprint at
/// copy time, the snapshot every entry's identity right after the copy. <see cref="Verify"/> proves,
/// after a job (every process of it dead), that the box is still that copy: a job that wrote,
/// truncated, chmod'ed, renamed, linked, created or removed anything changed an entry set, an inode
/// or a ctime (which no one can set back); a write through a shared mapping, which on tmpfs changes
/// no time, is found by comparing every file's bytes with DIR's. Extended attributes change ctime.
/// With a <see cref="WriteWatch"/> on the box's files (<see cref="Watch"/>, a batch slot as root), the
/// kernel tells whether any of them was opened for writing or written, and no byte is compared.
/// Without one, DIR's bytes are kept in memory after the first comparison (up to <see cref="KeepLimit"/>
/// per box), so later jobs read only the box, through a mapping of the tmpfs file.
/// </summary>
public sealed class BoxImage(string sourceDir, string source, Dictionary<string, StatX> snapshot,
    Dictionary<string, byte[]>? sourceBytes = null, WriteWatch? watch = null, bool keepBytes = true)
{
    /// <summary>
    /// False for a sandbox pool's slot (its next job runs in another process): DIR's bytes are compared
    /// through a small buffer and not kept in memory.
    /// </summary>
    private readonly bool _keepBytes = keepBytes;

    private WriteWatch? _watch = watch;

    /// <summary>
    /// Marks every regular file of the (just copied) box in <paramref name="watch"/>, before any job
    /// runs in it; events queued for an earlier box are dropped first. If a file cannot be marked,
    /// the bytes are compared instead.
    /// </summary>
    public void Watch(WriteWatch? watch, string box)
    {
        _watch = null;
        if (watch is null) return;
        watch.Quiet();
        foreach (var (rel, e) in _snapshot)
            if (e.IsRegular && !watch.Mark(Path.Combine(box, rel))) return;
        _watch = watch;
    }

    /// <summary>What a job could change of an entry: everything but the access and modification times, which <see cref="Restore"/> sets back.</summary>
    private static bool Same(StatX a, StatX b) =>
        (a.Mode, a.Uid, a.Gid, a.Size, a.Nlink, a.Ino, a.CtimeSec, a.CtimeNsec) == (b.Mode, b.Uid, b.Gid, b.Size, b.Nlink, b.Ino, b.CtimeSec, b.CtimeNsec);

    public string SourceDir { get; } = sourceDir;
    public string Source { get; } = source;
    private readonly Dictionary<string, StatX> _snapshot = snapshot;
    private readonly Dictionary<string, byte[]> _sourceBytes = sourceBytes ?? new(StringComparer.Ordinal);
    private long _sourceBytesKept = sourceBytes?.Values.Sum(b => (long)b.Length) ?? 0;

    /// <summary>How many bytes of DIR's files one box keeps in memory (a judge's box is a program and its input).</summary>
    public const long KeepLimit = 16 << 20;

    /// <summary>Every entry under <paramref name="box"/> ("" for the box itself), by relative path.</summary>
    public static Dictionary<string, StatX> Snapshot(string box)
    {
        var map = new Dictionary<string, StatX>(StringComparer.Ordinal) { [""] = StatX.Of(box) };
        SandboxRunner.WalkTree(box, (rel, st) => map[rel] = st, sorted: false);
        return map;
    }

    /// <summary>The box directory is still the one of the image (same device, inode, owner, mode and ctime): a kept box is taken only then.</summary>
    public bool RootIs(string box) =>
        _snapshot.TryGetValue("", out var was) && StatX.TryAt(Consts.AT_FDCWD, box, out var now, out _) && Same(was, now) && was.Dev == now.Dev;

    public bool Verify(string box)
    {
        // Every process of the job is dead: each file it opened for writing has had its last close.
        bool? written = _watch is { } w ? !w.Quiet() : null;
        if (written == true) return false;
        return Unchanged(box, out var now) && (written == false || SameBytes(box, now));
    }

    /// <summary>
    /// All of <see cref="Verify"/> but the bytes: the same entries, each with the same identity, no
    /// extended attributes, no file linked elsewhere. A sandbox pool's slot checks this after the job
    /// (cheap: a job that wrote anything but through a shared mapping fails it, and its box is emptied
    /// at once) and leaves the bytes to the next job (<see cref="BytesVerified"/>).
    /// </summary>
    public bool Unchanged(string box) => Unchanged(box, out _);

    private bool Unchanged(string box, out Dictionary<string, StatX> now)
    {
        now = Snapshot(box);
        if (now.Count != _snapshot.Count) return false;
        foreach (var (rel, e) in now)
        {
            if (!_snapshot.TryGetValue(rel, out var was) || !Same(was, e)) return false;
            if (HasXattrs(rel.Length == 0 ? box : Path.Combine(box, rel))) return false;
            if (e.IsRegular && e.Nlink != 1) return false;
        }
        return true;
    }

    /// <summary>Every regular file of the box (as <paramref name="now"/> lists them) holds DIR's bytes.</summary>
    private bool SameBytes(string box, Dictionary<string, StatX> now)
    {
        foreach (var (rel, e) in now)
            if (e.IsRegular && !SameAsSource(Path.Combine(box, rel), rel, e.Size)) return false;
        return true;
    }

    /// <summary>
    /// False for an image a sandbox pool's state holds: the last job's teardown found the box
    /// <see cref="Unchanged"/>, and its bytes are compared with DIR's (<see cref="VerifyBytes"/>) before the next job uses it.
    /// </summary>
    public bool BytesVerified { get; private init; } = true;

    /// <summary>The box (every process of the last job dead) still holds DIR's bytes in every file of the image.</summary>
    public bool VerifyBytes(string box) => SameBytes(box, _snapshot);

    /// <summary>
    /// Sets every entry's access and modification times back to the copy's (reading its input moves a
    /// file's atime; a job may set times it owns), so the next job finds the box as the first one did;
    /// returns the image to verify the next job's box against (the ctimes this moved).
    /// </summary>
    public unsafe BoxImage Restore(string box, bool bytesVerified = true)
    {
        var times = stackalloc long[4];
        foreach (var (rel, e) in _snapshot)
        {
            var path = rel.Length == 0 ? box : Path.Combine(box, rel);
            times[0] = e.AtimeSec; times[1] = e.AtimeNsec; times[2] = e.MtimeSec; times[3] = e.MtimeNsec;
            fixed (byte* p = CString.Of(path))
                if (LibC.utimensat(-100 /* AT_FDCWD */, p, times, Consts.AT_SYMLINK_NOFOLLOW) != 0) throw LinuxException.Last("utimensat", path);
        }
        return new BoxImage(SourceDir, Source, Snapshot(box), _sourceBytes, _watch, _keepBytes) { BytesVerified = bytesVerified };
    }

    /// <summary>
    /// For a sandbox pool's state (<see cref="Parse"/> reads it back): DIR, its fingerprint, and one line per
    /// entry with what <see cref="Same"/> compares and the times <see cref="Restore"/> sets. Null when the
    /// box has too many entries to keep in a state file (it is then emptied after every job).
    /// </summary>
    public string? Format()
    {
        if (_snapshot.Count > 256) return null;
        var sb = new System.Text.StringBuilder();
        sb.Append("keep ").Append(Source).Append(' ').Append(Escape(SourceDir)).Append('\n');
        foreach (var (rel, e) in _snapshot)
            sb.Append(System.Globalization.CultureInfo.InvariantCulture,
                $"entry {e.Mode} {e.Uid} {e.Gid} {e.Size} {e.Nlink} {e.Ino} {e.Dev} {e.CtimeSec} {e.CtimeNsec} {e.AtimeSec} {e.AtimeNsec} {e.MtimeSec} {e.MtimeNsec} ")
              .Append(Escape(rel)).Append('\n');
        return sb.ToString();
    }

    /// <summary>The image <see cref="Format"/> wrote (its "keep" line and "entry" lines); null when a line is not one it writes.</summary>
    public static BoxImage? Parse(string keepLine, IEnumerable<string> entryLines)
    {
        int sp = keepLine.IndexOf(' ');
        if (sp <= 0) return null;
        var source = keepLine[..sp];
        var dir = Unescape(keepLine[(sp + 1)..]);
        var map = new Dictionary<string, StatX>(StringComparer.Ordinal);
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        foreach (var line in entryLines)
        {
            var f = line.Split(' ', 14);
            if (f.Length != 14) return null;
            if (!uint.TryParse(f[0], inv, out var mode) || !uint.TryParse(f[1], inv, out var uid) || !uint.TryParse(f[2], inv, out var gid)
                || !long.TryParse(f[3], inv, out var size) || !uint.TryParse(f[4], inv, out var nlink) || !ulong.TryParse(f[5], inv, out var ino)
                || !ulong.TryParse(f[6], inv, out var dev) || !long.TryParse(f[7], inv, out var cs) || !uint.TryParse(f[8], inv, out var cn)
                || !long.TryParse(f[9], inv, out var @as) || !uint.TryParse(f[10], inv, out var an)
                || !long.TryParse(f[11], inv, out var ms) || !uint.TryParse(f[12], inv, out var mn))
                return null;
            map[Unescape(f[13])] = new StatX(mode, uid, gid, size, nlink, ino, dev, ms, mn, 0, 0, @as, an, cs, cn);
        }
        return map.ContainsKey("") ? new BoxImage(dir, source, map, keepBytes: false) { BytesVerified = false } : null;
    }

    private static string Escape(string s) => s.Replace("\\", "\\\\").Replace("\n", "\\n");

    private static string Unescape(string s)
    {
        var sb = new System.Text.StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && i + 1 < s.Length) { sb.Append(s[++i] == 'n' ? '\n' : s[i]); continue; }
            sb.Append(s[i]);
        }
        return sb.ToString();
    }

    /// <summary>The box file <paramref name="path"/> (every process of the job dead) holds DIR's bytes of <paramref name="rel"/>.</summary>
    private bool SameAsSource(string path, string rel, long size)
    {
        if (_sourceBytes.TryGetValue(rel, out var kept)) return kept.Length == size && MappedEquals(path, kept);
        var source = Path.Combine(SourceDir, rel);
        if (!_keepBytes || _sourceBytesKept + size > KeepLimit) return SameFileBytes(path, source, size);
        var bytes = ReadExactly(source, size);
        if (bytes is null || !MappedEquals(path, bytes)) return false;
        _sourceBytes[rel] = bytes;
        _sourceBytesKept += size;
        return true;
    }

    /// <summary>All of a file that must be <paramref name="size"/> bytes long; null when it is not.</summary>
    private static byte[]? ReadExactly(string path, long size)
    {
        using var h = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (RandomAccess.GetLength(h) != size) return null;
        var bytes = new byte[size];
        if (ReadFull(h, bytes, 0) != size || ReadFull(h, stackalloc byte[1], size) != 0) return null;
        return bytes;
    }

    /// <summary>
    /// The file's bytes equal <paramref name="expected"/>, compared through a read-only mapping (MAP_POPULATE:
    /// no fault per page). Only for the box's tmpfs files, which nothing can truncate under us once
    /// the job's processes are dead (a shrinking mapped file would raise SIGBUS).
    /// </summary>
    private static unsafe bool MappedEquals(string path, byte[] expected)
    {
        int fd = Fd.Open(path, Consts.O_RDONLY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC);
        try
        {
            if (!StatX.TryAt(fd, "", out var st, out _) || st.Size != expected.Length) return false;
            if (expected.Length == 0) return true;
            void* map = LibC.mmap(null, (nuint)expected.Length, Consts.PROT_READ, Consts.MAP_PRIVATE | Consts.MAP_POPULATE, fd, 0);
            if (map == (void*)-1) throw LinuxException.Last("mmap", path);
            try { return new ReadOnlySpan<byte>(map, expected.Length).SequenceEqual(expected); }
            finally { LibC.munmap(map, (nuint)expected.Length); }
        }
        finally { Fd.Close(fd); }
    }

    private static unsafe bool HasXattrs(string path)
    {
        fixed (byte* p = CString.Of(path))
            return LibC.llistxattr(p, null, 0) != 0; // > 0: some; < 0: cannot tell, so not kept
    }

    /// <summary>
    /// The files <paramref name="path"/> and <paramref name="source"/> hold the same <paramref name="size"/> bytes,
    /// read through two 32 KiB buffers on the stack: no array to fault in or pool, and no mapping (its unmap
    /// would cost the other threads' CPUs TLB-shootdown IPIs; this may run beside a spawning helper).
    /// </summary>
    private static unsafe bool SameFileBytes(string path, string source, long size)
    {
        const int chunk = 32 << 10;
        byte* a = stackalloc byte[chunk];
        byte* b = stackalloc byte[chunk];
        int fa, fb;
        try { fa = Fd.Open(path, Consts.O_RDONLY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC); }
        catch (LinuxException) { return false; }
        try
        {
            try { fb = Fd.Open(source, Consts.O_RDONLY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC); }
            catch (LinuxException) { return false; }
            try
            {
                for (long at = 0; ; )
                {
                    long na = PreadFull(fa, a, chunk, at), nb = PreadFull(fb, b, chunk, at);
                    if (na < 0 || na != nb || !new ReadOnlySpan<byte>(a, (int)na).SequenceEqual(new ReadOnlySpan<byte>(b, (int)nb))) return false;
                    at += na;
                    if (na < chunk) return at == size;
                }
            }
            finally { Fd.Close(fb); }
        }
        finally { Fd.Close(fa); }
    }

    private static unsafe long PreadFull(int fd, byte* buf, int count, long at)
    {
        long got = 0;
        while (got < count)
        {
            long n = LibC.pread(fd, buf + got, (nint)(count - got), at + got);
            if (n < 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
            if (n < 0) return -1;
            if (n == 0) break;
            got += n;
        }
        return got;
    }

    private static int ReadFull(Microsoft.Win32.SafeHandles.SafeFileHandle h, Span<byte> buf, long at)
    {
        int got = 0;
        while (got < buf.Length)
        {
            int n = RandomAccess.Read(h, buf[got..], at + got);
            if (n == 0) break;
            got += n;
        }
        return got;
    }
}

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
    Dictionary<string, byte[]>? sourceBytes = null, WriteWatch? watch = null)
{
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
        void Walk(string dir, string rel)
        {
            foreach (var e in new DirectoryInfo(dir).EnumerateFileSystemInfos())
            {
                var r = rel + e.Name;
                map[r] = StatX.Of(e.FullName);
                if (e is DirectoryInfo && e.LinkTarget is null) Walk(e.FullName, r + "/");
            }
        }
        Walk(box, "");
        return map;
    }

    public bool Verify(string box)
    {
        // Every process of the job is dead: each file it opened for writing has had its last close.
        bool? written = _watch is { } w ? !w.Quiet() : null;
        if (written == true) return false;
        var now = Snapshot(box);
        if (now.Count != _snapshot.Count) return false;
        foreach (var (rel, e) in now)
        {
            if (!_snapshot.TryGetValue(rel, out var was) || !Same(was, e)) return false;
            var path = rel.Length == 0 ? box : Path.Combine(box, rel);
            if (HasXattrs(path)) return false;
            if (e.IsRegular && (e.Nlink != 1 || (written is null && !SameAsSource(path, rel, e.Size))))
                return false;
        }
        return true;
    }

    /// <summary>
    /// Sets every entry's access and modification times back to the copy's (reading its input moves a
    /// file's atime; a job may set times it owns), so the next job finds the box as the first one did;
    /// returns the image to verify the next job's box against (the ctimes this moved).
    /// </summary>
    public unsafe BoxImage Restore(string box)
    {
        var times = stackalloc long[4];
        foreach (var (rel, e) in _snapshot)
        {
            var path = rel.Length == 0 ? box : Path.Combine(box, rel);
            times[0] = e.AtimeSec; times[1] = e.AtimeNsec; times[2] = e.MtimeSec; times[3] = e.MtimeNsec;
            fixed (byte* p = CString.Of(path))
                if (LibC.utimensat(-100 /* AT_FDCWD */, p, times, Consts.AT_SYMLINK_NOFOLLOW) != 0) throw LinuxException.Last("utimensat", path);
        }
        return new BoxImage(SourceDir, Source, Snapshot(box), _sourceBytes, _watch);
    }

    /// <summary>The box file <paramref name="path"/> (every process of the job dead) holds DIR's bytes of <paramref name="rel"/>.</summary>
    private bool SameAsSource(string path, string rel, long size)
    {
        if (_sourceBytes.TryGetValue(rel, out var kept)) return kept.Length == size && MappedEquals(path, kept);
        var source = Path.Combine(SourceDir, rel);
        if (_sourceBytesKept + size > KeepLimit) return SameBytes(path, source, size);
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

    /// <summary>Reused between a worker's jobs: every job compares its kept box (fresh arrays were ~130 KB of page faults a job).</summary>
    private const int Chunk = 256 * 1024;

    private static bool SameBytes(string a, string b, long size)
    {
        using var fa = File.OpenHandle(a, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var fb = File.OpenHandle(b, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (RandomAccess.GetLength(fa) != size || RandomAccess.GetLength(fb) != size) return false;
        var ba = System.Buffers.ArrayPool<byte>.Shared.Rent(Chunk);
        var bb = System.Buffers.ArrayPool<byte>.Shared.Rent(Chunk);
        try
        {
            for (long at = 0; ; )
            {
                int na = ReadFull(fa, ba.AsSpan(0, Chunk), at);
                int nb = ReadFull(fb, bb.AsSpan(0, Chunk), at);
                if (na != nb || !ba.AsSpan(0, na).SequenceEqual(bb.AsSpan(0, nb))) return false;
                if (na < Chunk) return at + na == size;
                at += na;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(ba);
            System.Buffers.ArrayPool<byte>.Shared.Return(bb);
        }
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

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
/// </summary>
public sealed class BoxImage(string sourceDir, string source, Dictionary<string, StatX> snapshot)
{
    /// <summary>What a job could change of an entry: everything but the access and modification times, which <see cref="Restore"/> sets back.</summary>
    private static bool Same(StatX a, StatX b) =>
        (a.Mode, a.Uid, a.Gid, a.Size, a.Nlink, a.Ino, a.CtimeSec, a.CtimeNsec) == (b.Mode, b.Uid, b.Gid, b.Size, b.Nlink, b.Ino, b.CtimeSec, b.CtimeNsec);

    public string SourceDir { get; } = sourceDir;
    public string Source { get; } = source;
    private readonly Dictionary<string, StatX> _snapshot = snapshot;

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
        var now = Snapshot(box);
        if (now.Count != _snapshot.Count) return false;
        foreach (var (rel, e) in now)
        {
            if (!_snapshot.TryGetValue(rel, out var was) || !Same(was, e)) return false;
            var path = rel.Length == 0 ? box : Path.Combine(box, rel);
            if (HasXattrs(path)) return false;
            if (e.IsRegular && (e.Nlink != 1 || !SameBytes(path, Path.Combine(SourceDir, rel), e.Size)))
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
        return new BoxImage(SourceDir, Source, Snapshot(box));
    }

    private static unsafe bool HasXattrs(string path)
    {
        fixed (byte* p = CString.Of(path))
            return LibC.llistxattr(p, null, 0) != 0; // > 0: some; < 0: cannot tell, so not kept
    }

    private static bool SameBytes(string a, string b, long size)
    {
        using var fa = new FileStream(a, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
        using var fb = new FileStream(b, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
        if (fa.Length != size || fb.Length != size) return false;
        var ba = new byte[65536];
        var bb = new byte[65536];
        while (true)
        {
            int na = fa.ReadAtLeast(ba, ba.Length, throwOnEndOfStream: false);
            int nb = fb.ReadAtLeast(bb, bb.Length, throwOnEndOfStream: false);
            if (na != nb || !ba.AsSpan(0, na).SequenceEqual(bb.AsSpan(0, nb))) return false;
            if (na < ba.Length) return true;
        }
    }
}

using System.Formats.Tar;
using System.Runtime.InteropServices;
using Berth.Images.Content;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;

namespace Berth.Images.Layers;

/// <summary>
/// Applies one layer tar onto a directory without ever writing outside it. Every parent is
/// resolved with openat2 RESOLVE_IN_ROOT (links are followed as if the target were "/"), and the
/// last component is created with *at calls relative to that parent, never following a link:
/// O_CREAT|O_EXCL|O_NOFOLLOW for files, after removing whatever was there. Hard links are made
/// from an fd resolved in the root, so their target cannot be outside it either.
/// </summary>
public sealed unsafe class LayerUnpacker : IDisposable
{
    private const int AT_SYMLINK_FOLLOW = 0x400, ENOTEMPTY = 39, EOPNOTSUPP = 95;
    private const string WhiteoutPrefix = ".wh.", OpaqueMarker = ".wh..wh..opq";

    private readonly UnpackOptions _opts;
    private readonly int _rootFd;
    private readonly string _rootReal;
    private readonly HashSet<string> _written = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TarEntry> _dirs = new(StringComparer.Ordinal);
    private readonly byte[] _buf = new byte[1 << 20];
    private string? _parentRel;
    private int _parentFd = -1;
    private int _entries, _skippedDevices, _skippedXattrs;

    public LayerUnpacker(string target, UnpackOptions opts)
    {
        _opts = opts;
        _rootFd = Fd.Open(target, Consts.O_PATH | Consts.O_DIRECTORY);
        _rootReal = InRoot.RealPath(_rootFd);
    }

    /// <summary>Decompresses (gzip/zstd/none, sniffed) and applies a layer blob; verifies its diff-id if given.</summary>
    public static UnpackResult Unpack(Stream blob, string target, UnpackOptions opts, Digest? expectedDiffId = null)
    {
        using var u = new LayerUnpacker(target, opts);
        using var decompressed = Compression.Decompress(blob, out _);
        using var tar = new HashingStream(decompressed, opts.MaxBytes, "layer", leaveOpen: true);
        u.Apply(tar);
        tar.Drain();
        blob.CopyTo(Stream.Null); // reach the compressed stream's end, where a verifying stream checks its digest
        var diffId = tar.Digest();
        if (expectedDiffId is { } e && e != diffId)
            throw new DigestMismatchException("layer (uncompressed)", e, diffId.ToString());
        return new UnpackResult(diffId.ToString(), tar.BytesRead, u._entries, u._skippedDevices, u._skippedXattrs);
    }

    /// <summary>Applies every entry of an uncompressed tar stream.</summary>
    public void Apply(Stream tar)
    {
        using (var reader = new TarReader(tar, leaveOpen: true))
        {
            while (reader.GetNextEntry(copyData: false) is { } entry)
            {
                _entries++;
                ApplyEntry(entry);
            }
        }
        FixDirectories();
    }

    private void ApplyEntry(TarEntry entry)
    {
        if (entry.EntryType is TarEntryType.GlobalExtendedAttributes) return;
        var rel = TarPath.Normalize(entry.Name);
        if (rel.Length == 0) return; // "./": the target itself belongs to the caller
        var (parent, name) = TarPath.Split(rel);
        if (name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            Whiteout(parent, name);
            return;
        }
        int pfd = Parent(parent);
        var existing = TypeAt(pfd, name);
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                if (existing != Consts.S_IFDIR)
                {
                    if (existing != 0) RemoveAt(pfd, name);
                    Check(At.mkdirat(pfd, name, 0x1c0), "mkdir", rel);
                }
                _dirs[rel] = entry;
                break;
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                if (existing != 0) RemoveAt(pfd, name);
                WriteFile(pfd, name, rel, entry);
                break;
            case TarEntryType.SymbolicLink:
                if (existing != 0) RemoveAt(pfd, name);
                if (entry.LinkName.Contains('\0')) throw new ImageFormatException($"{rel}: link target contains a NUL byte");
                Check(At.symlinkat(entry.LinkName, pfd, name), "symlink", rel);
                ForgetParent(); // a link may now stand where a cached parent path went
                SetMetadataAt(pfd, name, rel, entry);
                break;
            case TarEntryType.HardLink:
                HardLink(pfd, name, rel, entry, existing);
                break;
            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice:
                if (!_opts.CreateDevices) { _skippedDevices++; return; }
                if (existing != 0) RemoveAt(pfd, name);
                uint kind = entry.EntryType == TarEntryType.CharacterDevice ? Consts.S_IFCHR : Consts.S_IFBLK;
                var pe = (PosixTarEntry)entry;
                Check(At.mknodat(pfd, name, kind | Mode(entry), MakeDev((uint)pe.DeviceMajor, (uint)pe.DeviceMinor)), "mknod", rel);
                SetMetadataAt(pfd, name, rel, entry);
                break;
            case TarEntryType.Fifo:
                if (existing != 0) RemoveAt(pfd, name);
                Check(At.mknodat(pfd, name, Consts.S_IFIFO | Mode(entry), 0), "mkfifo", rel);
                SetMetadataAt(pfd, name, rel, entry);
                break;
            case TarEntryType.SparseFile:
                throw new ImageFormatException($"{rel}: GNU sparse files are not supported in layers");
            default:
                return; // PAX/GNU metadata entries are folded into the next entry by TarReader
        }
        _written.Add(rel);
    }

    private void WriteFile(int pfd, string name, string rel, TarEntry entry)
    {
        int fd = At.openat(pfd, name, Consts.O_CREAT | Consts.O_EXCL | Consts.O_WRONLY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, 0x180);
        if (fd < 0) throw LinuxException.Last("create", rel);
        try
        {
            if (entry.DataStream is { } data)
            {
                int n;
                while ((n = data.Read(_buf)) > 0) Fd.WriteAll(fd, _buf.AsSpan(0, n), rel);
            }
            SetMetadataFd(fd, rel, entry);
        }
        finally { LibC.close(fd); }
    }

    private void HardLink(int pfd, string name, string rel, TarEntry entry, uint existing)
    {
        var target = TarPath.Normalize(entry.LinkName);
        if (target.Length == 0) throw new ImageFormatException($"{rel}: hard link without a target");
        if (target == rel) return;
        // The link's source is resolved inside the root too: "../../etc/shadow" or "/etc/shadow"
        // name a file in the target, never the host's.
        int tfd = InRoot.TryOpen(_rootFd, target, Consts.O_PATH | Consts.O_NOFOLLOW, 0, false, out int err);
        if (tfd < 0) throw new LinuxException($"hard link {rel}: open its target", target, err);
        try
        {
            var st = FileStat.Of(tfd, target);
            if (st.IsDirectory) throw new ImageFormatException($"{rel}: hard link to a directory ({target})");
            CheckInside(tfd, target);
            if (existing != 0) RemoveAt(pfd, name);
            Check(At.linkat(Consts.AT_FDCWD, $"/proc/self/fd/{tfd}", pfd, name, AT_SYMLINK_FOLLOW), "link", rel);
        }
        finally { LibC.close(tfd); }
    }

    private void Whiteout(string parent, string name)
    {
        if (name.StartsWith(".wh..wh.", StringComparison.Ordinal) && name != OpaqueMarker) return; // aufs metadata (.wh..wh.plnk)
        int pfd;
        if (_opts.Whiteouts == WhiteoutMode.Overlay) pfd = Parent(parent);
        else
        {
            int fd = InRoot.TryOpen(_rootFd, parent, Consts.O_PATH | Consts.O_DIRECTORY, 0, false, out _);
            if (fd < 0) return; // nothing below to hide
            LibC.close(fd);
            pfd = Parent(parent);
        }
        if (name == OpaqueMarker)
        {
            if (_opts.Whiteouts == WhiteoutMode.Overlay)
            {
                int dfd = At.openat(pfd, ".", Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_CLOEXEC, 0);
                if (dfd < 0) throw LinuxException.Last("open", parent);
                try
                {
                    fixed (byte* k = CString.Of("trusted.overlay.opaque"))
                    fixed (byte* v = "y"u8)
                        Check(LibC.fsetxattr(dfd, k, v, 1, 0), "set trusted.overlay.opaque on", parent);
                }
                finally { LibC.close(dfd); }
                return;
            }
            // Opaque: hide everything from lower layers, keep what this layer already put here.
            foreach (var child in ListAt(pfd, parent))
                if (!_written.Contains(parent.Length == 0 ? child : $"{parent}/{child}")) RemoveAt(pfd, child);
            return;
        }
        var hidden = name[WhiteoutPrefix.Length..];
        if (hidden is "" or "." or ".." || hidden.Contains('/')) return;
        if (TypeAt(pfd, hidden) != 0) RemoveAt(pfd, hidden);
        if (_opts.Whiteouts == WhiteoutMode.Overlay)
            Check(At.mknodat(pfd, hidden, Consts.S_IFCHR, 0), "mknod whiteout", parent.Length == 0 ? hidden : $"{parent}/{hidden}");
    }

    /// <summary>Directories get their final mode, owner and mtime last: their children changed the mtime.</summary>
    private void FixDirectories()
    {
        foreach (var (rel, entry) in _dirs.OrderByDescending(d => d.Key.Count(c => c == '/')))
        {
            int fd = InRoot.TryOpen(_rootFd, rel, Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_NOFOLLOW, 0, false, out _);
            if (fd < 0) continue; // replaced by a later entry
            try { SetMetadataFd(fd, rel, entry); }
            finally { LibC.close(fd); }
        }
    }

    private void SetMetadataFd(int fd, string rel, TarEntry entry)
    {
        if (_opts.PreserveOwnership) Check(LibC.fchown(fd, (uint)entry.Uid, (uint)entry.Gid), "chown", rel);
        Check(LibC.fchmod(fd, Mode(entry)), "chmod", rel); // after chown, which clears set-id bits
        if (entry is PaxTarEntry pax) SetXattrs(fd, rel, pax);
        long* times = stackalloc long[4];
        Times(entry, times);
        Check(LibC.futimens(fd, times), "set times of", rel);
    }

    private void SetMetadataAt(int pfd, string name, string rel, TarEntry entry)
    {
        if (_opts.PreserveOwnership)
            Check(At.fchownat(pfd, name, (uint)entry.Uid, (uint)entry.Gid, Consts.AT_SYMLINK_NOFOLLOW), "chown", rel);
        long* times = stackalloc long[4];
        Times(entry, times);
        Check(At.utimensat(pfd, name, times, Consts.AT_SYMLINK_NOFOLLOW), "set times of", rel);
    }

    private void SetXattrs(int fd, string rel, PaxTarEntry pax)
    {
        foreach (var (key, value) in pax.ExtendedAttributes)
        {
            if (!key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal)) continue;
            // System.Formats.Tar hands PAX values over as UTF-8 text: a binary value (security.capability)
            // arrives damaged. Skip it rather than write wrong bytes.
            if (value.Contains('\uFFFD')) { _skippedXattrs++; continue; }
            var bytes = System.Text.Encoding.UTF8.GetBytes(value);
            fixed (byte* k = CString.Of(key["SCHILY.xattr.".Length..]))
            fixed (byte* v = bytes)
            {
                if (LibC.fsetxattr(fd, k, v, bytes.Length, 0) == 0) continue;
                int e = Marshal.GetLastPInvokeError();
                if (e is Consts.EPERM or EOPNOTSUPP or Consts.EACCES) { _skippedXattrs++; continue; }
                throw new LinuxException("set xattr " + key["SCHILY.xattr.".Length..] + " on", rel, e);
            }
        }
    }

    private static void Times(TarEntry entry, long* t)
    {
        var m = entry.ModificationTime;
        long sec = m.ToUnixTimeSeconds();
        long nsec = (m.UtcTicks % TimeSpan.TicksPerSecond) * 100;
        if (nsec < 0) nsec = 0;
        t[0] = sec; t[1] = nsec; t[2] = sec; t[3] = nsec;
    }

    private static uint Mode(TarEntry e) => (uint)e.Mode & 0xfff;

    private static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xfff) << 8) | (minor & 0xff) | ((ulong)(minor & ~0xffu) << 12) | ((ulong)(major & ~0xfffu) << 32);

    /// <summary>The parent directory, created as needed and resolved inside the root; cached for runs of siblings.</summary>
    private int Parent(string parent)
    {
        if (_parentRel == parent && _parentFd >= 0) return _parentFd;
        if (_parentFd >= 0) LibC.close(_parentFd);
        _parentFd = -1;
        _parentFd = InRoot.MkdirAll(_rootFd, parent, 0x1ed);
        CheckInside(_parentFd, parent);
        _parentRel = parent;
        return _parentFd;
    }

    /// <summary>The cached fd stays open (a caller may hold it) but is not reused for the next entry.</summary>
    private void ForgetParent() => _parentRel = null;

    /// <summary>Defence in depth: what the kernel resolved must be the root or below it.</summary>
    private void CheckInside(int fd, string rel)
    {
        var real = InRoot.RealPath(fd);
        if (!InRoot.IsWithin(_rootReal, real))
            throw new ImageFormatException($"{rel}: resolves to {real}, outside the target {_rootReal}; refusing");
    }

    /// <summary>The file type at dirfd/name without following a link; 0 when nothing is there.</summary>
    private static uint TypeAt(int dirfd, string name)
    {
        var buf = stackalloc byte[256];
        if (At.statx(dirfd, name, Consts.AT_SYMLINK_NOFOLLOW, 1, buf) != 0)
        {
            int e = Marshal.GetLastPInvokeError();
            if (e is Consts.ENOENT) return 0;
            throw new LinuxException("stat", name, e);
        }
        return *(ushort*)(buf + 28) & Consts.S_IFMT;
    }

    /// <summary>Removes dirfd/name, recursively for a directory, without following links.</summary>
    private void RemoveAt(int dirfd, string name)
    {
        ForgetParent(); // the cached parent may be inside what goes
        if (At.unlinkat(dirfd, name, 0) == 0) return;
        int e = Marshal.GetLastPInvokeError();
        if (e == Consts.ENOENT) return;
        if (e != Consts.EISDIR && e != Consts.EPERM) throw new LinuxException("remove", name, e);
        if (At.unlinkat(dirfd, name, Consts.AT_REMOVEDIR) == 0) return;
        e = Marshal.GetLastPInvokeError();
        if (e is not (ENOTEMPTY or Consts.EEXIST)) throw new LinuxException("remove directory", name, e);
        int dfd = At.openat(dirfd, name, Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, 0);
        if (dfd < 0) throw LinuxException.Last("open", name);
        try
        {
            foreach (var child in ListAt(dfd, name)) RemoveAt(dfd, child);
        }
        finally { LibC.close(dfd); }
        Check(At.unlinkat(dirfd, name, Consts.AT_REMOVEDIR), "remove directory", name);
    }

    /// <summary>Names in a directory given by fd (read through /proc/self/fd, so no path is re-walked).</summary>
    private static List<string> ListAt(int dirfd, string what)
    {
        try
        {
            return Directory.EnumerateFileSystemEntries($"/proc/self/fd/{dirfd}").Select(p => Path.GetFileName(p)).ToList();
        }
        catch (IOException e)
        {
            throw new ImageFormatException($"list {what}: {e.Message}");
        }
    }


    private static void Check(int rc, string op, string subject)
    {
        if (rc != 0) throw LinuxException.Last(op, subject);
    }

    public void Dispose()
    {
        if (_parentFd >= 0) LibC.close(_parentFd);
        _parentFd = -1;
        LibC.close(_rootFd);
    }

    /// <summary>The *at calls with string names.</summary>
    private static class At
    {
        public static int mkdirat(int d, string n, uint mode) { fixed (byte* p = CString.Of(n)) return LibC.mkdirat(d, p, mode); }
        public static int symlinkat(string t, int d, string n) { fixed (byte* a = CString.Of(t)) fixed (byte* p = CString.Of(n)) return LibC.symlinkat(a, d, p); }
        public static int mknodat(int d, string n, uint mode, ulong dev) { fixed (byte* p = CString.Of(n)) return LibC.mknodat(d, p, mode, dev); }
        public static int openat(int d, string n, int flags, uint mode) { fixed (byte* p = CString.Of(n)) return LibC.openat(d, p, flags, mode); }
        public static int fchownat(int d, string n, uint u, uint g, int flags) { fixed (byte* p = CString.Of(n)) return LibC.fchownat(d, p, u, g, flags); }
        public static int utimensat(int d, string n, long* t, int flags) { fixed (byte* p = CString.Of(n)) return LibC.utimensat(d, p, t, flags); }
        public static int statx(int d, string n, int flags, uint mask, byte* buf) { fixed (byte* p = CString.Of(n)) return LibC.statx(d, p, flags, mask, buf); }
        public static int unlinkat(int d, string n, int flags) { fixed (byte* p = CString.Of(n)) return LibC.unlinkat(d, p, flags); }
        public static int linkat(int od, string o, int nd, string n, int flags) { fixed (byte* a = CString.Of(o)) fixed (byte* p = CString.Of(n)) return LibC.linkat(od, a, nd, p, flags); }
    }
}

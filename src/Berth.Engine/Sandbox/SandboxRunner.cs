using Berth.Engine.Containers;
using System.Runtime.InteropServices;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Processes;

namespace Berth.Engine.Sandbox;

/// <summary>
/// Runs one program in a jail and returns its verdict: `berth sandbox run` (a fresh
/// <see cref="SandboxSlot"/>) and every job of `berth sandbox batch` (a slot reused by one worker)
/// go through this one code path, so whatever the jail does (spec, limits, seccomp, verdict
/// rules) applies to both. The phases of a run are the methods of <see cref="SandboxJob"/>.
/// </summary>
public static class SandboxRunner
{
    private const int FDupfdCloexec = 1030;
    public const string Root = "/run/berth/sandbox";
    public static string RunsRoot => Path.Combine(Root, "runs");

    /// <summary>
    /// Jails are built by the jail stub (docs/adr/0016), so berth's own binary never runs in one and
    /// needs no protected re-exec; false off x86_64 or with BERTH_SANDBOX_JAIL=runtime (the runtime's init).
    /// </summary>
    public static bool StubJail =>
        JailStub.Supported && Environment.GetEnvironmentVariable("BERTH_SANDBOX_JAIL") != "runtime";

    /// <summary>Batch slots build a template jail their jobs join (docs/adr/0016); BERTH_SANDBOX_TEMPLATE=0: every job builds its own.</summary>
    public static bool Templates => StubJail && Environment.GetEnvironmentVariable("BERTH_SANDBOX_TEMPLATE") != "0";

    /// <summary>
    /// A run in a slot of sandbox pool <paramref name="pool"/> (<see cref="SandboxPool"/>) when one is
    /// free and the run can use it (not with --image: a pool's slots keep the host-directory root);
    /// else in a fresh jail.
    /// </summary>
    public static Verdict Run(SandboxOptions o, string? pool)
    {
        if (pool is null || o.Image is not null || !Templates) return Run(o);
        Berth.Runtime.Logging.Timing.Mark("pool acquire");
        using var lease = SandboxPool.TryAcquire(pool);
        if (lease is null) return Run(o);
        Berth.Runtime.Logging.Timing.Mark("pool acquired");
        var v = Run(o, lease.Slot);
        lease.Release(v);
        Berth.Runtime.Logging.Timing.Mark("pool released");
        return v;
    }

    public static Verdict Run(SandboxOptions o)
    {
        var slot = SandboxSlot.Fresh();
        Verdict v;
        try { v = Run(o, slot); }
        catch
        {
            try { slot.Dispose(); } catch (Exception e) when (IsCleanupError(e)) { }
            throw;
        }
        try { slot.Dispose(); }
        catch (Exception e) when (IsCleanupError(e)) { Fail(v, $"cleanup: {e.Message}"); }
        return v;
    }

    private static bool IsCleanupError(Exception e) =>
        e is IOException or Berth.Linux.Cgroups.CgroupException or UnauthorizedAccessException;

    public static Verdict Run(SandboxOptions o, SandboxSlot slot)
    {
        if (o.Command.Count == 0) throw new EngineError("sandbox run needs a program after --");
        return new SandboxJob(o, slot).Execute();
    }

    /// <summary>The reaper's "RAW ORPHANS" line; null when it wrote none (the jail was killed).</summary>
    internal static (int Raw, int Orphans)? ReadStatus(int fd)
    {
        Span<byte> buf = stackalloc byte[64];
        int n = 0;
        while (n < buf.Length)
        {
            int r;
            try { r = Fd.Read(fd, buf[n..]); }
            catch (LinuxException) { break; } // EAGAIN: nothing (more) was written
            if (r <= 0) break;
            n += r;
        }
        // The jail stub's reaper: {raw, orphans, main seen, magic}, four little-endian u32.
        if (n == 16 && System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(buf[12..]) == JailStub.ReaperMagic)
            return System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(buf[8..]) == 1
                ? (System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(buf), System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(buf[4..]))
                : null;
        // berth's own reaper (the runtime's init): "RAW ORPHANS\n".
        var parts = System.Text.Encoding.ASCII.GetString(buf[..n]).Trim().Split(' ');
        if (parts.Length == 2 && int.TryParse(parts[0], out var raw) && int.TryParse(parts[1], out var orphans)) return (raw, orphans);
        return null;
    }

    /// <summary>cgroup v1 without oom_kill in memory.oom_control: a failcnt with a SIGKILLed program counts as ML.</summary>
    internal static ulong ReadFailcntOom(string memDir, ExitStatus status)
    {
        try
        {
            var n = ulong.Parse(File.ReadAllText(Path.Combine(memDir, "memory.failcnt")).Trim());
            return n > 0 && status.Signal == Signals.SIGKILL ? 1UL : 0UL;
        }
        catch (Exception e) when (e is IOException or FormatException) { return 0; }
    }

    internal static void Fail(Verdict v, string message)
    {
        v.Status = "XX";
        v.Message = v.Message.Length == 0 ? message : v.Message + "; " + message;
    }

    /// <summary>Mount points for the system dirs; a host symlink (merged /usr: /bin -> usr/bin) becomes the same symlink.</summary>
    internal static void MakeRootfs(string rootfs)
    {
        foreach (var d in SandboxSpec.SystemDirs)
        {
            var target = Path.Combine(rootfs, d.TrimStart('/'));
            if (new FileInfo(d).LinkTarget is { } link) File.CreateSymbolicLink(target, link);
            else if (Directory.Exists(d)) Directory.CreateDirectory(target);
        }
        foreach (var d in new[] { "box", "tmp", "proc", "dev", "sys" }) Directory.CreateDirectory(Path.Combine(rootfs, d));
    }

    /// <summary>
    /// What a box directory holds, as a string that changes when any entry is added, removed, replaced
    /// or modified (path, mode, size, device, inode, mtime and ctime of every entry, recursively).
    /// </summary>
    internal static string Fingerprint(string dir)
    {
        var sb = new System.Text.StringBuilder(dir).Append('|').Append(StatKey(StatX.Of(dir))).Append('\n');
        WalkTree(dir, (rel, st) => sb.Append(rel).Append('|').Append(StatKey(st)).Append('\n'), sorted: true);
        return sb.ToString();
    }

    /// <summary>
    /// Every entry under <paramref name="dir"/> (a symlink is an entry, never followed), depth first, with its
    /// path relative to <paramref name="dir"/> and its statx; in name order when <paramref name="sorted"/>.
    /// Through fds (getdents64, statx, openat), not FileSystemInfo objects, whose setup cost more than a small
    /// box's walk. More than 64 levels is an IOException.
    /// </summary>
    internal static void WalkTree(string dir, Action<string, StatX> visit, bool sorted)
    {
        int fd = Fd.Open(dir, Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_CLOEXEC);
        try { WalkTree(fd, dir, "", visit, sorted, 0); }
        finally { Fd.Close(fd); }
    }

    private static unsafe void WalkTree(int fd, string path, string rel, Action<string, StatX> visit, bool sorted, int depth)
    {
        if (depth > 64) throw new IOException($"{path}: nested more than 64 levels");
        var entries = DirTree.Entries(fd) ?? throw LinuxException.Last("getdents64", path);
        if (sorted) entries.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        foreach (var (name, _) in entries)
        {
            if (!StatX.TryAt(fd, name, out var st, out int err)) throw new LinuxException("stat", Path.Combine(path, name), err);
            visit(rel + name, st);
            if (!st.IsDirectory) continue;
            int sub;
            fixed (byte* n = CString.Of(name)) sub = LibC.openat(fd, n, Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, 0);
            if (sub < 0) throw LinuxException.Last("open", Path.Combine(path, name));
            try { WalkTree(sub, Path.Combine(path, name), rel + name + "/", visit, sorted, depth + 1); }
            finally { Fd.Close(sub); }
        }
    }

    /// <summary>
    /// <see cref="Fingerprint"/> as a short key (64-bit FNV-1a and the length): what a kept box records of
    /// its DIR, in memory or in a sandbox pool's state. Not a defence against the caller, who owns DIR.
    /// </summary>
    internal static string FingerprintKey(string dir)
    {
        var f = Fingerprint(dir);
        ulong h = 14695981039346656037UL;
        foreach (char c in f) { h ^= c; h *= 1099511628211UL; }
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{h:x16}-{f.Length}");
    }

    /// <summary>mode, size, device, inode, mtime and ctime (which no one can set back) of a path, not following a symlink.</summary>
    private static string StatKey(StatX st)
    {
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{st.Mode}|{st.Size}|{st.Dev}|{st.Ino}|{st.MtimeSec}.{st.MtimeNsec}|{st.CtimeSec}.{st.CtimeNsec}");
    }

    /// <summary>
    /// Copies the caller's box content (regular files, directories, symlinks; fifos, sockets and devices
    /// are skipped) and hands files and directories to the sandbox uid (symlinks stay root's). Done with
    /// fds (getdents64, statx, openat, sendfile), not FileSystemInfo objects: for a one-file box those
    /// cost about as much as the copy itself.
    /// </summary>
    internal static void CopyTree(string from, string to)
    {
        int src = Fd.Open(from, Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_CLOEXEC);
        try
        {
            int dst = Fd.Open(to, Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC);
            try { CopyDir(src, dst, from, to, 0); }
            finally { Fd.Close(dst); }
        }
        finally { Fd.Close(src); }
    }

    private static unsafe void CopyDir(int src, int dst, string from, string to, int depth)
    {
        if (depth > 64) throw new EngineError($"--box {from}: nested more than 64 levels");
        var entries = DirTree.Entries(src) ?? throw LinuxException.Last("getdents64", from);
        foreach (var (name, _) in entries)
        {
            if (!StatX.TryAt(src, name, out var st, out int err)) throw new LinuxException("stat", Path.Combine(from, name), err);
            fixed (byte* n = CString.Of(name))
            {
                if (st.IsSymlink)
                {
                    fixed (byte* target = CString.Of(StatX.ReadLinkAt(src, name, Path.Combine(from, name))))
                        if (LibC.symlinkat(target, dst, n) != 0) throw LinuxException.Last("symlink", Path.Combine(to, name));
                }
                else if (st.IsDirectory)
                {
                    if (LibC.mkdirat(dst, n, 0x1c0 /* 0700 until chmod */) != 0) throw LinuxException.Last("mkdir", Path.Combine(to, name));
                    int s2 = LibC.openat(src, n, Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, 0);
                    if (s2 < 0) throw LinuxException.Last("open", Path.Combine(from, name));
                    int d2 = LibC.openat(dst, n, Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, 0);
                    try
                    {
                        if (d2 < 0) throw LinuxException.Last("open", Path.Combine(to, name));
                        if (LibC.fchmod(d2, st.Permissions) != 0 || LibC.fchown(d2, SandboxOptions.Uid, SandboxOptions.Gid) != 0)
                            throw LinuxException.Last("chmod/chown", Path.Combine(to, name));
                        CopyDir(s2, d2, Path.Combine(from, name), Path.Combine(to, name), depth + 1);
                    }
                    finally { Fd.Close(s2); Fd.Close(d2); }
                }
                else if (st.IsRegular) CopyFile(src, dst, n, st.Permissions, Path.Combine(from, name));
            }
        }
    }

    /// <summary>A regular file's bytes by sendfile(2) (page cache to tmpfs in the kernel, no trip through a buffer of ours), mode kept, owned by the sandbox uid.</summary>
    private static unsafe void CopyFile(int srcDir, int dstDir, byte* name, uint mode, string what)
    {
        int src = LibC.openat(srcDir, name, Consts.O_RDONLY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, 0);
        if (src < 0) throw LinuxException.Last("open", what);
        try
        {
            int dst = LibC.openat(dstDir, name, Consts.O_WRONLY | Consts.O_CREAT | Consts.O_EXCL | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, mode & 0xfff);
            if (dst < 0) throw LinuxException.Last("create", what);
            try
            {
                if (LibC.fchmod(dst, mode & 0xfff) != 0 || LibC.fchown(dst, SandboxOptions.Uid, SandboxOptions.Gid) != 0)
                    throw LinuxException.Last("chmod/chown", what);
                while (true)
                {
                    long n = LibC.sendfile(dst, src, null, 1 << 30);
                    if (n < 0)
                    {
                        int e = Marshal.GetLastPInvokeError();
                        if (e == Consts.EINTR) continue;
                        throw new LinuxException("copy", what, e);
                    }
                    if (n == 0) break;
                }
            }
            finally { Fd.Close(dst); }
        }
        finally { Fd.Close(src); }
    }

    /// <summary>
    /// --keep-output: the box's final files and directories replace the caller's DIR content. Runs
    /// after every process of the jail is dead; symlinks, fifos and devices the program made are
    /// skipped, and a program-made path never becomes a symlink we follow (only regular files are opened).
    /// </summary>
    internal static void CopyBack(string box, string dest)
    {
        foreach (var entry in new DirectoryInfo(dest).EnumerateFileSystemInfos())
        {
            if (entry is DirectoryInfo d && d.LinkTarget is null) d.Delete(recursive: true);
            else entry.Delete();
        }
        CopyOut(box, dest);
    }

    internal static void CopyOut(string from, string to)
    {
        foreach (var entry in new DirectoryInfo(from).EnumerateFileSystemInfos())
        {
            if (entry.LinkTarget is not null) continue;
            var target = Path.Combine(to, entry.Name);
            if (entry is DirectoryInfo d)
            {
                Directory.CreateDirectory(target);
                CopyOut(d.FullName, target);
            }
            else if (entry is FileInfo f && (f.Attributes & (FileAttributes.Device | FileAttributes.ReparsePoint)) == 0
                     && (f.UnixFileMode & (UnixFileMode)0xE00) == 0)
            {
                int src = Fd.Open(f.FullName, Consts.O_RDONLY | Consts.O_NOFOLLOW | Consts.O_NONBLOCK | Consts.O_CLOEXEC);
                using var input = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(src, ownsHandle: true), FileAccess.Read);
                if (!input.CanSeek) continue; // a fifo or socket
                using var output = new FileStream(target, FileMode.CreateNew, FileAccess.Write);
                input.CopyTo(output);
            }
        }
    }

    internal static void Chown(string path)
    {
        int fd = Fd.Open(path, Consts.O_RDONLY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC);
        try
        {
            if (LibC.fchown(fd, SandboxOptions.Uid, SandboxOptions.Gid) != 0)
                throw new LinuxException("fchown", path, System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        }
        finally { Fd.Close(fd); }
    }

    /// <summary>A stdio file named by its path inside the box (no "..": the box is the only place it may be).</summary>
    internal static int OpenInBox(string box, string path, bool input)
    {
        var rel = path.StartsWith("/box/", StringComparison.Ordinal) ? path[5..] : path.TrimStart('/');
        if (rel.Length == 0 || rel.Split('/').Contains("..")) throw new EngineError($"{path}: must name a file in the box");
        var host = Path.Combine(box, rel);
        if (input) return Fd.Open(host, Consts.O_RDONLY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC);
        int fd = Fd.Open(host, Consts.O_WRONLY | Consts.O_CREAT | Consts.O_TRUNC | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, 0b110_100_100);
        if (LibC.fchown(fd, SandboxOptions.Uid, SandboxOptions.Gid) != 0)
        {
            int e = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            Fd.Close(fd);
            throw new LinuxException("fchown", host, e);
        }
        return fd;
    }

    internal static int Dup(int fd)
    {
        int r = LibC.fcntl(fd, FDupfdCloexec, 10);
        if (r < 0) throw new LinuxException("fcntl(F_DUPFD_CLOEXEC)", fd.ToString(), System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        return r;
    }

    internal static void Redirect(int from, int to)
    {
        if (LibC.dup3(from, to, 0) < 0)
            throw new LinuxException("dup3", to.ToString(), System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
    }
}

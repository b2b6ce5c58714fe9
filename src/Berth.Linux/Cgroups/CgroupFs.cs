using System.Runtime.InteropServices;
using System.Text;
using Berth.Linux.Interop;

namespace Berth.Linux.Cgroups;

/// <summary>
/// The file operations the managers make, behind a seam so tests can record their order
/// (write order matters: memsw before limit when raising, period before quota).
/// </summary>
internal interface ICgroupFs
{
    bool FileExists(string path);
    bool DirExists(string path);
    /// <summary>The file's content, or null if it does not exist.</summary>
    string? TryRead(string path);
    /// <summary>One write(2) of <paramref name="value"/>; throws a <see cref="CgroupException"/> naming file and value.</summary>
    void Write(string path, string value);
    /// <summary>
    /// One write(2) per value, in order, each to its file under <paramref name="dir"/> (device rules:
    /// the kernel parses one rule per write, and the order of allows and denies matters).
    /// </summary>
    void WriteInOrder(string dir, IEnumerable<(string File, string Value)> writes)
    {
        foreach (var (file, value) in writes) Write(Path.Combine(dir, file), value);
    }
    /// <summary>mkdir -p; throws a <see cref="CgroupException"/> naming the directory.</summary>
    void MkdirAll(string path);
    /// <summary>rmdir(2); 0 on success, else the errno.</summary>
    int Rmdir(string path);
    IEnumerable<string> SubDirectories(string path);
}

/// <summary>The real thing: libc calls, errors carrying errno and the object.</summary>
internal sealed unsafe class CgroupFs : ICgroupFs
{
    public static readonly CgroupFs Instance = new();

    public bool FileExists(string path) => File.Exists(path);

    public bool DirExists(string path) => Directory.Exists(path);

    public string? TryRead(string path)
    {
        int fd;
        fixed (byte* p = CString.Of(path)) fd = LibC.open(p, Consts.O_RDONLY | Consts.O_CLOEXEC, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Consts.ENOENT) return null;
            throw new CgroupException($"cgroup: open {path}: {LinuxException.Describe(errno)}", errno: errno);
        }
        try
        {
            const int Size = 4096;
            byte* buf = stackalloc byte[Size];
            var sb = new StringBuilder();
            while (true)
            {
                nint n = LibC.read(fd, buf, Size);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Consts.EINTR) continue;
                    throw new CgroupException($"cgroup: read {path}: {LinuxException.Describe(errno)}", errno: errno);
                }
                if (n == 0) break;
                sb.Append(Encoding.UTF8.GetString(buf, (int)n));
            }
            return sb.ToString();
        }
        finally { LibC.close(fd); }
    }

    public void Write(string path, string value)
    {
        int fd;
        fixed (byte* p = CString.Of(path)) fd = LibC.open(p, Consts.O_WRONLY | Consts.O_TRUNC | Consts.O_CLOEXEC, 0);
        if (fd < 0) throw WriteError(path, value, Marshal.GetLastPInvokeError());
        try { WriteOnce(fd, path, value); }
        finally { LibC.close(fd); }
    }

    /// <summary>As the interface's, with each file opened once (a device list is ~10 rules: 20 fewer opens and closes on cgroupfs).</summary>
    public void WriteInOrder(string dir, IEnumerable<(string File, string Value)> writes)
    {
        var open = new Dictionary<string, int>(StringComparer.Ordinal);
        try
        {
            foreach (var (file, value) in writes)
            {
                var path = Path.Combine(dir, file);
                if (!open.TryGetValue(file, out int fd))
                {
                    fixed (byte* p = CString.Of(path)) fd = LibC.open(p, Consts.O_WRONLY | Consts.O_CLOEXEC, 0);
                    if (fd < 0) throw WriteError(path, value, Marshal.GetLastPInvokeError());
                    open[file] = fd;
                }
                WriteOnce(fd, path, value);
            }
        }
        finally
        {
            foreach (var fd in open.Values) LibC.close(fd);
        }
    }

    /// <summary>cgroupfs wants the whole value in one write(2): a short write would be a different value.</summary>
    private static void WriteOnce(int fd, string path, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        while (true)
        {
            nint n;
            fixed (byte* b = bytes) n = LibC.write(fd, b, bytes.Length);
            if (n >= 0) return;
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Consts.EINTR) throw WriteError(path, value, errno);
        }
    }

    internal static CgroupException WriteError(string path, string value, int errno) =>
        new($"cgroup: write \"{value}\" to {path}: {LinuxException.Describe(errno)}", errno: errno);

    public void MkdirAll(string path)
    {
        // mkdir first: the parent (berth's) usually exists, and every stat on cgroupfs is a lookup
        // (a container's create makes 12 of these directories on a v1 host).
        fixed (byte* p = CString.Of(path))
        {
            if (LibC.mkdirat(Consts.AT_FDCWD, p, 0x1ed /* 0755 */) == 0) return;
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Consts.ENOENT)
            {
                var parent = System.IO.Path.GetDirectoryName(path);
                if (!string.IsNullOrEmpty(parent) && parent != path)
                {
                    MkdirAll(parent);
                    if (LibC.mkdirat(Consts.AT_FDCWD, p, 0x1ed) == 0) return;
                    errno = Marshal.GetLastPInvokeError();
                }
            }
            if (errno == Consts.EEXIST && Directory.Exists(path)) return;
            throw new CgroupException($"cgroup: mkdir {path}: {LinuxException.Describe(errno)}", errno: errno);
        }
    }

    public int Rmdir(string path)
    {
        fixed (byte* p = CString.Of(path))
            return LibC.unlinkat(Consts.AT_FDCWD, p, Consts.AT_REMOVEDIR) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    public IEnumerable<string> SubDirectories(string path)
    {
        try { return Directory.GetDirectories(path); }
        catch (DirectoryNotFoundException) { return []; }
    }
}

using Berth.Linux.Interop;

namespace Berth.Linux.Cgroups;

/// <summary>Operations both managers make on a cgroup directory tree.</summary>
internal static class CgroupTree
{
    /// <summary>How long Destroy keeps retrying EBUSY (processes still exiting, a zombie's css being released).</summary>
    internal static TimeSpan RemoveTimeout = TimeSpan.FromSeconds(2);

    /// <summary>rmdir <paramref name="dir"/> and its descendants, deepest first; absent is fine.</summary>
    public static void Remove(ICgroupFs fs, string dir)
    {
        // The usual case, a leaf with no tasks left, goes in one rmdir (delete is hot: 12 hierarchies on v1).
        int first = fs.Rmdir(dir);
        if (first == 0 || first == Consts.ENOENT) return;
        if (!fs.DirExists(dir)) return;
        foreach (var child in fs.SubDirectories(dir)) Remove(fs, child);
        var deadline = DateTime.UtcNow + RemoveTimeout;
        int delayMs = 10;
        while (true)
        {
            int errno = fs.Rmdir(dir);
            if (errno == 0 || errno == Consts.ENOENT) return;
            if (errno != Consts.EBUSY || DateTime.UtcNow >= deadline)
                throw new CgroupException($"cgroup: rmdir {dir}: {LinuxException.Describe(errno)}", errno: errno);
            Thread.Sleep(delayMs);
            delayMs = Math.Min(delayMs * 2, 200);
        }
    }

    /// <summary>Every pid in cgroup.procs of <paramref name="dir"/> and its descendants.</summary>
    public static List<int> Pids(ICgroupFs fs, string dir)
    {
        var pids = new List<int>();
        Collect(fs, dir, pids);
        return pids;
    }

    private static void Collect(ICgroupFs fs, string dir, List<int> pids)
    {
        var text = fs.TryRead(Path.Combine(dir, "cgroup.procs"));
        if (text is null) return;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            if (int.TryParse(line, out var pid)) pids.Add(pid);
        foreach (var child in fs.SubDirectories(dir)) Collect(fs, child, pids);
    }

    /// <summary>A file holding one number ("max" reads as null).</summary>
    public static ulong? ReadNumber(ICgroupFs fs, string file)
    {
        var text = fs.TryRead(file)?.Trim();
        return ulong.TryParse(text, out var v) ? v : null;
    }

    /// <summary>The value of <paramref name="key"/> in a flat-keyed file ("key value" lines: memory.events, cpu.stat).</summary>
    public static ulong? ReadKey(ICgroupFs fs, string file, string key)
    {
        var text = fs.TryRead(file);
        if (text is null) return null;
        foreach (var line in text.Split('\n'))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && parts[0] == key && ulong.TryParse(parts[1], out var v)) return v;
        }
        return null;
    }

    /// <summary>Polls until <paramref name="done"/> is true; rewrites via <paramref name="retry"/> now and then.</summary>
    public static bool WaitFor(Func<bool> done, Action? retry, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        int attempt = 0;
        while (true)
        {
            if (done()) return true;
            if (DateTime.UtcNow >= deadline) return false;
            Thread.Sleep(attempt < 10 ? 1 : 10);
            if (++attempt % 25 == 0) retry?.Invoke();
        }
    }

    /// <summary>"/a/b" -> ["a", "b"]; the path was validated by <see cref="Cgroups.Normalize"/>.</summary>
    public static string[] Segments(string path) => path.Split('/', StringSplitOptions.RemoveEmptyEntries);

    public static string Join(string root, string path) =>
        path == "/" ? root : root.TrimEnd('/') + "/" + path.TrimStart('/');
}

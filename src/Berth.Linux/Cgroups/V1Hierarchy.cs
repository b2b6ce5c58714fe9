namespace Berth.Linux.Cgroups;

/// <summary>One mounted v1 hierarchy: its root directory and the controllers bound to it.</summary>
internal sealed record V1Hierarchy(string Root, IReadOnlyList<string> Controllers)
{
    /// <summary>
    /// The v1 hierarchies under <paramref name="mountRoot"/>, one per real directory: a comount
    /// "cpu,cpuacct" with "cpu" and "cpuacct" symlinks to it is one hierarchy with both names;
    /// "systemd" (name=systemd) is a hierarchy without controllers that is still joined.
    /// A directory holding cgroup.controllers is a cgroup2 mount (hybrid hosts' "unified").
    /// </summary>
    public static (List<V1Hierarchy> Hierarchies, string? Unified) Discover(string mountRoot, ICgroupFs fs)
    {
        var names = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        string? unified = null;
        IEnumerable<string> entries;
        try { entries = Directory.EnumerateFileSystemEntries(mountRoot).Order(StringComparer.Ordinal).ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CgroupException($"cgroup: cannot list {mountRoot}: {e.Message}", e);
        }
        foreach (var entry in entries)
        {
            if (!fs.DirExists(entry)) continue; // stray files, dangling links
            var dir = entry;
            var info = new DirectoryInfo(entry);
            if (info.LinkTarget is not null)
            {
                var target = info.ResolveLinkTarget(returnFinalTarget: true);
                if (target is null) continue;
                dir = Path.GetFullPath(target.FullName);
            }
            if (fs.FileExists(Path.Combine(dir, "cgroup.controllers")))
            {
                unified ??= dir;
                continue;
            }
            if (!names.TryGetValue(dir, out var set)) names[dir] = set = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var n in Path.GetFileName(dir).Split(',', StringSplitOptions.RemoveEmptyEntries)) set.Add(Strip(n));
            foreach (var n in Path.GetFileName(entry).Split(',', StringSplitOptions.RemoveEmptyEntries)) set.Add(Strip(n));
        }
        var list = names.Select(kv => new V1Hierarchy(kv.Key, kv.Value.ToList())).ToList();
        return (list, unified);
    }

    // "name=systemd" is how /proc/self/cgroup spells it; the mount directory is usually "systemd".
    private static string Strip(string n) => n.StartsWith("name=", StringComparison.Ordinal) ? n[5..] : n;
}

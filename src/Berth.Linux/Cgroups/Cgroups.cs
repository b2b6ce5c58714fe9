namespace Berth.Linux.Cgroups;

/// <summary>Picks the manager for the host's cgroup layout.</summary>
public static partial class Cgroups
{
    /// <summary>
    /// The manager for <paramref name="path"/> (relative to the hierarchy roots) under
    /// <paramref name="mountRoot"/> (normally /sys/fs/cgroup; tests point it at a temp tree).
    /// v2 when <c>mountRoot/cgroup.controllers</c> exists; otherwise v1, one hierarchy per
    /// subdirectory (a cgroup2 mount among them, like a hybrid host's <c>unified</c>, is joined best effort).
    /// </summary>
    public static ICgroupManager For(string path, string mountRoot = "/sys/fs/cgroup")
    {
        // The host's hierarchies do not change under a running command: discovered once per process.
        var (v2, hierarchies, unified) = Discovered(mountRoot);
        var normalized = Normalize(path);
        if (v2) return new CgroupV2Manager(normalized, mountRoot, CgroupFs.Instance);
        if (hierarchies.Count == 0)
            throw new CgroupException($"cgroup: no cgroup hierarchies under {mountRoot} (neither cgroup2 nor v1 controllers are mounted)");
        return new CgroupV1Manager(normalized, hierarchies, unified, CgroupFs.Instance);
    }

    private static readonly Dictionary<string, (bool V2, List<V1Hierarchy> Hierarchies, string? Unified)> s_discovered = [];

    private static (bool V2, List<V1Hierarchy> Hierarchies, string? Unified) Discovered(string mountRoot)
    {
        lock (s_discovered)
            if (s_discovered.TryGetValue(mountRoot, out var known)) return known;
        var fs = CgroupFs.Instance;
        (bool, List<V1Hierarchy>, string?) found = fs.FileExists(Path.Combine(mountRoot, "cgroup.controllers"))
            ? (true, [], null)
            : V1Hierarchy.Discover(mountRoot, fs) is var (h, u) ? (false, h, u) : default;
        // Only a usable result is kept: a host whose cgroups get mounted later is seen by the next call.
        if (found.Item1 || found.Item2.Count > 0)
            lock (s_discovered) s_discovered[mountRoot] = found;
        return found;
    }

    internal static ICgroupManager For(string path, string mountRoot, ICgroupFs fs)
    {
        var normalized = Normalize(path);
        if (fs.FileExists(Path.Combine(mountRoot, "cgroup.controllers")))
            return new CgroupV2Manager(normalized, mountRoot, fs);
        var (hierarchies, unified) = V1Hierarchy.Discover(mountRoot, fs);
        if (hierarchies.Count == 0)
            throw new CgroupException($"cgroup: no cgroup hierarchies under {mountRoot} (neither cgroup2 nor v1 controllers are mounted)");
        return new CgroupV1Manager(normalized, hierarchies, unified, fs);
    }

    /// <summary>
    /// Like <see cref="For(string, string)"/>, but on v1 only the hierarchies that carry one of
    /// <paramref name="controllers"/> (and not the hybrid host's unified one): fewer directories
    /// to make, join and remove for a caller that needs only these (berth sandbox). On a pure
    /// v2 host the one hierarchy carries them all.
    /// </summary>
    public static ICgroupManager ForControllers(string path, IReadOnlyCollection<string> controllers, string mountRoot = "/sys/fs/cgroup")
    {
        var fs = CgroupFs.Instance;
        var normalized = Normalize(path);
        var (v2, hierarchies, _) = Discovered(mountRoot);
        if (v2) return new CgroupV2Manager(normalized, mountRoot, fs);
        var wanted = hierarchies.Where(h => h.Controllers.Any(controllers.Contains)).ToList();
        if (wanted.Count == 0)
            throw new CgroupException($"cgroup: none of the controllers {string.Join(", ", controllers)} is mounted under {mountRoot}");
        return new CgroupV1Manager(normalized, wanted, null, fs);
    }

    /// <summary>
    /// The hierarchies a manager from <see cref="ForControllers"/> uses, as one line ("v2", or "v1" and
    /// ROOT=CONTROLLERS per hierarchy): <see cref="FromLayout"/> rebuilds the manager of another path
    /// from it without listing the mount root again. Null for a manager it cannot describe.
    /// </summary>
    public static string? LayoutOf(ICgroupManager m) => m switch
    {
        CgroupV2Manager => "v2",
        CgroupV1Manager v1 when !v1.HasUnified && v1.Hierarchies.All(h => !h.Root.Contains(' ') && !h.Root.Contains('='))
            => "v1" + string.Concat(v1.Hierarchies.Select(h => " " + h.Root + "=" + string.Join(',', h.Controllers))),
        _ => null,
    };

    /// <summary>The manager of <paramref name="path"/> on the hierarchies of a <see cref="LayoutOf"/> line; null when the line is not one.</summary>
    public static ICgroupManager? FromLayout(string path, string layout, string mountRoot = "/sys/fs/cgroup")
    {
        if (layout == "v2") return new CgroupV2Manager(Normalize(path), mountRoot, CgroupFs.Instance);
        var parts = layout.Split(' ');
        if (parts[0] != "v1" || parts.Length < 2) return null;
        var list = new List<V1Hierarchy>();
        foreach (var part in parts.Skip(1))
        {
            int eq = part.LastIndexOf('=');
            if (eq <= 0 || !part.StartsWith(mountRoot + "/", StringComparison.Ordinal)) return null;
            list.Add(new V1Hierarchy(part[..eq], part[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries)));
        }
        return new CgroupV1Manager(Normalize(path), list, null, CgroupFs.Instance);
    }

    /// <summary>True when <paramref name="mountRoot"/> is a cgroup2 (unified) mount.</summary>
    public static bool IsUnified(string mountRoot = "/sys/fs/cgroup") =>
        File.Exists(Path.Combine(mountRoot, "cgroup.controllers"));

    /// <summary>
    /// "/berth/x", "berth/x/" and "/berth//x" all become "/berth/x". Rejects ".." (a path must not
    /// climb out of the hierarchy) and the root itself (limits on the root cgroup would hit the host).
    /// </summary>
    public static string Normalize(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Contains('\0')) throw new CgroupException($"cgroup: path \"{path.Replace("\0", "\\0")}\" contains a NUL byte");
        var parts = new List<string>();
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == "..") throw new CgroupException($"cgroup: path \"{path}\" must not contain \"..\"");
            if (part != ".") parts.Add(part);
        }
        if (parts.Count == 0) throw new CgroupException($"cgroup: path \"{path}\" names the root cgroup; a container needs its own");
        return "/" + string.Join('/', parts);
    }
}

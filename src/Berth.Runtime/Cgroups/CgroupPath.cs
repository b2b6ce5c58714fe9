namespace Berth.Runtime.Cgroups;

/// <summary>Where a container's cgroup goes, from linux.cgroupsPath.</summary>
public static class CgroupPath
{
    /// <summary>
    /// The cgroup path relative to the hierarchy roots:
    /// - null or empty: "/berth/ID";
    /// - absolute ("/a/b"): as given, cleaned;
    /// - relative ("a/b"): also taken from the hierarchy roots ("/a/b"). The spec lets a runtime
    ///   choose; runc joins relative paths to its own cgroup, which makes the result depend on where
    ///   the runtime happens to run, so berth does not.
    /// The systemd form "slice:prefix:name" is refused: berth has no systemd cgroup driver.
    /// </summary>
    public static string Resolve(string? cgroupsPath, string containerId)
    {
        if (string.IsNullOrEmpty(cgroupsPath))
        {
            if (string.IsNullOrEmpty(containerId) || containerId.Contains('/') || containerId is "." or "..")
                throw new CgroupSpecException($"container id \"{containerId}\" cannot name a cgroup");
            return "/berth/" + containerId;
        }
        if (!cgroupsPath.StartsWith('/') && cgroupsPath.Count(ch => ch == ':') == 2)
            throw new CgroupSpecException(
                $"linux.cgroupsPath: \"{cgroupsPath}\" is in the systemd form (slice:prefix:name); berth does not support --systemd-cgroup, use a path such as /berth/{containerId}");
        if (cgroupsPath.Contains('\0'))
            throw new CgroupSpecException("linux.cgroupsPath: contains a NUL byte");
        var parts = new List<string>();
        foreach (var part in cgroupsPath.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == "..") throw new CgroupSpecException($"linux.cgroupsPath: \"{cgroupsPath}\" must not contain \"..\"");
            if (part != ".") parts.Add(part);
        }
        if (parts.Count == 0) throw new CgroupSpecException($"linux.cgroupsPath: \"{cgroupsPath}\" names the root cgroup");
        return "/" + string.Join('/', parts);
    }
}

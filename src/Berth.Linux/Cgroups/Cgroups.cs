namespace Berth.Linux.Cgroups;

/// <summary>Picks the manager for the host's cgroup layout.</summary>
public static partial class Cgroups
{
    /// <summary>
    /// The manager for <paramref name="path"/> (relative to the hierarchy roots) under
    /// <paramref name="mountRoot"/> (normally /sys/fs/cgroup; tests point it at a temp tree).
    /// </summary>
    public static ICgroupManager For(string path, string mountRoot = "/sys/fs/cgroup") =>
        throw new PlatformNotSupportedException("cgroup managers are not written yet");
}

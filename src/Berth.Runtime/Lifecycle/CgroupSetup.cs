using Berth.Linux.Cgroups;

namespace Berth.Runtime.Lifecycle;

// TEMPORARY glue until the cgroup managers land from the `cgroups` branch.
internal static class CgroupSetup
{
    public static string ResolvePath(string? cgroupsPath, string id) =>
        string.IsNullOrEmpty(cgroupsPath) ? "/berth/" + id : cgroupsPath.StartsWith('/') ? cgroupsPath : "/berth/" + cgroupsPath;

    public static CgroupResources Resources(Oci.Runtime.Resources? r) => new();

    public static ICgroupManager? Open(string path)
    {
        try { return Cgroups.For(path); }
        catch (PlatformNotSupportedException) { return null; }
    }
}

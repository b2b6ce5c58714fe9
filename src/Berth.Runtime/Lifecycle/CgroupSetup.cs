using Berth.Linux.Cgroups;
using Berth.Runtime.Cgroups;

namespace Berth.Runtime.Lifecycle;

/// <summary>The lifecycle's view of cgroups: path and limits from the spec, the manager for the host.</summary>
internal static class CgroupSetup
{
    public static string ResolvePath(string? cgroupsPath, string id)
    {
        try { return CgroupPath.Resolve(cgroupsPath, id); }
        catch (CgroupSpecException e) { throw new RuntimeError(e.Message); }
    }

    public static CgroupResources Resources(Oci.Runtime.Linux? linux)
    {
        try { return ResourceMapping.ForContainer(linux); }
        catch (CgroupSpecException e) { throw new RuntimeError(e.Message); }
    }

    /// <summary>The manager for a recorded path; null for a container that never got one.</summary>
    public static ICgroupManager? Open(string path) =>
        string.IsNullOrEmpty(path) ? null : Berth.Linux.Cgroups.Cgroups.For(path);
}

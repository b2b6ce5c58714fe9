using Berth.Linux;
using Berth.Linux.Interop;
using Berth.Linux.Mounts;

namespace Berth.Engine.Containers;

/// <summary>A container's rootfs: the image's unpacked layers read-only below, its own upper and work dirs.</summary>
public static class Overlay
{
    /// <param name="lowerTopFirst">Layer directories, the image's last layer first.</param>
    public static void Mount(IReadOnlyList<string> lowerTopFirst, string upper, string work, string merged, ulong flags = 0)
    {
        Directory.CreateDirectory(upper);
        Directory.CreateDirectory(work);
        Directory.CreateDirectory(merged);
        var data = $"lowerdir={string.Join(':', lowerTopFirst)},upperdir={upper},workdir={work}";
        int err = Berth.Linux.Mounts.Mount.TryApply("overlay", merged, "overlay", flags, data);
        if (err != 0) throw new EngineError($"mount overlay rootfs on {merged}: {LinuxException.Describe(err)}");
    }

    public static bool IsMounted(string merged) =>
        MountInfoEntry.ReadSelf().Any(m => m.MountPoint == merged);

    public static void Unmount(string merged)
    {
        if (!IsMounted(merged)) return;
        int err = Berth.Linux.Mounts.Mount.TryUnmount(merged, Consts.MNT_DETACH);
        if (err != 0 && err != Consts.EINVAL) throw new EngineError($"unmount {merged}: {LinuxException.Describe(err)}");
    }
}

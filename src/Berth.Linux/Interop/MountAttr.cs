namespace Berth.Linux.Interop;

/// <summary>mount_setattr(2) attribute bits (struct mount_attr attr_set / attr_clr) and its flags.</summary>
public static class MountAttr
{
    public const ulong RDONLY = 0x1, NOSUID = 0x2, NODEV = 0x4, NOEXEC = 0x8,
        RELATIME = 0x0, NOATIME = 0x10, STRICTATIME = 0x20, ATIME_MASK = 0x70, NODIRATIME = 0x80,
        IDMAP = 0x100000, NOSYMFOLLOW = 0x200000;

    /// <summary>AT_RECURSIVE: apply to the whole mount tree below the path.</summary>
    public const int AT_RECURSIVE = 0x8000;
}

using Berth.Linux.Interop;

namespace Berth.Linux.Files;

/// <summary>The few statx(2) fields berth branches on; one layout on every architecture.</summary>
public readonly record struct FileStat(uint Mode, uint Uid, uint Gid, uint RdevMajor, uint RdevMinor)
{
    public uint Type => Mode & Consts.S_IFMT;
    public bool IsDirectory => Type == Consts.S_IFDIR;
    public bool IsSymlink => Type == Consts.S_IFLNK;
    public bool IsCharDevice => Type == Consts.S_IFCHR;

    /// <summary>statx of an fd (AT_EMPTY_PATH); does not follow anything.</summary>
    public static unsafe FileStat Of(int fd, string what)
    {
        var buf = stackalloc byte[256];
        fixed (byte* empty = CString.Of(""))
            if (LibC.statx(fd, empty, Consts.AT_EMPTY_PATH | Consts.AT_SYMLINK_NOFOLLOW, 0x7ff, buf) != 0)
                throw LinuxException.Last("stat", what);
        return new FileStat(*(ushort*)(buf + 28), *(uint*)(buf + 20), *(uint*)(buf + 24), *(uint*)(buf + 128), *(uint*)(buf + 132));
    }
}

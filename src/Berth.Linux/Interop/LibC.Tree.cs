using System.Runtime.InteropServices;

namespace Berth.Linux.Interop;

/// <summary>The *at calls a descriptor-relative tree walk needs (cp, volume seeding, diff, commit, export).</summary>
public static unsafe partial class LibC
{
    [LibraryImport(Lib, SetLastError = true)] public static partial nint readlinkat(int dirfd, byte* path, byte* buf, nint size);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint fgetxattr(int fd, byte* name, byte* value, nint size);
}

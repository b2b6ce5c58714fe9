using System.Runtime.InteropServices;

namespace Berth.Linux.Interop;

/// <summary>The *at file calls layer unpacking needs (links, renames, times, modes, xattrs).</summary>
public static unsafe partial class LibC
{
    [LibraryImport(Lib, SetLastError = true)] public static partial int linkat(int olddirfd, byte* oldpath, int newdirfd, byte* newpath, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int renameat(int olddirfd, byte* oldpath, int newdirfd, byte* newpath);
    [LibraryImport(Lib, SetLastError = true)] public static partial int utimensat(int dirfd, byte* path, long* times, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint llistxattr(byte* path, byte* list, nint size);
    [LibraryImport(Lib, SetLastError = true)] public static partial int futimens(int fd, long* times);
    [LibraryImport(Lib, SetLastError = true)] public static partial int fsetxattr(int fd, byte* name, byte* value, nint size, int flags);
}

using System.Runtime.InteropServices;

namespace Berth.Linux.Interop;

public static unsafe partial class LibC
{
    public const int SEEK_END = 2;
    [LibraryImport(Lib, SetLastError = true)] public static partial long lseek(int fd, long offset, int whence);
}

using System.Runtime.InteropServices;

namespace Berth.Linux.Interop;

/// <summary>Socket calls rtnetlink needs.</summary>
public static unsafe partial class LibC
{
    [LibraryImport(Lib, SetLastError = true)] public static partial nint send(int fd, byte* buf, nint len, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint recv(int fd, byte* buf, nint len, int flags);
}

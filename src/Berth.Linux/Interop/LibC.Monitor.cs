using System.Runtime.InteropServices;

namespace Berth.Linux.Interop;

/// <summary>What the container monitor needs beyond the runtime's calls: time, file size, truncation, signal handlers.</summary>
public static unsafe partial class LibC
{
    public const int CLOCK_REALTIME = 0, SEEK_END = 2, SA_RESTART = 0x10000000;

    /// <param name="ts">struct timespec { long tv_sec; long tv_nsec; }</param>
    [LibraryImport(Lib, SetLastError = true)] public static partial int clock_gettime(int clock, long* ts);
    [LibraryImport(Lib, SetLastError = true)] public static partial long lseek(int fd, long offset, int whence);
    [LibraryImport(Lib, SetLastError = true)] public static partial int ftruncate(int fd, long length);
    /// <param name="act">glibc's struct sigaction on 64-bit: handler, 128-byte mask, int flags, restorer (152 bytes).</param>
    [LibraryImport(Lib, SetLastError = true)] public static partial int sigaction(int sig, void* act, void* old);
    [LibraryImport(Lib, SetLastError = true)] public static partial int getpgid(int pid);
}

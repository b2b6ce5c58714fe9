using System.Runtime.InteropServices;

namespace Berth.Linux.Interop;

/// <summary>Syscall numbers for the calls glibc has no wrapper for, per architecture.</summary>
public static class Syscalls
{
    private static readonly bool Arm64 = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;

    public static long PivotRoot => Arm64 ? 41 : 155;
    public static long Openat2 => Arm64 ? 437 : 437;
    public static long CloseRange => 436;
    public static long Seccomp => Arm64 ? 277 : 317;
    public static long PidfdOpen => 434;
    public static long PidfdSendSignal => 424;
    public static long Gettid => Arm64 ? 178 : 186;
    public static long Getdents64 => Arm64 ? 61 : 217;
}

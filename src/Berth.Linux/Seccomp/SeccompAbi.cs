namespace Berth.Linux.Seccomp;

/// <summary>Constants of the seccomp(2) ABI (linux/seccomp.h, linux/audit.h).</summary>
public static class SeccompAbi
{
    // seccomp(2) operations
    public const uint SET_MODE_FILTER = 1;

    // SECCOMP_SET_MODE_FILTER flags
    public const uint FILTER_FLAG_TSYNC = 1u << 0;
    public const uint FILTER_FLAG_LOG = 1u << 1;
    public const uint FILTER_FLAG_SPEC_ALLOW = 1u << 2;
    public const uint FILTER_FLAG_NEW_LISTENER = 1u << 3;
    public const uint FILTER_FLAG_TSYNC_ESRCH = 1u << 4;
    public const uint FILTER_FLAG_WAIT_KILLABLE_RECV = 1u << 5;

    // filter return values; the low 16 bits carry data (errno, trace message)
    public const uint RET_KILL_PROCESS = 0x80000000;
    public const uint RET_KILL_THREAD = 0x00000000;
    public const uint RET_TRAP = 0x00030000;
    public const uint RET_ERRNO = 0x00050000;
    public const uint RET_USER_NOTIF = 0x7fc00000;
    public const uint RET_TRACE = 0x7ff00000;
    public const uint RET_LOG = 0x7ffc0000;
    public const uint RET_ALLOW = 0x7fff0000;
    public const uint RET_DATA = 0x0000ffff;

    // struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
    public const uint DataNrOffset = 0;
    public const uint DataArchOffset = 4;
    public const uint DataIpOffset = 8;
    public const uint DataArgsOffset = 16;
    public const int DataSize = 64;

    /// <summary>Offset of the low (lo=true) or high 32-bit half of args[index] on a little-endian machine.</summary>
    public static uint ArgOffset(int index, bool high) => DataArgsOffset + (uint)index * 8 + (high ? 4u : 0u);

    // AUDIT_ARCH_* values: EM_* machine | __AUDIT_ARCH_64BIT (0x80000000) | __AUDIT_ARCH_LE (0x40000000)
    public const uint AUDIT_ARCH_X86_64 = 0xC000003E;
    public const uint AUDIT_ARCH_I386 = 0x40000003;
    public const uint AUDIT_ARCH_AARCH64 = 0xC00000B7;
    public const uint AUDIT_ARCH_ARM = 0x40000028;

    /// <summary>x32 system calls are x86_64 ones with this bit set in nr.</summary>
    public const uint X32_SYSCALL_BIT = 0x40000000;
}

using System.Runtime.InteropServices;

namespace Berth.Linux.Seccomp;

/// <summary>A system call ABI a seccomp filter can see (seccomp_data.arch plus, for x32, the nr range).</summary>
public enum SeccompArch
{
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
}

public static class SeccompArchInfo
{
    /// <summary>The ABI of the running process, or null where berth has no syscall table for it.</summary>
    public static SeccompArch? Native => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => SeccompArch.X86_64,
        Architecture.Arm64 => SeccompArch.Aarch64,
        _ => null,
    };

    /// <summary>The value the kernel puts in seccomp_data.arch for a task of this ABI.</summary>
    public static uint AuditArch(this SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 or SeccompArch.X32 => SeccompAbi.AUDIT_ARCH_X86_64,
        SeccompArch.X86 => SeccompAbi.AUDIT_ARCH_I386,
        SeccompArch.Aarch64 => SeccompAbi.AUDIT_ARCH_AARCH64,
        SeccompArch.Arm => SeccompAbi.AUDIT_ARCH_ARM,
        _ => throw new ArgumentOutOfRangeException(nameof(arch)),
    };

    /// <summary>
    /// Whether syscall arguments are 32 bits wide for this ABI. As libseccomp does, filters for
    /// these ABIs compare only the low halves of seccomp_data.args.
    /// </summary>
    public static bool Has32BitArgs(this SeccompArch arch) =>
        arch is SeccompArch.X86 or SeccompArch.X32 or SeccompArch.Arm;

    /// <summary>The ABIs the kernel of a host with this native ABI can present to a filter.</summary>
    public static bool CanRunOn(this SeccompArch arch, SeccompArch native) => native switch
    {
        SeccompArch.X86_64 => arch is SeccompArch.X86_64 or SeccompArch.X86 or SeccompArch.X32,
        SeccompArch.Aarch64 => arch is SeccompArch.Aarch64 or SeccompArch.Arm,
        _ => arch == native,
    };

    /// <summary>
    /// The range of seccomp_data.nr values this ABI owns within its AUDIT_ARCH value, [Low, High].
    /// x86_64 and x32 share AUDIT_ARCH_X86_64 and are told apart by the x32 bit.
    /// </summary>
    public static (uint Low, uint High) NrRange(this SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 => (0, SeccompAbi.X32_SYSCALL_BIT - 1),
        SeccompArch.X32 => (SeccompAbi.X32_SYSCALL_BIT, uint.MaxValue),
        _ => (0, uint.MaxValue),
    };
}

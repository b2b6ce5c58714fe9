namespace Berth.Linux.Seccomp;

/// <summary>
/// System call numbers by name, per ABI. The tables are generated from the kernel uapi headers
/// by scripts/gen-syscall-tables (see the *.g.cs files); nothing here is typed by hand.
/// </summary>
public static partial class SyscallTable
{
    /// <summary>The number of <paramref name="name"/> as seccomp_data.nr shows it, or -1 when the ABI has no such call.</summary>
    public static int Resolve(SeccompArch arch, string name) => arch switch
    {
        SeccompArch.X86_64 => X86_64(name),
        SeccompArch.X86 => I386(name),
        SeccompArch.X32 => X32(name),
        SeccompArch.Aarch64 => Aarch64(name),
        _ => -1, // no table for 32-bit ARM yet: its uapi header is not in linux-libc-dev:amd64
    };

    /// <summary>Whether berth has a syscall table for this ABI.</summary>
    public static bool Has(SeccompArch arch) => arch is not SeccompArch.Arm;
}

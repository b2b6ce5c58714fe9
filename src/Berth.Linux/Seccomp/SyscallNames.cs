namespace Berth.Linux.Seccomp;

public static partial class SyscallTable
{
    /// <summary>
    /// The name of system call <paramref name="nr"/> (seccomp_data.nr) of <paramref name="arch"/>, or
    /// null when berth's table has none (a call newer than the headers, or an ABI without a table).
    /// x32 numbers carry <see cref="SeccompAbi.X32_SYSCALL_BIT"/>; most are the x86_64 calls.
    /// </summary>
    public static string? Name(SeccompArch arch, int nr)
    {
        if (arch == SeccompArch.X32)
        {
            if ((nr & SeccompAbi.X32_SYSCALL_BIT) == 0) return null;
            var n = Lookup(X86_64Names, nr & ~(int)SeccompAbi.X32_SYSCALL_BIT);
            return n is not null && X32(n) == nr ? n : null;
        }
        return Lookup(arch switch
        {
            SeccompArch.X86_64 => X86_64Names,
            SeccompArch.X86 => I386Names,
            SeccompArch.Aarch64 => Aarch64Names,
            _ => [],
        }, nr);
    }

    /// <summary>Every system call name of <paramref name="arch"/> that berth's table knows (x86_64, i386, aarch64).</summary>
    public static IEnumerable<string> Names(SeccompArch arch) => (arch switch
    {
        SeccompArch.X86_64 => X86_64Names,
        SeccompArch.X86 => I386Names,
        SeccompArch.Aarch64 => Aarch64Names,
        _ => [],
    }).OfType<string>();

    /// <summary>The ABI whose AUDIT_ARCH value is <paramref name="auditArch"/> (x86_64 numbers with the x32 bit are x32).</summary>
    public static SeccompArch? ArchOf(uint auditArch, int nr) => auditArch switch
    {
        SeccompAbi.AUDIT_ARCH_X86_64 => (nr & SeccompAbi.X32_SYSCALL_BIT) != 0 ? SeccompArch.X32 : SeccompArch.X86_64,
        SeccompAbi.AUDIT_ARCH_I386 => SeccompArch.X86,
        SeccompAbi.AUDIT_ARCH_AARCH64 => SeccompArch.Aarch64,
        SeccompAbi.AUDIT_ARCH_ARM => SeccompArch.Arm,
        _ => null,
    };

    private static string? Lookup(string?[] names, int nr) => nr >= 0 && nr < names.Length ? names[nr] : null;
}

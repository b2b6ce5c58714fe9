using Berth.Linux.Seccomp;

namespace Berth.Runtime.Seccomp;

/// <summary>The OCI spellings of seccomp actions, operators, architectures and flags.</summary>
internal static class SeccompNames
{
    private const uint EPERM = 1;

    /// <summary>
    /// The filter return value for an OCI action. ERRNO and TRACE carry errnoRet (EPERM when
    /// absent, as runc and crun do); no other action takes one.
    /// </summary>
    public static uint? Action(string name, uint? errnoRet, out string? error)
    {
        error = null;
        bool takesData = name is "SCMP_ACT_ERRNO" or "SCMP_ACT_TRACE";
        if (errnoRet is not null && !takesData)
        {
            error = $"errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not {name}";
            return null;
        }
        if (errnoRet > SeccompAbi.RET_DATA)
        {
            error = $"errnoRet {errnoRet} does not fit the 16 bits seccomp returns";
            return null;
        }
        uint data = errnoRet ?? EPERM;
        uint? action = name switch
        {
            "SCMP_ACT_KILL" or "SCMP_ACT_KILL_THREAD" => SeccompAbi.RET_KILL_THREAD,
            "SCMP_ACT_KILL_PROCESS" => SeccompAbi.RET_KILL_PROCESS,
            "SCMP_ACT_TRAP" => SeccompAbi.RET_TRAP,
            "SCMP_ACT_ERRNO" => SeccompAbi.RET_ERRNO | data,
            "SCMP_ACT_TRACE" => SeccompAbi.RET_TRACE | data,
            "SCMP_ACT_LOG" => SeccompAbi.RET_LOG,
            "SCMP_ACT_ALLOW" => SeccompAbi.RET_ALLOW,
            "SCMP_ACT_NOTIFY" => SeccompAbi.RET_USER_NOTIF,
            _ => null,
        };
        if (action is null)
            error = $"unknown action \"{name}\" (expected SCMP_ACT_KILL, KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, TRACE, LOG, ALLOW or NOTIFY)";
        return action;
    }

    public static CompareOp? Op(string name) => name switch
    {
        "SCMP_CMP_NE" => CompareOp.NotEqual,
        "SCMP_CMP_LT" => CompareOp.Less,
        "SCMP_CMP_LE" => CompareOp.LessOrEqual,
        "SCMP_CMP_EQ" => CompareOp.Equal,
        "SCMP_CMP_GE" => CompareOp.GreaterOrEqual,
        "SCMP_CMP_GT" => CompareOp.Greater,
        "SCMP_CMP_MASKED_EQ" => CompareOp.MaskedEqual,
        _ => null,
    };

    /// <summary>
    /// Parses an architecture name, with or without the SCMP_ARCH_ prefix, in any case (as crun
    /// accepts it). Known: true with <paramref name="arch"/> null for the ABIs libseccomp knows but
    /// berth has no table for; those never reach an x86_64 or aarch64 kernel's filters.
    /// </summary>
    public static bool Arch(string name, out SeccompArch? arch)
    {
        var n = name.StartsWith("SCMP_ARCH_", StringComparison.OrdinalIgnoreCase) ? name[10..] : name;
        arch = n.ToUpperInvariant() switch
        {
            "X86_64" => SeccompArch.X86_64,
            "X86" => SeccompArch.X86,
            "X32" => SeccompArch.X32,
            "AARCH64" => SeccompArch.Aarch64,
            "ARM" => SeccompArch.Arm,
            _ => null,
        };
        return arch is not null || n.ToUpperInvariant() is "MIPS" or "MIPS64" or "MIPS64N32" or "MIPSEL" or "MIPSEL64"
            or "MIPSEL64N32" or "PPC" or "PPC64" or "PPC64LE" or "S390" or "S390X" or "PARISC" or "PARISC64"
            or "RISCV64" or "LOONGARCH64" or "M68K" or "SH" or "SHEB";
    }

    public static string ScmpName(SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 => "SCMP_ARCH_X86_64",
        SeccompArch.X86 => "SCMP_ARCH_X86",
        SeccompArch.X32 => "SCMP_ARCH_X32",
        SeccompArch.Aarch64 => "SCMP_ARCH_AARCH64",
        SeccompArch.Arm => "SCMP_ARCH_ARM",
        _ => arch.ToString(),
    };

    /// <summary>The Go name profile files use in includes/excludes.arches.</summary>
    public static string GoArch(SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 => "amd64",
        SeccompArch.X86 => "386",
        SeccompArch.X32 => "x32",
        SeccompArch.Aarch64 => "arm64",
        SeccompArch.Arm => "arm",
        _ => arch.ToString(),
    };

    public static uint? Flag(string name) => name switch
    {
        "SECCOMP_FILTER_FLAG_TSYNC" => SeccompAbi.FILTER_FLAG_TSYNC,
        "SECCOMP_FILTER_FLAG_LOG" => SeccompAbi.FILTER_FLAG_LOG,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => SeccompAbi.FILTER_FLAG_SPEC_ALLOW,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => SeccompAbi.FILTER_FLAG_WAIT_KILLABLE_RECV,
        _ => null,
    };
}

/// <summary>seccomp argument comparisons (libseccomp's SCMP_CMP_*), all unsigned.</summary>
public enum CompareOp
{
    NotEqual,
    Less,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    Greater,
    MaskedEqual,
}

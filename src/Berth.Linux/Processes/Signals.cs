namespace Berth.Linux.Processes;

/// <summary>Signal names and numbers (x86_64/aarch64 generic numbering).</summary>
public static class Signals
{
    private static readonly (string Name, int Number)[] Table =
    [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("IOT", 6), ("BUS", 7),
        ("FPE", 8), ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12), ("PIPE", 13), ("ALRM", 14),
        ("TERM", 15), ("STKFLT", 16), ("CHLD", 17), ("CONT", 18), ("STOP", 19), ("TSTP", 20), ("TTIN", 21),
        ("TTOU", 22), ("URG", 23), ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27), ("WINCH", 28),
        ("IO", 29), ("POLL", 29), ("PWR", 30), ("SYS", 31),
    ];

    public const int SIGKILL = 9, SIGTERM = 15, SIGCHLD = 17, SIGCONT = 18, SIGSTOP = 19;

    /// <summary>
    /// Every signal back to its default action and an empty signal mask, for a process about to
    /// execute a container's program: ignored signals and the mask survive execve, and the .NET
    /// runtime ignores SIGPIPE (and SIGQUIT), which a container's program must not inherit (runc and
    /// crun hand over default dispositions). Raw calls only, safe between fork and exec; errors for
    /// the few signals the kernel refuses are ignored.
    /// </summary>
    public static unsafe void ResetForExec()
    {
        byte* dfl = stackalloc byte[152]; // glibc's struct sigaction, handler SIG_DFL, empty mask
        new Span<byte>(dfl, 152).Clear();
        for (int sig = 1; sig <= 64; sig++)
        {
            if (sig is SIGKILL or SIGSTOP) continue;
            Interop.LibC.sigaction(sig, dfl, null);
        }
        ulong* empty = stackalloc ulong[16];
        new Span<ulong>(empty, 16).Clear();
        Interop.LibC.sigprocmask(Interop.Consts.SIG_SETMASK, empty, null);
    }

    /// <summary>Parses "TERM", "SIGTERM", "sigterm", "15", "RTMIN+3".</summary>
    public static bool TryParse(string text, out int signal)
    {
        signal = 0;
        if (string.IsNullOrWhiteSpace(text)) return false;
        if (int.TryParse(text, out signal)) return signal is > 0 and <= 64;
        var name = text.ToUpperInvariant();
        if (name.StartsWith("SIG", StringComparison.Ordinal)) name = name[3..];
        foreach (var (n, num) in Table)
            if (n == name) { signal = num; return true; }
        if (name.StartsWith("RTMIN", StringComparison.Ordinal))
            return TryOffset(name[5..], 34, +1, out signal);
        if (name.StartsWith("RTMAX", StringComparison.Ordinal))
            return TryOffset(name[5..], 64, -1, out signal);
        return false;
    }

    private static bool TryOffset(string rest, int baseNum, int dir, out int signal)
    {
        signal = baseNum;
        if (rest.Length == 0) return true;
        if ((rest[0] == '+' || rest[0] == '-') && int.TryParse(rest[1..], out var off))
        {
            signal = baseNum + (rest[0] == '+' ? off : -off);
            return signal is >= 34 and <= 64 && Math.Sign(signal - baseNum) != -dir;
        }
        return false;
    }

    public static string Name(int signal)
    {
        foreach (var (n, num) in Table) if (num == signal) return "SIG" + n;
        return signal.ToString();
    }
}

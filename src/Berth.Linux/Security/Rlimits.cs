using Berth.Linux.Interop;

namespace Berth.Linux.Security;

/// <summary>RLIMIT_* names and prlimit(2).</summary>
public static unsafe class Rlimits
{
    private static readonly string[] Names =
    [
        "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
        "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING",
        "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
    ];

    public static bool TryParse(string name, out int resource)
    {
        resource = Array.IndexOf(Names, name);
        return resource >= 0;
    }

    public static string Name(int resource) => Names.ElementAtOrDefault(resource) ?? resource.ToString();

    public static void Set(int pid, int resource, ulong soft, ulong hard)
    {
        var lim = stackalloc ulong[2];
        lim[0] = soft;
        lim[1] = hard;
        if (LibC.prlimit64(pid, resource, lim, null) != 0)
            throw LinuxException.Last("setrlimit", $"{Name(resource)} soft={soft} hard={hard}");
    }

    public static (ulong Soft, ulong Hard) Get(int pid, int resource)
    {
        var lim = stackalloc ulong[2];
        if (LibC.prlimit64(pid, resource, null, lim) != 0) throw LinuxException.Last("getrlimit", Name(resource));
        return (lim[0], lim[1]);
    }
}

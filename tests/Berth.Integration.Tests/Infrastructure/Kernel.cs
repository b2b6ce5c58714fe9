using System.Globalization;
using System.Security.Cryptography;

namespace Berth.Integration.Tests.Infrastructure;

/// <summary>Reads what the kernel says, from the host side, and parses what containers print.</summary>
public static class Kernel
{
    private static readonly string[] CapNames =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
        "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ];

    /// <summary>readlink of /proc/PID/ns/NAME, e.g. "net:[4026531840]".</summary>
    public static string NsLink(int pid, string name) =>
        new FileInfo($"/proc/{pid}/ns/{name}").LinkTarget ?? throw new IOException($"/proc/{pid}/ns/{name}: no link");

    public static int CapBit(string name)
    {
        int i = Array.IndexOf(CapNames, name);
        if (i < 0) throw new ArgumentException($"unknown capability {name}");
        return i;
    }

    public static ulong CapMask(IEnumerable<string> names) =>
        names.Aggregate(0UL, (m, n) => m | (1UL << CapBit(n)));

    /// <summary>"Key:\tvalue" lines of /proc/PID/status (as printed by a container) to a dictionary.</summary>
    public static Dictionary<string, string> ParseStatus(string text)
    {
        var d = new Dictionary<string, string>();
        foreach (var line in text.Split('\n'))
        {
            int colon = line.IndexOf(':');
            if (colon > 0) d[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        return d;
    }

    public static ulong Hex(string s) => ulong.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    /// <summary>The host's own namespaces, e.g. "net" -> "net:[4026531840]".</summary>
    public static Dictionary<string, string> HostNamespaces() =>
        Directory.GetFileSystemEntries("/proc/self/ns")
            .ToDictionary(p => Path.GetFileName(p), p => new FileInfo(p).LinkTarget ?? "");

    /// <summary>The v1 cgroup path of a process for one controller, from /proc/PID/cgroup.</summary>
    public static string? CgroupV1Path(int pid, string controller)
    {
        foreach (var line in File.ReadAllLines($"/proc/{pid}/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts.Length == 3 && parts[1].Split(',').Contains(controller)) return parts[2];
        }
        return null;
    }

    /// <summary>The host directory of a process's cgroup for a v1 controller.</summary>
    public static string CgroupV1Dir(int pid, string controller)
    {
        string rel = CgroupV1Path(pid, controller)
            ?? throw new InvalidOperationException($"pid {pid} has no {controller} cgroup: " + File.ReadAllText($"/proc/{pid}/cgroup"));
        return Path.Combine("/sys/fs/cgroup", controller) + rel.TrimEnd('/');
    }

    public static string Sha256(string file)
    {
        using var fs = File.OpenRead(file);
        return Convert.ToHexString(SHA256.HashData(fs));
    }

    public sealed record MountInfo(string Root, string MountPoint, string Options, string FsType, string Source, string Line);

    public static List<MountInfo> ParseMountInfo(string text)
    {
        var list = new List<MountInfo>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split(' ');
            int sep = Array.IndexOf(f, "-");
            if (f.Length < 10 || sep < 6) continue;
            list.Add(new MountInfo(Unescape(f[3]), Unescape(f[4]), f[5], f[sep + 1], Unescape(f[sep + 2]), line));
        }
        return list;
    }

    private static string Unescape(string s) =>
        s.Replace("\\040", " ").Replace("\\011", "\t").Replace("\\012", "\n").Replace("\\134", "\\");

    public static bool ProcessAlive(int pid)
    {
        try
        {
            // A zombie still has a /proc entry; treat it as gone.
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] != 'Z';
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }
}

using Berth.Linux.Interop;

namespace Berth.Linux.Security;

/// <summary>Capability names, numbers and the capset/prctl calls that apply them.</summary>
public static unsafe class Capabilities
{
    public static readonly string[] Names =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
        "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];

    /// <summary>Parses "CAP_NET_ADMIN" (also without the prefix, any case).</summary>
    public static bool TryParse(string name, out int cap)
    {
        var n = name.Trim().ToUpperInvariant();
        if (!n.StartsWith("CAP_", StringComparison.Ordinal)) n = "CAP_" + n;
        cap = Array.IndexOf(Names, n);
        return cap >= 0;
    }

    /// <summary>Highest capability the running kernel knows.</summary>
    /// <summary>The kernel's highest capability number (read once per process: it is fixed at boot).</summary>
    public static int LastCap()
    {
        if (s_lastCap >= 0) return s_lastCap;
        try { return s_lastCap = int.Parse(File.ReadAllText("/proc/sys/kernel/cap_last_cap").Trim()); }
        catch (IOException) { return s_lastCap = Names.Length - 1; }
    }

    private static int s_lastCap = -1;

    public static ulong Mask(IEnumerable<int> caps)
    {
        ulong m = 0;
        foreach (var c in caps) m |= 1UL << c;
        return m;
    }

    /// <summary>Drops from the bounding set every capability not in <paramref name="keep"/>.</summary>
    public static void LimitBounding(ulong keep, int lastCap)
    {
        for (int c = 0; c <= lastCap; c++)
        {
            if ((keep & (1UL << c)) != 0) continue;
            if (LibC.prctl(Consts.PR_CAPBSET_DROP, (ulong)c, 0, 0, 0) != 0)
            {
                int err = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
                if (err == Consts.EINVAL) continue; // not supported by this kernel
                throw new LinuxException("drop bounding capability", Names.ElementAtOrDefault(c) ?? c.ToString(), err);
            }
        }
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct Header { public uint Version; public int Pid; }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct Data { public uint Effective, Permitted, Inheritable; }

    /// <summary>capset(2) for the calling thread, version 3 (64-bit sets).</summary>
    public static void Set(ulong effective, ulong permitted, ulong inheritable)
    {
        var h = new Header { Version = 0x20080522, Pid = 0 };
        var d = stackalloc Data[2];
        d[0] = new Data { Effective = (uint)effective, Permitted = (uint)permitted, Inheritable = (uint)inheritable };
        d[1] = new Data { Effective = (uint)(effective >> 32), Permitted = (uint)(permitted >> 32), Inheritable = (uint)(inheritable >> 32) };
        if (LibC.capset(&h, d) != 0) throw LinuxException.Last("capset");
    }

    /// <summary>Clears the ambient set, then raises each capability of <paramref name="ambient"/>.</summary>
    public static void SetAmbient(ulong ambient, int lastCap)
    {
        LibC.prctl(Consts.PR_CAP_AMBIENT, (ulong)Consts.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        for (int c = 0; c <= lastCap; c++)
        {
            if ((ambient & (1UL << c)) == 0) continue;
            if (LibC.prctl(Consts.PR_CAP_AMBIENT, (ulong)Consts.PR_CAP_AMBIENT_RAISE, (ulong)c, 0, 0) != 0)
                throw LinuxException.Last("raise ambient capability", Names.ElementAtOrDefault(c) ?? c.ToString());
        }
    }
}

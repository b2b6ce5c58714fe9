using Berth.Linux.Interop;

namespace Berth.Linux.Namespaces;

/// <summary>The namespace kinds of the OCI spec and their clone flags and /proc/PID/ns names.</summary>
public enum NamespaceKind { Pid, Network, Mount, Ipc, Uts, User, Cgroup, Time }

public static unsafe class Namespace
{
    public static int CloneFlag(NamespaceKind kind) => kind switch
    {
        NamespaceKind.Pid => Consts.CLONE_NEWPID,
        NamespaceKind.Network => Consts.CLONE_NEWNET,
        NamespaceKind.Mount => Consts.CLONE_NEWNS,
        NamespaceKind.Ipc => Consts.CLONE_NEWIPC,
        NamespaceKind.Uts => Consts.CLONE_NEWUTS,
        NamespaceKind.User => Consts.CLONE_NEWUSER,
        NamespaceKind.Cgroup => Consts.CLONE_NEWCGROUP,
        NamespaceKind.Time => Consts.CLONE_NEWTIME,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>Name of the namespace file under /proc/PID/ns.</summary>
    public static string ProcName(NamespaceKind kind) => kind switch
    {
        NamespaceKind.Pid => "pid",
        NamespaceKind.Network => "net",
        NamespaceKind.Mount => "mnt",
        NamespaceKind.Ipc => "ipc",
        NamespaceKind.Uts => "uts",
        NamespaceKind.User => "user",
        NamespaceKind.Cgroup => "cgroup",
        NamespaceKind.Time => "time",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>Parses the OCI spec's namespace type names.</summary>
    public static bool TryParse(string name, out NamespaceKind kind)
    {
        switch (name)
        {
            case "pid": kind = NamespaceKind.Pid; return true;
            case "network": kind = NamespaceKind.Network; return true;
            case "mount": kind = NamespaceKind.Mount; return true;
            case "ipc": kind = NamespaceKind.Ipc; return true;
            case "uts": kind = NamespaceKind.Uts; return true;
            case "user": kind = NamespaceKind.User; return true;
            case "cgroup": kind = NamespaceKind.Cgroup; return true;
            case "time": kind = NamespaceKind.Time; return true;
            default: kind = default; return false;
        }
    }

    public static string SpecName(NamespaceKind kind) => kind switch
    {
        NamespaceKind.Network => "network",
        NamespaceKind.Mount => "mount",
        _ => ProcName(kind),
    };

    public static void Unshare(int flags)
    {
        if (LibC.unshare(flags) != 0) throw LinuxException.Last("unshare", $"flags 0x{flags:x}");
    }

    /// <summary>Joins the namespace at <paramref name="path"/> (e.g. /proc/123/ns/net).</summary>
    public static void Join(string path, NamespaceKind kind)
    {
        int fd;
        fixed (byte* p = CString.Of(path)) fd = LibC.open(p, Consts.O_RDONLY | Consts.O_CLOEXEC, 0);
        if (fd < 0) throw LinuxException.Last("open namespace", path);
        try
        {
            if (LibC.setns(fd, CloneFlag(kind)) != 0) throw LinuxException.Last("setns", path);
        }
        finally { LibC.close(fd); }
    }
}

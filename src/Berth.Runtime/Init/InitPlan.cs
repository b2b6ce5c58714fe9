using Berth.Linux.Namespaces;
using Berth.Oci.Runtime;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Init;

/// <summary>
/// Everything the init stages need, decided in the parent before any fork: the child runs
/// straight-line code over this plan and makes no policy decisions of its own.
/// </summary>
public sealed class InitPlan
{
    public required string Id { get; init; }
    public required string Bundle { get; init; }
    public required string Rootfs { get; init; }
    public required Oci.Runtime.Spec Spec { get; init; }

    /// <summary>An `exec` into a running container: join its namespaces, no rootfs work, no exec fifo.</summary>
    public bool IsExec { get; set; }

    // Namespaces
    public int UnshareFlags { get; set; }        // new namespaces other than user
    public bool NewUserNs { get; set; }
    public List<(NamespaceKind Kind, string Path)> Joins { get; } = [];
    public List<IdMapping> UidMappings { get; } = [];
    public List<IdMapping> GidMappings { get; } = [];
    public bool NewPidNs => (UnshareFlags & Berth.Linux.Interop.Consts.CLONE_NEWPID) != 0;
    public bool InUserNs => NewUserNs || Joins.Any(j => j.Kind == NamespaceKind.User);
    public bool NewCgroupNs => (UnshareFlags & Berth.Linux.Interop.Consts.CLONE_NEWCGROUP) != 0;
    public bool NewNetNs => (UnshareFlags & Berth.Linux.Interop.Consts.CLONE_NEWNET) != 0;

    // Filesystem
    public ulong RootPropagation { get; set; }
    public List<MountPlan> Mounts { get; } = [];
    public List<DevicePlan> Devices { get; } = [];
    public bool CreateDefaultDevices { get; set; }
    public List<string> MaskedPaths { get; } = [];
    public List<string> ReadonlyPaths { get; } = [];
    public List<KeyValuePair<string, string>> Sysctl { get; } = [];
    public bool RootReadonly { get; set; }
    public bool NoPivot { get; set; }
    public string? Hostname { get; set; }
    public string? Domainname { get; set; }
    public string CgroupPath { get; set; } = "";

    // Process
    public List<string> Args { get; } = [];
    public List<string> Env { get; } = [];
    public string Cwd { get; set; } = "/";
    public uint Uid { get; set; }
    public uint Gid { get; set; }
    public List<uint> AdditionalGids { get; } = [];
    public uint Umask { get; set; } = 0x12; // 0022
    public ulong CapBounding { get; set; }
    public ulong CapEffective { get; set; }
    public ulong CapPermitted { get; set; }
    public ulong CapInheritable { get; set; }
    public ulong CapAmbient { get; set; }
    public int LastCap { get; set; }
    public List<(int Resource, ulong Soft, ulong Hard)> Rlimits { get; } = [];
    public bool NoNewPrivileges { get; set; }
    public int? OomScoreAdj { get; set; }
    public bool NoNewKeyring { get; set; }
    /// <summary>The compiled linux.seccomp filter, or null for none.</summary>
    public Berth.Runtime.Seccomp.SeccompProgram? Seccomp { get; set; }

    // Plumbing
    public string FifoPath { get; set; } = "";
    /// <summary>The exec fifo, opened O_RDWR by the parent (a user-namespaced init could not open it).</summary>
    public int FifoFd { get; set; } = -1;
    public int PreserveFds { get; set; }
    public bool Terminal { get; set; }
    public int ConsoleSocketFd { get; set; } = -1;
    /// <summary>
    /// When >= 0, init stays PID 1 as a reaper: it forks the process, reaps everything, and when the
    /// process exits kills the rest and writes "RAWSTATUS ORPHANS\n" to this fd (berth sandbox).
    /// </summary>
    public int ReaperStatusFd { get; set; } = -1;
    /// <summary>`--init`: PID 1 stays berth's reaper, forwarding signals; the process runs as PID 2.</summary>
    public bool InitProcess { get; set; }
    /// <summary>
    /// The sealed exec stub (docs/adr/0013), or -1: when set, init execs the stub right after "ready"
    /// (the stub waits on the fifo and runs the program) and the parent waits for that exec.
    /// </summary>
    public int ExecStubFd { get; set; } = -1;
}

public sealed class MountPlan
{
    public required string Destination { get; init; }
    public required string Type { get; init; }   // "bind", "proc", "tmpfs", "cgroup", ...
    public string? Source { get; init; }           // absolute for binds
    public required ParsedMountOptions Options { get; init; }
    public bool SourceIsDir { get; init; } = true;
}

public sealed record DevicePlan(string Path, char Type, long Major, long Minor, uint Mode, uint Uid, uint Gid);

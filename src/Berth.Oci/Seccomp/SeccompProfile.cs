using Berth.Oci.Runtime;

namespace Berth.Oci.Seccomp;

/// <summary>
/// A seccomp profile file in the format podman and Docker read (containers/common seccomp.json):
/// the OCI linux.seccomp fields plus archMap and per-rule includes/excludes, which are resolved
/// against the host and the container's capabilities before the profile becomes an OCI
/// <see cref="Runtime.Seccomp"/>.
/// </summary>
public sealed class SeccompProfile
{
    public string DefaultAction { get; set; } = "";
    public uint? DefaultErrnoRet { get; set; }
    public List<string>? Architectures { get; set; }
    public List<SeccompArchMap>? ArchMap { get; set; }
    public List<SeccompProfileSyscall>? Syscalls { get; set; }
    public List<string>? Flags { get; set; }
    public string? ListenerPath { get; set; }
    public string? ListenerMetadata { get; set; }
}

/// <summary>A native architecture and the compat ABIs that run on it (SCMP_ARCH_* names).</summary>
public sealed class SeccompArchMap
{
    public string Architecture { get; set; } = "";
    public List<string>? SubArchitectures { get; set; }
}

/// <summary>One rule of a profile file: the OCI rule plus the conditions under which it applies.</summary>
public sealed class SeccompProfileSyscall
{
    /// <summary>The older single-name form; a rule has either this or <see cref="Names"/>.</summary>
    public string? Name { get; set; }
    public List<string>? Names { get; set; }
    public string Action { get; set; } = "";
    public uint? ErrnoRet { get; set; }
    public List<SeccompArg>? Args { get; set; }
    public string? Comment { get; set; }
    public SeccompRuleFilter? Includes { get; set; }
    public SeccompRuleFilter? Excludes { get; set; }
}

/// <summary>
/// includes: the rule applies only if every condition holds; excludes: it is dropped if any holds.
/// Arches are Go architecture names (amd64, arm64, ...), caps are CAP_* names checked against the
/// bounding set, minKernel is a "major.minor" kernel version.
/// </summary>
public sealed class SeccompRuleFilter
{
    public List<string>? Caps { get; set; }
    public List<string>? Arches { get; set; }
    public string? MinKernel { get; set; }
}

/// <summary>
/// What the runtime sends with the notify fd to linux.seccomp.listenerPath (runtime-spec
/// "containerProcessState").
/// </summary>
public sealed class ContainerProcessState
{
    public string OciVersion { get; set; } = SpecVersion.Current;
    public List<string> Fds { get; set; } = [];
    public int Pid { get; set; }
    public string? Metadata { get; set; }
    public State State { get; set; } = new();
}

using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Linux.Interop;
using Berth.Linux.Seccomp;
using Berth.Runtime.Seccomp;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Lifecycle;

/// <summary>
/// `features`: the runtime-spec features document (features.md, runtime-spec 1.1+), describing
/// what this build of berth accepts in config.json.
/// </summary>
public static class Features
{
    /// <summary>seccomp actions berth's compiler accepts (SeccompNames.Action).</summary>
    private static readonly string[] SeccompActions =
    [
        "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
    ];

    private static readonly string[] SeccompOperators =
    [
        "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
    ];

    /// <summary>Every architecture name a profile may list (SeccompNames.Arch accepts them; only native ABIs get filters).</summary>
    private static readonly string[] SeccompArchs =
    [
        "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
        "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PARISC",
        "SCMP_ARCH_PARISC64", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64",
        "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64",
    ];

    private static readonly string[] SeccompFlags =
    [
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ];

    public static FeaturesDoc Build(string version) => new()
    {
        OciVersionMin = "1.0.0",
        OciVersionMax = Oci.Runtime.SpecVersion.Current,
        Hooks = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        MountOptions = [.. MountOptions.Known],
        Linux = new LinuxFeatures
        {
            Namespaces = ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            Capabilities = [.. Berth.Linux.Security.Capabilities.Names],
            Cgroup = new CgroupFeatures { V1 = true, V2 = true, Systemd = false, SystemdUser = false, Rdma = false },
            Seccomp = new SeccompFeatures
            {
                Enabled = true,
                Actions = SeccompActions,
                Operators = SeccompOperators,
                Archs = SeccompArchs,
                KnownFlags = SeccompFlags,
                SupportedFlags = [.. SeccompFlags.Where(KernelSupports)],
            },
            Apparmor = new Enabled { Value = false },
            Selinux = new Enabled { Value = false },
            IntelRdt = new Enabled { Value = false },
            MountExtensions = new MountExtensions { Idmap = new Enabled { Value = false } },
        },
        Annotations = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["io.github.berth.runtime.version"] = version,
            ["io.github.berth.runtime.checkpoint.enabled"] = "false",
            ["io.github.berth.runtime.seccomp"] = "builtin", // berth compiles filters itself, no libseccomp
        },
    };

    public static string Json(string version) => JsonSerializer.Serialize(Build(version), FeaturesJson.Default.FeaturesDoc);

    /// <summary>
    /// Asks the kernel whether it knows a filter flag without installing anything: seccomp(2) with a
    /// NULL program fails with EFAULT once the flags are accepted, EINVAL when one is unknown.
    /// </summary>
    private static bool KernelSupports(string name)
    {
        if (SeccompNames.Flag(name) is not { } flag) return false;
        // WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER.
        if (flag == SeccompAbi.FILTER_FLAG_WAIT_KILLABLE_RECV) flag |= SeccompAbi.FILTER_FLAG_NEW_LISTENER;
        long rc = LibC.syscall(Syscalls.Seccomp, SeccompAbi.SET_MODE_FILTER, flag, 0, 0, 0, 0);
        return rc < 0 && Marshal.GetLastPInvokeError() == 14; // EFAULT
    }
}

public sealed class FeaturesDoc
{
    public string OciVersionMin { get; set; } = "";
    public string OciVersionMax { get; set; } = "";
    public string[]? Hooks { get; set; }
    public string[]? MountOptions { get; set; }
    public LinuxFeatures? Linux { get; set; }
    public SortedDictionary<string, string>? Annotations { get; set; }
}

public sealed class LinuxFeatures
{
    public string[]? Namespaces { get; set; }
    public string[]? Capabilities { get; set; }
    public CgroupFeatures? Cgroup { get; set; }
    public SeccompFeatures? Seccomp { get; set; }
    public Enabled? Apparmor { get; set; }
    public Enabled? Selinux { get; set; }
    public Enabled? IntelRdt { get; set; }
    public MountExtensions? MountExtensions { get; set; }
}

public sealed class CgroupFeatures
{
    public bool V1 { get; set; }
    public bool V2 { get; set; }
    public bool Systemd { get; set; }
    public bool SystemdUser { get; set; }
    public bool Rdma { get; set; }
}

public sealed class SeccompFeatures
{
    public bool Enabled { get; set; }
    public string[]? Actions { get; set; }
    public string[]? Operators { get; set; }
    public string[]? Archs { get; set; }
    public string[]? KnownFlags { get; set; }
    public string[]? SupportedFlags { get; set; }
}

public sealed class Enabled
{
    [JsonPropertyName("enabled")] public bool Value { get; set; }
}

public sealed class MountExtensions
{
    public Enabled? Idmap { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true, IndentSize = 4)]
[JsonSerializable(typeof(FeaturesDoc))]
internal sealed partial class FeaturesJson : JsonSerializerContext;

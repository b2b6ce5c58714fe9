using System.Text.Json;
using Berth.Linux.Seccomp;
using Berth.Oci;
using Berth.Oci.Runtime;
using Berth.Oci.Seccomp;
using OciSeccomp = Berth.Oci.Runtime.Seccomp;

namespace Berth.Runtime.Seccomp;

/// <summary>
/// Seccomp profile files (the containers/common and Docker format) and berth's default profile.
/// A profile becomes an OCI linux.seccomp section for one container: archMap picks the host's
/// ABIs, and each rule's includes/excludes are checked against the host ABI (Go arch name), the
/// container's bounding capabilities and the kernel version, as containers/common does.
/// </summary>
public static class SeccompProfiles
{
    private const string DefaultResource = "Berth.Runtime.Seccomp.default-profile.json";
    private static SeccompProfile? _default;

    /// <summary>
    /// The default profile: podman's (containers/common seccomp.json), embedded at build time.
    /// scripts/gen-default-seccomp refreshes it from /usr/share/containers/seccomp.json.
    /// </summary>
    public static SeccompProfile Default => _default ??= LoadDefault();

    public static SeccompProfile Parse(ReadOnlySpan<byte> json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize(json, OciJson.Default.SeccompProfile)
                ?? throw new SeccompProfileException($"{source}: the profile is null");
        }
        catch (JsonException ex)
        {
            throw new SeccompProfileException($"{source}: not a seccomp profile: {ex.Message}");
        }
    }

    public static SeccompProfile Load(string path) => Parse(File.ReadAllBytes(path), path);

    /// <summary>
    /// Resolves a profile for a container. <paramref name="boundingCaps"/> null means "unknown",
    /// and then, as in containers/common, no rule is dropped or kept for capability reasons.
    /// <paramref name="kernel"/> null skips minKernel checks. Returns null for a profile that has
    /// neither a default action nor rules (seccomp off).
    /// </summary>
    public static OciSeccomp? Resolve(SeccompProfile profile, IReadOnlyCollection<string>? boundingCaps,
        SeccompArch native, Version? kernel = null)
    {
        if (string.IsNullOrEmpty(profile.DefaultAction) && (profile.Syscalls is null || profile.Syscalls.Count == 0))
            return null;
        if (profile.Architectures is { Count: > 0 } && profile.ArchMap is { Count: > 0 })
            throw new SeccompProfileException("the profile has both architectures and archMap; use one");

        var result = new OciSeccomp
        {
            DefaultAction = profile.DefaultAction,
            DefaultErrnoRet = profile.DefaultErrnoRet,
            Flags = profile.Flags,
            ListenerPath = profile.ListenerPath,
            ListenerMetadata = profile.ListenerMetadata,
            Architectures = profile.Architectures is { Count: > 0 } ? [.. profile.Architectures] : null,
            Syscalls = [],
        };
        foreach (var map in profile.ArchMap ?? [])
        {
            if (map.Architecture != SeccompNames.ScmpName(native)) continue;
            result.Architectures = [map.Architecture, .. map.SubArchitectures ?? []];
            break;
        }

        string goArch = SeccompNames.GoArch(native);
        var rules = profile.Syscalls ?? [];
        for (int i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            if (!Applies(rule, goArch, boundingCaps, kernel, i)) continue;
            if (!string.IsNullOrEmpty(rule.Name) && rule.Names is { Count: > 0 })
                throw new SeccompProfileException($"syscalls[{i}]: has both name and names; use one");
            var names = !string.IsNullOrEmpty(rule.Name) ? [rule.Name] : rule.Names ?? [];
            if (names.Count == 0) continue;
            result.Syscalls.Add(new SeccompSyscall
            {
                Names = [.. names],
                Action = rule.Action,
                ErrnoRet = rule.ErrnoRet,
                Args = rule.Args is { Count: > 0 } ? [.. rule.Args] : null,
            });
        }
        return result;
    }

    private static bool Applies(SeccompProfileSyscall rule, string goArch, IReadOnlyCollection<string>? caps, Version? kernel, int index)
    {
        if (rule.Excludes is { } ex)
        {
            if (ex.Arches is { Count: > 0 } && ex.Arches.Contains(goArch)) return false;
            if (caps is not null && ex.Caps is { Count: > 0 } && ex.Caps.Any(caps.Contains)) return false;
            if (kernel is not null && ex.MinKernel is { Length: > 0 } && kernel >= MinKernel(ex.MinKernel, index)) return false;
        }
        if (rule.Includes is { } inc)
        {
            if (inc.Arches is { Count: > 0 } && !inc.Arches.Contains(goArch)) return false;
            if (caps is not null && inc.Caps is { Count: > 0 } && !inc.Caps.All(caps.Contains)) return false;
            if (kernel is not null && inc.MinKernel is { Length: > 0 } && kernel < MinKernel(inc.MinKernel, index)) return false;
        }
        return true;
    }

    private static Version MinKernel(string text, int index) =>
        Version.TryParse(text.Contains('.') ? text : text + ".0", out var v)
            ? new Version(v.Major, v.Minor)
            : throw new SeccompProfileException($"syscalls[{index}]: minKernel \"{text}\" is not a kernel version like 5.8");

    /// <summary>The running kernel's major.minor (from uname's release, e.g. 6.1.0-18-amd64 -> 6.1).</summary>
    private static Version? s_kernel;
    private static bool s_kernelRead;

    public static Version? RunningKernel()
    {
        if (s_kernelRead) return s_kernel;
        s_kernel = ReadKernel();
        s_kernelRead = true;
        return s_kernel;
    }

    private static Version? ReadKernel()
    {
        // open/read, not File.ReadAllText: a FileStream's first use costs more than this whole lookup (every sandbox run makes it).
        Span<byte> buf = stackalloc byte[128];
        int n;
        try
        {
            int fd = Berth.Linux.Files.Fd.Open("/proc/sys/kernel/osrelease", Berth.Linux.Interop.Consts.O_RDONLY | Berth.Linux.Interop.Consts.O_CLOEXEC);
            try { n = Berth.Linux.Files.Fd.Read(fd, buf); }
            finally { Berth.Linux.Files.Fd.Close(fd); }
        }
        catch (Berth.Linux.LinuxException) { return null; }
        var parts = System.Text.Encoding.ASCII.GetString(buf[..Math.Max(0, n)]).Trim().Split('.', '-');
        return parts.Length >= 2 && int.TryParse(parts[0], out int major) && int.TryParse(parts[1], out int minor)
            ? new Version(major, minor)
            : null;
    }

    private static SeccompProfile LoadDefault()
    {
        using var stream = typeof(SeccompProfiles).Assembly.GetManifestResourceStream(DefaultResource)
            ?? throw new InvalidOperationException($"resource {DefaultResource} is missing from the build");
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return Parse(buffer.ToArray(), "berth's default seccomp profile");
    }
}

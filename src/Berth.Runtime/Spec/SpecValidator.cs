namespace Berth.Runtime.Spec;

using Berth.Linux.Namespaces;
using Berth.Linux.Security;
using Berth.Oci.Runtime;
using Caps = Berth.Linux.Security.Capabilities;

/// <summary>
/// Checks a loaded config.json before anything is created, so a bad config fails with nothing
/// left behind. Throws <see cref="SpecException"/> on the first problem; the message starts with
/// the field path and quotes the value (`process.cwd: "rel" must be an absolute path`).
/// Rules follow the runtime spec, and runc where the spec leaves room.
/// </summary>
public static partial class SpecValidator
{
    /// <summary>
    /// Validates <paramref name="spec"/> for the bundle at <paramref name="bundleDir"/>.
    /// Returns warnings: things runc accepts for old configs but the spec deprecates.
    /// </summary>
    public static IReadOnlyList<string> Validate(Oci.Runtime.Spec spec, string bundleDir)
    {
        var warnings = new List<string>();
        ValidateRoot(spec, bundleDir);
        ValidateProcess(spec.Process);
        var namespaces = ValidateNamespaces(spec.Linux);
        ValidateUts(spec, namespaces);
        ValidateMounts(spec.Mounts, warnings);
        ValidateHooks(spec.Hooks);
        if (spec.Linux is { } linux) ValidateLinux(linux, namespaces, warnings);
        return warnings;
    }

    /// <summary>
    /// The rootfs as an absolute path with every symlink resolved: root.path as is when absolute,
    /// else relative to the bundle. Throws when it does not exist or is not a directory.
    /// </summary>
    public static string RootfsPath(Oci.Runtime.Spec spec, string bundleDir)
    {
        var rootPath = spec.Root?.Path;
        if (spec.Root is null) Fail("root", "missing");
        if (string.IsNullOrEmpty(rootPath)) Fail("root.path", "empty");
        CheckNoNul("root.path", rootPath);
        var full = Path.GetFullPath(rootPath, Path.GetFullPath(bundleDir));
        var real = RealPath.Resolve(full);
        if (real is null) Fail("root.path", $"rootfs {full} does not exist");
        if (!Directory.Exists(real)) Fail("root.path", $"{full} is not a directory");
        return real;
    }

    /// <summary>A bind mount's source as a host path: absolute as given, else relative to the bundle (as the spec says).</summary>
    public static string BindSourcePath(Mount mount, string bundleDir)
    {
        var source = mount.Source ?? "";
        return Path.IsPathRooted(source) ? source : Path.GetFullPath(source, Path.GetFullPath(bundleDir));
    }

    private static void ValidateRoot(Oci.Runtime.Spec spec, string bundleDir) => RootfsPath(spec, bundleDir);

    private static void ValidateProcess(Process? process)
    {
        if (process is null) Fail("process", "missing");
        if (process.Args is null || process.Args.Count == 0) Fail("process.args", "empty");
        for (int i = 0; i < process.Args.Count; i++)
        {
            if (process.Args[i] is null) Fail($"process.args[{i}]", "null");
            CheckNoNul($"process.args[{i}]", process.Args[i]);
        }
        if (process.Args[0].Length == 0) Fail("process.args[0]", "empty program name");

        var cwd = process.Cwd ?? "";
        if (cwd.Length == 0) Fail("process.cwd", "empty");
        if (!cwd.StartsWith('/')) Fail("process.cwd", $"{Quote(cwd)} must be an absolute path");
        CheckNoNul("process.cwd", cwd);

        if (process.Env is { } env)
            for (int i = 0; i < env.Count; i++)
            {
                var e = env[i] ?? "";
                CheckNoNul($"process.env[{i}]", e);
                int eq = e.IndexOf('=');
                if (eq < 0) Fail($"process.env[{i}]", $"{Quote(e)} is not NAME=VALUE");
                if (eq == 0) Fail($"process.env[{i}]", $"{Quote(e)} has an empty name");
            }

        if (process.Capabilities is { } caps)
        {
            CheckCapabilities("process.capabilities.bounding", caps.Bounding);
            CheckCapabilities("process.capabilities.effective", caps.Effective);
            CheckCapabilities("process.capabilities.inheritable", caps.Inheritable);
            CheckCapabilities("process.capabilities.permitted", caps.Permitted);
            CheckCapabilities("process.capabilities.ambient", caps.Ambient);
        }

        if (process.Rlimits is { } rlimits)
        {
            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < rlimits.Count; i++)
            {
                var r = rlimits[i];
                var type = r.Type ?? "";
                if (!Rlimits.TryParse(type, out _)) Fail($"process.rlimits[{i}].type", $"unknown rlimit {Quote(type)}");
                if (seen.TryGetValue(type, out var first))
                    Fail($"process.rlimits[{i}].type", $"{Quote(type)} is also set by process.rlimits[{first}]");
                seen[type] = i;
                if (r.Soft > r.Hard) Fail($"process.rlimits[{i}]", $"soft limit {r.Soft} is above hard limit {r.Hard}");
            }
        }

        var user = process.User;
        if (user.Umask is { } umask && umask > 0x1FF)
            Fail("process.user.umask", $"{umask} (0{Convert.ToString(umask, 8)}) is out of range 0 to 0777 (511)");

        if (process.OomScoreAdj is { } oom && oom is < -1000 or > 1000)
            Fail("process.oomScoreAdj", $"{oom} is out of range -1000 to 1000");

        if (process.IoPriority is { } io)
        {
            if (io.Class is not ("IOPRIO_CLASS_RT" or "IOPRIO_CLASS_BE" or "IOPRIO_CLASS_IDLE"))
                Fail("process.ioPriority.class", $"unknown class {Quote(io.Class)} (IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE)");
            if (io.Priority is < 0 or > 7) Fail("process.ioPriority.priority", $"{io.Priority} is out of range 0 to 7");
        }

        if (process.Scheduler is { } sched) ValidateScheduler(sched);
    }

    private static readonly string[] SchedulerPolicies =
        ["SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE"];

    private static void ValidateScheduler(Scheduler s)
    {
        var policy = s.Policy ?? "";
        if (policy.Length == 0) Fail("process.scheduler.policy", "missing");
        if (!SchedulerPolicies.Contains(policy)) Fail("process.scheduler.policy", $"unknown policy {Quote(policy)}");
        if (s.Nice is { } nice && policy is "SCHED_OTHER" or "SCHED_BATCH" && nice is < -20 or > 19)
            Fail("process.scheduler.nice", $"{nice} is out of range -20 to 19");
        if (s.Priority is { } prio && prio != 0 && policy is not ("SCHED_FIFO" or "SCHED_RR"))
            Fail("process.scheduler.priority", $"{prio} can only be set with SCHED_FIFO or SCHED_RR, not {policy}");
        if (policy != "SCHED_DEADLINE" && (s.Runtime is > 0 || s.Deadline is > 0 || s.Period is > 0))
            Fail("process.scheduler", $"runtime, deadline and period can only be set with SCHED_DEADLINE, not {policy}");
    }

    private static void CheckCapabilities(string field, List<string>? caps)
    {
        if (caps is null) return;
        for (int i = 0; i < caps.Count; i++)
        {
            var name = caps[i] ?? "";
            // The spec names capabilities as CAP_*; a lower-case or unprefixed name is a mistake, not an alias.
            if (!Caps.TryParse(name, out var cap) || Caps.Names[cap] != name)
                Fail($"{field}[{i}]", $"unknown capability {Quote(name)}");
        }
    }

    private static void ValidateUts(Oci.Runtime.Spec spec, IReadOnlyDictionary<NamespaceKind, LinuxNamespace> namespaces)
    {
        bool uts = namespaces.ContainsKey(NamespaceKind.Uts);
        if (!string.IsNullOrEmpty(spec.Hostname) && !uts)
            Fail("hostname", $"{Quote(spec.Hostname)} cannot be set without a uts namespace in linux.namespaces");
        if (!string.IsNullOrEmpty(spec.Domainname) && !uts)
            Fail("domainname", $"{Quote(spec.Domainname)} cannot be set without a uts namespace in linux.namespaces");
        CheckNoNul("hostname", spec.Hostname);
        CheckNoNul("domainname", spec.Domainname);
    }

    private static void ValidateHooks(Hooks? hooks)
    {
        if (hooks is null) return;
        CheckHooks("hooks.prestart", hooks.Prestart);
        CheckHooks("hooks.createRuntime", hooks.CreateRuntime);
        CheckHooks("hooks.createContainer", hooks.CreateContainer);
        CheckHooks("hooks.startContainer", hooks.StartContainer);
        CheckHooks("hooks.poststart", hooks.Poststart);
        CheckHooks("hooks.poststop", hooks.Poststop);
    }

    private static void CheckHooks(string field, List<Hook>? hooks)
    {
        if (hooks is null) return;
        for (int i = 0; i < hooks.Count; i++)
        {
            var h = hooks[i];
            if (h is null) Fail($"{field}[{i}]", "null");
            var path = h.Path ?? "";
            if (path.Length == 0) Fail($"{field}[{i}].path", "empty");
            if (!path.StartsWith('/')) Fail($"{field}[{i}].path", $"{Quote(path)} must be an absolute path");
            CheckNoNul($"{field}[{i}].path", path);
            if (h.Timeout is { } t && t <= 0) Fail($"{field}[{i}].timeout", $"{t} must be greater than zero");
            if (h.Env is { } env)
                for (int j = 0; j < env.Count; j++)
                    if ((env[j] ?? "").IndexOf('=') <= 0) Fail($"{field}[{i}].env[{j}]", $"{Quote(env[j])} is not NAME=VALUE");
        }
    }

    private static void CheckNoNul(string field, string? value)
    {
        if (value is not null && value.Contains('\0')) Fail(field, $"{Quote(value)} contains a NUL byte");
    }

    internal static string Quote(string? s) =>
        s is null ? "null" : "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\0", "\\0") + "\"";

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    internal static void Fail(string field, string what) => throw new SpecException($"{field}: {what}", field);
}

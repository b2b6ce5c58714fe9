using Berth.Images.Model;
using Berth.Oci.Runtime;
using Berth.Runtime.Seccomp;
using RtSpec = Berth.Oci.Runtime.Spec;

namespace Berth.Engine.Containers;

/// <summary>
/// Image config + run options -> OCI config, the way podman does it: Entrypoint/Cmd, Env,
/// WorkingDir, User, podman's default capabilities, masked paths and mounts, the default seccomp
/// profile, /etc/hostname and /etc/hosts. Pure: unit-tested without root.
/// </summary>
public static class SpecFromImage
{
    /// <summary>
    /// The image config's ExposedPorts keys ("80/tcp", "53/udp"; a bare "80" is tcp), sorted, as docker
    /// and podman keep them; read from the config's extension data. Malformed keys are skipped.
    /// </summary>
    public static List<string> ExposedPorts(Berth.Images.Model.ImageConfig config)
    {
        var result = new List<string>();
        if (config.Config?.Extra is not { } extra || !extra.TryGetValue("ExposedPorts", out var ports)
            || ports.ValueKind != System.Text.Json.JsonValueKind.Object) return result;
        foreach (var p in ports.EnumerateObject())
        {
            var parts = p.Name.Split('/');
            if (parts.Length > 2 || !ushort.TryParse(parts[0], out var n) || n == 0) continue;
            var proto = parts.Length == 2 ? parts[1].ToLowerInvariant() : "tcp";
            if (proto is not ("tcp" or "udp" or "sctp")) continue;
            var key = $"{n}/{proto}";
            if (!result.Contains(key)) result.Add(key);
        }
        result.Sort(StringComparer.Ordinal);
        return result;
    }

    /// <summary>podman's default capability set (containers.conf default_capabilities).</summary>
    public static readonly string[] DefaultCaps =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
        "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
    ];

    public const string DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    public sealed record Files(string Hostname, string Hosts, string? ResolvConf = null);

    public static RtSpec Build(ImageConfig image, RunOptions o, string rootfs, string hostname, Files files,
        Func<string, (uint Uid, uint Gid)?> lookupUser, string? netnsPath = null)
    {
        var cfg = image.Config ?? new ContainerConfig();
        var spec = Berth.Runtime.Spec.DefaultSpec.Create(rootless: false);
        spec.Hostname = hostname;
        spec.Root = new Root { Path = rootfs, Readonly = o.ReadOnly };

        var entry = o.Entrypoint ?? cfg.Entrypoint ?? [];
        var cmd = o.Command.Count > 0 ? o.Command : o.Entrypoint is not null ? [] : cfg.Cmd ?? [];
        var args = entry.Concat(cmd).ToList();
        if (args.Count == 0) throw new EngineError($"image {o.Image} has no Entrypoint or Cmd: give a command");

        var env = new List<string>(cfg.Env ?? []);
        if (!env.Any(e => e.StartsWith("PATH=", StringComparison.Ordinal))) env.Insert(0, DefaultPath);
        if (o.Tty && !env.Any(e => e.StartsWith("TERM=", StringComparison.Ordinal))) env.Add("TERM=xterm");
        env.Add("HOSTNAME=" + hostname);
        foreach (var kv in o.Env)
        {
            var key = kv.Split('=', 2)[0];
            env.RemoveAll(e => e.Split('=', 2)[0] == key);
            env.Add(kv.Contains('=') ? kv : $"{kv}={Environment.GetEnvironmentVariable(kv)}");
        }

        var user = o.User ?? cfg.User ?? "";
        (uint uid, uint gid) = ResolveUser(user, lookupUser);
        var caps = Capabilities(o);
        var process = spec.Process!;
        process.Terminal = o.Tty;
        process.Args = args;
        process.Env = env;
        process.Cwd = o.Workdir ?? (string.IsNullOrEmpty(cfg.WorkingDir) ? "/" : cfg.WorkingDir);
        process.User = new User { Uid = uid, Gid = gid };
        // A non-root user gets what --cap-add (or --privileged) gave explicitly, raised into the ambient set
        // (which needs inheritable too): the only way a capability survives execve of an ordinary binary for uid != 0.
        var userCaps = uid == 0 ? caps : NonRootCaps(o, caps);
        process.Capabilities = new Berth.Oci.Runtime.Capabilities
        {
            Bounding = [.. caps], Effective = [.. userCaps], Permitted = [.. userCaps],
            Inheritable = uid == 0 ? [] : [.. userCaps],
            Ambient = uid == 0 ? [] : [.. userCaps],
        };
        process.NoNewPrivileges = !o.Privileged;
        process.Rlimits = [new Rlimit { Type = "RLIMIT_NOFILE", Soft = 1024, Hard = 1024 }];

        var linux = spec.Linux!;
        linux.Namespaces = [.. new[] { "pid", "ipc", "uts", "mount", "cgroup" }.Select(t => new LinuxNamespace { Type = t })];
        if (o.Network == "none") linux.Namespaces.Add(new LinuxNamespace { Type = "network" });
        else if (o.Network != "host" && netnsPath is not null) linux.Namespaces.Add(new LinuxNamespace { Type = "network", Path = netnsPath });
        else if (o.Network != "host")
            throw new EngineError($"--network {o.Network}: the network namespace was not prepared");
        if (o.Privileged)
        {
            linux.MaskedPaths = [];
            linux.ReadonlyPaths = [];
        }
        else if (o.Seccomp != "unconfined")
        {
            var profile = o.Seccomp is null ? SeccompProfiles.Default : SeccompProfiles.Load(o.Seccomp);
            linux.Seccomp = SeccompProfiles.Resolve(profile, caps,
                Berth.Linux.Seccomp.SeccompArchInfo.Native ?? throw new EngineError("no seccomp syscall table for this architecture"),
                SeccompProfiles.RunningKernel());
        }
        ApplyResources(linux, o);
        foreach (var (k, v) in o.Sysctls) (linux.Sysctl ??= [])[k] = v;
        spec.Mounts ??= [];
        spec.Mounts.Add(new Mount { Destination = "/etc/hostname", Type = "bind", Source = files.Hostname, Options = ["rbind", "ro"] });
        spec.Mounts.Add(new Mount { Destination = "/etc/hosts", Type = "bind", Source = files.Hosts, Options = ["rbind", "ro"] });
        if (files.ResolvConf is not null)
            spec.Mounts.Add(new Mount { Destination = "/etc/resolv.conf", Type = "bind", Source = files.ResolvConf, Options = ["rbind", "ro"] });
        else if (o.Network == "host" && File.Exists("/etc/resolv.conf"))
            spec.Mounts.Add(new Mount { Destination = "/etc/resolv.conf", Type = "bind", Source = "/etc/resolv.conf", Options = ["rbind", "ro"] });
        spec.Annotations = new Dictionary<string, string> { ["io.berth.image"] = o.Image };
        return spec;
    }

    /// <summary>--memory, --memory-swap, --pids-limit, --cpu-shares, --cpus, --cpuset-cpus onto linux.resources.</summary>
    private static void ApplyResources(Berth.Oci.Runtime.Linux linux, RunOptions o)
    {
        var r = linux.Resources ??= new Resources();
        if (o.Memory is { } mem)
        {
            if (mem < 4 * 1024 * 1024) throw new EngineError($"--memory {mem}: the minimum is 4 MiB");
            long swap = o.MemorySwap ?? mem * 2;
            if (swap != -1 && swap < mem) throw new EngineError("--memory-swap must be at least --memory (it is memory plus swap), or -1");
            r.Memory = new Memory { Limit = mem, Swap = swap };
        }
        else if (o.MemorySwap is not null) throw new EngineError("--memory-swap needs --memory");
        if (o.PidsLimit is { } pids) r.Pids = new Pids { Limit = pids };
        if (o.CpuShares is not null || o.Cpus is not null || o.CpusetCpus is not null)
        {
            r.Cpu = new Cpu { Shares = o.CpuShares, Cpus = o.CpusetCpus };
            if (o.Cpus is { } cpus)
            {
                if (cpus <= 0) throw new EngineError($"--cpus {cpus}: must be above 0");
                r.Cpu.Period = 100000;
                r.Cpu.Quota = (long)Math.Round(cpus * 100000);
            }
        }
    }

    /// <summary>The capabilities a non-root user holds: those added by name (all with --privileged or --cap-add ALL), within the bounding set.</summary>
    private static List<string> NonRootCaps(RunOptions o, List<string> bounding)
    {
        if (o.Privileged || o.CapAdd.Any(a => a.Equals("ALL", StringComparison.OrdinalIgnoreCase))) return bounding;
        var added = o.CapAdd.Select(c => c.StartsWith("CAP_", StringComparison.OrdinalIgnoreCase) ? c.ToUpperInvariant() : "CAP_" + c.ToUpperInvariant());
        return bounding.Where(added.Contains).ToList();
    }

    private static List<string> Capabilities(RunOptions o)
    {
        var all = Berth.Linux.Security.Capabilities.Names.Take(Berth.Linux.Security.Capabilities.LastCap() + 1);
        var caps = o.Privileged ? all.ToList() : [.. DefaultCaps];
        static string Norm(string c) => c.StartsWith("CAP_", StringComparison.OrdinalIgnoreCase) ? c.ToUpperInvariant() : "CAP_" + c.ToUpperInvariant();
        foreach (var d in o.CapDrop)
        {
            if (d.Equals("ALL", StringComparison.OrdinalIgnoreCase)) caps.Clear();
            else caps.Remove(Norm(d));
        }
        foreach (var a in o.CapAdd)
        {
            if (a.Equals("ALL", StringComparison.OrdinalIgnoreCase)) { caps = all.ToList(); continue; }
            var n = Norm(a);
            if (!Berth.Linux.Security.Capabilities.TryParse(n, out _)) throw new EngineError($"--cap-add: unknown capability \"{a}\"");
            if (!caps.Contains(n)) caps.Add(n);
        }
        return caps;
    }

    /// <summary>"", "uid", "uid:gid", "name", "name:group" -> numbers (names through the image's /etc/passwd).</summary>
    public static (uint Uid, uint Gid) ResolveUser(string user, Func<string, (uint Uid, uint Gid)?> lookup)
    {
        if (string.IsNullOrEmpty(user)) return (0, 0);
        var parts = user.Split(':', 2);
        uint uid, gid;
        if (uint.TryParse(parts[0], out uid)) gid = lookup(parts[0])?.Gid ?? uid;
        else
        {
            var found = lookup(parts[0]) ?? throw new EngineError($"user \"{parts[0]}\" is not in the image's /etc/passwd");
            (uid, gid) = found;
        }
        if (parts.Length == 2)
        {
            if (!uint.TryParse(parts[1], out gid))
                gid = lookup("group:" + parts[1])?.Gid ?? throw new EngineError($"group \"{parts[1]}\" is not in the image's /etc/group");
        }
        return (uid, gid);
    }
}

public sealed class EngineError(string message) : Exception(message);

using Berth.Engine.Containers;
namespace Berth.Engine.Volumes;

public enum MountKind { Bind, Volume, Tmpfs }

/// <summary>
/// One mount a user asked for with -v, --mount or --tmpfs, before anything exists on disk.
/// <see cref="Source"/> is a host path (bind), a volume name ("" for an anonymous volume), or unused (tmpfs).
/// </summary>
public sealed record MountRequest
{
    public required MountKind Kind { get; init; }
    public string Source { get; init; } = "";
    public required string Destination { get; init; }
    public bool ReadOnly { get; init; }
    /// <summary>A propagation option (rprivate, shared, ...), or null for the runtime's default.</summary>
    public string? Propagation { get; init; }
    /// <summary>Volumes only: do not seed a new, empty volume from the image's content at the destination.</summary>
    public bool NoCopy { get; init; }
    /// <summary>tmpfs only: filesystem options (size=..., mode=..., noexec, ...).</summary>
    public List<string> TmpfsOptions { get; init; } = [];
    /// <summary>The flag it came from, for error messages ("-v /a:/b").</summary>
    public string Origin { get; init; } = "";
}

/// <summary>
/// Parses docker's three mount syntaxes into <see cref="MountRequest"/>s. Pure: nothing is checked on
/// disk here (that is <see cref="VolumeStore"/>'s and the run's job).
/// </summary>
public static class MountSpec
{
    private static readonly HashSet<string> Propagations = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];

    /// <summary>-v/--volume SRC:DST[:OPTS] or DST (an anonymous volume).</summary>
    public static MountRequest ParseVolume(string spec)
    {
        string origin = $"-v {spec}";
        var parts = spec.Split(':');
        if (spec.Length == 0 || parts.Length > 3 || parts.Any(p => p.Length == 0))
            throw new EngineError($"{origin}: expected SRC:DST[:OPTIONS] or DST");
        if (parts.Length == 1)
            return new MountRequest { Kind = MountKind.Volume, Destination = Destination(parts[0], origin), Origin = origin };
        var src = parts[0];
        var kind = src.StartsWith('/') || src.StartsWith('.') ? MountKind.Bind : MountKind.Volume;
        if (kind == MountKind.Bind && !src.StartsWith('/'))
            throw new EngineError($"{origin}: a bind mount source must be an absolute host path (\"{src}\" is relative)");
        if (kind == MountKind.Volume) CheckVolumeName(src, origin);
        bool ro = false, noCopy = false;
        string? propagation = null;
        if (parts.Length == 3)
            foreach (var o in parts[2].Split(','))
            {
                switch (o)
                {
                    case "ro": ro = true; break;
                    case "rw": ro = false; break;
                    case "z" or "Z": break; // SELinux relabelling: this host has no SELinux, accepted as docker does
                    case "nocopy" when kind == MountKind.Volume: noCopy = true; break;
                    case "copy": break;
                    case var p when Propagations.Contains(p): propagation = p; break;
                    case "": throw new EngineError($"{origin}: empty option");
                    default: throw new EngineError($"{origin}: unknown option \"{o}\" (ro, rw, z, Z, nocopy, [r]private, [r]shared, [r]slave)");
                }
            }
        return new MountRequest
        {
            Kind = kind, Source = kind == MountKind.Bind ? Path.TrimEndingDirectorySeparator(src) is { Length: > 0 } s ? s : "/" : src,
            Destination = Destination(parts[1], origin), ReadOnly = ro, NoCopy = noCopy, Propagation = propagation, Origin = origin,
        };
    }

    /// <summary>--mount type=bind|volume|tmpfs,src=...,dst=...,readonly,...</summary>
    public static MountRequest ParseMount(string spec)
    {
        string origin = $"--mount {spec}";
        string? type = null, src = null, dst = null, propagation = null;
        bool ro = false, noCopy = false;
        var tmpfs = new List<string>();
        foreach (var field in spec.Split(','))
        {
            var kv = field.Split('=', 2);
            var key = kv[0].Trim();
            string? val = kv.Length == 2 ? kv[1] : null;
            string Need() => string.IsNullOrEmpty(val) ? throw new EngineError($"{origin}: \"{key}\" needs a value") : val;
            bool Bool() => val switch
            {
                null or "true" or "1" => true,
                "false" or "0" => false,
                _ => throw new EngineError($"{origin}: \"{key}={val}\" is not true or false"),
            };
            switch (key)
            {
                case "type": type = Need(); break;
                case "source" or "src": src = Need(); break;
                case "destination" or "dst" or "target": dst = Need(); break;
                case "readonly" or "ro": ro = Bool(); break;
                case "bind-propagation":
                    propagation = Propagations.Contains(Need()) ? val : throw new EngineError($"{origin}: bind-propagation \"{val}\" is not one of {string.Join(", ", Propagations)}");
                    break;
                case "volume-nocopy": noCopy = Bool(); break;
                case "tmpfs-size": tmpfs.Add("size=" + Need()); break;
                case "tmpfs-mode":
                    tmpfs.Add("mode=" + (Need().All(c => c is >= '0' and <= '7') ? val : throw new EngineError($"{origin}: tmpfs-mode \"{val}\" is not an octal mode")));
                    break;
                case "consistency": break; // a macOS-only hint in docker; meaningless here
                default: throw new EngineError($"{origin}: unknown key \"{key}\"");
            }
        }
        if (dst is null) throw new EngineError($"{origin}: no destination (dst=PATH)");
        var kind = type switch
        {
            "bind" => MountKind.Bind,
            "volume" or null => MountKind.Volume,
            "tmpfs" => MountKind.Tmpfs,
            _ => throw new EngineError($"{origin}: type \"{type}\" is not bind, volume or tmpfs"),
        };
        if (kind == MountKind.Bind)
        {
            if (src is null) throw new EngineError($"{origin}: a bind mount needs src=HOSTPATH");
            if (!src.StartsWith('/')) throw new EngineError($"{origin}: a bind mount source must be an absolute host path (\"{src}\" is relative)");
        }
        if (kind == MountKind.Volume && src is not null) CheckVolumeName(src, origin);
        if (kind == MountKind.Tmpfs && src is not null) throw new EngineError($"{origin}: a tmpfs mount has no source");
        if (kind != MountKind.Tmpfs && tmpfs.Count > 0) throw new EngineError($"{origin}: tmpfs-size and tmpfs-mode need type=tmpfs");
        if (kind != MountKind.Bind && propagation is not null) throw new EngineError($"{origin}: bind-propagation needs type=bind");
        return new MountRequest
        {
            Kind = kind, Source = src ?? "", Destination = Destination(dst, origin), ReadOnly = ro, NoCopy = noCopy,
            Propagation = propagation, TmpfsOptions = tmpfs, Origin = origin,
        };
    }

    /// <summary>--tmpfs DST[:OPTIONS] (options as mount(8) takes them: size=64m,mode=1777,exec).</summary>
    public static MountRequest ParseTmpfs(string spec)
    {
        string origin = $"--tmpfs {spec}";
        var colon = spec.IndexOf(':');
        var dst = colon < 0 ? spec : spec[..colon];
        var opts = colon < 0 ? [] : spec[(colon + 1)..].Split(',').ToList();
        if (opts.Any(o => o.Length == 0)) throw new EngineError($"{origin}: empty option");
        bool ro = opts.Contains("ro") && opts.LastIndexOf("ro") > opts.LastIndexOf("rw");
        return new MountRequest
        {
            Kind = MountKind.Tmpfs, Destination = Destination(dst, origin), ReadOnly = ro,
            TmpfsOptions = opts.Where(o => o is not ("ro" or "rw")).ToList(), Origin = origin,
        };
    }

    /// <summary>A destination is absolute, not "/", and has no ".." (docker refuses the same).</summary>
    private static string Destination(string dst, string origin)
    {
        if (!dst.StartsWith('/')) throw new EngineError($"{origin}: the destination \"{dst}\" must be an absolute path in the container");
        var parts = dst.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Contains("..")) throw new EngineError($"{origin}: the destination \"{dst}\" must not contain \"..\"");
        var norm = "/" + string.Join('/', parts.Where(p => p != "."));
        if (norm == "/") throw new EngineError($"{origin}: cannot mount over the container's root \"/\"");
        return norm;
    }

    /// <summary>docker's rule for volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]*.</summary>
    public static void CheckVolumeName(string name, string origin)
    {
        if (!IsValidVolumeName(name))
            throw new EngineError($"{origin}: \"{name}\" is not a valid volume name (letters, digits, '_', '.', '-'; starting with a letter or digit) nor an absolute host path");
    }

    public static bool IsValidVolumeName(string name) =>
        name.Length is > 0 and <= 255 && char.IsAsciiLetterOrDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');

    /// <summary>Rejects two mounts on one destination; orders parents before children (as docker sorts them).</summary>
    public static List<MountRequest> Normalize(IEnumerable<MountRequest> mounts)
    {
        var list = mounts.ToList();
        foreach (var g in list.GroupBy(m => m.Destination).Where(g => g.Count() > 1))
            throw new EngineError($"{g.First().Origin} and {g.Skip(1).First().Origin}: two mounts on {g.Key}");
        return list.OrderBy(m => m.Destination.Count(c => c == '/')).ToList(); // stable: same depth keeps flag order
    }
}

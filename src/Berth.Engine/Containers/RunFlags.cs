using System.Globalization;
using Berth.Oci.Runtime;

namespace Berth.Engine.Containers;

/// <summary>A --device request before the host node is looked at.</summary>
public sealed record DeviceRequest(string HostPath, string ContainerPath, string Access);

/// <summary>Pure parsers for `run` flags whose syntax is docker's: --ulimit, --device, --env-file, --label.</summary>
public static class RunFlags
{
    private static readonly Dictionary<string, string> UlimitNames = new(StringComparer.Ordinal)
    {
        ["core"] = "RLIMIT_CORE", ["cpu"] = "RLIMIT_CPU", ["data"] = "RLIMIT_DATA", ["fsize"] = "RLIMIT_FSIZE",
        ["locks"] = "RLIMIT_LOCKS", ["memlock"] = "RLIMIT_MEMLOCK", ["msgqueue"] = "RLIMIT_MSGQUEUE", ["nice"] = "RLIMIT_NICE",
        ["nofile"] = "RLIMIT_NOFILE", ["nproc"] = "RLIMIT_NPROC", ["rss"] = "RLIMIT_RSS", ["rtprio"] = "RLIMIT_RTPRIO",
        ["rttime"] = "RLIMIT_RTTIME", ["sigpending"] = "RLIMIT_SIGPENDING", ["stack"] = "RLIMIT_STACK", ["as"] = "RLIMIT_AS",
    };

    /// <summary>--ulimit NAME=SOFT[:HARD] (HARD defaults to SOFT; "unlimited" or -1 is no limit).</summary>
    public static Rlimit ParseUlimit(string spec)
    {
        var kv = spec.Split('=', 2);
        if (kv.Length != 2 || kv[1].Length == 0) throw new EngineError($"--ulimit {spec}: expected NAME=SOFT[:HARD]");
        if (!UlimitNames.TryGetValue(kv[0].ToLowerInvariant(), out var type))
            throw new EngineError($"--ulimit {spec}: unknown limit \"{kv[0]}\" ({string.Join(", ", UlimitNames.Keys)})");
        var values = kv[1].Split(':');
        if (values.Length > 2) throw new EngineError($"--ulimit {spec}: expected NAME=SOFT[:HARD]");
        ulong Value(string v) => v is "unlimited" or "-1" ? ulong.MaxValue
            : ulong.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
            : throw new EngineError($"--ulimit {spec}: \"{v}\" is not a number or \"unlimited\"");
        ulong soft = Value(values[0]), hard = values.Length == 2 ? Value(values[1]) : soft;
        if (soft > hard) throw new EngineError($"--ulimit {spec}: the soft limit {values[0]} is above the hard limit {values[1]}");
        return new Rlimit { Type = type, Soft = soft, Hard = hard };
    }

    /// <summary>--device HOST[:CONTAINER][:rwm].</summary>
    public static DeviceRequest ParseDevice(string spec)
    {
        var parts = spec.Split(':');
        if (parts.Length > 3 || parts.Any(p => p.Length == 0)) throw new EngineError($"--device {spec}: expected HOSTPATH[:CONTAINERPATH][:rwm]");
        static bool IsAccess(string s) => s.Length <= 3 && s.All(c => c is 'r' or 'w' or 'm') && s.Distinct().Count() == s.Length;
        string host = parts[0], container = host, access = "rwm";
        if (parts.Length == 2)
        {
            if (IsAccess(parts[1])) access = parts[1];
            else container = parts[1];
        }
        else if (parts.Length == 3)
        {
            container = parts[1];
            access = IsAccess(parts[2]) ? parts[2] : throw new EngineError($"--device {spec}: \"{parts[2]}\" is not a combination of r, w and m");
        }
        if (!host.StartsWith('/')) throw new EngineError($"--device {spec}: the host path \"{host}\" must be absolute");
        if (!container.StartsWith('/') || container.Split('/').Contains(".."))
            throw new EngineError($"--device {spec}: the container path \"{container}\" must be absolute, without \"..\"");
        return new DeviceRequest(host, container, access);
    }

    /// <summary>
    /// An --env-file's lines: KEY=VALUE taken literally (no quotes or expansion, as docker), a bare
    /// KEY copies the host's value when it has one, blank lines and # comments are skipped.
    /// </summary>
    public static List<string> ParseEnvFile(string text, string path, Func<string, string?> hostEnv)
    {
        var result = new List<string>();
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            var trimmed = line.TrimStart();
            if (trimmed.Length == 0 || trimmed.StartsWith('#')) continue;
            var eq = trimmed.IndexOf('=');
            var key = eq < 0 ? trimmed.TrimEnd() : trimmed[..eq];
            if (key.Length == 0 || key.Any(char.IsWhiteSpace))
                throw new EngineError($"--env-file {path}: line {i + 1}: \"{key}\" is not a variable name");
            if (eq >= 0) result.Add(key + "=" + trimmed[(eq + 1)..]);
            else if (hostEnv(key) is { } v) result.Add(key + "=" + v);
        }
        return result;
    }

    /// <summary>--label KEY[=VALUE] (a bare KEY has an empty value).</summary>
    public static KeyValuePair<string, string> ParseLabel(string spec)
    {
        var kv = spec.Split('=', 2);
        if (kv[0].Length == 0) throw new EngineError($"--label {spec}: the key is empty");
        return new(kv[0], kv.Length == 2 ? kv[1] : "");
    }
}

using System.Globalization;
using System.Text.Json;
using Berth.Engine.Containers;

namespace Berth.Engine.Sandbox;

/// <summary>
/// One line of a `berth sandbox batch` file -> <see cref="SandboxOptions"/>. The keys are `run`'s
/// long option names without the dashes in front (`"wall-time"`, `"open-files"`, ...), the
/// program is `"command"` (an array of strings), and `"id"` (any string) is echoed in the result.
/// Numbers may be JSON numbers or strings (`"memory": "64m"` or `67108864`); flags are booleans.
/// Pure: unit-tested. An unknown key, a wrong type or a bad value is an <see cref="EngineError"/>
/// naming the key.
/// </summary>
public static class SandboxJobLine
{
    public sealed record Job(SandboxOptions Options, string? Id);

    public static Job Parse(string line)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException e) { throw new EngineError($"invalid JSON at byte {e.BytePositionInLine + 1}"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new EngineError("a job must be a JSON object");
            List<string>? command = null;
            string? box = null, stdin = null, stdout = null, stderr = null, id = null, image = null;
            var dirs = new List<DirRule>();
            double? time = null, wallTime = null, extraTime = null;
            long? memory = null, fsize = null, stack = null, processes = null, openFiles = null, boxSize = null;
            bool net = false, keep = false;
            string? seccomp = null, audit = null, evidence = null;
            var onViolation = ViolationMode.Kill;
            foreach (var p in root.EnumerateObject())
            {
                var v = p.Value;
                switch (p.Name)
                {
                    case "command": command = StringArray(v, p.Name); break;
                    case "id": id = String(v, p.Name); break;
                    case "box": box = Path.GetFullPath(String(v, p.Name)); break;
                    case "image": image = String(v, p.Name); break;
                    case "dir":
                        foreach (var d in v.ValueKind == JsonValueKind.Array ? StringArray(v, p.Name) : [String(v, p.Name)])
                            dirs.Add(DirRule.Parse(d));
                        break;
                    case "time": time = Seconds(v, p.Name); break;
                    case "wall-time": wallTime = Seconds(v, p.Name); break;
                    case "extra-time": extraTime = Seconds(v, p.Name); break;
                    case "memory": memory = Size(v, p.Name); break;
                    case "processes": processes = Count(v, p.Name); break;
                    case "fsize": fsize = Count(v, p.Name); break;
                    case "open-files": openFiles = Count(v, p.Name); break;
                    case "stack": stack = Size(v, p.Name); break;
                    case "box-size": boxSize = Size(v, p.Name); break;
                    case "stdin": stdin = String(v, p.Name); break;
                    case "stdout": stdout = String(v, p.Name); break;
                    case "stderr": stderr = String(v, p.Name); break;
                    case "net": net = Bool(v, p.Name); break;
                    case "keep-output": keep = Bool(v, p.Name); break;
                    case "seccomp": seccomp = Path.GetFullPath(String(v, p.Name)); break;
                    case "audit": audit = Path.GetFullPath(String(v, p.Name)); break;
                    case "evidence": evidence = Path.GetFullPath(String(v, p.Name)); break;
                    case "on-violation":
                        onViolation = String(v, p.Name) switch
                        {
                            "log" => ViolationMode.Log,
                            "deny" => ViolationMode.Deny,
                            "kill" => ViolationMode.Kill,
                            "quarantine" => ViolationMode.Quarantine,
                            var bad => throw new EngineError($"\"on-violation\": {bad}: expected log, deny, kill or quarantine"),
                        };
                        break;
                    default: throw new EngineError($"unknown key \"{p.Name}\"");
                }
            }
            if (command is null || command.Count == 0) throw new EngineError("\"command\": missing (an array: the program and its arguments)");
            if (keep && box is null) throw new EngineError("\"keep-output\" needs \"box\"");
            if (extraTime is not null && time is null) throw new EngineError("\"extra-time\" needs \"time\"");
            if (onViolation == ViolationMode.Quarantine && evidence is null) throw new EngineError("\"on-violation\": quarantine needs \"evidence\"");
            var o = new SandboxOptions
            {
                Command = command, Box = box, Image = image, Dirs = dirs, Time = time, ExtraTime = extraTime, WallTime = wallTime, Memory = memory,
                Processes = processes ?? 64, FsizeKb = fsize, OpenFiles = openFiles ?? 64, Stack = stack,
                Stdin = stdin, Stdout = stdout, Stderr = stderr, Net = net, KeepOutput = keep,
                BoxSize = boxSize ?? 128L << 20,
                Seccomp = seccomp, OnViolation = onViolation, Audit = audit, Evidence = evidence,
            };
            return new Job(o, id);
        }
    }

    private static string String(JsonElement v, string key) =>
        v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new EngineError($"\"{key}\": expected a string");

    private static List<string> StringArray(JsonElement v, string key)
    {
        if (v.ValueKind != JsonValueKind.Array) throw new EngineError($"\"{key}\": expected an array of strings");
        var list = new List<string>();
        foreach (var e in v.EnumerateArray())
            list.Add(e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new EngineError($"\"{key}\": expected an array of strings"));
        return list;
    }

    private static bool Bool(JsonElement v, string key) => v.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new EngineError($"\"{key}\": expected true or false"),
    };

    private static string Text(JsonElement v, string key) => v.ValueKind switch
    {
        JsonValueKind.Number => v.GetRawText(),
        JsonValueKind.String => v.GetString()!,
        _ => throw new EngineError($"\"{key}\": expected a number or a string"),
    };

    private static double Seconds(JsonElement v, string key)
    {
        var s = Text(v, key);
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || d <= 0 || double.IsInfinity(d))
            throw new EngineError($"\"{key}\": {s}: expected seconds > 0");
        return d;
    }

    private static long Count(JsonElement v, string key)
    {
        var s = Text(v, key);
        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0)
            throw new EngineError($"\"{key}\": {s}: expected a positive whole number");
        return n;
    }

    /// <summary>Bytes, or with a k/m/g suffix, as `run`'s SIZE.</summary>
    public static long Size(JsonElement v, string key)
    {
        var s = Text(v, key);
        long mult = 1;
        var num = s;
        if (s.Length > 0 && char.ToLowerInvariant(s[^1]) is 'k' or 'm' or 'g')
        {
            mult = char.ToLowerInvariant(s[^1]) switch { 'k' => 1L << 10, 'm' => 1L << 20, _ => 1L << 30 };
            num = s[..^1];
        }
        if (!long.TryParse(num, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0 || n > long.MaxValue / mult)
            throw new EngineError($"\"{key}\": {s}: expected a size such as 64m");
        return n * mult;
    }
}

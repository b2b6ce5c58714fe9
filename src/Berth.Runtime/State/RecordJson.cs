using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Berth.Runtime.State;

/// <summary>state.json by hand (Utf8JsonWriter / JsonDocument): it is read and written on every command.</summary>
internal static class RecordJson
{
    public static byte[] Serialize(ContainerRecord r)
    {
        // Written out directly: Utf8JsonWriter's first string builds System.Text.Encodings.Web's
        // escaping tables (a 64K-entry loop, ~0.1 ms of every create).
        var sb = new StringBuilder(512 + (r.Config?.Length ?? 0) * 9 / 8);
        sb.Append('{');
        Str(sb, "id", r.Id).Append(',');
        sb.Append("\"initPid\":").Append(r.InitPid.ToString(CultureInfo.InvariantCulture)).Append(',');
        sb.Append("\"initStartTime\":").Append(r.InitStartTime.ToString(CultureInfo.InvariantCulture)).Append(',');
        Str(sb, "bundle", r.Bundle).Append(',');
        Str(sb, "rootfs", r.Rootfs).Append(',');
        Str(sb, "created", r.Created.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture)).Append(',');
        Str(sb, "owner", r.Owner).Append(',');
        Str(sb, "status", r.Status).Append(',');
        Str(sb, "cgroupPath", r.CgroupPath);
        if (r.Annotations is { Count: > 0 })
        {
            sb.Append(",\"annotations\":{");
            bool first = true;
            foreach (var (k, v) in r.Annotations)
            {
                if (!first) sb.Append(',');
                first = false;
                Str(sb, k, v);
            }
            sb.Append('}');
        }
        if (r.Config is not null)
        {
            sb.Append(',');
            Str(sb, "config", r.Config);
        }
        sb.Append('}');
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    private static StringBuilder Str(StringBuilder sb, string name, string? value)
    {
        Quote(sb, name).Append(':');
        return Quote(sb, value ?? "");
    }

    /// <summary>A JSON string: quotes, backslashes and control characters escaped; everything else as is (UTF-8).</summary>
    internal static StringBuilder Quote(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20 || c is '\u2028' or '\u2029') sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append('"');
    }

    /// <summary>Parses state.json; throws JsonException (or FormatException) when it is not one.</summary>
    public static ContainerRecord Parse(string text)
    {
        using var doc = JsonDocument.Parse(text);
        var o = doc.RootElement;
        if (o.ValueKind != JsonValueKind.Object) throw new JsonException("state.json is not a JSON object");
        string Str(string name) => o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
        var r = new ContainerRecord
        {
            Id = Str("id"),
            InitPid = o.TryGetProperty("initPid", out var pid) ? pid.GetInt32() : 0,
            InitStartTime = o.TryGetProperty("initStartTime", out var st) ? st.GetUInt64() : 0,
            Bundle = Str("bundle"),
            Rootfs = Str("rootfs"),
            Created = DateTime.Parse(Str("created"), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal),
            Owner = Str("owner"),
            Status = Str("status"),
            CgroupPath = Str("cgroupPath"),
            Config = o.TryGetProperty("config", out var cfg) && cfg.ValueKind == JsonValueKind.String ? cfg.GetString() : null,
        };
        if (o.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Object)
        {
            r.Annotations = [];
            foreach (var p in a.EnumerateObject()) r.Annotations[p.Name] = p.Value.GetString() ?? "";
        }
        return r;
    }
}

using System.Globalization;
using System.Text.Json;

namespace Berth.Runtime.State;

/// <summary>state.json by hand (Utf8JsonWriter / JsonDocument): it is read and written on every command.</summary>
internal static class RecordJson
{
    public static byte[] Serialize(ContainerRecord r)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("id", r.Id);
            w.WriteNumber("initPid", r.InitPid);
            w.WriteNumber("initStartTime", r.InitStartTime);
            w.WriteString("bundle", r.Bundle);
            w.WriteString("rootfs", r.Rootfs);
            w.WriteString("created", r.Created.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture));
            w.WriteString("owner", r.Owner);
            w.WriteString("status", r.Status);
            w.WriteString("cgroupPath", r.CgroupPath);
            if (r.Annotations is { Count: > 0 })
            {
                w.WriteStartObject("annotations");
                foreach (var (k, v) in r.Annotations) w.WriteString(k, v);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return ms.ToArray();
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
        };
        if (o.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Object)
        {
            r.Annotations = [];
            foreach (var p in a.EnumerateObject()) r.Annotations[p.Name] = p.Value.GetString() ?? "";
        }
        return r;
    }
}

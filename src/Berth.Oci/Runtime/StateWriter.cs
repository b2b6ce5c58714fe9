using System.Text;
using System.Text.Json;

namespace Berth.Oci.Runtime;

/// <summary>
/// Writes the OCI state document by hand with Utf8JsonWriter: it is on every container's start
/// path (hooks, `state`), and the serializer's first-use metadata setup costs more than the write.
/// </summary>
public static class StateWriter
{
    public static string ToJson(State s, bool indented = false)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = indented }))
            Write(w, s);
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    public static string ToJson(IReadOnlyList<State> list, bool indented = false)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = indented }))
        {
            w.WriteStartArray();
            foreach (var s in list) Write(w, s);
            w.WriteEndArray();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    public static void Write(Utf8JsonWriter w, State s)
    {
        w.WriteStartObject();
        w.WriteString("ociVersion", s.OciVersion);
        w.WriteString("id", s.Id);
        w.WriteString("status", s.Status);
        w.WriteNumber("pid", s.Pid);
        w.WriteString("bundle", s.Bundle);
        w.WriteString("rootfs", s.Rootfs);
        w.WriteString("created", s.Created.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'"));
        w.WriteString("owner", s.Owner);
        if (s.Annotations is { Count: > 0 })
        {
            w.WriteStartObject("annotations");
            foreach (var (k, v) in s.Annotations) w.WriteString(k, v);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }
}

using System.Text.Json;

namespace Berth.Engine.Network;

/// <summary>inspect's NetworkSettings, with docker's field names.</summary>
public static class NetworkInspect
{
    /// <param name="live">Addresses are shown while the container runs; a stopped one has released them, as in docker.</param>
    public static void Write(Utf8JsonWriter w, string containerDir, bool live)
    {
        var rec = NetworkRecord.Load(containerDir);
        bool show = live && rec is not null;
        w.WriteStartObject("NetworkSettings");
        w.WriteString("IPAddress", show ? rec!.IPAddress ?? "" : "");
        w.WriteString("Gateway", show ? rec!.Gateway ?? "" : "");
        w.WriteNumber("IPPrefixLen", show ? rec!.PrefixLen : 0);
        w.WriteString("MacAddress", show ? rec!.MacAddress ?? "" : "");
        w.WriteString("SandboxKey", show ? rec!.Netns ?? "" : "");
        w.WriteStartObject("Ports");
        foreach (var g in (show ? rec!.Ports : []).GroupBy(p => $"{p.ContainerPort}/{p.Protocol}"))
        {
            w.WriteStartArray(g.Key);
            foreach (var p in g)
            {
                w.WriteStartObject();
                w.WriteString("HostIp", p.HostIp == "" ? "0.0.0.0" : p.HostIp);
                w.WriteString("HostPort", p.HostPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }
}

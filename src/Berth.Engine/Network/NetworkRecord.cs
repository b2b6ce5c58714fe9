using System.Text.Json;
using Berth.Linux.Files;

namespace Berth.Engine.Network;

/// <summary>A container's network as set up (network.json in its directory): for inspect, port and teardown.</summary>
public sealed class NetworkRecord
{
    public string Mode { get; set; } = "none";
    /// <summary>The namespace the container joins by path; null: a new one from the runtime (none) or the host's.</summary>
    public string? Netns { get; set; }
    public string? IPAddress { get; set; }
    public string? Gateway { get; set; }
    public int PrefixLen { get; set; }
    public string? MacAddress { get; set; }
    public List<PortMapping> Ports { get; set; } = [];

    public static string PathIn(string containerDir) => Path.Combine(containerDir, "network.json");

    public static NetworkRecord? Load(string containerDir)
    {
        var path = PathIn(containerDir);
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return null; }
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var o = doc.RootElement;
            string? S(string n) => o.TryGetProperty(n, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            return new NetworkRecord
            {
                Mode = S("mode") ?? "none", Netns = S("netns"), IPAddress = S("ipAddress"), Gateway = S("gateway"), MacAddress = S("macAddress"),
                PrefixLen = o.TryGetProperty("prefixLen", out var pl) && pl.ValueKind == JsonValueKind.Number ? pl.GetInt32() : 0,
                Ports = o.TryGetProperty("ports", out var ps) && ps.ValueKind == JsonValueKind.Array
                    ? ps.EnumerateArray().Select(p => PortMapping.FromKey(p.GetString() ?? "")).ToList() : [],
            };
        }
        catch (Exception e) when (e is JsonException or FormatException) { return null; }
    }

    public void Save(string containerDir)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("mode", Mode);
            if (Netns is not null) w.WriteString("netns", Netns);
            if (IPAddress is not null) w.WriteString("ipAddress", IPAddress);
            if (Gateway is not null) w.WriteString("gateway", Gateway);
            if (PrefixLen != 0) w.WriteNumber("prefixLen", PrefixLen);
            if (MacAddress is not null) w.WriteString("macAddress", MacAddress);
            w.WriteStartArray("ports");
            foreach (var p in Ports) w.WriteStringValue(p.Key);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        AtomicFile.Write(PathIn(containerDir), ms.ToArray());
    }
}

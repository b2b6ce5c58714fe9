using System.Net;
using System.Text;
using Berth.Engine.Containers;

namespace Berth.Engine.Network;

/// <summary>
/// The bridge's address allocations, as text: a "last A.B.C.D" line, then one line per container:
/// "IP ID [dir=ESCAPED-PATH] PORTKEY...". Pure; <see cref="Ipam"/> keeps it in a file under a lock.
/// </summary>
public sealed class IpamState
{
    /// <param name="Dir">The container's directory in its store, so an entry whose store is gone can be reclaimed.</param>
    public sealed record Entry(IPAddress Address, string Id, List<PortMapping> Ports, string? Dir = null);

    private readonly uint _network, _size;
    public List<Entry> Entries { get; } = [];
    public IPAddress? Last { get; private set; }

    /// <param name="network">The subnet's first address (e.g. 10.77.0.0).</param>
    /// <param name="prefix">Its prefix length; the first host address is the gateway's.</param>
    public IpamState(IPAddress network, int prefix)
    {
        _network = ToUInt(network);
        _size = 1u << (32 - prefix);
    }

    public static IpamState Parse(string text, IPAddress network, int prefix)
    {
        var s = new IpamState(network, prefix);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 2 && f[0] == "last" && IPAddress.TryParse(f[1], out var last)) s.Last = last;
            else if (f.Length >= 2 && IPAddress.TryParse(f[0], out var ip))
            {
                var dir = f.Skip(2).FirstOrDefault(x => x.StartsWith("dir=", StringComparison.Ordinal));
                s.Entries.Add(new Entry(ip, f[1], f.Skip(2).Where(x => x != dir).Select(PortMapping.FromKey).ToList(),
                    dir is null ? null : Uri.UnescapeDataString(dir[4..])));
            }
        }
        return s;
    }

    public string Render()
    {
        var sb = new StringBuilder();
        if (Last is not null) sb.Append("last ").Append(Last).Append('\n');
        foreach (var e in Entries)
        {
            sb.Append(e.Address).Append(' ').Append(e.Id);
            if (e.Dir is not null) sb.Append(" dir=").Append(Uri.EscapeDataString(e.Dir));
            foreach (var p in e.Ports) sb.Append(' ').Append(p.Key);
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>
    /// The next free address after the last one handed out (wrapping), so a released address is
    /// not reused at once while conntrack or neighbours may still remember it. Refuses ports
    /// another container publishes already.
    /// </summary>
    public IPAddress Allocate(string id, IReadOnlyList<PortMapping> ports, string? dir = null)
    {
        if (Entries.Any(e => e.Id == id)) throw new EngineError($"container {id[..Math.Min(12, id.Length)]} has an address already");
        for (int i = 0; i < ports.Count; i++)
        {
            for (int j = 0; j < i; j++)
                if (ports[i].Overlaps(ports[j])) throw new EngineError($"-p {Show(ports[i])}: given twice");
            foreach (var e in Entries)
                if (e.Ports.FirstOrDefault(p => p.Overlaps(ports[i])) is { } used)
                    throw new EngineError($"-p {Show(ports[i])}: host port {used.HostPort}/{used.Protocol} is already published by container {e.Id[..Math.Min(12, e.Id.Length)]}");
        }
        var taken = Entries.Select(e => ToUInt(e.Address)).ToHashSet();
        uint first = _network + 2, end = _network + _size - 1; // .0 network, .1 gateway, last broadcast
        uint start = Last is null ? first : ToUInt(Last) + 1;
        if (start < first || start >= end) start = first;
        for (uint n = 0, a = start; n < end - first; n++, a = a + 1 >= end ? first : a + 1)
        {
            if (taken.Contains(a)) continue;
            var ip = FromUInt(a);
            Entries.Add(new Entry(ip, id, [.. ports], dir));
            Last = ip;
            return ip;
        }
        throw new EngineError($"no free address left in the bridge network ({Entries.Count} containers use it)");
    }

    /// <summary>
    /// Removes the entries whose container directory no longer exists (its store was deleted without
    /// `berth rm`), so their addresses and host ports do not stay taken forever; returns them.
    /// </summary>
    public List<Entry> RemoveStale(Func<string, bool> dirExists)
    {
        var stale = Entries.Where(e => e.Dir is not null && !dirExists(e.Dir)).ToList();
        foreach (var e in stale) Entries.Remove(e);
        return stale;
    }

    /// <summary>Removes the container's entry; returns it, or null if it had none.</summary>
    public Entry? Release(string id)
    {
        var e = Entries.FirstOrDefault(x => x.Id == id);
        if (e is not null) Entries.Remove(e);
        return e;
    }

    private static string Show(PortMapping p) => $"{(p.HostIp == "" ? "" : p.HostIp + ":")}{p.HostPort}:{p.ContainerPort}/{p.Protocol}";

    public static uint ToUInt(IPAddress a)
    {
        var b = a.GetAddressBytes();
        return (uint)(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]);
    }

    public static IPAddress FromUInt(uint v) => new([(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v]);
}

using System.Net;
using System.Text;

namespace Berth.Engine.Network;

/// <summary>
/// The nftables text for berth's own table (`table ip berth`): outbound masquerade for the bridge's
/// subnet and port publishing through two maps, so adding or removing a container's ports is one
/// element operation and no rule ever needs a handle. Pure; <see cref="Nft"/> runs it.
/// Nothing here touches another table.
/// </summary>
public static class NftRules
{
    public const string Table = "ip berth";

    /// <summary>
    /// Declares the table, chains and maps (idempotent: `add` keeps what exists, our chains are
    /// flushed and refilled in the same transaction; the maps' elements stay).
    /// </summary>
    public static string Base(string bridge, string subnet)
    {
        var sb = new StringBuilder();
        sb.Append($"add table {Table}\n");
        sb.Append($"add chain {Table} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}\n");
        sb.Append($"add chain {Table} output {{ type nat hook output priority -100; policy accept; }}\n");
        sb.Append($"add chain {Table} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n");
        sb.Append($"add map {Table} ports_any {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}\n");
        sb.Append($"add map {Table} ports_ip {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}\n");
        foreach (var chain in new[] { "prerouting", "output", "postrouting" }) sb.Append($"flush chain {Table} {chain}\n");
        // Published ports: packets to one of the host's own addresses (from outside, or from the host itself).
        foreach (var chain in new[] { "prerouting", "output" })
        {
            sb.Append($"add rule {Table} {chain} fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @ports_ip\n");
            sb.Append($"add rule {Table} {chain} fib daddr type local dnat ip to meta l4proto . th dport map @ports_any\n");
        }
        // Outbound: containers leave with the host's address.
        sb.Append($"add rule {Table} postrouting ip saddr {subnet} oifname != \"{bridge}\" masquerade\n");
        // 127.0.0.1:HOSTPORT from the host (route_localnet lets it out onto the bridge): the container must answer the host.
        sb.Append($"add rule {Table} postrouting oifname \"{bridge}\" ip saddr 127.0.0.0/8 masquerade\n");
        // A container reaching another one through a published host port: replies must come back through the host.
        sb.Append($"add rule {Table} postrouting oifname \"{bridge}\" ip saddr {subnet} ct status dnat masquerade\n");
        return sb.ToString();
    }

    public static string AddPorts(IPAddress container, IEnumerable<PortMapping> ports) =>
        string.Concat(ports.Select(p => $"add element {Table} {Map(p)} {{ {Key(p)} : {container} . {p.ContainerPort} }}\n"));

    public static string DeletePorts(IEnumerable<PortMapping> ports) =>
        string.Concat(ports.Select(p => $"delete element {Table} {Map(p)} {{ {Key(p)} }}\n"));

    private static string Map(PortMapping p) => p.HostIp == "" ? "ports_any" : "ports_ip";

    private static string Key(PortMapping p) => p.HostIp == "" ? $"{p.Protocol} . {p.HostPort}" : $"{p.HostIp} . {p.Protocol} . {p.HostPort}";
}

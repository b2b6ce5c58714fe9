using System.Net;
using System.Net.Sockets;
using System.Text;
using Berth.Engine.Containers;

namespace Berth.Engine.Network;

/// <summary>The container's /etc/hosts and /etc/resolv.conf, rendered from what run was given. Pure.</summary>
public static class EtcFiles
{
    /// <summary>docker's fallback when the host has no nameserver a container can reach.</summary>
    public static readonly string[] FallbackDns = ["8.8.8.8", "8.8.4.4"];

    /// <param name="address">The container's own address, or null (no bridge): then the name maps to 127.0.1.1.</param>
    public static string Hosts(string hostname, string name, IPAddress? address, IEnumerable<(string Name, string Ip)> extra)
    {
        var sb = new StringBuilder();
        sb.Append("127.0.0.1\tlocalhost\n");
        sb.Append("::1\tlocalhost ip6-localhost ip6-loopback\n");
        var names = hostname == name ? hostname : $"{hostname} {name}";
        sb.Append(address?.ToString() ?? "127.0.1.1").Append('\t').Append(names).Append('\n');
        foreach (var (n, ip) in extra) sb.Append(ip).Append('\t').Append(n).Append('\n');
        return sb.ToString();
    }

    /// <summary>
    /// The host's resolv.conf for a container: loopback nameservers dropped when the container has
    /// its own network namespace (127.0.0.53 there is the container itself), `--dns` replacing the
    /// nameservers; search and options lines kept.
    /// </summary>
    public static string ResolvConf(string hostText, bool ownNetns, IReadOnlyList<string> dns)
    {
        var sb = new StringBuilder();
        var servers = new List<string>();
        foreach (var raw in hostText.Split('\n'))
        {
            var line = raw.Trim();
            var f = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 2 && f[0] == "nameserver")
            {
                if (IPAddress.TryParse(f[1], out var ip) && ownNetns && IPAddress.IsLoopback(ip)) continue;
                servers.Add(f[1]);
            }
            else if (f.Length >= 1 && f[0] is "search" or "domain" or "options") sb.Append(line).Append('\n');
        }
        if (dns.Count > 0) servers = [.. dns];
        else if (servers.Count == 0 && ownNetns) servers = [.. FallbackDns];
        foreach (var s in servers) sb.Append("nameserver ").Append(s).Append('\n');
        return sb.ToString();
    }

    /// <summary>`--add-host NAME:IP` (or NAME=IP); the IP may be IPv6.</summary>
    public static (string Name, string Ip) ParseAddHost(string text)
    {
        int sep = text.IndexOfAny([':', '=']);
        if (sep <= 0) throw new EngineError($"--add-host {text}: expected NAME:IP");
        var name = text[..sep];
        var ip = text[(sep + 1)..].Trim('[', ']');
        if (!IPAddress.TryParse(ip, out var addr) || (addr.AddressFamily == AddressFamily.InterNetwork && ip.Count(c => c == '.') != 3))
            throw new EngineError($"--add-host {text}: \"{ip}\" is not an IP address");
        if (name.Any(c => char.IsWhiteSpace(c) || c == '#')) throw new EngineError($"--add-host {text}: \"{name}\" is not a host name");
        return (name, addr.ToString());
    }

    public static string ParseDns(string text)
    {
        if (!IPAddress.TryParse(text, out var addr) || (addr.AddressFamily == AddressFamily.InterNetwork && text.Count(c => c == '.') != 3))
            throw new EngineError($"--dns {text}: not an IP address");
        return addr.ToString();
    }
}

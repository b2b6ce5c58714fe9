using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Berth.Engine.Containers;

namespace Berth.Engine.Network;

/// <summary>One `-p [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]`: HostIp "" means every host address.</summary>
public sealed record PortMapping(string Protocol, string HostIp, int HostPort, int ContainerPort)
{
    public static PortMapping Parse(string text)
    {
        string Fail(string why) => throw new EngineError($"-p {text}: {why} (expected [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp])");
        var spec = text;
        var proto = "tcp";
        int slash = spec.LastIndexOf('/');
        if (slash >= 0)
        {
            proto = spec[(slash + 1)..].ToLowerInvariant();
            if (proto is not ("tcp" or "udp")) Fail($"unknown protocol \"{spec[(slash + 1)..]}\"");
            spec = spec[..slash];
        }
        var parts = spec.Split(':');
        string hostIp = "";
        string hostPort, containerPort;
        switch (parts.Length)
        {
            case 2: (hostPort, containerPort) = (parts[0], parts[1]); break;
            case 3: (hostIp, hostPort, containerPort) = (parts[0], parts[1], parts[2]); break;
            case 1: Fail("a host port is needed"); return null!;
            default: Fail("IPv6 host addresses are not supported"); return null!;
        }
        if (hostIp.Length > 0)
        {
            if (!IPAddress.TryParse(hostIp, out var ip) || ip.AddressFamily != AddressFamily.InterNetwork || hostIp.Count(c => c == '.') != 3)
                Fail($"\"{hostIp}\" is not an IPv4 address");
            if (ip!.Equals(IPAddress.Any)) hostIp = "";
            else hostIp = ip.ToString();
        }
        return new PortMapping(proto, hostIp, Port(hostPort, "host port", Fail), Port(containerPort, "container port", Fail));
    }

    private static int Port(string s, string what, Func<string, string> fail)
    {
        if (s.Length == 0) fail($"the {what} is empty");
        if (!int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var p) || p < 1 || p > 65535)
            fail($"{what} \"{s}\" is not a number from 1 to 65535");
        return p;
    }

    /// <summary>Two mappings that would catch the same packets: same protocol and port, and an address in common.</summary>
    public bool Overlaps(PortMapping other) =>
        Protocol == other.Protocol && HostPort == other.HostPort && (HostIp == "" || other.HostIp == "" || HostIp == other.HostIp);

    /// <summary>The form stored in the IPAM file and shown by `berth port`: tcp/0.0.0.0/8080/80.</summary>
    public string Key => $"{Protocol}/{(HostIp == "" ? "0.0.0.0" : HostIp)}/{HostPort}/{ContainerPort}";

    public static PortMapping FromKey(string key)
    {
        var f = key.Split('/');
        if (f.Length != 4) throw new FormatException($"bad port record \"{key}\"");
        return new PortMapping(f[0], f[1] == "0.0.0.0" ? "" : f[1], int.Parse(f[2], CultureInfo.InvariantCulture), int.Parse(f[3], CultureInfo.InvariantCulture));
    }

    /// <summary>docker's `port` line: 80/tcp -> 0.0.0.0:8080.</summary>
    public override string ToString() => $"{ContainerPort}/{Protocol} -> {(HostIp == "" ? "0.0.0.0" : HostIp)}:{HostPort}";
}

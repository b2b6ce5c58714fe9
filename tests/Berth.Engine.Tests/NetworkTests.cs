using System.Net;
using Berth.Engine.Containers;
using Berth.Engine.Network;
using Xunit;

namespace Berth.Engine.Tests;

public sealed class NetworkTests
{
    [Theory]
    [InlineData("8080:80", "tcp", "", 8080, 80)]
    [InlineData("8080:80/udp", "udp", "", 8080, 80)]
    [InlineData("127.0.0.1:5353:53/UDP", "udp", "127.0.0.1", 5353, 53)]
    [InlineData("0.0.0.0:1:65535/tcp", "tcp", "", 1, 65535)]
    public void Port_mappings_parse(string text, string proto, string ip, int host, int container)
    {
        Assert.Equal(new PortMapping(proto, ip, host, container), PortMapping.Parse(text));
    }

    [Theory]
    [InlineData("80", "host port is needed")]
    [InlineData("0:80", "host port \"0\"")]
    [InlineData("8080:65536", "container port \"65536\"")]
    [InlineData("8080:80/sctp", "unknown protocol \"sctp\"")]
    [InlineData("1.2.3:8080:80", "\"1.2.3\" is not an IPv4 address")]
    [InlineData(":80", "host port is empty")]
    [InlineData("x:80", "host port \"x\"")]
    [InlineData("::1:8080:80", "IPv6")]
    public void Bad_port_mappings_name_the_flag_and_what_is_wrong(string text, string why)
    {
        var e = Assert.Throws<EngineError>(() => PortMapping.Parse(text));
        Assert.StartsWith($"-p {text}: ", e.Message);
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void Port_keys_round_trip_and_overlap_by_protocol_port_and_address()
    {
        var any = PortMapping.Parse("8080:80");
        var lo = PortMapping.Parse("127.0.0.1:8080:81");
        Assert.Equal("tcp/0.0.0.0/8080/80", any.Key);
        Assert.Equal(lo, PortMapping.FromKey(lo.Key));
        Assert.Equal("80/tcp -> 0.0.0.0:8080", any.ToString());
        Assert.True(any.Overlaps(lo));
        Assert.False(PortMapping.Parse("8080:80/udp").Overlaps(any));
        Assert.False(lo.Overlaps(PortMapping.Parse("127.0.0.2:8080:80")));
    }

    private static IpamState Empty() => new(IPAddress.Parse("10.77.0.0"), 16);

    [Fact]
    public void Ipam_hands_out_addresses_after_the_gateway_and_does_not_reuse_a_released_one_at_once()
    {
        var s = Empty();
        Assert.Equal("10.77.0.2", s.Allocate("a", []).ToString());
        Assert.Equal("10.77.0.3", s.Allocate("b", []).ToString());
        Assert.NotNull(s.Release("a"));
        Assert.Null(s.Release("a"));
        Assert.Equal("10.77.0.4", s.Allocate("c", []).ToString());
        // Survives its own text form.
        var back = IpamState.Parse(s.Render(), IPAddress.Parse("10.77.0.0"), 16);
        Assert.Equal(s.Render(), back.Render());
        Assert.Equal("10.77.0.5", back.Allocate("d", []).ToString());
    }

    [Fact]
    public void Ipam_reclaims_entries_whose_container_directory_is_gone()
    {
        var s = Empty();
        s.Allocate("live", [PortMapping.Parse("8080:80")], "/store one/containers/live");
        s.Allocate("gone", [PortMapping.Parse("9090:80")], "/deleted/containers/gone");
        s.Allocate("old", []);
        var back = IpamState.Parse(s.Render(), IPAddress.Parse("10.77.0.0"), 16);
        Assert.Equal("/store one/containers/live", back.Entries[0].Dir);
        var stale = back.RemoveStale(d => d.StartsWith("/store one/", StringComparison.Ordinal));
        Assert.Equal(["gone"], stale.Select(e => e.Id));
        Assert.Equal(["live", "old"], back.Entries.Select(e => e.Id)); // no directory recorded: kept
        back.Allocate("new", [PortMapping.Parse("9090:80")]); // the reclaimed port is free again
    }

    [Fact]
    public void Ipam_wraps_around_and_reports_a_full_subnet()
    {
        var s = new IpamState(IPAddress.Parse("192.168.5.0"), 29); // hosts .2 to .6
        var got = Enumerable.Range(0, 5).Select(i => s.Allocate("c" + i, []).ToString()).ToList();
        Assert.Equal(["192.168.5.2", "192.168.5.3", "192.168.5.4", "192.168.5.5", "192.168.5.6"], got);
        Assert.Contains("no free address", Assert.Throws<EngineError>(() => s.Allocate("x", [])).Message);
        s.Release("c1");
        Assert.Equal("192.168.5.3", s.Allocate("y", []).ToString());
    }

    [Fact]
    public void Ipam_refuses_a_host_port_another_container_publishes()
    {
        var s = Empty();
        s.Allocate("aaaaaaaaaaaaaaaa", [PortMapping.Parse("8080:80")]);
        var e = Assert.Throws<EngineError>(() => s.Allocate("b", [PortMapping.Parse("127.0.0.1:8080:90")]));
        Assert.Contains("already published by container aaaaaaaaaaaa", e.Message);
        Assert.Contains("-p 127.0.0.1:8080:90/tcp", e.Message);
        Assert.Single(s.Entries); // nothing allocated for the refused one
        Assert.Throws<EngineError>(() => s.Allocate("c", [PortMapping.Parse("9090:80"), PortMapping.Parse("9090:81")]));
        Assert.Equal("10.77.0.3", s.Allocate("d", [PortMapping.Parse("8080:80/udp")]).ToString());
        s.Release("aaaaaaaaaaaaaaaa");
        s.Allocate("e", [PortMapping.Parse("8080:80")]);
    }

    [Fact]
    public void Hosts_map_the_name_to_the_address_and_add_extra_hosts()
    {
        var text = EtcFiles.Hosts("web", "webname", IPAddress.Parse("10.77.0.9"), [("db", "10.0.0.5"), ("v6", "fd00::1")]);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("127.0.0.1\tlocalhost", lines[0]);
        Assert.Equal("10.77.0.9\tweb webname", lines[2]);
        Assert.Equal("10.0.0.5\tdb", lines[3]);
        Assert.Equal("fd00::1\tv6", lines[4]);
        Assert.Contains("127.0.1.1\tsame\n", EtcFiles.Hosts("same", "same", null, []));
    }

    [Fact]
    public void Resolv_conf_drops_loopback_nameservers_in_a_private_namespace_and_dns_overrides()
    {
        const string host = "# generated\nsearch example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.53\noptions edns0\n";
        Assert.Equal("search example.org\noptions edns0\nnameserver 192.0.2.53\n", EtcFiles.ResolvConf(host, ownNetns: true, []));
        Assert.Contains("nameserver 127.0.0.53\n", EtcFiles.ResolvConf(host, ownNetns: false, []));
        Assert.Equal("search example.org\noptions edns0\nnameserver 9.9.9.9\n", EtcFiles.ResolvConf(host, ownNetns: true, ["9.9.9.9"]));
        Assert.Equal("nameserver 8.8.8.8\nnameserver 8.8.4.4\n", EtcFiles.ResolvConf("nameserver 127.0.0.1\n", ownNetns: true, []));
    }

    [Fact]
    public void Add_host_and_dns_are_checked()
    {
        Assert.Equal(("db", "10.0.0.5"), EtcFiles.ParseAddHost("db:10.0.0.5"));
        Assert.Equal(("db", "fd00::1"), EtcFiles.ParseAddHost("db:fd00::1"));
        Assert.Equal(("db", "10.0.0.5"), EtcFiles.ParseAddHost("db=10.0.0.5"));
        Assert.StartsWith("--add-host db:10.0.5", Assert.Throws<EngineError>(() => EtcFiles.ParseAddHost("db:10.0.5")).Message);
        Assert.StartsWith("--add-host nocolon", Assert.Throws<EngineError>(() => EtcFiles.ParseAddHost("nocolon")).Message);
        Assert.Equal("1.1.1.1", EtcFiles.ParseDns("1.1.1.1"));
        Assert.StartsWith("--dns 1.1.1", Assert.Throws<EngineError>(() => EtcFiles.ParseDns("1.1.1")).Message);
    }

    [Fact]
    public void Network_modes_parse()
    {
        Assert.Equal(new NetworkMode(NetworkKind.Bridge), NetworkMode.Parse("bridge"));
        Assert.Equal(new NetworkMode(NetworkKind.Container, "web"), NetworkMode.Parse("container:web"));
        Assert.True(NetworkMode.Parse("private").Pinned);
        Assert.False(NetworkMode.Parse("none").Pinned);
        Assert.Contains("--network container:", Assert.Throws<EngineError>(() => NetworkMode.Parse("container:")).Message);
    }

    [Fact]
    public void Nft_text_stays_in_berths_table_and_uses_map_elements_for_ports()
    {
        var b = NftRules.Base("berth0", "10.77.0.0/16");
        foreach (var line in b.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Assert.Contains(" ip berth", line); // never another table, never a flush of the ruleset
        Assert.DoesNotContain("flush ruleset", b);
        Assert.Contains("ip saddr 10.77.0.0/16 oifname != \"berth0\" masquerade", b);
        var ports = new[] { PortMapping.Parse("8080:80"), PortMapping.Parse("127.0.0.1:5353:53/udp") };
        Assert.Equal(
            "add element ip berth ports_any { tcp . 8080 : 10.77.0.2 . 80 }\n" +
            "add element ip berth ports_ip { 127.0.0.1 . udp . 5353 : 10.77.0.2 . 53 }\n",
            NftRules.AddPorts(IPAddress.Parse("10.77.0.2"), ports));
        Assert.Equal(
            "delete element ip berth ports_any { tcp . 8080 }\n" +
            "delete element ip berth ports_ip { 127.0.0.1 . udp . 5353 }\n",
            NftRules.DeletePorts(ports));
    }

    [Fact]
    public void Macs_are_local_unicast_and_follow_the_address()
    {
        var mac = ContainerNetwork.MacFor(IPAddress.Parse("10.77.1.2"));
        Assert.Equal("02:b0:0a:4d:01:02", ContainerNetwork.FormatMac(mac));
        Assert.Equal(15, ContainerNetwork.VethName(new string('a', 64)).Length);
    }
}

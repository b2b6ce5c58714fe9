using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>
/// `berth run --network`: the berth0 bridge, veth pairs, NAT and published ports through nftables,
/// private/none/container:NAME namespaces, /etc/hosts and /etc/resolv.conf, and that rm and failed
/// runs leave no veth, netns pin, nft element or address behind. Checked in the kernel.
/// </summary>
public sealed class EngineNetworkTests(TestEnvironment env) : IntegrationTest(env)
{
    private const string Image = "berth.local/busybox";
    private const string IpamFile = "/run/berth/network/ipam";
    private string Berth => Path.Combine(Path.GetDirectoryName(Env.RuntimePath)!, "berth");

    private ProcResult Engine(string storage, params string[] args) =>
        ProcessRunner.Run(Berth, ["--storage", storage, .. args], Path.Combine(storage, "cmds"));

    /// <summary>A host port in a range nothing else here uses, different on each run.</summary>
    private static int FreePort() => 21000 + Random.Shared.Next(0, 8000);

    private static string HttpGetCommand(string host, int port) =>
        $"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}";

    private static string HttpServer(string mark) =>
        $"mkdir -p /w && echo {mark} > /w/index.html && exec httpd -f -p 80 -h /w";

    private JsonNode InspectOne(string storage, string name)
    {
        var r = Engine(storage, "inspect", name);
        Assert.True(r.Succeeded, r.ToString());
        return JsonNode.Parse(r.Stdout)!.AsArray().Single()!;
    }

    private static string? HttpGetFromHost(IPAddress address, int port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (true)
        {
            try
            {
                using var c = new TcpClient();
                c.ReceiveTimeout = 3000;
                c.Connect(address, port);
                using var s = c.GetStream();
                s.Write("GET / HTTP/1.0\r\n\r\n"u8);
                using var reader = new StreamReader(s, Encoding.ASCII);
                return reader.ReadToEnd();
            }
            catch (SocketException) when (DateTime.UtcNow < deadline) { Thread.Sleep(100); }
            catch (IOException) when (DateTime.UtcNow < deadline) { Thread.Sleep(100); }
        }
    }

    private static IPAddress HostPrimaryAddress()
    {
        var r = ProcessRunner.Host("ip", "-4", "-o", "route", "get", "1.1.1.1");
        var f = r.Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return IPAddress.Parse(f[Array.IndexOf(f, "src") + 1]);
    }

    /// <summary>What berth leaves in the kernel and in /run for container <paramref name="id"/>.</summary>
    private static List<string> Traces(string id, string? ip)
    {
        var traces = new List<string>();
        var links = ProcessRunner.Host("ip", "-o", "link").Stdout;
        if (links.Contains("veth" + id[..11], StringComparison.Ordinal)) traces.Add("veth veth" + id[..11]);
        if (File.Exists("/run/berth/netns/" + id)) traces.Add("netns pin /run/berth/netns/" + id);
        if (File.ReadAllText("/proc/self/mountinfo").Contains(id, StringComparison.Ordinal)) traces.Add("a mount naming " + id);
        if (File.Exists(IpamFile) && File.ReadAllText(IpamFile).Contains(id, StringComparison.Ordinal)) traces.Add("IPAM entry");
        if (ip is not null && ProcessRunner.Host("nft", "list", "table", "ip", "berth").Stdout.Contains(ip + " . ", StringComparison.Ordinal))
            traces.Add("nft element for " + ip);
        return traces;
    }

    private static string NewStorage() => Directory.CreateTempSubdirectory("berth-net-it.").FullName;

    private void RemoveAll(string storage, params string[] names)
    {
        foreach (var n in names) Engine(storage, "rm", "-f", n);
        foreach (var line in File.ReadAllLines("/proc/self/mountinfo"))
            if (line.Split(' ')[4].StartsWith(storage, StringComparison.Ordinal))
                ProcessRunner.Host("umount", "-l", line.Split(' ')[4]);
        try { Directory.Delete(storage, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public void A_published_server_is_reached_from_the_host_and_from_another_container_and_rm_leaves_nothing()
    {
        string storage = NewStorage();
        int port = FreePort();
        try
        {
            var web = Engine(storage, "run", "-d", "--name", "web", "-p", $"{port}:80", Image, "sh", "-c", HttpServer("berth-web-ok"));
            Assert.True(web.Succeeded, web.ToString());
            var id = web.Stdout.Trim();
            var doc = InspectOne(storage, "web");
            var net = doc["NetworkSettings"]!;
            var ip = (string)net["IPAddress"]!;
            Assert.StartsWith("10.77.", ip);
            Assert.Equal("10.77.0.1", (string?)net["Gateway"]);
            Assert.Equal(16, (int)net["IPPrefixLen"]!);
            Assert.Equal(port.ToString(), (string?)net["Ports"]!["80/tcp"]![0]!["HostPort"]);
            var mac = (string)net["MacAddress"]!;
            Assert.Equal([$"80/tcp -> 0.0.0.0:{port}"], Lines(Engine(storage, "port", "web").Stdout));

            // The container's side in the kernel: eth0 with that address and MAC, default route via the bridge.
            var pid = (int)doc["State"]!["Pid"]!;
            var inside = ProcessRunner.Host("nsenter", "-t", pid.ToString(), "-n", "ip", "-o", "-4", "addr", "show", "eth0").Stdout;
            Assert.Contains($"inet {ip}/16", inside);
            Assert.Contains(mac, ProcessRunner.Host("nsenter", "-t", pid.ToString(), "-n", "ip", "-o", "link", "show", "eth0").Stdout);
            Assert.Contains("default via 10.77.0.1", ProcessRunner.Host("nsenter", "-t", pid.ToString(), "-n", "ip", "route").Stdout);
            Assert.Contains("master berth0", ProcessRunner.Host("ip", "-o", "link", "show", "veth" + id[..11]).Stdout);

            // From the host: through the published port on loopback and on the primary address, and straight to the container.
            Assert.Contains("berth-web-ok", HttpGetFromHost(IPAddress.Loopback, port));
            Assert.Contains("berth-web-ok", HttpGetFromHost(HostPrimaryAddress(), port));
            Assert.Contains("berth-web-ok", HttpGetFromHost(IPAddress.Parse(ip), 80));

            // From another container over the bridge, by address and through the gateway's published port.
            var client = Engine(storage, "run", "--rm", Image, "sh", "-c", HttpGetCommand(ip, 80) + "; " + HttpGetCommand("10.77.0.1", port));
            Assert.True(client.Succeeded, client.ToString());
            Assert.Equal(2, Lines(client.Stdout).Count(l => l == "berth-web-ok"));

            Assert.True(Engine(storage, "rm", "-f", "web").Succeeded);
            Assert.Empty(Traces(id, ip));
            var refused = Assert.ThrowsAny<SocketException>(() =>
            {
                using var c = new TcpClient();
                c.Connect(IPAddress.Loopback, port);
            });
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }
        finally { RemoveAll(storage, "web"); }
    }

    [Fact]
    public void Outbound_connections_leave_with_the_hosts_address()
    {
        // An "outside" network: a namespace behind a veth on the host, a web server there that
        // answers with the address the connection came from (CGI's REMOTE_ADDR).
        string storage = NewStorage();
        string ns = "berth-it-out" + Random.Shared.Next(1000, 9999);
        string hostEnd = "vbit" + Random.Shared.Next(1000, 9999);
        var www = Path.Combine(storage, "www");
        Directory.CreateDirectory(Path.Combine(www, "cgi-bin"));
        var cgi = Path.Combine(www, "cgi-bin", "ip");
        File.WriteAllText(cgi, "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho \"peer=$REMOTE_ADDR\"\n");
        File.SetUnixFileMode(cgi, (UnixFileMode)0x1ed);
        RunningProcess? server = null;
        try
        {
            foreach (var cmd in new[]
            {
                $"netns add {ns}", $"link add {hostEnd} type veth peer name eth0 netns {ns}",
                $"addr add 198.51.100.1/30 dev {hostEnd}", $"link set {hostEnd} up",
                $"-n {ns} addr add 198.51.100.2/30 dev eth0", $"-n {ns} link set eth0 up", $"-n {ns} link set lo up",
            })
            {
                var r = ProcessRunner.Host("ip", cmd.Split(' '));
                Assert.True(r.Succeeded, r.ToString());
            }
            server = ProcessRunner.Start("ip", ["netns", "exec", ns, "/bin/busybox", "httpd", "-f", "-p", "198.51.100.2:8000", "-h", www],
                Path.Combine(storage, "cmds"));
            var r2 = Engine(storage, "run", "--rm", Image, "sh", "-c",
                "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n' | nc -w 3 198.51.100.2 8000 | grep peer= && exit 0; sleep 0.2; done; exit 1");
            Assert.True(r2.Succeeded, r2.ToString());
            // Masqueraded: the outside sees the host's address on that link, not the container's 10.77.x.y.
            Assert.Equal("peer=198.51.100.1", Lines(r2.Stdout).Single());
        }
        finally
        {
            server?.Dispose();
            ProcessRunner.Host("ip", "netns", "del", ns);
            ProcessRunner.Host("ip", "link", "del", hostEnd);
            RemoveAll(storage);
        }
    }

    [Fact]
    public void Private_and_none_have_only_loopback_and_container_mode_joins_the_other_namespace()
    {
        string storage = NewStorage();
        try
        {
            foreach (var mode in new[] { "private", "none" })
            {
                var r = Engine(storage, "run", "--rm", "--network", mode, Image, "ls", "/sys/class/net");
                Assert.True(r.Succeeded, r.ToString());
                Assert.Equal(["lo"], Lines(r.Stdout));
            }
            var lo = Engine(storage, "run", "--rm", "--network", "private", Image, "ip", "-o", "addr", "show", "lo");
            Assert.Contains("inet 127.0.0.1/8", lo.Stdout); // up, with its address

            var basec = Engine(storage, "run", "-d", "--name", "base", Image, "sleep", "60");
            Assert.True(basec.Succeeded, basec.ToString());
            var id = basec.Stdout.Trim();
            var pid = (int)InspectOne(storage, "base")["State"]!["Pid"]!;
            var pinned = new FileInfo($"/proc/{pid}/ns/net").LinkTarget;
            var side = Engine(storage, "run", "--rm", "--network", "container:base", Image, "sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net");
            Assert.True(side.Succeeded, side.ToString());
            var lines = Lines(side.Stdout);
            Assert.Equal(pinned, lines[0]);
            Assert.Contains("eth0", lines);
            // The pin berth keeps is that same namespace (nsfs inode = the net:[inode] number).
            var st = ProcessRunner.Host("stat", "-L", "-c", "%i", "/run/berth/netns/" + id);
            Assert.Equal($"net:[{st.Stdout.Trim()}]", pinned);
            Assert.Contains("--network container:nope", Engine(storage, "run", "--rm", "--network", "container:nope", Image, "true").Stderr);
        }
        finally { RemoveAll(storage, "base"); }
    }

    [Fact]
    public void Add_host_dns_and_the_containers_own_name_land_in_etc_hosts_and_resolv_conf()
    {
        string storage = NewStorage();
        try
        {
            var r = Engine(storage, "run", "--rm", "--name", "named", "--hostname", "hn", "--add-host", "db.example:10.1.2.3",
                "--dns", "192.0.2.53", Image, "sh", "-c", "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; ip -o -4 addr show eth0");
            Assert.True(r.Succeeded, r.ToString());
            var parts = r.Stdout.Split("---\n");
            var ip = parts[2].Split(' ', StringSplitOptions.RemoveEmptyEntries)[3].Split('/')[0];
            Assert.Contains($"{ip}\thn named\n", parts[0]);
            Assert.Contains("10.1.2.3\tdb.example\n", parts[0]);
            Assert.Contains("127.0.0.1\tlocalhost\n", parts[0]);
            Assert.Equal(["nameserver 192.0.2.53"], Lines(parts[1]).Where(l => l.StartsWith("nameserver", StringComparison.Ordinal)));

            // Without --dns: the host's nameservers, minus loopback ones (useless in a namespace of its own).
            var host = File.ReadAllLines("/etc/resolv.conf").Where(l => l.StartsWith("nameserver", StringComparison.Ordinal) && !l.Contains(" 127.")).ToList();
            var d = Engine(storage, "run", "--rm", Image, "cat", "/etc/resolv.conf");
            Assert.True(d.Succeeded, d.ToString());
            var got = Lines(d.Stdout).Where(l => l.StartsWith("nameserver", StringComparison.Ordinal)).ToList();
            Assert.Equal(host.Count > 0 ? host : new List<string> { "nameserver 8.8.8.8", "nameserver 8.8.4.4" }, got);
        }
        finally { RemoveAll(storage); }
    }

    [Fact]
    public void Bad_flags_and_a_taken_host_port_fail_clean()
    {
        string storage = NewStorage();
        int port = FreePort();
        try
        {
            string Links() => string.Join('\n', Lines(ProcessRunner.Host("ip", "-o", "link").Stdout).Select(l => l.Split(':')[1].Trim().Split('@')[0]).Order());
            string Pins() => Directory.Exists("/run/berth/netns") ? string.Join(",", Directory.GetFiles("/run/berth/netns").Order()) : "";
            string Ipam() => File.Exists(IpamFile) ? string.Join('\n', File.ReadAllLines(IpamFile).Where(l => !l.StartsWith("last", StringComparison.Ordinal))) : "";
            string Nft() => ProcessRunner.Host("nft", "list", "table", "ip", "berth").Stdout;

            foreach (var (args, mention) in new[]
            {
                (new[] { "-p", "70000:80" }, "-p 70000:80"),
                (new[] { "-p", "8080" }, "-p 8080"),
                (new[] { "-p", "1.2.3:8080:80" }, "-p 1.2.3:8080:80"),
                (new[] { "--dns", "not-an-ip" }, "--dns not-an-ip"),
                (new[] { "--add-host", "x:999.1.1.1" }, "--add-host x:999.1.1.1"),
                (new[] { "--network", "nat" }, "--network nat"),
                (new[] { "--network", "none", "-p", $"{port}:80" }, "needs --network bridge"),
            })
            {
                var r = Engine(storage, ["run", "--rm", .. args, Image, "true"]);
                Assert.Equal(125, r.ExitCode);
                Assert.Contains(mention, r.Stderr);
            }
            Assert.False(Directory.Exists(Path.Combine(storage, "containers")) && Directory.GetDirectories(Path.Combine(storage, "containers")).Length > 0);

            var a = Engine(storage, "run", "-d", "--name", "a", "-p", $"{port}:80", Image, "sleep", "60");
            Assert.True(a.Succeeded, a.ToString());
            var aId = a.Stdout.Trim();
            var (links, pins, ipam, nft) = (Links(), Pins(), Ipam(), Nft());
            // The same host port (any address vs 127.0.0.1 overlap) is refused, and the refused run leaves nothing.
            var b = Engine(storage, "run", "-d", "--name", "b", "-p", $"127.0.0.1:{port}:81", Image, "sleep", "60");
            Assert.Equal(125, b.ExitCode);
            Assert.Contains($"host port {port}/tcp is already published by container {aId[..12]}", b.Stderr);
            Assert.Equal(links, Links());
            Assert.Equal(pins, Pins());
            Assert.Equal(ipam, Ipam());
            Assert.Equal(nft, Nft());
            Assert.Single(Directory.GetDirectories(Path.Combine(storage, "containers")));
            // udp on the same number is another port.
            var u = Engine(storage, "run", "-d", "--name", "u", "-p", $"{port}:80/udp", Image, "sleep", "60");
            Assert.True(u.Succeeded, u.ToString());
            var uIp = (string)InspectOne(storage, "u")["NetworkSettings"]!["IPAddress"]!;
            Assert.Contains($"udp . {port} : {uIp} . 80", Nft());

            var aIp = (string)InspectOne(storage, "a")["NetworkSettings"]!["IPAddress"]!;
            Assert.True(Engine(storage, "rm", "-f", "a", "u").Succeeded);
            Assert.Empty(Traces(aId, aIp));
            Assert.DoesNotContain(uIp + " . ", Nft());
            Assert.Empty(Directory.GetDirectories(Path.Combine(storage, "containers")));
        }
        finally { RemoveAll(storage, "a", "b", "u"); }
    }

    [Fact]
    public void A_store_deleted_without_rm_does_not_keep_its_port_and_address()
    {
        string lost = NewStorage(), storage = NewStorage();
        int port = FreePort();
        string? id = null;
        try
        {
            var r = Engine(lost, "run", "-d", "-p", $"{port}:80", Image, "true");
            Assert.True(r.Succeeded, r.ToString());
            id = r.Stdout.Trim();
            Assert.NotEmpty(Traces(id, null));
            RemoveAll(lost); // unmounts its rootfs and deletes the store, as a crashed script might
            ProcessRunner.Host(Path.Combine(Path.GetDirectoryName(Env.RuntimePath)!, "berth-runtime"), "--root", "/run/berth/engine", "delete", "-f", id);

            var again = Engine(storage, "run", "--rm", "-p", $"{port}:80", Image, "true");
            Assert.True(again.Succeeded, again.ToString());
            Assert.Empty(Traces(id, null));
        }
        finally
        {
            RemoveAll(storage);
            if (id is not null) ProcessRunner.Host(Path.Combine(Path.GetDirectoryName(Env.RuntimePath)!, "berth-runtime"), "--root", "/run/berth/engine", "delete", "-f", id);
        }
    }

    [Fact]
    public void A_stopped_container_keeps_its_network_and_starts_again_with_it()
    {
        string storage = NewStorage();
        try
        {
            var r = Engine(storage, "run", "-d", "--name", "re", Image, "sleep", "60");
            Assert.True(r.Succeeded, r.ToString());
            var id = r.Stdout.Trim();
            var ip = (string)InspectOne(storage, "re")["NetworkSettings"]!["IPAddress"]!;
            Assert.True(Engine(storage, "stop", "-t", "0", "re").Succeeded);
            Assert.Equal("", (string?)InspectOne(storage, "re")["NetworkSettings"]!["IPAddress"]);
            var start = Engine(storage, "start", "re");
            Assert.True(start.Succeeded, start.ToString());
            var addr = Engine(storage, "exec", "re", "ip", "-o", "-4", "addr", "show", "eth0");
            Assert.True(addr.Succeeded, addr.ToString());
            Assert.Contains($"inet {ip}/16", addr.Stdout);
            Assert.True(Engine(storage, "rm", "-f", "re").Succeeded);
            Assert.Empty(Traces(id, ip));
        }
        finally { RemoveAll(storage, "re"); }
    }

    [Fact]
    public void Concurrent_runs_get_distinct_addresses_and_release_them()
    {
        string storage = NewStorage();
        try
        {
            var runs = Enumerable.Range(0, 4).Select(i => ProcessRunner.Start(Berth,
                ["--storage", storage, "run", "--rm", Image, "sh", "-c", "ip -o -4 addr show eth0; sleep 1"], Path.Combine(storage, "cmds"))).ToList();
            var results = runs.Select(p => p.Wait(TimeSpan.FromSeconds(60))).ToList();
            foreach (var p in runs) p.Dispose();
            Assert.All(results, r => Assert.True(r.Succeeded, r.ToString()));
            var ips = results.Select(r => r.Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3]).ToList();
            Assert.Equal(4, ips.Distinct().Count());
            foreach (var ip in ips)
                Assert.DoesNotContain(ip.Split('/')[0] + " ", File.Exists(IpamFile) ? File.ReadAllText(IpamFile) : "");
        }
        finally { RemoveAll(storage); }
    }
}

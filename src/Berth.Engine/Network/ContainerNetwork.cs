using System.Net;
using Berth.Engine.Containers;
using Berth.Images.Store;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Net;
using Timing = Berth.Runtime.Logging.Timing;

namespace Berth.Engine.Network;

/// <summary>
/// A container's network, set up before the runtime starts it and torn down by <see cref="Teardown"/>:
/// a network namespace pinned at /run/berth/netns/ID (private, bridge), the berth0 bridge, a veth
/// pair, an address from <see cref="Ipam"/>, and published ports as elements of berth's nft maps.
/// See docs/adr/0010-engine-networking.md.
/// </summary>
public static class ContainerNetwork
{
    public const string Bridge = "berth0";
    public const string Subnet = "10.77.0.0/16";
    public const int PrefixLen = 16;
    public static readonly IPAddress NetworkAddress = IPAddress.Parse("10.77.0.0");
    public static readonly IPAddress Gateway = IPAddress.Parse("10.77.0.1");
    public const string PinDir = "/run/berth/netns";
    public const string StateDir = "/run/berth/network";

    public static string PinPath(string id) => Path.Combine(PinDir, id);

    /// <summary>The host end of the container's veth pair (IFNAMSIZ allows 15 characters).</summary>
    public static string VethName(string id) => "veth" + id[..11];

    /// <summary>A locally administered MAC derived from the address, so a reused address keeps its MAC.</summary>
    public static byte[] MacFor(IPAddress ip)
    {
        var b = ip.GetAddressBytes();
        return [0x02, 0xb0, b[0], b[1], b[2], b[3]];
    }

    public static string FormatMac(byte[] mac) => string.Join(':', mac.Select(x => x.ToString("x2")));

    /// <summary>
    /// Sets up the network <paramref name="mode"/> asks for. The record is saved first, so a failure at
    /// any later step leaves something <see cref="Teardown"/> finds and undoes.
    /// </summary>
    /// <param name="resolveContainer">container:NAME -> (id, its directory, the pid of its init or 0).</param>
    public static NetworkRecord Setup(string id, string dir, NetworkMode mode, IReadOnlyList<PortMapping> ports,
        Func<string, (string Id, string Dir, int Pid)> resolveContainer)
    {
        if (ports.Count > 0 && mode.Kind != NetworkKind.Bridge)
            throw new EngineError($"-p {ports[0].HostPort}:{ports[0].ContainerPort}: publishing ports needs --network bridge (this container has --network {mode})");
        var rec = new NetworkRecord { Mode = mode.ToString() };
        switch (mode.Kind)
        {
            case NetworkKind.None or NetworkKind.Host:
                rec.Save(dir);
                return rec;
            case NetworkKind.Container:
                var (tid, tdir, pid) = resolveContainer(mode.Target!);
                var target = NetworkRecord.Load(tdir);
                if (target?.Mode == "host") throw new EngineError($"--network {mode}: that container uses the host's network; use --network host");
                rec.Netns = target?.Netns is { } ns && File.Exists(ns) ? ns
                    : pid > 0 ? $"/proc/{pid}/ns/net"
                    : throw new EngineError($"--network {mode}: container {tid[..12]} is not running, so it has no network namespace to join");
                rec.Save(dir);
                return rec;
        }

        rec.Netns = PinPath(id);
        rec.Save(dir);
        NetNsPin.EnsurePinDir(PinDir);
        using var inside = NetNsPin.Create(rec.Netns);
        Timing.Mark("engine: netns pinned");
        if (mode.Kind == NetworkKind.Private) return rec;

        using var host = new RtNetlink();
        IPAddress ip;
        List<IpamState.Entry> stale;
        int bridgeIndex;
        Directory.CreateDirectory(StateDir);
        using (Ipam.Lock())
        {
            bridgeIndex = host.LinkIndex(Bridge);
            bool fresh = bridgeIndex == 0;
            if (fresh) bridgeIndex = CreateBridge(host);
            else EnsureForwarding();
            var state = Ipam.Read();
            stale = state.RemoveStale(Directory.Exists);
            if (stale.Count > 0)
            {
                Ipam.Write(state);
                foreach (var p in stale.SelectMany(e => e.Ports)) Nft.TryRun(NftRules.DeletePorts([p]));
            }
            ip = state.Allocate(id, ports, dir);
            Ipam.Write(state);
            if (fresh || ports.Count > 0)
            {
                var err = Nft.TryRun(NftRules.Base(Bridge, Subnet) + NftRules.AddPorts(ip, ports));
                if (err is not null)
                {
                    state.Release(id);
                    Ipam.Write(state);
                    var what = ports.Count > 0 ? "-p " + string.Join(" -p ", ports.Select(p => p.Key)) : "bridge " + Bridge;
                    throw new EngineError($"{what}: nft: {err.Split('\n')[0]}");
                }
            }
        }
        Timing.Mark("engine: address allocated");
        foreach (var e in stale)
        {
            // What a container whose store was deleted left: its veth and namespace pin.
            host.DeleteLink(VethName(e.Id));
            NetNsPin.Remove(PinPath(e.Id));
        }
        var mac = MacFor(ip);
        int nsFd = Fd.Open(rec.Netns, Consts.O_RDONLY | Consts.O_CLOEXEC);
        try { host.CreateVeth(VethName(id), bridgeIndex, "eth0", nsFd, mac); }
        finally { LibC.close(nsFd); }
        int eth0 = inside.LinkIndex("eth0");
        inside.SetUp(eth0, "eth0");
        inside.AddAddress(eth0, ip, PrefixLen, "eth0");
        inside.AddDefaultRoute(Gateway, eth0);
        Timing.Mark("engine: veth configured");
        rec.IPAddress = ip.ToString();
        rec.Gateway = Gateway.ToString();
        rec.PrefixLen = PrefixLen;
        rec.MacAddress = FormatMac(mac);
        rec.Ports = [.. ports];
        rec.Save(dir);
        return rec;
    }

    /// <summary>
    /// Undoes <see cref="Setup"/> for container <paramref name="id"/>: removes its nft map elements and
    /// releases its address (under the IPAM lock), unmounts and removes its namespace pin, deletes its
    /// veth pair. Idempotent, and works from whatever a failed setup left; cheap for none and host.
    /// Callable by anything that ends a container (rm, run --rm, the monitor).
    /// </summary>
    public static void Teardown(EngineStore store, string id)
    {
        using var pending = BeginTeardown(store, id);
    }

    /// <summary>
    /// <see cref="Teardown"/>, with the veth deletion left running on another thread until the
    /// returned handle is disposed: the kernel's unregister waits for RCU grace periods (10-40 ms
    /// here), which can overlap the caller's own cleanup (unmounting the rootfs, removing files).
    /// The caller must not fork before disposing it (docs/adr/0002), so nft runs before it starts.
    /// </summary>
    public static IDisposable BeginTeardown(EngineStore store, string id)
    {
        var rec = NetworkRecord.Load(store.Dir(id));
        if (rec is null || rec.Mode is "none" or "host" || rec.Mode.StartsWith("container:", StringComparison.Ordinal)) return Done.Instance;
        if (rec.Mode == "bridge" && File.Exists(Ipam.StatePath))
        {
            using (Ipam.Lock())
            {
                var state = Ipam.Read();
                if (state.Release(id) is { } entry)
                {
                    if (entry.Ports.Count > 0 && Nft.TryRun(NftRules.DeletePorts(entry.Ports)) is not null)
                        foreach (var p in entry.Ports) Nft.TryRun(NftRules.DeletePorts([p])); // some were gone already
                    Ipam.Write(state);
                }
            }
            Timing.Mark("engine: address released");
        }
        NetNsPin.Remove(PinPath(id));
        Timing.Mark("engine: netns unpinned");
        return rec.Mode == "bridge" ? new VethDeletion(VethName(id)) : Done.Instance;
    }

    private sealed class Done : IDisposable
    {
        public static readonly Done Instance = new();
        public void Dispose() { }
    }

    private sealed class VethDeletion : IDisposable
    {
        private readonly Thread _thread;
        private Exception? _error;

        public VethDeletion(string name)
        {
            _thread = new Thread(() =>
            {
                try
                {
                    using var host = new RtNetlink();
                    host.DeleteLink(name);
                }
                catch (Exception e) { _error = e; }
            }) { IsBackground = true, Name = "veth " + name };
            _thread.Start();
        }

        public void Dispose()
        {
            _thread.Join();
            Timing.Mark("engine: veth deleted");
            if (_error is not null) throw new EngineError($"delete the container's veth: {_error.Message}");
        }
    }

    /// <summary>
    /// Writes the container's /etc/hosts and /etc/resolv.conf into its directory (bind-mounted
    /// read-only, as podman does); container:NAME shares its target's files instead.
    /// </summary>
    public static SpecFromImage.Files WriteEtcFiles(string dir, string hostname, string name, NetworkRecord net,
        IReadOnlyList<(string Name, string Ip)> addHosts, IReadOnlyList<string> dns, string? targetDir)
    {
        var hostnameFile = Path.Combine(dir, "hostname");
        if (targetDir is not null && File.Exists(Path.Combine(targetDir, "hosts")) && addHosts.Count == 0 && dns.Count == 0)
        {
            var resolv = Path.Combine(targetDir, "resolv.conf");
            return new SpecFromImage.Files(hostnameFile, Path.Combine(targetDir, "hosts"), File.Exists(resolv) ? resolv : null);
        }
        var files = new SpecFromImage.Files(hostnameFile, Path.Combine(dir, "hosts"), Path.Combine(dir, "resolv.conf"));
        var address = net.IPAddress is { } a ? IPAddress.Parse(a) : null;
        File.WriteAllText(files.Hosts, EtcFiles.Hosts(hostname, name, address, addHosts));
        string hostResolv;
        try { hostResolv = File.ReadAllText("/etc/resolv.conf"); }
        catch (FileNotFoundException) { hostResolv = ""; }
        File.WriteAllText(files.ResolvConf!, EtcFiles.ResolvConf(hostResolv, ownNetns: net.Mode != "host", dns));
        return files;
    }

    private static int CreateBridge(RtNetlink host)
    {
        host.CreateBridge(Bridge);
        int index = host.LinkIndex(Bridge);
        host.AddAddress(index, Gateway, PrefixLen, Bridge);
        // 127.0.0.1:HOSTPORT from the host is DNATed onto the bridge; the kernel drops such packets unless allowed.
        Fd.WriteFile($"/proc/sys/net/ipv4/conf/{Bridge}/route_localnet", "1");
        EnsureForwarding();
        return index;
    }

    private static void EnsureForwarding()
    {
        const string path = "/proc/sys/net/ipv4/ip_forward";
        if (File.ReadAllText(path).Trim() != "1") Fd.WriteFile(path, "1");
    }
}

/// <summary>The bridge's address allocations in /run/berth/network/ipam, changed only under its flock.</summary>
public static class Ipam
{
    public static string StatePath => Path.Combine(ContainerNetwork.StateDir, "ipam");

    public static FileLock Lock()
    {
        Directory.CreateDirectory(ContainerNetwork.StateDir);
        return FileLock.Exclusive(Path.Combine(ContainerNetwork.StateDir, "ipam.lock"));
    }

    public static IpamState Read()
    {
        string text;
        try { text = File.ReadAllText(StatePath); }
        catch (FileNotFoundException) { text = ""; }
        return IpamState.Parse(text, ContainerNetwork.NetworkAddress, ContainerNetwork.PrefixLen);
    }

    public static void Write(IpamState state) => AtomicFile.Write(StatePath, System.Text.Encoding.UTF8.GetBytes(state.Render()));
}

using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;
using Berth.Linux.Interop;

namespace Berth.Linux.Net;

/// <summary>
/// A NETLINK_ROUTE socket and the few link/address/route requests a bridge network needs. The
/// socket talks to the network namespace it was created in, whichever thread uses it later.
/// </summary>
public sealed unsafe class RtNetlink : IDisposable
{
    private const int AF_NETLINK = 16, SOCK_RAW = 3, NETLINK_ROUTE = 0;
    private const ushort NLMSG_ERROR = 2, NLMSG_DONE = 3;
    private const ushort RTM_NEWLINK = 16, RTM_DELLINK = 17, RTM_GETLINK = 18, RTM_NEWADDR = 20, RTM_NEWROUTE = 24;
    private const ushort NLM_F_REQUEST = 1, NLM_F_ACK = 4, NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400;
    private const ushort IFLA_ADDRESS = 1, IFLA_IFNAME = 3, IFLA_MASTER = 10, IFLA_LINKINFO = 18, IFLA_NET_NS_FD = 28;
    private const ushort IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2, VETH_INFO_PEER = 1;
    private const ushort IFA_ADDRESS = 1, IFA_LOCAL = 2, RTA_OIF = 4, RTA_GATEWAY = 5;
    private const uint IFF_UP = 1;
    public const int EEXIST = 17, ENODEV = 19;

    private int _fd;
    private uint _seq;

    public RtNetlink()
    {
        _fd = LibC.socket(AF_NETLINK, SOCK_RAW | Consts.SOCK_CLOEXEC, NETLINK_ROUTE);
        if (_fd < 0) throw LinuxException.Last("socket", "NETLINK_ROUTE");
    }

    public void Dispose()
    {
        if (_fd >= 0) LibC.close(_fd);
        _fd = -1;
    }

    /// <summary>The interface index of <paramref name="name"/>, or 0 if there is none.</summary>
    public int LinkIndex(string name)
    {
        var m = new Msg(RTM_GETLINK, NLM_F_REQUEST);
        m.IfInfo(0, 0, 0);
        m.AttrString(IFLA_IFNAME, name);
        var (err, reply) = Exchange(m, wantReply: true);
        if (err == ENODEV) return 0;
        if (err != 0) throw new LinuxException("netlink get link", name, err);
        return BinaryPrimitives.ReadInt32LittleEndian(reply.AsSpan(16 + 4));
    }

    /// <summary>Creates a bridge, up. Returns false if one of that name exists already.</summary>
    public bool CreateBridge(string name)
    {
        var m = new Msg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.IfInfo(0, IFF_UP, IFF_UP);
        m.AttrString(IFLA_IFNAME, name);
        int li = m.Begin(IFLA_LINKINFO);
        m.AttrString(IFLA_INFO_KIND, "bridge");
        m.End(li);
        int err = Request(m);
        if (err == EEXIST) return false;
        if (err != 0) throw new LinuxException("create bridge", name, err);
        return true;
    }

    /// <summary>
    /// A veth pair: <paramref name="hostName"/> here and up, enslaved to <paramref name="masterIndex"/>,
    /// and <paramref name="peerName"/> with <paramref name="peerMac"/> in the namespace of <paramref name="peerNsFd"/>, down.
    /// </summary>
    public void CreateVeth(string hostName, int masterIndex, string peerName, int peerNsFd, byte[] peerMac)
    {
        var m = new Msg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.IfInfo(0, IFF_UP, IFF_UP);
        m.AttrString(IFLA_IFNAME, hostName);
        m.AttrU32(IFLA_MASTER, (uint)masterIndex);
        int li = m.Begin(IFLA_LINKINFO);
        m.AttrString(IFLA_INFO_KIND, "veth");
        int data = m.Begin(IFLA_INFO_DATA);
        int peer = m.Begin(VETH_INFO_PEER);
        m.IfInfo(0, 0, 0); // not up here: the kernel configures the peer before pairing it (ENOTCONN)
        m.AttrString(IFLA_IFNAME, peerName);
        m.AttrU32(IFLA_NET_NS_FD, (uint)peerNsFd);
        m.Attr(IFLA_ADDRESS, peerMac);
        m.End(peer);
        m.End(data);
        m.End(li);
        int err = Request(m);
        if (err != 0) throw new LinuxException("create veth pair", $"{hostName}/{peerName}", err);
    }

    /// <summary>Brings the link at <paramref name="index"/> up (1 is always loopback).</summary>
    public void SetUp(int index, string what)
    {
        var m = new Msg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        m.IfInfo(index, IFF_UP, IFF_UP);
        int err = Request(m);
        if (err != 0) throw new LinuxException("set link up", what, err);
    }

    /// <summary>Deletes a link by name; false if there was none.</summary>
    public bool DeleteLink(string name)
    {
        var m = new Msg(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
        m.IfInfo(0, 0, 0);
        m.AttrString(IFLA_IFNAME, name);
        int err = Request(m);
        if (err == ENODEV) return false;
        if (err != 0) throw new LinuxException("delete link", name, err);
        return true;
    }

    /// <summary>An IPv4 address on a link; an existing identical address is not an error.</summary>
    public void AddAddress(int index, IPAddress address, int prefix, string what)
    {
        var m = new Msg(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        // struct ifaddrmsg { family, prefixlen, flags, scope; u32 index }
        m.Bytes([2, (byte)prefix, 0, 0]);
        m.U32((uint)index);
        m.Attr(IFA_LOCAL, address.GetAddressBytes());
        m.Attr(IFA_ADDRESS, address.GetAddressBytes());
        int err = Request(m);
        if (err != 0 && err != EEXIST) throw new LinuxException("add address", $"{address}/{prefix} on {what}", err);
    }

    public void AddDefaultRoute(IPAddress gateway, int oif)
    {
        var m = new Msg(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        // struct rtmsg { family, dst_len, src_len, tos, table=main, protocol=boot, scope=universe, type=unicast; u32 flags }
        m.Bytes([2, 0, 0, 0, 254, 3, 0, 1]);
        m.U32(0);
        m.Attr(RTA_GATEWAY, gateway.GetAddressBytes());
        m.AttrU32(RTA_OIF, (uint)oif);
        int err = Request(m);
        if (err != 0) throw new LinuxException("add default route", $"via {gateway}", err);
    }

    private int Request(Msg m) => Exchange(m, wantReply: false).Errno;

    /// <summary>Sends one request; returns the errno of its NLMSG_ERROR (0 = ack) or the reply message.</summary>
    private (int Errno, byte[] Reply) Exchange(Msg m, bool wantReply)
    {
        uint seq = ++_seq;
        var bytes = m.Finish(seq);
        fixed (byte* p = bytes)
            if (LibC.send(_fd, p, bytes.Length, 0) != bytes.Length) throw LinuxException.Last("netlink send");
        var buf = new byte[16384];
        while (true)
        {
            nint n;
            fixed (byte* p = buf) n = LibC.recv(_fd, p, buf.Length, 0);
            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
                throw LinuxException.Last("netlink recv");
            }
            int off = 0;
            while (off + 16 <= n)
            {
                int len = BinaryPrimitives.ReadInt32LittleEndian(buf.AsSpan(off));
                ushort type = BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(off + 4));
                uint mseq = BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(off + 8));
                if (len < 16 || off + len > n) break;
                if (mseq == seq)
                {
                    if (type == NLMSG_ERROR) return (-BinaryPrimitives.ReadInt32LittleEndian(buf.AsSpan(off + 16)), []);
                    if (type == NLMSG_DONE) return (0, []);
                    if (wantReply) return (0, buf.AsSpan(off, len).ToArray());
                }
                off += (len + 3) & ~3;
            }
        }
    }

    /// <summary>A netlink message under construction: header, family struct, attributes (4-byte aligned).</summary>
    private sealed class Msg
    {
        private readonly List<byte> _b = new(256);

        public Msg(ushort type, ushort flags)
        {
            U32(0); // length, set by Finish
            U16(type);
            U16(flags);
            U32(0); // seq
            U32(0); // port id
        }

        public void IfInfo(int index, uint flags, uint change)
        {
            Bytes([2 /* AF_INET; ignored for links */, 0]);
            U16(0);
            U32((uint)index);
            U32(flags);
            U32(change);
        }

        public void Bytes(ReadOnlySpan<byte> b)
        {
            foreach (var x in b) _b.Add(x);
        }

        public void U16(ushort v) => Bytes([(byte)v, (byte)(v >> 8)]);
        public void U32(uint v) => Bytes([(byte)v, (byte)(v >> 8), (byte)(v >> 16), (byte)(v >> 24)]);

        public void Attr(ushort type, ReadOnlySpan<byte> payload)
        {
            U16((ushort)(4 + payload.Length));
            U16(type);
            Bytes(payload);
            Pad();
        }

        public void AttrU32(ushort type, uint v)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, v);
            Attr(type, b);
        }

        public void AttrString(ushort type, string s) => Attr(type, CString.Of(s));

        public int Begin(ushort type)
        {
            int at = _b.Count;
            U16(0);
            U16(type);
            return at;
        }

        public void End(int at)
        {
            int len = _b.Count - at;
            _b[at] = (byte)len;
            _b[at + 1] = (byte)(len >> 8);
        }

        private void Pad()
        {
            while ((_b.Count & 3) != 0) _b.Add(0);
        }

        public byte[] Finish(uint seq)
        {
            var a = _b.ToArray();
            BinaryPrimitives.WriteUInt32LittleEndian(a, (uint)a.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(a.AsSpan(8), seq);
            return a;
        }
    }
}

using System.Text;
using Berth.Linux.Interop;

namespace Berth.Linux.Sockets;

/// <summary>AF_UNIX stream sockets by path, and fd passing (SCM_RIGHTS).</summary>
public static unsafe class UnixSocket
{
    private const int SunPathMax = 108;

    /// <summary>Connects to the socket at <paramref name="path"/>; returns a close-on-exec fd.</summary>
    public static int Connect(string path, string what)
    {
        var bytes = Encoding.UTF8.GetBytes(path);
        if (bytes.Length >= SunPathMax)
            throw new LinuxException("connect", $"{what} {path} (path longer than {SunPathMax - 1} bytes)", 36);
        int sock = LibC.socket(Consts.AF_UNIX, Consts.SOCK_STREAM | Consts.SOCK_CLOEXEC, 0);
        if (sock < 0) throw LinuxException.Last("socket", what);
        byte* addr = stackalloc byte[2 + SunPathMax];
        new Span<byte>(addr, 2 + SunPathMax).Clear();
        *(ushort*)addr = Consts.AF_UNIX;
        bytes.CopyTo(new Span<byte>(addr + 2, SunPathMax));
        if (LibC.connect(sock, addr, 2 + bytes.Length + 1) < 0)
        {
            var e = LinuxException.Last("connect", $"{what} {path}");
            LibC.close(sock);
            throw e;
        }
        return sock;
    }

    /// <summary>Sends <paramref name="fd"/> with <paramref name="payload"/>; returns 0 or an errno.</summary>
    public static int SendFd(int socket, int fd, ReadOnlySpan<byte> payload) =>
        Seccomp.SeccompListener.SendFd(socket, fd, payload);

    /// <summary>Receives one message carrying an fd (SCM_RIGHTS); returns the fd, or throws.</summary>
    public static int ReceiveFd(int socket, string what)
    {
        var data = stackalloc byte[256];
        var control = stackalloc byte[64];
        var iov = stackalloc nint[2];
        iov[0] = (nint)data;
        iov[1] = 256;
        var msg = stackalloc nint[7]; // struct msghdr on 64-bit
        new Span<nint>(msg, 7).Clear();
        msg[2] = (nint)iov;
        msg[3] = 1;
        msg[4] = (nint)control;
        msg[5] = 64;
        while (true)
        {
            nint n = LibC.recvmsg(socket, msg, Consts.O_CLOEXEC /* MSG_CMSG_CLOEXEC has the same value */);
            if (n >= 0) break;
            if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != Consts.EINTR) throw LinuxException.Last("recvmsg", what);
        }
        // struct cmsghdr { size_t len; int level; int type; } followed by the fd
        if (msg[5] < 20 || *(int*)(control + 8) != Consts.SOL_SOCKET || *(int*)(control + 12) != Consts.SCM_RIGHTS)
            throw new LinuxException("recvmsg", $"{what}: no fd in the message", Consts.EIO);
        return *(int*)(control + 16);
    }
}

using System.Runtime.InteropServices;
using System.Text;
using Berth.Linux.Interop;

namespace Berth.Linux.Seccomp;

/// <summary>
/// Hands a seccomp notification fd to the agent at linux.seccomp.listenerPath: one SCM_RIGHTS
/// message carrying the fd, whose bytes are the container process state JSON (runtime-spec,
/// "seccomp listener"). Send from the runtime process, not from the filtered child: the filter
/// may block sendmsg or connect there.
/// </summary>
public static unsafe class SeccompListener
{
    private const int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 0x80000;
    private const int SOL_SOCKET = 1, SCM_RIGHTS = 1, MSG_NOSIGNAL = 0x4000;
    private const int SunPathMax = 108;

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public void* Base;
        public nuint Len;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLen;
        public IoVec* Iov;
        public nuint IovLen;
        public void* Control;
        public nuint ControlLen;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct FdControl // cmsghdr followed by one int: CMSG_SPACE(sizeof(int)) on 64-bit
    {
        public nuint Len;
        public int Level;
        public int Type;
        public int Fd;
        private int _pad;
    }

    /// <summary>Connects to <paramref name="listenerPath"/> and sends <paramref name="notifyFd"/> with <paramref name="state"/>.</summary>
    public static void SendToListener(string listenerPath, int notifyFd, ReadOnlySpan<byte> state)
    {
        var path = Encoding.UTF8.GetBytes(listenerPath);
        if (path.Length >= SunPathMax)
            throw new LinuxException("connect", $"seccomp listener {listenerPath} (path longer than {SunPathMax - 1} bytes)", 36 /* ENAMETOOLONG */);
        int sock = LibC.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sock < 0) throw LinuxException.Last("socket", "AF_UNIX for the seccomp listener");
        try
        {
            byte* addr = stackalloc byte[2 + SunPathMax];
            new Span<byte>(addr, 2 + SunPathMax).Clear();
            *(ushort*)addr = AF_UNIX;
            path.CopyTo(new Span<byte>(addr + 2, SunPathMax));
            if (LibC.connect(sock, addr, 2 + path.Length + 1) < 0)
                throw LinuxException.Last("connect", $"seccomp listener {listenerPath}");
            int errno = SendFd(sock, notifyFd, state);
            if (errno != 0) throw new LinuxException("sendmsg", $"seccomp fd to listener {listenerPath}", errno);
        }
        finally
        {
            LibC.close(sock);
        }
    }

    /// <summary>
    /// One recvmsg on a unix socket into <paramref name="buffer"/>; an fd passed with SCM_RIGHTS
    /// comes back in <paramref name="fd"/> (-1 when none, close-on-exec). Returns the byte count
    /// (0 at EOF) or -errno.
    /// </summary>
    public static int ReceiveWithFd(int socket, Span<byte> buffer, out int fd)
    {
        fd = -1;
        const int MSG_CMSG_CLOEXEC = 0x40000000;
        fixed (byte* data = buffer)
        {
            var control = new FdControl();
            var iov = new IoVec { Base = data, Len = (nuint)buffer.Length };
            var msg = new MsgHdr { Iov = &iov, IovLen = 1, Control = &control, ControlLen = (nuint)sizeof(FdControl) };
            nint n;
            do { n = LibC.recvmsg(socket, &msg, MSG_CMSG_CLOEXEC); }
            while (n < 0 && Marshal.GetLastPInvokeError() == Consts.EINTR);
            if (n < 0) return -Marshal.GetLastPInvokeError();
            if (msg.ControlLen >= (nuint)(sizeof(nuint) + 3 * sizeof(int)) && control.Level == SOL_SOCKET && control.Type == SCM_RIGHTS)
                fd = control.Fd;
            return (int)n;
        }
    }

    /// <summary>
    /// Sends <paramref name="fd"/> over the connected unix socket <paramref name="socket"/> with
    /// <paramref name="payload"/> (at least one byte) as the message. Returns 0 or an errno.
    /// </summary>
    public static int SendFd(int socket, int fd, ReadOnlySpan<byte> payload)
    {
        if (payload.IsEmpty) return Consts.EINVAL;
        fixed (byte* data = payload)
        {
            var control = new FdControl { Len = (nuint)(sizeof(nuint) + 2 * sizeof(int) + sizeof(int)), Level = SOL_SOCKET, Type = SCM_RIGHTS, Fd = fd };
            var iov = new IoVec { Base = data, Len = (nuint)payload.Length };
            var msg = new MsgHdr { Iov = &iov, IovLen = 1, Control = &control, ControlLen = (nuint)sizeof(FdControl) };
            int sent = 0;
            while (sent < payload.Length)
            {
                nint n = LibC.sendmsg(socket, &msg, MSG_NOSIGNAL);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Consts.EINTR) continue;
                    return errno;
                }
                // The fd travelled with the first bytes; a short send leaves only plain bytes.
                sent += (int)n;
                msg.Control = null;
                msg.ControlLen = 0;
                iov.Base = data + sent;
                iov.Len = (nuint)(payload.Length - sent);
            }
            return 0;
        }
    }
}

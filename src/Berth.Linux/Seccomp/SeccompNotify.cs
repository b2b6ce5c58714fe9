using System.Runtime.InteropServices;
using Berth.Linux.Interop;

namespace Berth.Linux.Seccomp;

/// <summary>One seccomp user notification (struct seccomp_notif): who made which call with what.</summary>
public readonly record struct SeccompNotification(ulong Id, int Pid, uint Arch, int Nr, ulong Ip, ulong[] Args);

/// <summary>
/// The supervisor's side of a seccomp notify fd (SECCOMP_FILTER_FLAG_NEW_LISTENER): receive a
/// notification, answer it with an errno, a fake return value or "continue" (run the call as asked).
/// </summary>
public static unsafe class SeccompNotify
{
    // _IOWR('!', 0, struct seccomp_notif) and _IOWR('!', 1, struct seccomp_notif_resp); both are 64-bit layouts on every arch.
    private const ulong IOCTL_NOTIF_RECV = 0xc0502100;
    private const ulong IOCTL_NOTIF_SEND = 0xc0182101;
    /// <summary>SECCOMP_USER_NOTIF_FLAG_CONTINUE (5.5+): let the kernel run the call.</summary>
    public const uint FlagContinue = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct Notif
    {
        public ulong Id;
        public uint Pid;
        public uint Flags;
        public int Nr;
        public uint Arch;
        public ulong Ip;
        public fixed ulong Args[6];
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Resp
    {
        public ulong Id;
        public long Val;
        public int Error;
        public uint Flags;
    }

    /// <summary>
    /// SECCOMP_IOCTL_NOTIF_RECV. Returns 0 with the notification, or an errno: ENOENT when the
    /// caller died (or was interrupted) before we got it, EINTR, EAGAIN/ENOENT on a non-blocking race.
    /// </summary>
    public static int Receive(int fd, out SeccompNotification notification)
    {
        var n = new Notif(); // the kernel wants it zeroed
        notification = default;
        if (LibC.ioctl(fd, IOCTL_NOTIF_RECV, &n) != 0) return Marshal.GetLastPInvokeError();
        var args = new ulong[6];
        for (int i = 0; i < 6; i++) args[i] = n.Args[i];
        notification = new SeccompNotification(n.Id, (int)n.Pid, n.Arch, n.Nr, n.Ip, args);
        return 0;
    }

    /// <summary>
    /// SECCOMP_IOCTL_NOTIF_SEND: <paramref name="error"/> is a positive errno the call fails with
    /// (0: it returns <paramref name="value"/>), or <paramref name="flags"/> = <see cref="FlagContinue"/>.
    /// Returns 0 or an errno (ENOENT: the caller is gone, nothing to answer).
    /// </summary>
    public static int Respond(int fd, ulong id, int error, long value = 0, uint flags = 0)
    {
        var r = new Resp { Id = id, Val = flags != 0 ? 0 : value, Error = flags != 0 ? 0 : -error, Flags = flags };
        return LibC.ioctl(fd, IOCTL_NOTIF_SEND, &r) != 0 ? Marshal.GetLastPInvokeError() : 0;
    }
}

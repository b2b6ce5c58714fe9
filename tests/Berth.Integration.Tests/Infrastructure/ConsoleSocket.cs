using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Berth.Integration.Tests.Infrastructure;

/// <summary>
/// The receiving end of `--console-socket`, as conmon and containerd run it: a unix socket that
/// accepts one connection and receives the pty master fd by SCM_RIGHTS.
/// </summary>
public sealed partial class ConsoleSocket : IDisposable
{
    private readonly Socket _listener;
    public string Path { get; }

    public ConsoleSocket(string dir)
    {
        Path = System.IO.Path.Combine(dir, "console.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(Path));
        _listener.Listen(1);
    }

    /// <summary>Accepts the runtime's connection and returns (master fd, message text).</summary>
    public async Task<(int Fd, string Message)> ReceiveAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var conn = await _listener.AcceptAsync(cts.Token);
        return Receive((int)conn.Handle);
    }

    private static unsafe (int Fd, string Message) Receive(int sock)
    {
        var buf = new byte[256];
        var control = new byte[64];
        fixed (byte* b = buf)
        fixed (byte* c = control)
        {
            var iov = stackalloc nint[2];
            iov[0] = (nint)b;
            iov[1] = buf.Length;
            var msg = stackalloc nint[7]; // struct msghdr
            new Span<nint>(msg, 7).Clear();
            msg[2] = (nint)iov;
            msg[3] = 1;
            msg[4] = (nint)c;
            msg[5] = control.Length;
            nint n = recvmsg(sock, msg, 0);
            if (n < 0) throw new IOException($"recvmsg: errno {Marshal.GetLastPInvokeError()}");
            // struct cmsghdr { size_t len; int level; int type; } then the fd
            int level = *(int*)(c + 8), type = *(int*)(c + 12);
            if (msg[5] < 20 || level != 1 || type != 1) throw new IOException("no SCM_RIGHTS in the console socket message");
            return (*(int*)(c + 16), System.Text.Encoding.UTF8.GetString(buf, 0, (int)n));
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint recvmsg(int fd, void* msg, int flags);

    /// <summary>Reads a pty master until <paramref name="marker"/> appears, the slave side closes, or 10 s pass; owns the fd.</summary>
    public static string ReadUntil(int masterFd, string marker)
    {
        using var master = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(masterFd, ownsHandle: true), FileAccess.Read);
        var output = new System.Text.StringBuilder();
        var buf = new byte[1024];
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!output.ToString().Contains(marker) && DateTime.UtcNow < deadline)
        {
            int n;
            try { n = master.Read(buf, 0, buf.Length); }
            catch (IOException) { break; } // EIO once the slave side is closed
            if (n == 0) break;
            output.Append(System.Text.Encoding.UTF8.GetString(buf, 0, n));
        }
        return output.ToString();
    }

    public void Dispose() => _listener.Dispose();
}

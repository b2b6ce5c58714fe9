using System.Text;
using Berth.Linux.Files;

namespace Berth.Runtime.Init;

/// <summary>
/// Line-based messages between the runtime parent and its init stages over one end of a
/// socketpair: "go", "userns", "mapped", "pid N", "hooks", "hooksdone\tJSON\tJSON", "ready",
/// "seccompfd" (with the notify fd attached), "error\tSTEP\tMESSAGE". One message per line; tabs
/// and newlines inside fields are flattened.
/// </summary>
public sealed class SyncChannel(int fd)
{
    public int Fd { get; private set; } = fd;

    public void Send(string type, params string[] fields)
    {
        var sb = new StringBuilder(type);
        foreach (var f in fields) sb.Append('\t').Append(f.Replace('\t', ' ').Replace('\n', ' '));
        sb.Append('\n');
        Berth.Linux.Files.Fd.WriteAll(Fd, Encoding.UTF8.GetBytes(sb.ToString()), "sync socket");
    }

    /// <summary>An fd that came with a message (SCM_RIGHTS), for <see cref="TakeFd"/>; -1 when none.</summary>
    private int _receivedFd = -1;

    /// <summary>Sends a message with <paramref name="fd"/> attached (SCM_RIGHTS); the peer gets it from <see cref="TakeFd"/>.</summary>
    public void SendWithFd(string type, int fd)
    {
        int err = Berth.Linux.Seccomp.SeccompListener.SendFd(Fd, fd, Encoding.UTF8.GetBytes(type.Replace('\t', ' ').Replace('\n', ' ') + "\n"));
        if (err != 0) throw new Berth.Linux.LinuxException("sendmsg", "sync socket", err);
    }

    /// <summary>The fd that came with the last message, handed over once (-1 when none).</summary>
    public int TakeFd()
    {
        int fd = _receivedFd;
        _receivedFd = -1;
        return fd;
    }

    // Bytes received but not yet returned: one recvmsg may carry several messages (the peer's
    // sends coalesce on a stream socket). Only one reader per process uses a channel object.
    private byte[] _buf = new byte[1024];
    private int _start, _end;

    /// <summary>Next message split into fields, or null at EOF (the peer died or closed).</summary>
    public string[]? Receive()
    {
        while (true)
        {
            int nl = Array.IndexOf(_buf, (byte)'\n', _start, _end - _start);
            if (nl >= 0)
            {
                var msg = Split(_buf.AsSpan(_start, nl - _start));
                _start = nl + 1;
                if (_start == _end) _start = _end = 0;
                return msg;
            }
            if (_start > 0)
            {
                Array.Copy(_buf, _start, _buf, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            if (_end == _buf.Length) Array.Resize(ref _buf, _buf.Length * 2);
            // recvmsg, not read: a message may carry an fd, which read would drop.
            int n = Berth.Linux.Seccomp.SeccompListener.ReceiveWithFd(Fd, _buf.AsSpan(_end), out int fd);
            if (fd >= 0)
            {
                if (_receivedFd >= 0) Berth.Linux.Files.Fd.Close(_receivedFd);
                _receivedFd = fd;
            }
            if (n < 0) return null;
            if (n == 0)
            {
                if (_end == 0) return null;
                var last = Split(_buf.AsSpan(0, _end));
                _start = _end = 0;
                return last;
            }
            _end += n;
        }
    }

    /// <summary>Receives and checks the message type; an "error" message or EOF throws.</summary>
    public string[] Expect(string type, string waitingFor)
    {
        var msg = Receive() ?? throw new RuntimeError($"container init exited while {waitingFor}");
        if (msg[0] == "error") throw new RuntimeError(msg.Length > 2 ? $"{msg[1]}: {msg[2]}" : string.Join(' ', msg.Skip(1)));
        if (msg[0] != type) throw new RuntimeError($"container init sent \"{msg[0]}\" while {waitingFor}");
        return msg;
    }

    private static string[] Split(ReadOnlySpan<byte> buf) => Encoding.UTF8.GetString(buf).Split('\t');

    public void Close()
    {
        if (_receivedFd >= 0) Berth.Linux.Files.Fd.Close(_receivedFd);
        _receivedFd = -1;
        Berth.Linux.Files.Fd.Close(Fd);
        Fd = -1;
    }
}

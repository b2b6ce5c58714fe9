using System.Runtime.InteropServices;
using Berth.Linux.Interop;
using Berth.Linux.Seccomp;

namespace Berth.Linux.Tests.Seccomp;

public unsafe class SeccompListenerTests
{
    [DllImport("libc", SetLastError = true)]
    private static extern nint recvmsg(int fd, void* msg, int flags);

    [Fact]
    public void SendFdPassesTheFdAndThePayload()
    {
        int* sv = stackalloc int[2];
        int* pipe = stackalloc int[2];
        Assert.Equal(0, LibC.socketpair(1 /* AF_UNIX */, 1 /* SOCK_STREAM */ | Consts.O_CLOEXEC, 0, sv));
        Assert.Equal(0, LibC.pipe2(pipe, Consts.O_CLOEXEC));
        int received = -1;
        try
        {
            var payload = """{"ociVersion":"1.3.0","fds":["seccompFd"],"pid":1}"""u8.ToArray();
            Assert.Equal(0, SeccompListener.SendFd(sv[0], pipe[0], payload));

            byte* buf = stackalloc byte[256];
            byte* control = stackalloc byte[64];
            long* iov = stackalloc long[2];
            iov[0] = (long)buf;
            iov[1] = 256;
            long* msg = stackalloc long[7];
            new Span<long>(msg, 7).Clear();
            msg[2] = (long)iov;
            msg[3] = 1;
            msg[4] = (long)control;
            msg[5] = 64;
            nint n = recvmsg(sv[1], msg, 0);
            Assert.Equal(payload.Length, (int)n);
            Assert.Equal(payload, new Span<byte>(buf, (int)n).ToArray());
            Assert.True(msg[5] >= 20, "no control message arrived");
            Assert.Equal(1, *(int*)(control + 8));  // SOL_SOCKET
            Assert.Equal(1, *(int*)(control + 12)); // SCM_RIGHTS
            received = *(int*)(control + 16);
            Assert.Equal(File.ResolveLinkTarget($"/proc/self/fd/{pipe[0]}", false)!.ToString(),
                File.ResolveLinkTarget($"/proc/self/fd/{received}", false)!.ToString());
        }
        finally
        {
            foreach (var fd in new[] { sv[0], sv[1], pipe[0], pipe[1], received })
                if (fd >= 0) LibC.close(fd);
        }
    }

    [Fact]
    public void SendToListenerNamesTheSocketWhenNobodyListens()
    {
        var ex = Assert.Throws<LinuxException>(() => SeccompListener.SendToListener("/nonexistent/agent.sock", 0, "{}"u8));
        Assert.Contains("/nonexistent/agent.sock", ex.Message);
    }
}

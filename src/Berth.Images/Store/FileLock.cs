using System.Runtime.InteropServices;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;

namespace Berth.Images.Store;

/// <summary>
/// flock(2) on a lock file. Locks belong to the open file description, so two threads that each
/// open the file exclude each other exactly as two processes do (what the race tests rely on).
/// The fd is close-on-exec: a lock never leaks into a container.
/// </summary>
public sealed class FileLock : IDisposable
{
    private int _fd;

    private FileLock(int fd) => _fd = fd;

    public static FileLock Shared(string path) => Acquire(path, Consts.LOCK_SH);
    public static FileLock Exclusive(string path) => Acquire(path, Consts.LOCK_EX);

    private static FileLock Acquire(string path, int op)
    {
        int fd = Fd.Open(path, Consts.O_RDWR | Consts.O_CREAT, 0x180);
        while (LibC.flock(fd, op) != 0)
        {
            int e = Marshal.GetLastPInvokeError();
            if (e == Consts.EINTR) continue;
            LibC.close(fd);
            throw new LinuxException("lock", path, e);
        }
        return new FileLock(fd);
    }

    public void Dispose()
    {
        if (_fd >= 0) LibC.close(_fd); // closing drops the lock
        _fd = -1;
    }
}

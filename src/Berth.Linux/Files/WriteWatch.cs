using System.Runtime.InteropServices;
using Berth.Linux.Interop;

namespace Berth.Linux.Files;

/// <summary>
/// Whether any of a set of files may have been written, from the kernel rather than their bytes:
/// a fanotify group with inode marks for FAN_MODIFY (write, splice, copy_file_range, ...) and
/// FAN_CLOSE_WRITE (the last close of any open file description that could write: an O_RDWR open
/// made only to map the file shared and write through the mapping ends with it, at the latest when
/// its process exits). A file's content cannot change without one of the two, so a quiet group proves
/// the marked files hold what they held when marked. Needs CAP_SYS_ADMIN; <see cref="TryCreate"/>
/// returns null where the kernel or the caller cannot, and the caller compares bytes instead.
/// </summary>
public sealed unsafe class WriteWatch : IDisposable
{
    private const uint FAN_CLASS_NOTIF = 0, FAN_CLOEXEC = 1, FAN_NONBLOCK = 2;
    private const uint FAN_MARK_ADD = 1;
    private const ulong FAN_MODIFY = 0x2, FAN_CLOSE_WRITE = 0x8;
    private const int EventHeader = 24; // struct fanotify_event_metadata: event_len, vers, reserved, metadata_len, mask, fd, pid

    private int _fd;

    private WriteWatch(int fd) => _fd = fd;

    public static WriteWatch? TryCreate()
    {
        int fd = LibC.fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, (uint)(Consts.O_RDONLY | Consts.O_CLOEXEC));
        return fd < 0 ? null : new WriteWatch(fd);
    }

    /// <summary>Marks the file at <paramref name="path"/> (not following a symlink); false when it cannot be marked.</summary>
    public bool Mark(string path)
    {
        fixed (byte* p = CString.Of(path))
            return LibC.fanotify_mark(_fd, FAN_MARK_ADD | 0x04 /* FAN_MARK_DONT_FOLLOW */, FAN_MODIFY | FAN_CLOSE_WRITE, Consts.AT_FDCWD, p) == 0;
    }

    /// <summary>
    /// True when no marked file was opened for writing or written since the last call (or since the
    /// marks were made); reads and discards what was queued either way (an overflow counts as a write).
    /// </summary>
    public bool Quiet()
    {
        bool quiet = true;
        var buf = stackalloc byte[4096];
        while (true)
        {
            nint n = LibC.read(_fd, buf, 4096);
            if (n < 0 && Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
            if (n <= 0) return quiet && (n == 0 || Marshal.GetLastPInvokeError() == Consts.EAGAIN);
            quiet = false;
            for (nint at = 0; at + EventHeader <= n; )
            {
                uint len = *(uint*)(buf + at);
                int eventFd = *(int*)(buf + at + 16);
                if (eventFd >= 0) LibC.close(eventFd);
                if (len < EventHeader) break;
                at += (nint)len;
            }
        }
    }

    public void Dispose()
    {
        if (_fd >= 0) LibC.close(_fd);
        _fd = -1;
    }
}

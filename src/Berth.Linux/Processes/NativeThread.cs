using System.Runtime.InteropServices;
using Berth.Linux.Interop;

namespace Berth.Linux.Processes;

/// <summary>
/// A thread made with pthread_create that runs one managed action. Unlike <see cref="Thread.Start()"/>,
/// which spins in sched_yield until the new thread has attached to the runtime (~0.15 ms measured on
/// these 2-core machines, while the starting thread could be working), this returns as soon as the
/// thread exists; the runtime attaches it on its first managed call ([UnmanagedCallersOnly]).
/// An exception thrown by the action is rethrown by <see cref="Join"/>.
/// </summary>
public sealed unsafe class NativeThread
{
    private readonly Action _work;
    private Exception? _failed;
    private nuint _handle;
    private GCHandle _self;
    private bool _joined;

    private NativeThread(Action work) => _work = work;

    public static NativeThread Start(Action work, nuint stackSize = 256 * 1024)
    {
        var t = new NativeThread(work);
        t._self = GCHandle.Alloc(t);
        var attr = stackalloc byte[64]; // pthread_attr_t is 56 bytes on x86-64 and arm64 glibc
        int rc = LibC.pthread_attr_init(attr);
        if (rc == 0) rc = LibC.pthread_attr_setstacksize(attr, stackSize);
        nuint handle;
        if (rc == 0) rc = LibC.pthread_create(&handle, attr, &Entry, GCHandle.ToIntPtr(t._self));
        else handle = 0;
        LibC.pthread_attr_destroy(attr);
        if (rc != 0)
        {
            t._self.Free();
            throw new LinuxException("pthread_create", "a helper thread", rc);
        }
        t._handle = handle;
        return t;
    }

    /// <summary>
    /// True when a helper thread would likely find a CPU of its own: from /proc/loadavg (read twice at
    /// most), fewer tasks runnable right now than this process may use CPUs (the count includes the
    /// caller), or as many but a 1-minute load half a CPU below that.
    /// </summary>
    public static bool SpareCpu() => LoadSaysSpare() || LoadSaysSpare(); // a second look past a passing kernel worker

    private static bool LoadSaysSpare()
    {
        var buf = stackalloc byte[128];
        int fd;
        fixed (byte* p = "/proc/loadavg\0"u8) fd = LibC.open(p, Consts.O_RDONLY | Consts.O_CLOEXEC, 0);
        if (fd < 0) return false;
        long n = LibC.read(fd, buf, 127);
        LibC.close(fd);
        if (n <= 0) return false;
        // "0.50 0.40 0.30 R/T LASTPID": the 1-minute load (in hundredths), then R after the third space.
        int spaces = 0, running = 0, load = 0;
        int cpus = Environment.ProcessorCount;
        for (int i = 0; i < n; i++)
        {
            byte c = buf[i];
            if (c == ' ') { if (++spaces == 4) return false; continue; }
            if (spaces == 0 && c != '.') load = c is >= (byte)'0' and <= (byte)'9' ? load * 10 + (c - '0') : -1 << 20;
            if (spaces != 3) continue;
            if (c == '/') return running < cpus || (running == cpus && load >= 0 && load * 2 < (2 * cpus - 1) * 100);
            if (c < '0' || c > '9') return false;
            running = running * 10 + (c - '0');
        }
        return false;
    }

    /// <summary>
    /// As <see cref="Start(Action, nuint)"/>, on another CPU than the caller's when there is one: a new
    /// thread is queued on its parent's CPU and waits there until the parent blocks (measured here: a
    /// copy meant to overlap the main thread's work ran only once the main thread waited for it).
    /// </summary>
    public static NativeThread StartElsewhere(Action work)
    {
        var t = Start(work);
        var mask = stackalloc byte[128];
        int cpu = LibC.sched_getcpu();
        if (cpu >= 0 && cpu < 1024 && LibC.sched_getaffinity(0, 128, mask) == 0)
        {
            mask[cpu / 8] &= (byte)~(1 << (cpu % 8));
            bool any = false;
            for (int i = 0; i < 128 && !any; i++) any = mask[i] != 0;
            if (any) LibC.pthread_setaffinity_np(t._handle, 128, mask);
        }
        return t;
    }

    [UnmanagedCallersOnly]
    private static nint Entry(nint arg)
    {
        var t = (NativeThread)GCHandle.FromIntPtr(arg).Target!;
        try { t._work(); }
        catch (Exception e) { t._failed = e; }
        return 0;
    }

    /// <summary>Waits for the thread to end; rethrows what its action threw. Once.</summary>
    public void Join()
    {
        if (_joined) return;
        _joined = true;
        int rc = LibC.pthread_join(_handle, null);
        _self.Free();
        if (rc != 0) throw new LinuxException("pthread_join", "a helper thread", rc);
        if (_failed is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_failed);
    }
}

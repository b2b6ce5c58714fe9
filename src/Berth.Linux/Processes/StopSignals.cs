using System.Runtime.InteropServices;
using Berth.Linux.Files;
using Berth.Linux.Interop;

namespace Berth.Linux.Processes;

/// <summary>
/// Stop signals (SIGINT, SIGTERM, SIGHUP) caught without the runtime's signal thread: a handler of
/// 33 bytes of x86_64 code (no libc, no managed code: it may run on any thread, at any point) writes
/// the signal's number to a pipe that the caller polls (<see cref="Fd"/>, <see cref="Pending"/>).
/// PosixSignalRegistration starts a thread and a handler for a dozen signals on first use: ~0.1 ms of
/// a ~4.5 ms sandbox run (measured, interleaved A/B). The code page and the pipe are made once per
/// process and kept (a handler that already started may still be running when the actions are
/// restored). Only on x86_64 (elsewhere <see cref="TryInstall"/> returns null and the caller uses
/// PosixSignalRegistration).
/// </summary>
public sealed unsafe class StopSignals : IDisposable
{
    private static readonly object s_lock = new();
    private static void* s_code;
    private static int s_read = -1, s_write = -1;

    private const int SigactionSize = 152; // glibc's struct sigaction on x86_64: handler, 128-byte mask, flags, restorer
    private const int SaRestart = 0x10000000;

    private readonly int[] _signals;
    private readonly byte[] _old;
    private bool _disposed;

    private StopSignals(int[] signals, byte[] old) => (_signals, _old) = (signals, old);

    /// <summary>Readable while a caught signal is pending (nonblocking).</summary>
    public int Fd => s_read;

    /// <summary>
    /// Catches <paramref name="signals"/> from now on (what was pending from an earlier use is dropped);
    /// null where it cannot (not x86_64, or a step failed: then nothing was changed).
    /// </summary>
    public static StopSignals? TryInstall(params int[] signals)
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64) return null;
        lock (s_lock)
        {
            if (s_code is null && !MakeHandler()) return null;
        }
        Drain();
        var old = new byte[signals.Length * SigactionSize];
        byte* act = stackalloc byte[SigactionSize];
        new Span<byte>(act, SigactionSize).Clear();
        *(void**)act = s_code;
        *(int*)(act + 136) = SaRestart;
        for (int i = 0; i < signals.Length; i++)
        {
            fixed (byte* o = &old[i * SigactionSize])
            {
                if (LibC.sigaction(signals[i], act, o) != 0)
                {
                    for (int j = 0; j < i; j++)
                        fixed (byte* back = &old[j * SigactionSize]) LibC.sigaction(signals[j], back, null);
                    return null;
                }
            }
        }
        return new StopSignals(signals, old);
    }

    /// <summary>True when a caught signal arrived since the last call (the pipe is drained).</summary>
    public bool Pending() => Drain();

    private static bool Drain()
    {
        byte* buf = stackalloc byte[64];
        bool any = false;
        while (s_read >= 0 && LibC.read(s_read, buf, 64) > 0) any = true;
        return any;
    }

    /// <summary>The pipe, then a page with the handler (written, then made read+exec).</summary>
    private static bool MakeHandler()
    {
        int* fds = stackalloc int[2];
        if (LibC.pipe2(fds, Consts.O_CLOEXEC | Consts.O_NONBLOCK) != 0) return false;
        int w = fds[1];
        byte[] code =
        [
            0x48, 0x83, 0xec, 0x08,                     // sub  rsp, 8
            0x40, 0x88, 0x3c, 0x24,                     // mov  [rsp], dil      (the signal's number)
            0xb8, 0x01, 0x00, 0x00, 0x00,               // mov  eax, 1          (write)
            0xbf, (byte)w, (byte)(w >> 8), (byte)(w >> 16), (byte)(w >> 24), // mov edi, the pipe's write end
            0x48, 0x89, 0xe6,                           // mov  rsi, rsp
            0xba, 0x01, 0x00, 0x00, 0x00,               // mov  edx, 1
            0x0f, 0x05,                                 // syscall (errno is libc's: untouched)
            0x48, 0x83, 0xc4, 0x08,                     // add  rsp, 8
            0xc3,                                       // ret
        ];
        void* page = LibC.mmap(null, 4096, Consts.PROT_READ | Consts.PROT_WRITE, Consts.MAP_PRIVATE | Consts.MAP_ANONYMOUS, -1, 0);
        if (page == (void*)-1)
        {
            LibC.close(fds[0]);
            LibC.close(w);
            return false;
        }
        code.CopyTo(new Span<byte>(page, code.Length));
        if (LibC.mprotect(page, 4096, Consts.PROT_READ | Consts.PROT_EXEC) != 0)
        {
            LibC.munmap(page, 4096);
            LibC.close(fds[0]);
            LibC.close(w);
            return false;
        }
        s_read = fds[0];
        s_write = w;
        s_code = page;
        return true;
    }

    /// <summary>The signals' earlier actions back (a signal from now on does what it did before).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        for (int i = 0; i < _signals.Length; i++)
            fixed (byte* o = &_old[i * SigactionSize]) LibC.sigaction(_signals[i], o, null);
    }
}

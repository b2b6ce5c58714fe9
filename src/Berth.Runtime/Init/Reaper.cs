using Berth.Linux.Interop;

namespace Berth.Runtime.Init;

/// <summary>
/// PID 1 of a sandbox: the process runs as PID 2, so signals it sends itself land (a pid
/// namespace's init ignores those it has no handler for). Reaps every process; when the main
/// one exits, SIGKILLs all that is left in the namespace, counts them, writes the main process's
/// raw wait status and that count to the status fd and exits. Runs in a fork of the runtime:
/// raw system calls only, no allocation.
/// </summary>
internal static unsafe class Reaper
{
    public static void Run(int mainPid, int statusFd)
    {
        int raw = 0, orphans = 0;
        bool mainDone = false;
        while (true)
        {
            int st;
            int rc = LibC.waitpid(-1, &st, Consts.__WALL);
            if (rc < 0)
            {
                if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
                break; // ECHILD: nothing left
            }
            if (rc == mainPid)
            {
                raw = st;
                mainDone = true;
                LibC.kill(-1, 9); // every other process of the namespace
            }
            else if (mainDone) orphans++;
        }
        // "RAW ORPHANS\n" without allocating: format into a stack buffer.
        byte* buf = stackalloc byte[32];
        int n = 0;
        n = Put(buf, n, raw);
        buf[n++] = (byte)' ';
        n = Put(buf, n, orphans);
        buf[n++] = (byte)'\n';
        LibC.write(statusFd, buf, n);
        LibC._exit(mainDone ? 0 : 1);
    }

    private static int Put(byte* buf, int n, int v)
    {
        if (v < 0) { buf[n++] = (byte)'-'; v = -v; }
        byte* tmp = stackalloc byte[12];
        int k = 0;
        do { tmp[k++] = (byte)('0' + v % 10); v /= 10; } while (v > 0);
        while (k > 0) buf[n++] = tmp[--k];
        return n;
    }
}

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
    private static nint s_argStart, s_argEnd;

    /// <summary>
    /// In the runtime, before the fork: where its argv lies (/proc/self/stat arg_start, arg_end).
    /// The reaper, a fork with the same address space, overwrites it so the jail's /proc/1/cmdline
    /// does not show the host's berth command line.
    /// </summary>
    public static void Prepare()
    {
        try
        {
            var stat = File.ReadAllText("/proc/self/stat");
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            s_argStart = (nint)long.Parse(f[48 - 3], System.Globalization.CultureInfo.InvariantCulture);
            s_argEnd = (nint)long.Parse(f[49 - 3], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException or ArgumentException)
        {
            s_argStart = s_argEnd = 0;
        }
    }

    /// <summary>
    /// `--init`: PID 1 that forwards every catchable signal to the main process, reaps every
    /// process that ends up as its child, and exits with the main process's status (128+N for a
    /// death by signal N, as tini and catatonit do). Raw system calls only.
    /// </summary>
    public static void RunInit(int mainPid)
    {
        HideCommandLine("berth-init"u8);
        // It never execs, so close-on-exec does not apply: close what the runtime had open (the
        // main process has its own copies), or it would hold e.g. a monitor's report socket forever.
        LibC.syscall(Syscalls.CloseRange, 3, uint.MaxValue, 0, 0, 0, 0);
        var set = stackalloc ulong[16];
        for (int i = 0; i < 16; i++) set[i] = ulong.MaxValue;
        // Blocked signals are queued even for a pid namespace's init, and sigtimedwait takes them.
        LibC.sigprocmask(Consts.SIG_BLOCK, set, null);
        var timeout = stackalloc long[2];
        timeout[0] = 0;
        timeout[1] = 100_000_000; // 100 ms: children are reaped at least that often
        while (true)
        {
            int st;
            int rc;
            while ((rc = LibC.waitpid(-1, &st, Consts.WNOHANG | Consts.__WALL)) > 0)
            {
                if (rc != mainPid) continue;
                int code = (st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f);
                LibC._exit(code);
            }
            if (rc < 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Consts.ECHILD) LibC._exit(0);
            int sig = LibC.sigtimedwait(set, null, timeout);
            if (sig > 0 && sig != 17 /* SIGCHLD */) LibC.kill(mainPid, sig);
        }
    }

    public static void Run(int mainPid, int statusFd)
    {
        HideCommandLine("berth-sandbox-init"u8);
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

    private static void HideCommandLine(ReadOnlySpan<byte> name)
    {
        if (s_argStart == 0 || s_argEnd <= s_argStart) return;
        byte* p = (byte*)s_argStart;
        long len = s_argEnd - s_argStart;
        for (long i = 0; i < len; i++) p[i] = i < name.Length && i < len - 1 ? name[(int)i] : (byte)0;
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

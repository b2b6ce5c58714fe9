using Berth.Linux;
using Berth.Linux.Interop;

namespace Berth.Engine.Monitor;

/// <summary>
/// fork + execve of a berth binary with fds 0..3 set and every other fd closed. The child runs
/// raw system calls only between fork and execve (docs/adr/0002): everything it needs is built
/// before the fork. With <c>detach</c> the child starts a new session and forks once more, so
/// the program runs in its own session and process group and is not our child.
/// </summary>
public static unsafe class Spawn
{
    /// <returns>The child's pid, or 0 when detached (the program is a grandchild we never see).</returns>
    public static int Exec(string path, IReadOnlyList<string> argv, IReadOnlyList<string> env, int fd0, int fd1, int fd2, int fd3, bool detach)
    {
        using var a = new CStringArray(argv);
        using var e = new CStringArray(env);
        var p = CString.Of(path);
        int* fds = stackalloc int[4] { fd0, fd1, fd2, fd3 };
        ulong* empty = stackalloc ulong[16];
        byte* dfl = stackalloc byte[152]; // struct sigaction with SIG_DFL
        new Span<byte>(dfl, 152).Clear();
        // The fork must find every other thread parked in native code (docs/adr/0002).
        GC.WaitForPendingFinalizers();
        int pid;
        fixed (byte* pp = p)
        {
            pid = LibC.fork();
            if (pid == 0)
            {
                if (detach)
                {
                    // Fork again (we reap the middle process at once: the program is nobody's child
                    // of ours), then a session and process group of its own, no controlling terminal.
                    int again = LibC.fork();
                    if (again != 0) LibC._exit(again < 0 ? 1 : 0);
                    LibC.setsid();
                }
                LibC.sigprocmask(Consts.SIG_SETMASK, empty, null);
                // The monitor ignores hangups and ^C; the programs it starts must not inherit that.
                LibC.sigaction(1, dfl, null);
                LibC.sigaction(2, dfl, null);
                LibC.sigaction(15, dfl, null);
                for (int i = 0; i < 4; i++)
                {
                    if (fds[i] < 0) continue;
                    if (fds[i] == i) LibC.fcntl(i, Consts.F_SETFD, 0);
                    else if (LibC.dup3(fds[i], i, 0) < 0) LibC._exit(126);
                }
                LibC.syscall(Syscalls.CloseRange, 4, uint.MaxValue, 0, 0, 0, 0);
                LibC.execve(pp, a.Pointer, e.Pointer);
                LibC._exit(127);
            }
        }
        if (pid < 0) throw LinuxException.Last("fork", path);
        if (!detach) return pid;
        int st;
        while (LibC.waitpid(pid, &st, Consts.__WALL) < 0 &&
               System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Consts.EINTR) { }
        if (st != 0) throw new LinuxException("start the container monitor", path, Consts.EAGAIN);
        return 0;
    }
}

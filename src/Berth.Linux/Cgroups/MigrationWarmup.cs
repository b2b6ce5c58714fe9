using Berth.Linux.Interop;

namespace Berth.Linux.Cgroups;

/// <summary>
/// Moving a process into a cgroup takes the kernel's global cgroup_threadgroup_rwsem for
/// writing; when it has been idle, that first waits for an RCU grace period (measured here:
/// ~9 ms median, up to 16 ms, most of a container start). A child forked at startup moves
/// itself into berth's own parent cgroup ("/berth", which holds no limits) and exits, so the
/// grace period elapses while the runtime loads the spec and plans; the real move that follows
/// finds the lock already in its slow mode and is fast. (A pid that cannot exist does not
/// work: the kernel looks the pid up before taking the lock.)
/// </summary>
public static unsafe class MigrationWarmup
{
    private static readonly string[] Candidates =
        ["/sys/fs/cgroup/pids/berth/cgroup.procs", "/sys/fs/cgroup/berth/cgroup.procs"];

    /// <summary>
    /// The same warm-up without a fork, for a process with a spare thread: that thread moves itself
    /// (v1 "tasks" takes a thread id and moves that thread only) into berth's pids parent. On cgroup
    /// v2 a thread cannot be moved alone into a domain cgroup; nothing is done there.
    /// </summary>
    private static bool Disabled => Environment.GetEnvironmentVariable("BERTH_MIGRATION_WARMUP") == "0";

    public static void MoveThisThread()
    {
        if (Disabled) return;
        var tid = CString.Of(LibC.syscall(Syscalls.Gettid, 0, 0, 0, 0, 0, 0).ToString(System.Globalization.CultureInfo.InvariantCulture));
        fixed (byte* p = CString.Of("/sys/fs/cgroup/pids/berth/tasks"))
        fixed (byte* v = tid)
        {
            int fd = LibC.open(p, Consts.O_WRONLY | Consts.O_CLOEXEC, 0);
            if (fd < 0) return;
            LibC.write(fd, v, tid.Length - 1);
            LibC.close(fd);
        }
    }

    /// <summary>Forks the warm-up writer and returns at once (the child is not waited for). BERTH_MIGRATION_WARMUP=0 skips it (for A/B measurements).</summary>
    public static void Kick()
    {
        if (Disabled) return;
        string? target = null;
        foreach (var c in Candidates)
        {
            fixed (byte* p = CString.Of(c))
                if (LibC.access(p, 2 /* W_OK */) == 0) { target = c; break; }
        }
        if (target is null) return; // first container on this host: nothing of ours to write to yet
        var path = CString.Of(target);
        var pid = "0"u8.ToArray(); // "0": the writing process itself
        int child = LibC.fork();
        if (child != 0) return; // parent (or fork failed: the warm-up is only an optimisation)
        fixed (byte* p = path)
        fixed (byte* v = pid)
        {
            int fd = LibC.open(p, Consts.O_WRONLY | Consts.O_CLOEXEC, 0);
            if (fd >= 0) LibC.write(fd, v, pid.Length);
        }
        LibC._exit(0);
    }
}

using Berth.Linux.Interop;

namespace Berth.Linux.Processes;

/// <summary>
/// CVE-2019-5736: while the runtime's init sits in the container's pid namespace, a process
/// there can open /proc/PID/exe and later write the host binary through it. Commands that put
/// a runtime process into a container first re-execute themselves from a copy the container
/// cannot write: the binary bind-mounted read-only and detached at once (no copy; what is left
/// is only reachable through our fd), or, where mounting is not allowed, a write-sealed memfd.
/// </summary>
public static unsafe class SealedExe
{
    private const ulong ST_RDONLY = 1;
    private const string OriginalVar = "BERTH_ORIGINAL_EXE";

    /// <summary>True in the copy a re-exec started (the first process already did its startup work).</summary>
    public static bool WasReexecuted => Environment.GetEnvironmentVariable(OriginalVar) is not null;

    /// <summary>The binary's path as installed (a re-executed copy only knows its anonymous fd).</summary>
    public static string? OriginalPath =>
        Environment.GetEnvironmentVariable(OriginalVar) is { Length: > 0 } p ? p : Environment.ProcessPath;

    /// <summary>True when /proc/self/exe can no longer be written: a read-only mount or a sealed memfd.</summary>
    public static bool IsProtected()
    {
        var buf = stackalloc ulong[16];
        fixed (byte* p = CString.Of("/proc/self/exe"))
            if (LibC.statvfs(p, buf) == 0 && (buf[9] & ST_RDONLY) != 0) return true;
        return IsSealed();
    }

    /// <summary>Re-executes from a protected copy of the binary unless already protected; returns only then.</summary>
    public static void Reexec(IReadOnlyList<string> argv)
    {
        if (IsProtected()) return;
        int fd = TryReadonlyBind();
        if (fd < 0)
        {
            ReexecSealed(argv);
            return;
        }
        ExecFd(fd, argv);
    }

    /// <summary>An O_PATH fd of the binary on a detached read-only bind mount, or -1 if mounts are not allowed.</summary>
    private static int TryReadonlyBind()
    {
        var tmp = $"/tmp/.berth-exe.{LibC.getpid()}.{System.Random.Shared.Next():x}";
        var t = CString.Of(tmp);
        int fd = -1;
        fixed (byte* tp = t)
        {
            int f = LibC.open(tp, Consts.O_CREAT | Consts.O_EXCL | Consts.O_RDWR | Consts.O_CLOEXEC, 0x180);
            if (f < 0) return -1;
            LibC.close(f);
            if (Mounts.Mount.TryApply("/proc/self/exe", tmp, null, Consts.MS_BIND, null) == 0)
            {
                if (Mounts.Mount.TryApply(null, tmp, null, Consts.MS_BIND | Consts.MS_REMOUNT | Consts.MS_RDONLY, null) == 0)
                    fd = LibC.open(tp, Consts.O_PATH | Consts.O_CLOEXEC, 0);
                // Detaching waits for an RCU grace period (~2 ms here): a child does it while we exec.
                // Our O_PATH fd keeps the detached mount alive for execveat.
                if (fd < 0 || LibC.fork() != 0)
                {
                    if (fd < 0) { LibC.umount2(tp, Consts.MNT_DETACH); LibC.unlinkat(Consts.AT_FDCWD, tp, 0); }
                    return fd;
                }
                LibC.umount2(tp, Consts.MNT_DETACH);
                LibC.unlinkat(Consts.AT_FDCWD, tp, 0);
                LibC._exit(0);
            }
            LibC.unlinkat(Consts.AT_FDCWD, tp, 0);
        }
        return fd;
    }

    private static void ExecFd(int fd, IReadOnlyList<string> argv)
    {
        if (Environment.GetEnvironmentVariable(OriginalVar) is null && Environment.ProcessPath is { } path)
            Environment.SetEnvironmentVariable(OriginalVar, path);
        var env = System.Environment.GetEnvironmentVariables();
        var envList = new List<string>(env.Count);
        foreach (System.Collections.DictionaryEntry e in env) envList.Add($"{e.Key}={e.Value}");
        using var a = new CStringArray(argv);
        using var en = new CStringArray(envList);
        fixed (byte* empty = CString.Of(""))
            LibC.execveat(fd, empty, a.Pointer, en.Pointer, Consts.AT_EMPTY_PATH);
        var err = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        LibC.close(fd);
        throw new LinuxException("execute protected runtime copy", null, err);
    }
    internal const int F_ADD_SEALS = 1033, F_GET_SEALS = 1034;
    internal const int F_SEAL_SEAL = 1, F_SEAL_SHRINK = 2, F_SEAL_GROW = 4, F_SEAL_WRITE = 8;
    internal const uint MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2, MFD_EXEC = 0x10;

    /// <summary>True when /proc/self/exe is already a write-sealed copy.</summary>
    public static bool IsSealed()
    {
        int fd;
        fixed (byte* p = CString.Of("/proc/self/exe")) fd = LibC.open(p, Consts.O_RDONLY | Consts.O_CLOEXEC, 0);
        if (fd < 0) return false;
        int seals = LibC.fcntl(fd, F_GET_SEALS, 0);
        LibC.close(fd);
        return seals > 0 && (seals & F_SEAL_WRITE) != 0;
    }

    /// <summary>Re-executes the process from a sealed memfd copy of itself; returns only if already sealed.</summary>
    public static void ReexecSealed(IReadOnlyList<string> argv)
    {
        if (IsSealed()) return;
        int src;
        fixed (byte* p = CString.Of("/proc/self/exe")) src = LibC.open(p, Consts.O_RDONLY | Consts.O_CLOEXEC, 0);
        if (src < 0) throw LinuxException.Last("open", "/proc/self/exe");
        int mfd;
        fixed (byte* name = CString.Of("berth-runtime"))
        {
            mfd = LibC.memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
            if (mfd < 0) mfd = LibC.memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING); // kernels before 6.3
        }
        if (mfd < 0) { LibC.close(src); throw LinuxException.Last("memfd_create"); }
        try
        {
            while (true)
            {
                var n = LibC.sendfile(mfd, src, null, 1 << 30);
                if (n == 0) break;
                if (n < 0)
                {
                    if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Consts.EINTR) continue;
                    throw LinuxException.Last("copy runtime binary to memfd");
                }
            }
            if (LibC.fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
                throw LinuxException.Last("seal runtime copy");
        }
        finally { LibC.close(src); }
        ExecFd(mfd, argv);
    }
}

using Berth.Engine.Containers;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Processes;
using Berth.Oci;
using Berth.Runtime;
using Berth.Runtime.Lifecycle;
using Berth.Runtime.State;
using LinuxMount = Berth.Linux.Mounts.Mount;

namespace Berth.Engine.Sandbox;

/// <summary>
/// `berth sandbox run`: one fresh jail per run. Lays out a bundle under /run/berth/sandbox/runs/ID
/// (an empty rootfs for the bind mounts, the box as its own tmpfs filled with a copy of --box DIR),
/// runs berth's runtime in-process (create + start), polls the init and the cgroup's CPU usage
/// for the time limits, reads the cgroup's figures, then destroys the container and the bundle.
/// </summary>
public static class SandboxRunner
{
    public const string Root = "/run/berth/sandbox";
    public static string StateRoot => Path.Combine(Root, "state");
    public static string RunsRoot => Path.Combine(Root, "runs");

    private const int PollMs = 5;
    private const int FDupfdCloexec = 1030;

    public static Verdict Run(SandboxOptions o)
    {
        if (o.Command.Count == 0) throw new EngineError("sandbox run needs a program after --");
        var id = "sandbox-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        var dir = Path.Combine(RunsRoot, id);
        var rootfs = Path.Combine(dir, "rootfs");
        var box = Path.Combine(dir, "box");
        var store = new StateStore(StateRoot);
        var verdict = new Verdict();
        SandboxSecurity? security = null;
        Container? c = null;
        int statusRead = -1, statusWrite = -1;
        List<PosixSignalRegistration> signals = [];
        try
        {
            Directory.CreateDirectory(rootfs);
            File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
            MakeRootfs(rootfs);
            Directory.CreateDirectory(box);
            int err = LinuxMount.TryApply("tmpfs", box, "tmpfs", Consts.MS_NOSUID | Consts.MS_NODEV,
                $"size={o.BoxSize},mode=0755,uid={SandboxOptions.Uid},gid={SandboxOptions.Gid}");
            if (err != 0) throw new EngineError($"mount the box tmpfs on {box}: {LinuxException.Describe(err)}");
            if (o.Box is not null)
            {
                if (!Directory.Exists(o.Box)) throw new EngineError($"--box {o.Box}: no such directory");
                CopyTree(o.Box, box);
            }
            foreach (var r in o.Dirs)
                if (!Directory.Exists(r.Source)) throw new EngineError($"--dir {r.Source}: no such directory");

            var spec = SandboxSpec.Build(o, rootfs, box);
            security = new SandboxSecurity(o, dir);
            security.Apply(spec);
            File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(spec, OciJson.Indented.Spec));

            // The program's stdio: files in the box, opened here and handed down through fds 0-2.
            var stdio = new[] { o.Stdin, o.Stdout, o.Stderr };
            var saved = new int[3] { -1, -1, -1 };
            (statusRead, statusWrite) = Fd.Pipe();
            // Read once the init is gone: non-blocking, in case a half-started process still holds the write end.
            LibC.fcntl(statusRead, Consts.F_SETFL, Consts.O_NONBLOCK);
            try
            {
                for (int fd = 0; fd < 3; fd++)
                {
                    if (stdio[fd] is not { } path) continue;
                    int f = OpenInBox(box, path, fd == 0);
                    saved[fd] = Dup(fd);
                    Redirect(f, fd);
                    Fd.Close(f);
                }
                c = Create.Execute(store, id, new CreateOptions { Bundle = dir, ReaperStatusFd = statusWrite, OnSeccompFd = security.OnSeccompFd });
            }
            finally
            {
                Fd.Close(statusWrite);
                statusWrite = -1;
                for (int fd = 0; fd < 3; fd++)
                    if (saved[fd] >= 0) { Redirect(saved[fd], fd); Fd.Close(saved[fd]); }
            }
            var cg = Berth.Linux.Cgroups.Cgroups.For(c.Record.CgroupPath);
            // A judge that stops berth (SIGINT/SIGTERM/SIGHUP) gets the jail killed and cleaned up, verdict XX.
            bool interrupted = false;
            signals = [.. new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP }.Select(sig =>
                PosixSignalRegistration.Create(sig, ctx => { ctx.Cancel = true; Volatile.Write(ref interrupted, true); }))];
            var sw = Stopwatch.StartNew();
            security.ProgramStarting();
            Start.Execute(store, id);
            int pid = c.Record.InitPid;
            ExitStatus status;
            bool timeKill = false, wallKill = false;
            ulong cpuLimit = o.Time is { } t ? (ulong)(t * 1e9) : ulong.MaxValue;
            while (true)
            {
                security.Check(cg, pid, box, id);
                var (got, st) = Proc.TryWait(pid);
                if (got == pid) { status = st; break; }
                if (got < 0) { status = new ExitStatus(255, 0); verdict.Message = "lost the program's exit status"; break; }
                if (Volatile.Read(ref interrupted) && !wallKill && !timeKill)
                {
                    KillAll(cg, pid);
                    verdict.Message = "interrupted: berth was asked to stop";
                }
                if (!timeKill && !wallKill && !Volatile.Read(ref interrupted))
                {
                    if (o.EffectiveWallTime is { } wt && sw.Elapsed.TotalSeconds > wt) wallKill = true;
                    else if (cpuLimit != ulong.MaxValue && (cg.Stats().CpuUsageNanos ?? 0) > cpuLimit) timeKill = true;
                    if (timeKill || wallKill) KillAll(cg, pid);
                }
                Thread.Sleep(PollMs);
            }
            verdict.WallTime = sw.Elapsed.TotalSeconds;
            // Whatever outlived the init (it cannot, in its own pid namespace, but be sure) goes before the figures are read.
            KillAll(cg, pid);
            // The program's own status from the jail's reaper (PID 1); without one (killed) the init's.
            int orphans = 0;
            if (ReadStatus(statusRead) is { } reaped) (status, orphans) = (ExitStatus.FromRaw(reaped.Raw), reaped.Orphans);
            var stats = cg.Stats();
            ulong oom = stats.OomKills ?? 0;
            if (oom == 0 && cg.Version == "v1" && o.Memory is not null && cg.Directories.FirstOrDefault(d => d.Contains("/memory/")) is { } memDir)
                oom = ReadFailcntOom(memDir, status);
            if (o.KeepOutput && o.Box is not null && !security.Acted) CopyBack(box, o.Box);
            verdict.Time = (stats.CpuUsageNanos ?? 0) / 1e9;
            verdict.MaxRssKb = (long)((stats.MemoryMaxUsage ?? 0) / 1024);
            verdict.ExitCode = status.Code;
            verdict.ExitSig = status.Signal;
            verdict.Killed = timeKill || wallKill;
            verdict.Orphans = orphans;
            verdict.Status = Volatile.Read(ref interrupted) ? "XX" : Verdict.Classify(timeKill || wallKill, oom, status.Code, status.Signal);
            if (verdict.Message.Length == 0)
                verdict.Message = verdict.Status switch
                {
                    "TO" when wallKill => "wall time limit exceeded",
                    "TO" => "time limit exceeded",
                    "ML" => "memory limit exceeded",
                    "OL" => "output limit exceeded",
                    "SG" => $"caught fatal signal {status.Signal}",
                    "RE" => $"exited with error status {status.Code}",
                    _ => "",
                };
            security.Finish(verdict);
        }
        catch (Exception e) when (e is EngineError or RuntimeError or IOException or LinuxException
            or UnauthorizedAccessException or Berth.Linux.Cgroups.CgroupException)
        {
            verdict = new Verdict { Status = "XX", Message = e.Message };
        }
        finally
        {
            Fd.Close(statusWrite);
            Fd.Close(statusRead);
            security?.Dispose();
            Cleanup(store, id, c, dir, box, verdict);
            foreach (var r in signals) r.Dispose();
        }
        return verdict;
    }

    /// <summary>The reaper's "RAW ORPHANS" line; null when it wrote none (the jail was killed).</summary>
    private static (int Raw, int Orphans)? ReadStatus(int fd)
    {
        Span<byte> buf = stackalloc byte[64];
        int n = 0;
        while (n < buf.Length)
        {
            int r;
            try { r = Fd.Read(fd, buf[n..]); }
            catch (LinuxException) { break; } // EAGAIN: nothing (more) was written
            if (r <= 0) break;
            n += r;
        }
        var parts = System.Text.Encoding.ASCII.GetString(buf[..n]).Trim().Split(' ');
        if (parts.Length == 2 && int.TryParse(parts[0], out var raw) && int.TryParse(parts[1], out var orphans)) return (raw, orphans);
        return null;
    }

    private static void KillAll(Berth.Linux.Cgroups.ICgroupManager cg, int pid)
    {
        Proc.Kill(pid, Signals.SIGKILL);
        foreach (var p in cg.Pids()) Proc.Kill(p, Signals.SIGKILL);
    }

    /// <summary>cgroup v1 without oom_kill in memory.oom_control: a failcnt with a SIGKILLed program counts as ML.</summary>
    private static ulong ReadFailcntOom(string memDir, ExitStatus status)
    {
        try
        {
            var n = ulong.Parse(File.ReadAllText(Path.Combine(memDir, "memory.failcnt")).Trim());
            return n > 0 && status.Signal == Signals.SIGKILL ? 1UL : 0UL;
        }
        catch (Exception e) when (e is IOException or FormatException) { return 0; }
    }

    private static void Cleanup(StateStore store, string id, Container? c, string dir, string box, Verdict verdict)
    {
        try
        {
            if (store.Exists(id))
            {
                c ??= Container.Load(store, id);
                using (store.LockContainer(id)) Delete.Destroy(store, c);
            }
        }
        catch (Exception e) when (e is RuntimeError or IOException)
        {
            Fail(verdict, $"cleanup: {e.Message}");
        }
        int err = LinuxMount.TryUnmount(box, Consts.MNT_DETACH);
        if (err != 0 && err != Consts.EINVAL && err != Consts.ENOENT) Fail(verdict, $"cleanup: unmount {box}: {LinuxException.Describe(err)}");
        if (Berth.Linux.Mounts.MountInfoEntry.ReadSelf().Any(m => m.MountPoint.StartsWith(dir, StringComparison.Ordinal)))
        {
            Fail(verdict, $"cleanup: {dir} still has mounts; not removing it");
            return;
        }
        try { Directory.Delete(dir, recursive: true); }
        catch (DirectoryNotFoundException) { }
        catch (IOException e) { Fail(verdict, $"cleanup: {e.Message}"); }
    }

    private static void Fail(Verdict v, string message)
    {
        v.Status = "XX";
        v.Message = v.Message.Length == 0 ? message : v.Message + "; " + message;
    }

    /// <summary>Mount points for the system dirs; a host symlink (merged /usr: /bin -> usr/bin) becomes the same symlink.</summary>
    private static void MakeRootfs(string rootfs)
    {
        foreach (var d in SandboxSpec.SystemDirs)
        {
            var target = Path.Combine(rootfs, d.TrimStart('/'));
            if (new FileInfo(d).LinkTarget is { } link) File.CreateSymbolicLink(target, link);
            else if (Directory.Exists(d)) Directory.CreateDirectory(target);
        }
        foreach (var d in new[] { "box", "tmp", "proc", "dev", "sys" }) Directory.CreateDirectory(Path.Combine(rootfs, d));
    }

    /// <summary>Copies the caller's box content (files, dirs, symlinks) and hands it to the sandbox uid.</summary>
    private static void CopyTree(string from, string to)
    {
        foreach (var entry in new DirectoryInfo(from).EnumerateFileSystemInfos())
        {
            var dest = Path.Combine(to, entry.Name);
            if (entry.LinkTarget is { } link) { File.CreateSymbolicLink(dest, link); continue; }
            if (entry is DirectoryInfo d)
            {
                Directory.CreateDirectory(dest);
                File.SetUnixFileMode(dest, d.UnixFileMode);
                CopyTree(d.FullName, dest);
            }
            else if (entry is FileInfo f && (f.Attributes & FileAttributes.Device) == 0) f.CopyTo(dest);
            else continue;
            Chown(dest);
        }
    }

    /// <summary>
    /// --keep-output: the box's final files and directories replace the caller's DIR content. Runs
    /// after every process of the jail is dead; symlinks, fifos and devices the program made are
    /// skipped, and a program-made path never becomes a symlink we follow (only regular files are opened).
    /// </summary>
    private static void CopyBack(string box, string dest)
    {
        foreach (var entry in new DirectoryInfo(dest).EnumerateFileSystemInfos())
        {
            if (entry is DirectoryInfo d && d.LinkTarget is null) d.Delete(recursive: true);
            else entry.Delete();
        }
        CopyOut(box, dest);
    }

    private static void CopyOut(string from, string to)
    {
        foreach (var entry in new DirectoryInfo(from).EnumerateFileSystemInfos())
        {
            if (entry.LinkTarget is not null) continue;
            var target = Path.Combine(to, entry.Name);
            if (entry is DirectoryInfo d)
            {
                Directory.CreateDirectory(target);
                CopyOut(d.FullName, target);
            }
            else if (entry is FileInfo f && (f.Attributes & (FileAttributes.Device | FileAttributes.ReparsePoint)) == 0
                     && (f.UnixFileMode & (UnixFileMode)0xE00) == 0)
            {
                int src = Fd.Open(f.FullName, Consts.O_RDONLY | Consts.O_NOFOLLOW | Consts.O_NONBLOCK | Consts.O_CLOEXEC);
                using var input = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(src, ownsHandle: true), FileAccess.Read);
                if (!input.CanSeek) continue; // a fifo or socket
                using var output = new FileStream(target, FileMode.CreateNew, FileAccess.Write);
                input.CopyTo(output);
            }
        }
    }

    private static void Chown(string path)
    {
        int fd = Fd.Open(path, Consts.O_RDONLY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC);
        try
        {
            if (LibC.fchown(fd, SandboxOptions.Uid, SandboxOptions.Gid) != 0)
                throw new LinuxException("fchown", path, System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        }
        finally { Fd.Close(fd); }
    }

    /// <summary>A stdio file named by its path inside the box (no "..": the box is the only place it may be).</summary>
    private static int OpenInBox(string box, string path, bool input)
    {
        var rel = path.StartsWith("/box/", StringComparison.Ordinal) ? path[5..] : path.TrimStart('/');
        if (rel.Length == 0 || rel.Split('/').Contains("..")) throw new EngineError($"{path}: must name a file in the box");
        var host = Path.Combine(box, rel);
        if (input) return Fd.Open(host, Consts.O_RDONLY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC);
        int fd = Fd.Open(host, Consts.O_WRONLY | Consts.O_CREAT | Consts.O_TRUNC | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, 0b110_100_100);
        if (LibC.fchown(fd, SandboxOptions.Uid, SandboxOptions.Gid) != 0)
        {
            int e = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            Fd.Close(fd);
            throw new LinuxException("fchown", host, e);
        }
        return fd;
    }

    private static int Dup(int fd)
    {
        int r = LibC.fcntl(fd, FDupfdCloexec, 10);
        if (r < 0) throw new LinuxException("fcntl(F_DUPFD_CLOEXEC)", fd.ToString(), System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        return r;
    }

    private static void Redirect(int from, int to)
    {
        if (LibC.dup3(from, to, 0) < 0)
            throw new LinuxException("dup3", to.ToString(), System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
    }
}

using System.Globalization;
using Berth.Engine.Monitor;
using Berth.Images.Content;
using Berth.Images.Model;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Processes;
using Berth.Runtime;
using Berth.Runtime.Lifecycle;
using Berth.Runtime.State;

namespace Berth.Engine.Containers;

/// <summary>
/// Detached containers: `create`, `start`, `run -d` hand the container to a monitor process
/// (<see cref="ContainerMonitor"/>, docs/adr/0009); the monitor runs `__start` and `__exited`
/// (below) as short-lived helpers. `stop`, `kill` and `rm -f` leave a marker so the exit they
/// cause is never restarted, and wait for the monitor to record it.
/// </summary>
public sealed partial class ContainerService
{
    /// <summary>How long the CLI waits for the monitor's first report (create and start of the container).</summary>
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private void RecordMonitorOptions(EngineContainer meta, RunOptions o, ImageConfig config)
    {
        meta.Tty = o.Tty;
        meta.Init = o.Init;
        meta.RestartPolicy = RestartPolicy.Parse(o.RestartPolicy).ToString();
        meta.LogMaxSize = o.Log.MaxSize;
        meta.LogMaxFile = o.Log.MaxFile;
        meta.StopSignal = o.StopSignal ?? config.Config?.StopSignal;
        meta.ExposedPorts = SpecFromImage.ExposedPorts(config);
        meta.StopTimeout = o.StopTimeout;
        if (meta.StopSignal is { } s && !Signals.TryParse(s, out _)) throw new EngineError($"--stop-signal {s}: unknown signal");
        if (!o.Detach && !o.CreateOnly && meta.RestartPolicy != "no")
            throw new EngineError($"--restart {meta.RestartPolicy} needs -d: only a detached container has a monitor to restart it");
        if (o.Remove && meta.RestartPolicy != "no") throw new EngineError("--rm and --restart " + meta.RestartPolicy + " conflict: a removed container cannot restart");
    }

    /// <summary>The rest of `create` (nothing runs) and `run -d` (the monitor starts it).</summary>
    private int CreatedOrDetached(EngineContainer meta, RunOptions o)
    {
        Overlay.Unmount(store.Merged(meta.Id)); // `start` mounts it again
        if (o.CreateOnly)
        {
            Console.WriteLine(meta.Id);
            return 0;
        }
        try { StartWithMonitor(meta); }
        catch
        {
            Abandon(meta.Id);
            Cleanup(meta.Id);
            throw;
        }
        Console.WriteLine(meta.Id);
        return 0;
    }

    /// <summary>`berth start`: a created or exited container runs again, under a new monitor.</summary>
    public void Start(string reference)
    {
        var c = store.Find(reference);
        if (MonitorAlive(c) || (_runtime.Exists(c.Id) && Container.Load(_runtime, c.Id).Status() is "running" or "paused"))
            return; // already running: docker prints the name and succeeds
        StartWithMonitor(c);
    }

    /// <summary>`berth restart`: stop (grace, then SIGKILL) and start.</summary>
    public void Restart(string reference, TimeSpan? grace)
    {
        var c = store.Find(reference);
        Stop(reference, StopSignalOf(c), grace ?? StopTimeoutOf(c));
        StartWithMonitor(store.Find(c.Id));
    }

    public int StopSignalOf(EngineContainer c) => Kill.ParseSignal(c.StopSignal ?? "TERM");
    public TimeSpan StopTimeoutOf(EngineContainer c) => TimeSpan.FromSeconds(c.StopTimeout ?? 10);
    public EngineContainer Find(string reference) => store.Find(reference);

    private void StartWithMonitor(EngineContainer c)
    {
        if (c.AutoRemove && c.RestartPolicy != "no") throw new EngineError($"container {c.Name}: --rm and --restart conflict");
        try { File.Delete(Path.Combine(store.Dir(c.Id), ContainerMonitor.StopMarker)); }
        catch (DirectoryNotFoundException) { }
        var exe = SealedExe.OriginalPath ?? throw new EngineError("cannot find the berth binary to start the container monitor");
        var log = c.LogMaxSize > 0 ? new LogOptions(c.LogMaxSize, Math.Max(1, c.LogMaxFile)) : LogOptions.Default;
        var argv = new[]
        {
            "berth", "__monitor", Path.GetDirectoryName(store.Root)!, c.Id, c.RestartPolicy,
            log.MaxSize.ToString(CultureInfo.InvariantCulture), log.MaxFile.ToString(CultureInfo.InvariantCulture), c.Tty ? "1" : "0",
        };
        var (r, w) = Fd.Pipe();
        int devnull = Fd.Open("/dev/null", Consts.O_RDWR);
        int err = Fd.Open(Path.Combine(store.Dir(c.Id), "monitor.err"), Consts.O_WRONLY | Consts.O_CREAT | Consts.O_APPEND, 0x1a0);
        try { Spawn.Exec(exe, argv, MonitorEnvironment(), devnull, devnull, err, w, detach: true); }
        finally
        {
            Fd.Close(w);
            Fd.Close(devnull);
            Fd.Close(err);
        }
        string report;
        try
        {
            if (!Fd.PollIn(r, (int)StartTimeout.TotalMilliseconds))
                throw new EngineError($"container {c.Name}: the monitor did not report within {StartTimeout.TotalSeconds} s");
            report = ReadAll(r);
        }
        finally { Fd.Close(r); }
        if (report.StartsWith("ok ", StringComparison.Ordinal)) return;
        if (report.StartsWith("err ", StringComparison.Ordinal)) throw new EngineError(report[4..].TrimEnd());
        var why = File.Exists(Path.Combine(store.Dir(c.Id), "monitor.err")) ? File.ReadAllText(Path.Combine(store.Dir(c.Id), "monitor.err")).Trim() : "";
        throw new EngineError($"container {c.Name}: the monitor exited without a report{(why.Length > 0 ? ": " + why : "")}");
    }

    /// <summary>A start that failed or hung: kill its monitor and whatever of the container runs, before removing it.</summary>
    private void Abandon(string id)
    {
        if (store.TryLoad(id) is { } c && MonitorAlive(c)) Proc.Kill(c.MonitorPid, Signals.SIGKILL);
        if (_runtime.Exists(id))
        {
            try { Delete.Execute(_runtime, id, force: true); }
            catch (RuntimeError) { }
        }
    }

    /// <summary>
    /// The monitor's environment: ours, plus GC limits for it alone (it allocates a few KiB per
    /// record and nothing that lives; see docs/benchmarks.md). It strips them for its helpers.
    /// </summary>
    private static List<string> MonitorEnvironment()
    {
        var env = new List<string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            var key = (string)e.Key;
            if (key is "BERTH_ORIGINAL_EXE" || key.StartsWith("DOTNET_GC", StringComparison.OrdinalIgnoreCase)) continue;
            env.Add(key + "=" + (string?)e.Value);
        }
        // BERTH_MONITOR_GC="NAME=VALUE ..." (or "none") replaces the settings, for bench/monitor-rss.
        if (Environment.GetEnvironmentVariable("BERTH_MONITOR_GC") is { } custom)
            env.AddRange(custom.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(x => x != "none"));
        else env.AddRange(MonitorGcSettings);
        return env;
    }

    /// <summary>Measured with bench/monitor-rss (docs/benchmarks.md).</summary>
    internal static readonly string[] MonitorGcSettings = ["DOTNET_GCgen0size=0x10000"];

    private static unsafe string ReadAll(int fd)
    {
        var buf = new byte[4096];
        int len = 0;
        while (len < buf.Length)
        {
            int n = Fd.Read(fd, buf.AsSpan(len));
            if (n == 0) break;
            len += n;
        }
        return System.Text.Encoding.UTF8.GetString(buf, 0, len);
    }

    /// <summary>
    /// `berth __start ID RESTARTS` (run by the monitor, fd 3 its report socket): creates and starts
    /// the container with our stdio as its own, reports "ok PID" (passing the pty master for -t)
    /// or "err MESSAGE", and exits; the init is then the monitor's child (it is our subreaper).
    /// </summary>
    public int StartHelper(string id, int restarts)
    {
        const int report = 3;
        try
        {
            var c = store.TryLoad(id) ?? throw new EngineError($"no such container: {id}");
            EnsureMounted(c);
            EnsureNetwork(id);
            if (_runtime.Exists(id))
            {
                var old = Container.Load(_runtime, id);
                using (_runtime.LockContainer(id)) Delete.Destroy(_runtime, old);
            }
            var o = new CreateOptions { Bundle = store.Dir(id), InternalConsole = c.Tty, InitProcess = c.Init };
            var rc = Create.Execute(_runtime, id, o);
            int master = -1;
            try
            {
                if (o.ConsoleReceiveFd >= 0)
                {
                    master = Berth.Linux.Sockets.UnixSocket.ReceiveFd(o.ConsoleReceiveFd, "the container's pty");
                    Fd.Close(o.ConsoleReceiveFd);
                    DefaultWindowSize(master);
                }
                Berth.Runtime.Lifecycle.Start.Execute(_runtime, id);
            }
            catch
            {
                Fd.Close(master);
                Delete.Destroy(_runtime, rc);
                throw;
            }
            int pid = rc.Record.InitPid, monitor = LibC.getppid();
            var monitorStart = Proc.StartTime(monitor) ?? 0;
            store.Update(id, m =>
            {
                m.StartedAt = DateTime.UtcNow;
                m.RestartCount = restarts;
                m.Pid = pid;
                m.MonitorPid = monitor;
                m.MonitorStartTime = monitorStart;
                m.Restarting = false;
                m.OomKilled = false;
                m.ExitCode = null;
            });
            var ok = System.Text.Encoding.ASCII.GetBytes($"ok {pid}\n");
            if (master >= 0)
            {
                Berth.Linux.Sockets.UnixSocket.SendFd(report, master, ok);
                Fd.Close(master);
            }
            else Fd.WriteAll(report, ok);
            return 0;
        }
        catch (Exception e) when (e is EngineError or RuntimeError or IOException or Berth.Linux.LinuxException or UnauthorizedAccessException
            or InvalidOperationException or Berth.Images.ImageNotFoundException)
        {
            try { Fd.WriteAll(report, System.Text.Encoding.UTF8.GetBytes("err " + e.Message.Replace('\n', ' ') + "\n")); }
            catch (Berth.Linux.LinuxException) { }
            return 1;
        }
    }

    /// <summary>
    /// `berth __exited ID CODE final|restarting` (run by the monitor after the init exited and was
    /// reaped): reads the OOM kill counter, removes the runtime's state and cgroup, records exit
    /// code, time and OOM in meta.json; when final, unmounts the rootfs, or removes the whole
    /// container for --rm.
    /// </summary>
    public int ExitedHelper(string id, int code, bool final)
    {
        bool oom = false;
        if (_runtime.Exists(id))
        {
            var rc = Container.Load(_runtime, id);
            try { oom = (Berth.Linux.Cgroups.Cgroups.For(rc.Record.CgroupPath).Stats().OomKills ?? 0) > 0; }
            catch (Exception e) when (e is IOException or Berth.Linux.Cgroups.CgroupException or PlatformNotSupportedException or ArgumentException) { }
            try
            {
                using (_runtime.LockContainer(id)) Delete.Destroy(_runtime, rc);
            }
            catch (RuntimeError e) { Console.Error.WriteLine($"berth: container {id}: {e.Message}"); } // monitor.err; the exit is still recorded
        }
        var meta = store.Update(id, m =>
        {
            m.ExitCode = code;
            m.FinishedAt = DateTime.UtcNow;
            m.OomKilled = oom;
            m.Pid = 0;
            m.Restarting = !final;
        });
        if (meta is null || !final) return 0;
        if (meta.AutoRemove)
        {
            var anonymous = AnonymousVolumes(id); // -v /path volumes go with --rm, as in docker
            Cleanup(id);
            RemoveVolumes(anonymous);
        }
        else
        {
            // Released at exit as after a foreground run (ADR 0010, as docker does): start sets it up
            // again (EnsureNetwork), with the same address when it is still free.
            Overlay.Unmount(store.Merged(id));
            Berth.Engine.Network.ContainerNetwork.Teardown(store, id);
        }
        return 0;
    }

    /// <summary>
    /// A container whose pinned network namespace is gone (/run is a tmpfs: after a reboot) gets
    /// its network again at start: the same pin path its config names, a veth, an address, its ports.
    /// </summary>
    private void EnsureNetwork(string id)
    {
        var rec = Berth.Engine.Network.NetworkRecord.Load(store.Dir(id));
        if (rec is null) return;
        var mode = Berth.Engine.Network.NetworkMode.Parse(rec.Mode);
        if (!mode.Pinned || File.Exists(Berth.Engine.Network.ContainerNetwork.PinPath(id))) return;
        try { Berth.Engine.Network.ContainerNetwork.Setup(id, store.Dir(id), mode, rec.Ports, ResolveNetworkTarget); }
        catch
        {
            Berth.Engine.Network.ContainerNetwork.Teardown(store, id);
            throw;
        }
    }

    /// <summary>No terminal is attached to a detached -t container: give it 24 rows and 80 columns, not 0x0.</summary>
    private static unsafe void DefaultWindowSize(int master)
    {
        var ws = stackalloc ushort[4] { 24, 80, 0, 0 };
        LibC.ioctl(master, Consts.TIOCSWINSZ, ws);
    }

    private void EnsureMounted(EngineContainer c)
    {
        var merged = store.Merged(c.Id);
        if (Overlay.IsMounted(merged)) return;
        var lowers = c.Layers.AsEnumerable().Reverse().Select(d => images.Layers.PathOf(Digest.Parse(d))).ToList();
        Overlay.Mount(lowers, store.Upper(c.Id), store.Work(c.Id), merged);
    }

    /// <summary>The monitor recorded in meta.json is alive (same pid, same start time).</summary>
    public static bool MonitorAlive(EngineContainer c) =>
        c.MonitorPid > 0 && Proc.StartTime(c.MonitorPid) is { } t && t == c.MonitorStartTime && Proc.State(c.MonitorPid) is not ('Z' or 'X' or null);

    /// <summary>Before a stop, kill or rm -f: the exit that follows is the user's.</summary>
    private void MarkStoppedByUser(EngineContainer c)
    {
        if (c.MonitorPid == 0) return;
        try { File.WriteAllText(Path.Combine(store.Dir(c.Id), ContainerMonitor.StopMarker), ""); }
        catch (DirectoryNotFoundException) { }
    }

    /// <summary>Waits for the monitor to record the exit and end; false on timeout.</summary>
    private static bool WaitForMonitor(EngineContainer c, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (MonitorAlive(c))
        {
            if (DateTime.UtcNow > deadline) return false;
            Thread.Sleep(10);
        }
        return true;
    }

    /// <summary>
    /// `rm -f` of a container with a live monitor: SIGKILL every process of the container, let the
    /// monitor record the exit and end (SIGKILL it if it does not), so the removal that follows
    /// finds nothing running.
    /// </summary>
    private void StopMonitored(EngineContainer c)
    {
        if (!MonitorAlive(c)) return;
        MarkStoppedByUser(c);
        if (_runtime.Exists(c.Id))
        {
            try { Kill.Execute(_runtime, c.Id, Signals.SIGKILL, all: true); }
            catch (RuntimeError) { } // already stopped
        }
        if (!WaitForMonitor(c, TimeSpan.FromSeconds(10))) Proc.Kill(c.MonitorPid, Signals.SIGKILL);
        WaitForMonitor(c, TimeSpan.FromSeconds(2));
    }

    /// <summary>
    /// `berth wait`: blocks until the container has stopped for good (no restart pending) and
    /// returns its exit code; null when it was removed meanwhile (--rm) without one seen.
    /// </summary>
    public int? Wait(string reference)
    {
        var c = store.Find(reference);
        int? last = null;
        while (true)
        {
            var now = store.TryLoad(c.Id);
            if (now is null) return last;
            if (now.ExitCode is { } code) last = code;
            bool running = MonitorAlive(now) || (_runtime.Exists(c.Id) && Container.Load(_runtime, c.Id).Status() is "running" or "paused" or "created");
            if (!running) return now.ExitCode ?? 0;
            Thread.Sleep(20);
        }
    }

    /// <summary>
    /// `exec -d`: the process gets /dev/null as stdin, stdout and stderr (as docker's), not the
    /// caller's terminal or pipes, which it would otherwise hold open for its whole life.
    /// </summary>
    private static int ExecDetached(Func<int> exec)
    {
        const int F_DUPFD_CLOEXEC = 1030;
        var saved = new int[3];
        for (int i = 0; i < 3; i++) saved[i] = LibC.fcntl(i, F_DUPFD_CLOEXEC, 3);
        int devnull = Fd.Open("/dev/null", Consts.O_RDWR);
        try
        {
            for (int i = 0; i < 3; i++) Fd.Dup2(devnull, i);
            return exec();
        }
        finally
        {
            for (int i = 0; i < 3; i++)
                if (saved[i] >= 0) { LibC.dup3(saved[i], i, 0); LibC.close(saved[i]); }
            Fd.Close(devnull);
        }
    }

    public string LogPath(EngineContainer c) => Path.Combine(store.Dir(c.Id), ContainerMonitor.LogFile);

    /// <summary>Is the container still producing log records (monitor alive)?</summary>
    public bool StillLogging(string id) => store.TryLoad(id) is { } c && MonitorAlive(c);
}

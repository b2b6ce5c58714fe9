using System.Diagnostics;
using System.Runtime.InteropServices;
using Berth.Engine.Containers;
using Berth.Linux;
using Berth.Linux.Cgroups;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Processes;
using Berth.Runtime;
using Berth.Runtime.Init;
using Berth.Runtime.Lifecycle;
using LinuxMount = Berth.Linux.Mounts.Mount;

namespace Berth.Engine.Sandbox;

/// <summary>
/// One run of one program, phase by phase: <see cref="Prepare"/> (tmpfs with the root skeleton
/// and the box), <see cref="BuildPlan"/> (options -> OCI spec -> init plan, in memory),
/// <see cref="Launch"/> (cgroup limits, init stages, stdio), <see cref="Wait"/> (time limits),
/// <see cref="Collect"/> (cgroup figures -> verdict) and <see cref="Teardown"/> (kill, cgroup
/// released or reset, tmpfs unmounted, directory verified clean). Partial: security features
/// (seccomp, audit, quarantine) live in their own files and hook into these phases.
/// </summary>
public sealed partial class SandboxJob(SandboxOptions o, SandboxSlot slot)
{
    /// <summary>How often the CPU time of the tree is checked while a --time limit is set.</summary>
    private const int CpuPollMs = 5;
    /// <summary>Without a CPU limit, how often berth looks up from the wait (interrupts, wall time).</summary>
    private const int IdlePollMs = 50;

    public SandboxOptions Options { get; } = o;
    public SandboxSlot Slot { get; } = slot;
    public Verdict Verdict { get; private set; } = new();
    public string Rootfs => Path.Combine(Slot.Dir, "rootfs");
    public string Box => Path.Combine(Slot.Dir, "box");

    private Berth.Oci.Runtime.Spec? _spec;
    private InitPlan? _plan;
    private SandboxCgroup? _cg;
    private Ephemeral.Handle? _handle;
    /// <summary>The jail is built by the stub (docs/adr/0016) rather than by a fork of berth.</summary>
    private bool _stub;
    /// <summary>The template jail this job ran in (a batch slot's), emptied after the job.</summary>
    private StubJail.Template? _template;
    private int _pid = -1;
    private bool _reaped;
    private bool _mounted;
    private int _statusRead = -1, _statusWrite = -1;
    private List<PosixSignalRegistration> _signals = [];
    private volatile bool _interrupted;

    public Verdict Execute()
    {
        try
        {
            Prepare();
            BuildPlan();
            Launch();
            var (status, timeKill, wallKill) = Wait();
            Collect(status, timeKill, wallKill);
        }
        catch (Exception e) when (e is EngineError or RuntimeError or IOException or LinuxException
            or UnauthorizedAccessException or CgroupException or Berth.Runtime.Cgroups.CgroupSpecException)
        {
            Verdict = new Verdict { Status = "XX", Message = e.Message };
        }
        finally
        {
            Teardown();
        }
        return Verdict;
    }

    /// <summary>A fresh tmpfs on the slot's directory: the root skeleton (mount points, host symlinks) and the box, a copy of --box.</summary>
    private void Prepare()
    {
        Timing("prepare");
        foreach (var r in Options.Dirs)
            if (!Directory.Exists(r.Source)) throw new EngineError($"--dir {r.Source}: no such directory");
        if (Options.Box is not null && !Directory.Exists(Options.Box)) throw new EngineError($"--box {Options.Box}: no such directory");
        Slot.EnsureDir();
        // A batch slot keeps its root from job to job: the host's directories, or one image's layers.
        if (Slot.Pooled && Slot.MountedBoxSize is not null && Slot.ImageRoot?.Reference != Options.Image)
        {
            int err = Slot.UnmountAll();
            if (err != 0 && err != Consts.EINVAL && err != Consts.ENOENT)
                throw new EngineError($"unmount {Slot.Dir} for another root: {LinuxException.Describe(err)}");
        }
        if (Slot.Pooled && Slot.MountedBoxSize is { } size)
        {
            // A batch worker's slot keeps its tmpfs and skeleton; the last teardown removed the box.
            // The box directory stays (a template jail binds it); the last teardown emptied it.
            if (Slot.KeptBox is null && Directory.Exists(Box) && Directory.EnumerateFileSystemEntries(Box).Any()) throw new EngineError($"{Box}: left by the last job");
            _mounted = true;
            if (size != Options.BoxSize)
            {
                int rc = LinuxMount.TryApply("tmpfs", Slot.Dir, "tmpfs", Consts.MS_REMOUNT | Consts.MS_NOSUID | Consts.MS_NODEV,
                    $"size={Options.BoxSize},mode=0755");
                if (rc != 0) throw new EngineError($"resize the jail's tmpfs on {Slot.Dir}: {LinuxException.Describe(rc)}");
                Slot.MountedBoxSize = Options.BoxSize;
            }
        }
        else
        {
            if (Directory.EnumerateFileSystemEntries(Slot.Dir).Any())
                throw new EngineError($"{Slot.Dir}: not empty before the job (left by an earlier run?)");
            // One tmpfs holds the skeleton and the box: its size is the box's limit (directories take no pages).
            int err = LinuxMount.TryApply("tmpfs", Slot.Dir, "tmpfs", Consts.MS_NOSUID | Consts.MS_NODEV,
                $"size={Options.BoxSize},mode=0755");
            if (err != 0) throw new EngineError($"mount the jail's tmpfs on {Slot.Dir}: {LinuxException.Describe(err)}");
            _mounted = true;
            if (Slot.Pooled) Slot.MountedBoxSize = Options.BoxSize;
            Timing("prepare: tmpfs");
            if (Options.Image is { } image)
            {
                Slot.ImageRoot = SandboxImageRoot.Resolve(image);
                Slot.ImageRoot.Mount(Slot.Dir, Rootfs);
            }
            else
            {
                Directory.CreateDirectory(Rootfs);
                SandboxRunner.MakeRootfs(Rootfs);
            }
            Timing("prepare: skeleton");
        }
        Directory.CreateDirectory(Box);
        string? keepSource = null;
        if (Slot.Pooled && Slot.MountedBoxSize is not null && Options.Box is not null)
        {
            // A batch or pool slot: the box the last job left, verified identical to this DIR (BoxImage), is kept.
            var source = SandboxRunner.FingerprintKey(Options.Box);
            var kept = Slot.KeptBox;
            Slot.KeptBox = null;
            if (kept is not null && kept.SourceDir == Options.Box && kept.Source == source && kept.RootIs(Box))
            {
                _boxImage = kept;
                Timing("prepare: box kept");
                if (kept.BytesVerified) return;
                // A pool's slot: its bytes are compared with DIR's before the program's exec (BeforeGo, below),
                // and the box emptied and copied afresh when they differ.
                keepSource = source;
            }
            else if (kept is not null && !ScrubBox()) throw new EngineError($"{Box}: the last job's box could not be emptied");
            if (!Slot.Persistent)
            {
                SandboxRunner.Chown(Box);
                SandboxRunner.CopyTree(Options.Box, Box);
                _boxImage = new BoxImage(Options.Box, source, BoxImage.Snapshot(Box));
                _boxImage.Watch(Slot.BoxWatch, Box);
                return;
            }
            // A pool's slot: copied as for a fresh run (below), its image taken once the copy is done. No
            // write watch (the next job runs in another process): DIR's bytes are compared after the job.
            keepSource = source;
        }
        if (_boxImage is null) SandboxRunner.Chown(Box); // a kept box's directory is the sandbox uid's already (and a chown moves its ctime)
        // The box's bytes are copied on a helper thread while this one builds the plan and compiles the
        // jail (about as long as a small box's copy: on two cores the copy then costs no wall time);
        // joined before anything uses the box (Launch).
        // Only with a CPU to spare: on a busy machine the helper waits behind other work and its IPIs cost
        // more than the copy (measured: 2 runs at a time on 2 CPUs were ~10% slower with it).
        if (Options.Box is { } from)
        {
            var kept = _boxImage;
            void Copy()
            {
                if (kept is not null)
                {
                    if (kept.VerifyBytes(Box)) return;
                    _boxImage = null;
                    if (!ScrubBox()) throw new EngineError($"{Box}: the last job's box could not be emptied");
                }
                SandboxRunner.CopyTree(from, Box);
                if (keepSource is not null) _boxImage = new BoxImage(from, keepSource, BoxImage.Snapshot(Box), keepBytes: false);
            }
            if (Slot.Persistent && SandboxRunner.Templates)
            {
                // A pool's slot: the box is made ready (its bytes compared, or copied) while the jail stub joins
                // the template and drops everything, before the program's exec (StubJail.Options.BeforeGo).
                _boxReady = () => { Copy(); RegisterSignals(); };
                return;
            }
            bool spare = Berth.Linux.Processes.NativeThread.SpareCpu();
            Timing(spare ? "prepare: box copy on a helper" : "prepare: box copy inline");
            // The helper also opens the kernel audit's window (opening /dev/kmsg walks the printk ring); whichever
            // of it and SecureStart comes first does, and the helper is joined before the jail is spawned.
            // So does the stop signals' registration (its first use starts the runtime's signal thread).
            if (spare)
                _boxCopy = Berth.Linux.Processes.NativeThread.StartElsewhere(() => { Copy(); _kernelAudit.Start(); RegisterSignals(); });
            else
            {
                RegisterSignals();
                Copy();
            }
        }
        else RegisterSignals();
    }

    private Berth.Linux.Processes.NativeThread? _boxCopy;

    /// <summary>A pool slot's box preparation (compare or copy), run once by <see cref="EnsureBox"/>.</summary>
    private Action? _boxReady;

    /// <summary>Runs the box preparation Prepare left for later, once (rethrowing its error).</summary>
    private void EnsureBox()
    {
        var a = _boxReady;
        _boxReady = null;
        a?.Invoke();
        Timing("box ready");
    }

    /// <summary>The job's kernel audit (<see cref="KernelAudit"/>), shared with its <see cref="SandboxSecurity"/>.</summary>
    private readonly KernelAudit _kernelAudit = new();

    /// <summary>Waits for the box's copy (rethrowing its error), once.</summary>
    private void BoxCopied()
    {
        var t = _boxCopy;
        _boxCopy = null;
        t?.Join();
    }

    /// <summary>What the box of a batch slot holds (a copy of --box DIR), to keep it for the next job when nothing changed it.</summary>
    private BoxImage? _boxImage;

    /// <summary>
    /// After the job (every process dead): true when the box is still exactly the copy this job got (the
    /// same entries, each with the same inode, mode, owner, size, link count and ctime, and every file's
    /// bytes equal to DIR's: a shared mapping changes a tmpfs file without touching its times) and DIR
    /// is unchanged too; the slot then keeps it for the next job.
    /// </summary>
    private bool KeepBox()
    {
        if (_boxImage is not { } b || Verdict.Status == "XX" || SecurityForbidsCopyBack || Options.KeepOutput) return false;
        try
        {
            // DIR itself is compared with the kept copy's fingerprint by the next job's Prepare. A pool's
            // slot leaves the bytes to the next job (BoxImage.Unchanged), which compares them off its critical path.
            if (!(Slot.Persistent ? b.Unchanged(Box) : b.Verify(Box))) return false;
            Timing("teardown: box verified");
            Slot.KeptBox = b.Restore(Box, bytesVerified: !Slot.Persistent);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or LinuxException) { return false; }
    }

    /// <summary>A pool slot's job compiled by an earlier run with the same key (<see cref="JailCache"/>): no plan is made.</summary>
    private JailCache.Entry? _compiled;
    /// <summary>The <see cref="JailCache"/> key of this job in a pool slot (a miss: the compiled job is stored under it).</summary>
    private string? _cacheKey;

    /// <summary>
    /// A pool slot whose file holds this job compiled for the slot's live template: the job runs that
    /// program (<see cref="JailCache"/>). False when anything differs; the plan is then made and compiled.
    /// </summary>
    private bool UseCompiled()
    {
        if (!Slot.Persistent || Slot.JailCachePath is not { } path || Slot.MountedBoxSize is null || !SandboxRunner.Templates
            || Slot.ImageRoot is not null) return false;
        _security = new SandboxSecurity(Options, Slot.Dir, _kernelAudit);
        _cg = Slot.AcquireCgroup();
        _cacheKey = JailCache.Key(Options, Slot, _cg.Manager.Directories, _security.Notify);
        if (_cacheKey is null || Slot.Template is not { } t || JailCache.Load(path, _cacheKey) is not { } hit
            || hit.Job.TemplateKey != t.Key || !t.Alive) return false;
        _security.UseCompiled(hit.ProfileErrno);
        _compiled = hit;
        _templateKey = hit.Job.TemplateKey;
        _stub = true;
        return true;
    }

    /// <summary>Options -> OCI spec -> init plan (pure, in memory: nothing is written to disk).</summary>
    private void BuildPlan()
    {
        Timing("plan");
        if (UseCompiled())
        {
            Timing("plan: compiled");
            return;
        }
        _spec = SandboxSpec.Build(Options, Rootfs, Box);
        Timing("plan: spec");
        SecureSpec();
        Timing("plan: seccomp profile");
        // Warnings only, to stderr, which a batch worker does not have: only for `run`.
        if (!Slot.Pooled)
        {
            foreach (var warning in Berth.Runtime.Spec.SpecValidator.Validate(_spec, Slot.Dir))
                Berth.Runtime.Logging.Log.Warn(warning);
        }
        Timing("plan: validated");
        _cg = Slot.AcquireCgroup();
        Timing("plan: cgroup");
        _plan = Ephemeral.Plan(_spec, Slot.Id, Slot.Dir, _cg.Path);
        if (_security?.Precompiled is { } cached) _plan.Seccomp = cached;
        else if (_security?.DiskKey is { } key && _plan.Seccomp is { } compiled)
            FilterCache.Store(key, new FilterCache.Entry(compiled, _security.ProfileErrno));
        Timing("plan: init plan");
        _stub = UseStub(_plan);
    }

    /// <summary>The plan's template key, made once by <see cref="SlotTemplate"/>.</summary>
    private string? _templateKey;

    /// <summary>
    /// A pooled slot's template jail for this job's plan (docs/adr/0016), made or remade when there is
    /// none, it is gone, or it was made for other options; null for a one-off run or with
    /// BERTH_SANDBOX_TEMPLATE=0 (every job builds its whole jail).
    /// </summary>
    private StubJail.Template? SlotTemplate()
    {
        if (!Slot.Pooled || Slot.MountedBoxSize is null || !SandboxRunner.Templates) return null;
        if (_compiled is not null) return Slot.Template; // the one the compiled job was made for (UseCompiled)
        var key = _templateKey = StubJail.TemplateKey(_plan!);
        if (Slot.Template is { } t && (t.Key != key || !t.Alive)) Slot.DropTemplate();
        Timing("template");
        Slot.Template ??= StubJail.StartTemplate(_plan!, TimeSpan.FromSeconds(20), persistent: Slot.Persistent);
        return Slot.Template;
    }

    /// <summary>
    /// The stub builds the jail unless the plan needs what only the runtime's init does, or
    /// BERTH_SANDBOX_JAIL=runtime asks for the runtime's init (the path of other architectures).
    /// </summary>
    private static bool UseStub(InitPlan plan)
    {
        if (SandboxRunner.StubJail && StubJail.Unsupported(plan) is null) return true;
        // The runtime's init is berth's own code in the jail: only from a protected copy (CVE-2019-5736).
        if (!Berth.Linux.Processes.SealedExe.IsProtected())
            throw new EngineError($"sandbox: this jail needs berth's own init ({StubJail.Unsupported(plan) ?? "BERTH_SANDBOX_JAIL=runtime"}), which runs only from a protected copy of berth");
        return false;
    }

    /// <summary>Limits into the cgroup, stdio files opened in the box, init stages forked; the program does not run yet.</summary>
    private void Launch()
    {
        Timing("launch");
        // A compiled job's limits are usually in force already (the last run's options were these).
        if (_compiled is null || !_cg!.TryKeep(_compiled.Limits))
            _cg!.Apply(Berth.Runtime.Cgroups.ResourceMapping.ForContainer((_spec ?? SandboxSpec.Build(Options, Rootfs, Box)).Linux));
        // A batch slot's template jail (made before stdio is redirected: it must hold none of a job's files).
        var template = _template = _stub ? SlotTemplate() : null;
        var stdio = new[] { Options.Stdin, Options.Stdout, Options.Stderr };
        var saved = new int[3] { -1, -1, -1 };
        (_statusRead, _statusWrite) = Fd.Pipe();
        // Read once the init is gone: non-blocking, in case a half-started process still holds the write end.
        LibC.fcntl(_statusRead, Consts.F_SETFL, Consts.O_NONBLOCK);
        try
        {
            // The box's copy is waited for as late as can be: before a stdio file is opened in it, or the jail spawned.
            if (stdio.Any(p => p is not null) || !_stub) { BoxCopied(); EnsureBox(); }
            for (int fd = 0; fd < 3; fd++)
            {
                if (stdio[fd] is not { } path) continue;
                int f = SandboxRunner.OpenInBox(Box, path, fd == 0);
                saved[fd] = SandboxRunner.Dup(fd);
                SandboxRunner.Redirect(f, fd);
                Fd.Close(f);
            }
            if (_stub)
            {
                // The program starts as soon as the jail is built: every notified call from now on is its own.
                // A job in a template execs only on berth's go, after BeforeGo: that is where its program starts.
                if (template is null) SecureStart();
                var so = new StubJail.Options
                {
                    ReaperStatusFd = _statusWrite,
                    CgroupDirs = _cg.Manager.Directories,
                    CgroupProcsFds = template is null ? _cg.ProcsWriteFds() : null, // a job in a template joins by path
                    OnSeccompFd = SeccompListenerInline,
                    Name = "berth-sandbox-init",
                    // The built-in profile allows no System V or POSIX IPC call (Profile.cs): nothing can be
                    // left in a template's ipc namespace, so jobs need no namespace of their own there.
                    FreshIpc = Options.Seccomp is not null,
                    BeforeSpawn = template is null ? () => { BoxCopied(); EnsureBox(); } : BoxCopied,
                    BeforeGo = () => { EnsureBox(); SecureStart(); },
                    // The kernel audit's window (opening /dev/kmsg walks the printk ring) on the spawning helper's
                    // time, when there is one; SecureStart's own call is then a no-op, and the helper is joined before the go.
                    AfterSpawn = _kernelAudit.Start,
                };
                if (_compiled is { } hit) _pid = StubJail.LaunchJob(hit.Job, template!, so).InitPid;
                else if (template is not null && _cacheKey is { } key && Slot.JailCachePath is { } path)
                {
                    // A pool slot: the job compiled once, kept for the next run with these options.
                    var job = StubJail.CompileJob(_plan!, so, _templateKey!);
                    _pid = StubJail.LaunchJob(job, template, so).InitPid;
                    JailCache.Store(path, new JailCache.Entry(key, _cg.AppliedLimits ?? "", [.. _security?.ProfileErrno ?? []], job));
                }
                else _pid = (template is not null ? StubJail.LaunchJob(_plan!, template, so, _templateKey!) : StubJail.Launch(_plan!, so)).InitPid;
            }
            else
            {
                _handle = Ephemeral.Launch(_plan!, _cg.Manager, new Ephemeral.Options { ReaperStatusFd = _statusWrite, OnSeccompFd = SeccompListener });
                _pid = _handle.InitPid;
            }
        }
        finally
        {
            Fd.Close(_statusWrite);
            _statusWrite = -1;
            for (int fd = 0; fd < 3; fd++)
                if (saved[fd] >= 0) { SandboxRunner.Redirect(saved[fd], fd); Fd.Close(saved[fd]); }
        }
    }

    /// <summary>
    /// A judge that stops berth (SIGINT, SIGTERM, SIGHUP) gets the jail killed and cleaned up, verdict XX.
    /// Caught by <see cref="StopSignals"/> (a pipe the wait polls; no runtime signal thread), else by
    /// PosixSignalRegistration (other architectures).
    /// </summary>
    private void RegisterSignals()
    {
        if (_signalsRegistered) return;
        _signalsRegistered = true;
        _stops = StopSignals.TryInstall(2 /* SIGINT */, 15 /* SIGTERM */, 1 /* SIGHUP */);
        if (_stops is null)
            _signals = [.. new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP }.Select(sig =>
                PosixSignalRegistration.Create(sig, ctx => { ctx.Cancel = true; _interrupted = true; }))];
    }

    private bool _signalsRegistered;
    private StopSignals? _stops;

    /// <summary>A stop signal arrived (latched).</summary>
    private bool Interrupted()
    {
        if (!_interrupted && _stops?.Pending() == true) _interrupted = true;
        return _interrupted;
    }

    /// <summary>
    /// Releases the program and waits for the jail's init, woken by its pidfd; checks the tree's
    /// CPU time every 5 ms under --time, the wall clock, and a request to stop (SIGINT/TERM/HUP).
    /// </summary>
    private unsafe (ExitStatus Status, bool TimeKill, bool WallKill) Wait()
    {
        RegisterSignals(); // unless the box-copy helper (joined before the launch) or the box's preparation did
        int pidfd = (int)LibC.syscall(Syscalls.PidfdOpen, _pid, 0, 0, 0, 0, 0);
        var sw = Stopwatch.StartNew();
        Timing("release");
        if (!_stub)
        {
            SecureStart();
            _handle!.Release();
        }
        bool timeKill = false, wallKill = false, killed = false;
        ulong cpuLimit = Options.KillTime is { } t ? (ulong)(t * 1e9) : ulong.MaxValue;
        double? wall = Options.EffectiveWallTime;
        long* pfd = stackalloc long[4];
        int notifyFd = SecurityNotifyFd;
        try
        {
            while (true)
            {
                if (!killed && SecureCheck()) killed = true;
                var (got, st) = Proc.TryWait(_pid);
                if (got == _pid) { _reaped = true; Timing("exited"); return (st, timeKill, wallKill); }
                if (got < 0)
                {
                    _reaped = true;
                    Verdict.Message = "lost the program's exit status";
                    return (new ExitStatus(255, 0), timeKill, wallKill);
                }
                if (!killed)
                {
                    if (Interrupted()) Verdict.Message = "interrupted: berth was asked to stop";
                    else if (wall is { } wt && sw.Elapsed.TotalSeconds > wt) wallKill = true;
                    else if (cpuLimit != ulong.MaxValue && (_cg!.CpuNanos() ?? 0) > cpuLimit) timeKill = true;
                    if (_interrupted || timeKill || wallKill) { KillAll(); killed = true; }
                }
                int timeout = cpuLimit != ulong.MaxValue ? CpuPollMs : IdlePollMs;
                if (!killed && wall is { } w)
                    timeout = (int)Math.Clamp((w - sw.Elapsed.TotalSeconds) * 1000 + 1, 1, timeout);
                if (pidfd >= 0)
                {
                    // The init's exit, the supervisor asking for a kill on a violation, or (no supervisor
                    // thread) a notification for this loop to answer.
                    ulong n = 0;
                    pfd[n++] = (uint)pidfd | ((long)Consts.POLLIN << 32);
                    if (SecurityWakeFd >= 0 && !killed) pfd[n++] = (uint)SecurityWakeFd | ((long)Consts.POLLIN << 32);
                    if (_stops is not null && !killed) pfd[n++] = (uint)_stops.Fd | ((long)Consts.POLLIN << 32);
                    int notifyAt = -1;
                    if (notifyFd >= 0) { notifyAt = (int)n; pfd[n++] = (uint)notifyFd | ((long)Consts.POLLIN << 32); }
                    LibC.poll(pfd, n, timeout);
                    if (notifyAt >= 0)
                    {
                        short revents = (short)(pfd[notifyAt] >> 48);
                        if ((revents & Consts.POLLIN) != 0) SecurityHandlePending();
                        else if (revents != 0) notifyFd = -1; // POLLHUP: every filtered task is gone
                    }
                }
                else Thread.Sleep(1);
            }
        }
        finally
        {
            Verdict.WallTime = sw.Elapsed.TotalSeconds;
            if (pidfd >= 0) Fd.Close(pidfd);
        }
    }

    /// <summary>Cgroup figures and the reaper's status -> the verdict.</summary>
    private void Collect(ExitStatus status, bool timeKill, bool wallKill)
    {
        // Whatever outlived the init (it cannot, in its own pid namespace, but be sure) goes before the figures are read.
        // A job in a template has no reaper of its own (its first process is the program's, berth's child):
        // what is left in its cgroup when the program has ended are its orphans, killed and counted here.
        int left = KillAll();
        // The program's own status from the jail's reaper (PID 1); without one (killed) the init's.
        int orphans = _template is not null ? left : 0;
        if (SandboxRunner.ReadStatus(_statusRead) is { } reaped) (status, orphans) = (ExitStatus.FromRaw(reaped.Raw), reaped.Orphans);
        var stats = _cg!.Stats();
        ulong oom = stats.OomKills ?? 0;
        if (oom == 0 && _cg.Manager.Version == "v1" && Options.Memory is not null && _cg.MemoryDir is { } memDir)
            oom = SandboxRunner.ReadFailcntOom(memDir, status);
        if (Options.KeepOutput && Options.Box is not null && !SecurityForbidsCopyBack) SandboxRunner.CopyBack(Box, Options.Box);
        var v = Verdict;
        v.Time = (stats.CpuUsageNanos ?? 0) / 1e9;
        v.MaxRssKb = (long)((stats.MemoryMaxUsage ?? 0) / 1024);
        v.ExitCode = status.Code;
        v.ExitSig = status.Signal;
        v.Killed = timeKill || wallKill;
        v.Orphans = orphans;
        // As isolate: over --time is TO even when the program ended in its --extra-time (or between two polls).
        bool overTime = Options.Time is { } limit && v.Time > limit;
        v.Status = Interrupted() ? "XX" : Verdict.Classify(timeKill || wallKill || overTime, oom, status.Code, status.Signal);
        if (v.Message.Length == 0)
            v.Message = v.Status switch
            {
                "TO" when wallKill => "wall time limit exceeded",
                "TO" => "time limit exceeded",
                "ML" => "memory limit exceeded",
                "OL" => "output limit exceeded",
                "SG" => $"caught fatal signal {status.Signal}",
                "RE" => $"exited with error status {status.Code}",
                _ => "",
            };
        SecureVerdict(v);
    }

    /// <summary>SIGKILLs the jail's processes; returns how many were left in its cgroup (the init aside).</summary>
    private int KillAll()
    {
        if (_pid > 0 && !_reaped) Proc.Kill(_pid, Signals.SIGKILL);
        // A stub jail whose PID 1 was reaped has no process left (the kernel kills a pid namespace's
        // processes before its init is reaped, and the stub's first process was waited for); the
        // cgroup's release after the job still verifies it empty.
        if (_stub && _reaped && _template is null) return 0;
        return _cg?.KillAllPids() ?? 0;
    }

    /// <summary>
    /// Every process killed and reaped, the cgroup emptied and reset (pooled) or removed, the
    /// tmpfs unmounted and the directory checked to hold no mount and nothing else. A failure
    /// turns the verdict into XX naming what was left.
    /// </summary>
    private void Teardown()
    {
        Timing("teardown");
        _boxReady = null; // never run (the job failed before its launch): the box is as the last job left it
        try { BoxCopied(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or LinuxException or EngineError) { Fail($"box: {e.Message}"); }
        Fd.Close(_statusWrite);
        Fd.Close(_statusRead);
        _handle?.Abandon();
        if (_pid > 0 && !_reaped)
        {
            Proc.Kill(_pid, Signals.SIGKILL);
            Proc.Wait(_pid);
            _reaped = true;
        }
        SecureTeardown();
        // Unmount first (or, in a batch worker's slot, remove the box): the box's pages go, so the cgroup's
        // reset has nothing of them to reclaim.
        bool kept = false;
        if (_mounted)
        {
            // Every process of the job dead first: only then can the box be checked or emptied for the next job.
            bool empty = _cg is null || _cg.KillAndWaitEmpty(TimeSpan.FromSeconds(2));
            Timing("teardown: emptied");
            kept = Slot.Pooled && Slot.MountedBoxSize is not null && empty && (KeepBox() || ScrubBox());
            if (!kept)
            {
                int err = Slot.UnmountAll();
                if (err != 0 && err != Consts.EINVAL && err != Consts.ENOENT) Fail($"cleanup: unmount {Slot.Dir}: {LinuxException.Describe(err)}");
            }
            _mounted = false;
        }
        Timing("teardown: unmounted");
        bool released = false;
        try { Slot.ReleaseCgroup(); released = true; }
        catch (Exception e) when (e is CgroupException or IOException or UnauthorizedAccessException) { Fail($"cleanup: {e.Message}"); }
        // Every process of the job is gone (the cgroup was verified empty): empty the template's /tmp and
        // /dev/shm for the next job, or throw the template away.
        if (_template is not null && Slot.Template == _template && (!released || !_template.Scrub())) Slot.DropTemplate();
        _template = null;
        Timing("teardown: cgroup");
        // A kept slot's directory is a mount root: listmount(2) counts its subtree; else mountinfo is read.
        var mounts = (kept ? Berth.Linux.Mounts.MountTree.AtAndBelow(Slot.Dir) : null)
            ?? Berth.Linux.Mounts.MountInfoEntry.ReadSelf()
                .Count(m => m.MountPoint == Slot.Dir || m.MountPoint.StartsWith(Slot.Dir + "/", StringComparison.Ordinal));
        // Kept: the slot's tmpfs, and an --image root's overlay on it.
        if (mounts != (kept ? (Slot.ImageRoot is null ? 1 : 2) : 0))
        {
            Fail($"cleanup: {Slot.Dir} still has mounts");
            Slot.UnmountAll();
        }
        else if (kept && Directory.EnumerateFileSystemEntries(Slot.Dir).Any(e => e != Rootfs && e != Box
                     && !(Slot.ImageRoot is not null && SandboxImageRoot.SlotEntries.Contains(Path.GetFileName(e)))))
        {
            Fail($"cleanup: {Slot.Dir} holds more than the jail's skeleton after the box was removed");
            Slot.UnmountAll();
        }
        else if (!kept && Directory.Exists(Slot.Dir) && Directory.EnumerateFileSystemEntries(Slot.Dir).Any())
            Fail($"cleanup: {Slot.Dir} is not empty after unmounting the jail's tmpfs");
        foreach (var r in _signals) r.Dispose();
        _signals = [];
        _stops?.Dispose();
        _stops = null;
        Timing("done");
    }

    /// <summary>
    /// Removes the box's content from a kept tmpfs (every process of the jail is dead) through fds
    /// (<see cref="DirTree.Empty"/>: nothing the job planted is followed); false when it cannot, or the
    /// job left more than 100,000 entries (the tmpfs then goes, which is quicker).
    /// </summary>
    private bool ScrubBox()
    {
        // The directory itself stays: a template jail binds it as /box.
        int fd;
        try { fd = Fd.Open(Box, Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_NOFOLLOW | Consts.O_CLOEXEC); }
        catch (LinuxException e) { return e.Errno == Consts.ENOENT; }
        try
        {
            int budget = 100_000;
            return DirTree.Empty(fd, 0, ref budget);
        }
        finally { Fd.Close(fd); }
    }

    private void Fail(string message)
    {
        Verdict.Status = "XX";
        Verdict.Message = Verdict.Message.Length == 0 ? message : Verdict.Message + "; " + message;
    }

    private static void Timing(string what)
    {
        if (Berth.Runtime.Logging.Timing.Enabled) Berth.Runtime.Logging.Timing.Mark("sandbox " + what);
    }
}

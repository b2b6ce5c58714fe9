using Berth.Engine.Containers;
using Berth.Linux.Cgroups;
using Berth.Linux.Processes;
using Berth.Linux.Seccomp;
using Berth.Runtime.Seccomp;
using RtSpec = Berth.Oci.Runtime.Spec;

namespace Berth.Engine.Sandbox;

/// <summary>
/// The security half of one sandbox run, as a few hooks the runner calls: the seccomp profile into
/// the spec, the supervisor on the runtime's notify fd, the violation check in the wait loop
/// (kill or quarantine), and the verdict's SV status, count and first violation at the end.
/// </summary>
public sealed class SandboxSecurity : IDisposable
{
    private readonly SandboxOptions _o;
    private readonly string _runDir;
    private readonly Dictionary<string, string>? _callerBoxBefore;
    private bool _acted;
    private (ICgroupManager Cg, int InitPid, string Box, string Id)? _jail;
    private readonly KernelAudit _kernelAudit;
    /// <summary>Calls the profile itself answers with an errno (the built-in's clone3 ENOSYS, a custom profile's ERRNO rules).</summary>
    private HashSet<string> _profileErrno = [];

    public Supervisor Supervisor { get; }
    /// <summary>User notification in use (else the kernel-only fallback, see <see cref="SandboxProfile.WithoutListener"/>).</summary>
    public bool Notify { get; }
    public Quarantine.Report? Incident { get; private set; }
    /// <summary>The jail was killed for a violation (its box is not copied back).</summary>
    public bool Acted => _acted || Supervisor.KillRequested;

    /// <param name="audit">The job's kernel audit, which the job may start early (<see cref="KernelAudit.Start"/> runs once); null: one of its own.</param>
    public SandboxSecurity(SandboxOptions o, string runDir, KernelAudit? audit = null)
    {
        _kernelAudit = audit ?? new KernelAudit();
        _o = o;
        _runDir = runDir;
        Notify = NotifySupported();
        if (o.Evidence is { } ev && Directory.Exists(ev) && Directory.EnumerateFileSystemEntries(ev).Any())
            throw new EngineError($"--evidence {ev}: the directory is not empty");
        Supervisor = new Supervisor(o.OnViolation, o.Audit);
        // The caller's box, hashed before the run, so quarantine can prove it was not touched.
        if (o.OnViolation == ViolationMode.Quarantine && o.Box is not null && Directory.Exists(o.Box))
            _callerBoxBefore = Quarantine.Hashes(o.Box);
    }

    /// <summary>
    /// User notification needs seccomp's NEW_LISTENER (5.0) and FLAG_CONTINUE (5.5). BERTH_SANDBOX_NO_NOTIFY=1
    /// forces the fallback (tests, or a kernel that refuses listeners for another reason).
    /// </summary>
    private static bool NotifySupported()
    {
        if (Environment.GetEnvironmentVariable("BERTH_SANDBOX_NO_NOTIFY") == "1") return false;
        return SeccompProfiles.RunningKernel() is not { } k || k >= new Version(5, 5);
    }

    /// <summary>Puts the seccomp filter into the jail's spec (the built-in profile unless --seccomp FILE).</summary>
    public void Apply(RtSpec spec)
    {
        var key = ProfileKey();
        if (!s_profiles.TryGetValue(key, out var cached))
        {
            // A filter compiled by an earlier berth process with the same inputs (FilterCache): the plan gets it as it is.
            var diskKey = FilterCache.Key(_o.Net, Notify, _o.OnViolation, _o.Seccomp);
            if (s_loaded.TryGetValue(key, out var hit) || (diskKey is not null && (hit = FilterCache.Load(diskKey)) is not null))
            {
                if (s_loaded.Count < 64) s_loaded[key] = hit;
                Precompiled = hit.Program;
                _profileErrno = hit.ProfileErrno;
                spec.Linux!.Seccomp = null;
                return;
            }
            DiskKey = diskKey;
            var native = SeccompArchInfo.Native ?? throw new EngineError("sandbox: berth has no syscall table for this machine's architecture");
            // The listener path is never created: the runtime hands the fd to the supervisor in-process.
            var listener = "/run/berth/sandbox/seccomp.sock";
            var seccomp = _o.Seccomp is { } file ? SandboxProfile.Custom(file, listener, native) : SandboxProfile.BuiltIn(_o.Net, listener, native);
            // Before the fallback turns violations into ERRNO too: FILTER_FLAG_LOG records the profile's own
            // errno answers as well, and the kernel's record carries no errno to tell the two apart.
            HashSet<string> errno = [.. (seccomp.Syscalls ?? []).Where(r => r.Action == "SCMP_ACT_ERRNO").SelectMany(r => r.Names ?? [])];
            if (!Notify) SandboxProfile.WithoutListener(seccomp, _o.OnViolation);
            // Never changed from here on: every job of this process with the same inputs shares it (and its compiled filter).
            Berth.Runtime.Seccomp.SeccompCompiler.Freeze(seccomp);
            cached = (seccomp, errno);
            if (s_profiles.Count < 64) s_profiles[key] = cached;
        }
        _profileErrno = cached.Errno;
        spec.Linux!.Seccomp = cached.Profile;
    }

    /// <summary>
    /// Instead of <see cref="Apply"/>: the job runs a program compiled earlier with this profile's filter
    /// in it (<see cref="JailCache"/>), whose own errno answers were <paramref name="errno"/>.
    /// </summary>
    public void UseCompiled(IEnumerable<string> errno) => _profileErrno = [.. errno];

    /// <summary>Filters this process loaded from the disk cache, by <see cref="ProfileKey"/>.</summary>
    private static readonly Dictionary<string, FilterCache.Entry> s_loaded = [];

    /// <summary>The compiled filter from the disk cache, for the plan (the spec then carries none); null: compiled from the spec.</summary>
    public SeccompProgram? Precompiled { get; private set; }

    /// <summary>The disk cache key to store the filter the plan compiles under (null: no store).</summary>
    public string? DiskKey { get; private set; }

    /// <summary>The profile's own ERRNO answers (see <see cref="KernelAudit"/>).</summary>
    public HashSet<string> ProfileErrno => _profileErrno;

    /// <summary>Profiles built in this process (a batch worker runs many jobs with the same options), by what decides them.</summary>
    private static readonly Dictionary<string, (Berth.Oci.Runtime.Seccomp Profile, HashSet<string> Errno)> s_profiles = [];

    private string ProfileKey()
    {
        string custom = "";
        if (_o.Seccomp is { } file)
        {
            // A custom profile is read again when the file changed (path, size and mtime).
            var info = new FileInfo(file);
            custom = info.Exists ? $"{file}|{info.Length}|{info.LastWriteTimeUtc.Ticks}" : file;
        }
        // The mode as its number: formatting an enum's name loads reflection metadata (~0.1 ms on first use).
        return $"{_o.Net}|{Notify}|{(int)_o.OnViolation}|{custom}";
    }

    /// <summary>Ephemeral.Options.OnSeccompFd.</summary>
    public void OnSeccompFd(int pid, int fd) => Supervisor.Attach(pid, fd);

    public void ProgramStarting()
    {
        Supervisor.ProgramStarting();
        // Also with a listener: calls the filter kills outright (another ABI, a custom profile's KILL) reach only the kernel's audit log.
        _kernelAudit.Start();
    }

    /// <summary>
    /// Called from the wait loop: on the first kill-worthy violation, quarantines (if asked) and
    /// kills the jail. True once it has acted.
    /// </summary>
    public bool Check(ICgroupManager cg, int initPid, string jailBox, string id)
    {
        _jail = (cg, initPid, jailBox, id);
        if (_acted || !Supervisor.KillRequested) return _acted;
        _acted = true;
        if (_o.OnViolation == ViolationMode.Quarantine && _o.Evidence is { } ev)
            Incident = Quarantine.Run(id, cg, initPid, jailBox, _o.Box, _callerBoxBefore, Supervisor, ev);
        Proc.Kill(initPid, Signals.SIGKILL);
        foreach (var p in cg.Pids()) Proc.Kill(p, Signals.SIGKILL);
        return true;
    }

    /// <summary>The verdict's security fields; SV when the jail was killed for a violation or by the filter (SIGSYS).</summary>
    public void Finish(Verdict v)
    {
        if (!Notify || v.ExitSig == 31)
        {
            // kauditd prints asynchronously: give a filter kill's record a moment to arrive.
            var found = _kernelAudit.Collect(SandboxOptions.Uid, _profileErrno);
            for (int i = 0; i < 10 && found.Count == 0 && v.ExitSig == 31; i++)
            {
                Thread.Sleep(10);
                found = _kernelAudit.Collect(SandboxOptions.Uid, _profileErrno);
            }
            foreach (var r in found) Supervisor.Add(r);
        }
        // The jail ended before the run loop could act (the filter killed it without a listener, or the
        // program exited in the same moment): the bundle is collected after the fact, with nothing to freeze.
        bool violated = Supervisor.KillRequested || (!Notify && v.ExitSig == 31);
        if (violated && !_acted && _o.OnViolation == ViolationMode.Quarantine && _o.Evidence is { } evd && _jail is { } j && Incident is null)
            Incident = Quarantine.Run(j.Id, j.Cg, j.InitPid, j.Box, _o.Box, _callerBoxBefore, Supervisor, evd);
        v.Violations = Supervisor.Count;
        v.FirstViolation = Supervisor.First;
        if (v.Status == "XX") return;
        if (violated || v.ExitSig == 31 /* SIGSYS: the filter killed it (fallback, bad ABI, custom KILL) */)
        {
            v.Status = "SV";
            v.Killed = true;
            v.Message = Supervisor.KillRequested && Supervisor.First is { } f
                ? $"security violation: {f.Syscall}" + (Incident is { } i ? $" (quarantined: {i.Processes} processes, {i.Files} files, evidence in {i.Directory})" : "")
                : Supervisor.First is { } k ? $"security violation: {k.Syscall} (killed by the seccomp filter)"
                : "security violation: killed by the seccomp filter (SIGSYS)";
            if (v.Violations == 0 && !_acted) v.Violations = 1;
            v.FirstViolation ??= Supervisor.First;
        }
        if (Incident is not null && _o.Evidence is { } ev)
            File.WriteAllText(Path.Combine(ev, "verdict.json"), v.ToJson());
    }

    public void Dispose()
    {
        Supervisor.Dispose();
        _kernelAudit.Dispose();
    }
}

using Berth.Linux.Cgroups;

namespace Berth.Engine.Sandbox;

/// <summary>
/// Where jobs run: an id, a directory /run/berth/sandbox/runs/ID (each job mounts a fresh tmpfs
/// on it holding the jail's root skeleton and the box) and a cgroup /berth/ID.
/// A fresh slot (`sandbox run`) is used once: its cgroup and directory go when the job ends.
/// A pooled slot (one per batch worker) keeps the directory and, on v1 hosts, the cgroup from
/// job to job; after every job the cgroup is verified empty and reset (<see cref="SandboxCgroup.Reset"/>)
/// and the directory verified to hold no mount and no file. Anything that cannot be made clean
/// is thrown away and made anew.
/// </summary>
public sealed class SandboxSlot : IDisposable
{
    public string Id { get; }
    public string Dir { get; }
    public bool Pooled { get; }
    /// <summary>
    /// A sandbox pool's slot (<see cref="SandboxPool"/>): pooled, and shared by separate `run`
    /// processes one at a time, so nothing of it may live only in memory (no kept box image).
    /// </summary>
    public bool Persistent { get; }
    private SandboxCgroup? _cgroup;

    /// <summary>The cgroup kept for the next job, or null (none yet, or it was thrown away).</summary>
    public SandboxCgroup? Cgroup => _cgroup;

    /// <summary>A pooled slot's tmpfs (skeleton kept, box removed after every job) and its size; null when not mounted.</summary>
    public long? MountedBoxSize
    {
        get => _mountedBoxSize;
        set { _mountedBoxSize = value; Changed?.Invoke(); }
    }
    private long? _mountedBoxSize;

    /// <summary>
    /// Called when the slot gets or loses a tmpfs, cgroup or template: a pool's lease writes its state
    /// at once, so a run that dies mid-job leaves the next one a record of everything to destroy.
    /// </summary>
    public Action? Changed { get; set; }

    /// <summary>A pool slot's file for its compiled job (<see cref="JailCache"/>), or null (not a pool's slot).</summary>
    public string? JailCachePath { get; set; }

    /// <summary>The box the last job left, verified identical to its --box DIR (the next job with that DIR keeps it), or null.</summary>
    public BoxImage? KeptBox { get; set; }

    /// <summary>The --image root mounted on the slot's tmpfs, or null (the host-directory root).</summary>
    public SandboxImageRoot? ImageRoot { get; set; }

    /// <summary>The slot's tmpfs and everything on it go (unmounted with MNT_DETACH, submounts included).</summary>
    public int UnmountAll()
    {
        KeptBox = null;
        DropTemplate();
        MountedBoxSize = null;
        int err = Berth.Linux.Mounts.Mount.TryUnmount(Dir, Berth.Linux.Interop.Consts.MNT_DETACH);
        ImageRoot?.Dispose();
        ImageRoot = null;
        return err;
    }

    /// <summary>
    /// A pooled slot's fanotify group for its box's files (made on first use; null where fanotify is
    /// not available or BERTH_SANDBOX_BOX_WATCH=0, and then the box's bytes are compared): see <see cref="BoxImage.Verify"/>.
    /// </summary>
    public Berth.Linux.Files.WriteWatch? BoxWatch =>
        Pooled && Environment.GetEnvironmentVariable("BERTH_SANDBOX_BOX_WATCH") != "0" ? _boxWatch ??= Berth.Linux.Files.WriteWatch.TryCreate() : null;
    private Berth.Linux.Files.WriteWatch? _boxWatch;

    /// <summary>The template jail jobs of this (pooled) slot join, or null (docs/adr/0016).</summary>
    public Berth.Runtime.Lifecycle.StubJail.Template? Template
    {
        get => _template;
        set { _template = value; Changed?.Invoke(); }
    }
    private Berth.Runtime.Lifecycle.StubJail.Template? _template;

    /// <summary>Ends the template jail (its PID 1 is killed and reaped; the namespaces go with it).</summary>
    public void DropTemplate()
    {
        Template?.Dispose();
        Template = null;
    }
    private bool _dirMade;

    private SandboxSlot(string id, bool pooled, bool persistent = false)
    {
        Id = id;
        Dir = Path.Combine(SandboxRunner.RunsRoot, id);
        Pooled = pooled;
        Persistent = persistent;
        _dirMade = persistent && Directory.Exists(Dir);
    }

    /// <summary>A pool's slot as an earlier process left it: its tmpfs (when mounted), cgroup and template (see <see cref="SandboxPool"/>).</summary>
    internal static SandboxSlot Restore(string id, long? mountedBoxSize, SandboxCgroup? cgroup, Berth.Runtime.Lifecycle.StubJail.Template? template) =>
        new(id, pooled: true, persistent: true) { _mountedBoxSize = mountedBoxSize, _cgroup = cgroup, _template = template };

    /// <summary>
    /// "sandbox-" + 24 hex digits from /dev/urandom (not RandomNumberGenerator: on Linux that loads
    /// OpenSSL, whose relocation cost ~4 ms per run, a fifth of a sandbox run's CPU time).
    /// </summary>
    public static string NewId()
    {
        Span<byte> b = stackalloc byte[12];
        int fd = Berth.Linux.Files.Fd.Open("/dev/urandom", Berth.Linux.Interop.Consts.O_RDONLY | Berth.Linux.Interop.Consts.O_CLOEXEC);
        try
        {
            if (Berth.Linux.Files.Fd.Read(fd, b) != b.Length) throw new IOException("short read from /dev/urandom");
        }
        finally { Berth.Linux.Files.Fd.Close(fd); }
        return "sandbox-" + Tag() + Convert.ToHexStringLower(b);
    }

    /// <summary>
    /// BERTH_SANDBOX_TAG (letters, digits and '-', up to 32): put into every id ("sandbox-TAG-HEX")
    /// so that a judge (or a test) can tell its own jails' run dirs and cgroups from others'.
    /// </summary>
    private static string Tag()
    {
        var tag = Environment.GetEnvironmentVariable("BERTH_SANDBOX_TAG");
        if (string.IsNullOrEmpty(tag)) return "";
        if (tag.Length > 32 || !tag.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            throw new Berth.Engine.Containers.EngineError($"BERTH_SANDBOX_TAG={tag}: letters, digits and '-' only, at most 32");
        return tag + "-";
    }

    public static SandboxSlot Fresh() => new(NewId(), pooled: false);
    public static SandboxSlot Pool() => new(NewId(), pooled: true);

    /// <summary>The job's directory, made (mode 0755) on first use.</summary>
    public void EnsureDir()
    {
        if (_dirMade && Directory.Exists(Dir)) return;
        // /run/berth and what is under it, when this makes them: root's alone (0700), as the runtime's state
        // root is. A jail's processes reach their box and root only through its mounts, never through these
        // paths, so no one else needs to traverse them (a host process of the sandbox uid could otherwise
        // write into a box, which a pool slot keeps between runs).
        const UnixFileMode rootOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Directory.CreateDirectory(SandboxRunner.RunsRoot, rootOnly);
        File.SetUnixFileMode(SandboxRunner.RunsRoot, rootOnly); // also when an earlier berth made it 0755
        Directory.CreateDirectory(Dir);
        File.SetUnixFileMode(Dir, (UnixFileMode)0b111_101_101);
        _dirMade = true;
    }

    /// <summary>The cgroup for the next job: the pooled one (already reset), or a new one.</summary>
    public SandboxCgroup AcquireCgroup()
    {
        if (_cgroup is not null) return _cgroup;
        _cgroup = SandboxCgroup.Create(Id);
        Changed?.Invoke();
        return _cgroup;
    }

    /// <summary>
    /// After a job: the cgroup is emptied, then reset for the next job (pooled, v1) or removed.
    /// Throws a <see cref="CgroupException"/> when it cannot be made clean (it is then dropped).
    /// </summary>
    public void ReleaseCgroup()
    {
        if (_cgroup is null) return;
        var cg = _cgroup;
        if (Pooled && cg.Reusable)
        {
            try
            {
                cg.Reset();
                return;
            }
            catch (Exception e) when (e is CgroupException or IOException or UnauthorizedAccessException)
            {
                _cgroup = null;
                try { cg.KillAndWaitEmpty(TimeSpan.FromSeconds(2)); cg.Dispose(); } catch (CgroupException) { }
                throw new CgroupException($"cgroup {cg.Path} could not be reset for reuse: {e.Message}");
            }
        }
        _cgroup = null;
        if (!cg.KillAndWaitEmpty(TimeSpan.FromSeconds(10)))
            throw new CgroupException($"cgroup {cg.Path}: processes did not exit after SIGKILL");
        cg.Dispose();
    }

    /// <summary>Removes the cgroup and the (unmounted, empty) directory.</summary>
    public void Dispose()
    {
        DropTemplate();
        _boxWatch?.Dispose();
        _boxWatch = null;
        if (MountedBoxSize is not null) UnmountAll();
        ImageRoot?.Dispose();
        ImageRoot = null;
        try { ReleaseCgroupFinal(); }
        finally
        {
            if (_dirMade)
            {
                try { Directory.Delete(Dir); } catch (DirectoryNotFoundException) { }
                _dirMade = false;
            }
        }
    }

    private void ReleaseCgroupFinal()
    {
        if (_cgroup is null) return;
        var cg = _cgroup;
        _cgroup = null;
        cg.KillAndWaitEmpty(TimeSpan.FromSeconds(10));
        cg.Dispose();
    }
}

using Berth.Engine.Containers;
namespace Berth.Engine.Sandbox;

/// <summary>What `berth sandbox run` was asked for (first slice of issue 7). Sizes in bytes, times in seconds.</summary>
public sealed class SandboxOptions
{
    public List<string> Command { get; init; } = [];
    /// <summary>The box's initial content (copied into a fresh tmpfs per run); null: an empty box.</summary>
    public string? Box { get; init; }
    public List<DirRule> Dirs { get; init; } = [];
    /// <summary>--image REF: the root is this image of berth's store (read-only), instead of the host's system directories.</summary>
    public string? Image { get; init; }
    public double? Time { get; init; }
    /// <summary>
    /// --extra-time (isolate's): CPU time past <see cref="Time"/> the program may still run before it is
    /// killed, so its real time is reported; past <see cref="Time"/> the verdict is TO either way.
    /// </summary>
    public double? ExtraTime { get; init; }
    /// <summary>Where the CPU time kill happens: <see cref="Time"/> plus <see cref="ExtraTime"/>.</summary>
    public double? KillTime => Time is { } t ? t + (ExtraTime ?? 0) : null;
    public double? WallTime { get; init; }
    public long? Memory { get; init; }
    /// <summary>pids.max of the jail's cgroup (threads count). Default 64.</summary>
    public long Processes { get; init; } = 64;
    /// <summary>RLIMIT_FSIZE in KiB.</summary>
    public long? FsizeKb { get; init; }
    public long OpenFiles { get; init; } = 64;
    public long? Stack { get; init; }
    /// <summary>Paths inside the box.</summary>
    public string? Stdin { get; init; }
    public string? Stdout { get; init; }
    public string? Stderr { get; init; }
    public bool Net { get; init; }
    /// <summary>Copy the box's final content back into <see cref="Box"/> after the run (files and dirs only).</summary>
    public bool KeepOutput { get; init; }

    /// <summary>
    /// Batch workers: a network namespace to join (kept by the worker from job to job) instead of
    /// a new one per job. Ignored with <see cref="Net"/>.
    /// </summary>
    public string? NetNsPath { get; set; }

    /// <summary>The wall-time limit in force: --wall-time, else 3 x --time + 1 s so a sleeper cannot hold the jail forever.</summary>
    public double? EffectiveWallTime => WallTime ?? (KillTime is { } t ? 3 * t + 1 : null);
    /// <summary>--seccomp FILE: a custom profile instead of the built-in allowlist (<see cref="SandboxProfile"/>).</summary>
    public string? Seccomp { get; init; }
    /// <summary>--on-violation: what a forbidden system call gets (default kill: verdict SV).</summary>
    public ViolationMode OnViolation { get; init; } = ViolationMode.Kill;
    /// <summary>--audit FILE: one JSON line per forbidden call.</summary>
    public string? Audit { get; init; }
    /// <summary>--evidence DIR: where quarantine writes its bundle.</summary>
    public string? Evidence { get; init; }
    /// <summary>Size of the box tmpfs.</summary>
    public long BoxSize { get; init; } = 128L << 20;

    /// <summary>The unprivileged identity the program runs as (nobody/nogroup).</summary>
    public const uint Uid = 65534, Gid = 65534;
}

/// <summary>`--dir SRC[:DST][:rw]`: a host directory bound into the jail, read-only unless rw.</summary>
public sealed record DirRule(string Source, string Destination, bool Writable)
{
    public static DirRule Parse(string s)
    {
        var parts = s.Split(':');
        bool rw = parts.Length > 1 && parts[^1] == "rw";
        if (rw) parts = parts[..^1];
        if (parts.Length is < 1 or > 2 || parts[0].Length == 0) throw new EngineError($"--dir {s}: expected SRC[:DST][:rw]");
        var src = parts[0];
        var dst = parts.Length == 2 && parts[1].Length > 0 ? parts[1] : src;
        if (!src.StartsWith('/') || !dst.StartsWith('/')) throw new EngineError($"--dir {s}: paths must be absolute");
        if (dst.Split('/').Contains("..")) throw new EngineError($"--dir {s}: \"..\" in the destination");
        return new DirRule(src, dst, rw);
    }
}

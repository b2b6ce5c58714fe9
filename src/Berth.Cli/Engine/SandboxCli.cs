using System.Globalization;
using Berth.Engine.Containers;
using Berth.Engine.Sandbox;

namespace Berth.Cli.Engine;

/// <summary>`berth sandbox run [options] -- PROGRAM ARGS...` (issue 7, first slice).</summary>
public static class SandboxCli
{
    private const string Usage =
        "usage: berth sandbox run [--box DIR] [--image REF] [--dir SRC[:DST][:rw]]... [--time SEC] [--extra-time SEC] [--wall-time SEC] [--memory SIZE]\n" +
        "         [--processes N] [--fsize KB] [--open-files N] [--stack SIZE] [--stdin F] [--stdout F] [--stderr F]\n" +
        "         [--meta FILE] [--meta-format json|isolate] [--net] [--keep-output] [--box-size SIZE]\n" +
        "         [--seccomp FILE] [--on-violation log|deny|kill|quarantine] [--audit FILE] [--evidence DIR] -- PROGRAM ARGS...\n" +
        "         [--pool NAME]\n" +
        "       berth sandbox batch JOBS.jsonl|- [--parallel N]\n" +
        "       berth sandbox pool init NAME [--slots N] | pool rm NAME | pool ls NAME";

    /// <summary>Exit status: 0 verdict OK, 1 another verdict, 2 internal error (XX) or bad usage, as isolate.</summary>
    public static int Dispatch(string[] args)
    {
        if (args.Length > 0 && args[0] == "batch") return Batch(args[1..]);
        if (args.Length > 0 && args[0] == "pool") return Pool(args[1..]);
        if (args.Length > 0 && args[0] == SandboxBatch.WorkerCommand) return SandboxBatch.Work();
        if (args.Length == 0 || args[0] != "run")
        {
            Console.Error.WriteLine(Usage);
            return args.Length > 0 && args[0] is "--help" or "-h" or "help" ? 0 : 2;
        }
        SandboxOptions o;
        string? meta, pool;
        bool isolate;
        try
        {
            var p = new ArgParser()
                .Option("box").Option("image").Multi("dir").Option("time").Option("extra-time").Option("wall-time").Option("memory").Option("processes")
                .Option("fsize").Option("open-files").Option("stack").Option("stdin").Option("stdout").Option("stderr")
                .Option("meta").Option("meta-format").Option("box-size").Flag("net").Flag("keep-output")
                .Option("seccomp").Option("on-violation").Option("audit").Option("evidence").Option("pool")
                .Parse(args[1..]);
            pool = p.Get("pool") is { } pn ? SandboxPool.CheckName(pn) : null;
            var fmt = p.Get("meta-format") ?? "json";
            if (fmt is not ("json" or "isolate")) throw new UsageError($"--meta-format {fmt}: json or isolate");
            isolate = fmt == "isolate";
            meta = p.Get("meta");
            o = new SandboxOptions
            {
                Command = p.Positional,
                Box = p.Get("box") is { } b ? Path.GetFullPath(b) : null,
                Image = p.Get("image"),
                Dirs = [.. p.All("dir").Select(DirRule.Parse)],
                Time = Seconds(p, "time"),
                ExtraTime = Seconds(p, "extra-time"),
                WallTime = Seconds(p, "wall-time"),
                Memory = Size(p, "memory"),
                Processes = Count(p, "processes") ?? 64,
                FsizeKb = Count(p, "fsize"),
                OpenFiles = Count(p, "open-files") ?? 64,
                Stack = Size(p, "stack"),
                Stdin = p.Get("stdin"),
                Stdout = p.Get("stdout"),
                Stderr = p.Get("stderr"),
                Net = p.Has("net"),
                KeepOutput = p.Has("keep-output"),
                BoxSize = Size(p, "box-size") ?? 128L << 20,
                Seccomp = p.Get("seccomp") is { } sc ? Path.GetFullPath(sc) : null,
                OnViolation = OnViolation(p.Get("on-violation")),
                Audit = p.Get("audit") is { } au ? Path.GetFullPath(au) : null,
                Evidence = p.Get("evidence") is { } ev ? Path.GetFullPath(ev) : null,
            };
            if (o.OnViolation == ViolationMode.Quarantine && o.Evidence is null) throw new UsageError("--on-violation quarantine needs --evidence DIR");
            if (o.Seccomp is not null && !File.Exists(o.Seccomp)) throw new UsageError($"--seccomp {o.Seccomp}: no such file");
            if (o.KeepOutput && o.Box is null) throw new UsageError("--keep-output needs --box DIR");
            if (o.ExtraTime is not null && o.Time is null) throw new UsageError("--extra-time needs --time");
            if (o.Command.Count == 0) throw new UsageError("sandbox run needs a program after --\n" + Usage);
        }
        catch (Exception e) when (e is UsageError or EngineError)
        {
            Console.Error.WriteLine($"berth: {e.Message}");
            return 2;
        }
        // The cgroup warm-up (a fork of berth) pays only before the runtime's init: the stub's own join
        // comes too soon after it to gain, and the fork costs more (measured: 8.7 vs 9.2 ms per run).
        if (!SandboxRunner.StubJail && !Berth.Linux.Processes.SealedExe.WasReexecuted) Berth.Linux.Cgroups.MigrationWarmup.Kick();
        // With the runtime's init as the jail's PID 1 (no jail stub), berth's own code is in the jail:
        // re-exec from a sealed copy first (CVE-2019-5736). The stub's jail holds nothing of berth.
        if (!SandboxRunner.StubJail) Berth.Linux.Processes.SealedExe.Reexec(Environment.GetCommandLineArgs());

        Verdict v;
        try { v = SandboxRunner.Run(o, pool); }
        catch (EngineError e)
        {
            Console.Error.WriteLine($"berth: sandbox: {e.Message}");
            return 2;
        }
        var text = isolate ? v.ToIsolate() : v.ToJson();
        if (meta is null)
        {
            // Straight to fd 1: Console's first use (encodings, terminal probes) cost ~0.1 ms of a ~5 ms run.
            try { Berth.Linux.Files.Fd.WriteAll(1, System.Text.Encoding.UTF8.GetBytes(text), "stdout"); }
            catch (Berth.Linux.LinuxException e)
            {
                Console.Error.WriteLine($"berth: sandbox: write the verdict: {e.Message}");
                return 2;
            }
        }
        else
        {
            try { File.WriteAllText(meta, text); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"berth: --meta {meta}: {e.Message}");
                Console.Out.Write(text);
                return 2;
            }
        }
        if (v.Status == "XX") Console.Error.WriteLine($"berth: sandbox: {v.Message}");
        Berth.Runtime.Logging.Timing.Mark("sandbox verdict written");
        return v.Status switch { "OK" => 0, "XX" => 2, _ => 1 };
    }

    /// <summary>`berth sandbox pool init NAME [--slots N]`, `pool rm NAME`, `pool ls NAME` (<see cref="SandboxPool"/>).</summary>
    private static int Pool(string[] args)
    {
        try
        {
            if (args.Length < 2 || args[0] is not ("init" or "rm" or "ls")) throw new UsageError(Usage);
            var p = new ArgParser().Option("slots").Parse(args[2..]);
            if (p.Positional.Count > 0) throw new UsageError($"sandbox pool {args[0]}: unexpected {p.Positional[0]}");
            var name = args[1];
            switch (args[0])
            {
                case "init":
                    SandboxPool.Init(name, (int)Math.Min(Count(p, "slots") ?? Environment.ProcessorCount, int.MaxValue));
                    break;
                case "rm":
                    SandboxPool.Remove(name);
                    break;
                default:
                    foreach (var line in SandboxPool.List(name)) Console.Out.WriteLine(line);
                    break;
            }
            return 0;
        }
        catch (Exception e) when (e is UsageError or EngineError or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"berth: {e.Message}");
            return 2;
        }
    }

    private static ViolationMode OnViolation(string? s) => s switch
    {
        null or "kill" => ViolationMode.Kill,
        "log" => ViolationMode.Log,
        "deny" => ViolationMode.Deny,
        "quarantine" => ViolationMode.Quarantine,
        _ => throw new UsageError($"--on-violation {s}: log, deny, kill or quarantine"),
    };

    /// <summary>
    /// `berth sandbox batch FILE|- [--parallel N]`: one job per line (docs/sandbox.md), one result per
    /// line on stdout in input order. Exit 0: every job has a verdict other than XX; 1: some XX; 2: usage or interrupted.
    /// </summary>
    private static int Batch(string[] args)
    {
        string file;
        int parallel;
        try
        {
            // Options before or after the file (ArgParser stops at the first positional, as run's program needs).
            var files = new List<string>();
            var opts = new List<string>();
            for (int i = 0; i < args.Length; i++)
            {
                if (args[i] == "--parallel" && i + 1 < args.Length) { opts.Add(args[i]); opts.Add(args[++i]); }
                else if (args[i].StartsWith("--parallel=", StringComparison.Ordinal) || (args[i].StartsWith('-') && args[i] != "-")) opts.Add(args[i]);
                else files.Add(args[i]);
            }
            var p = new ArgParser().Option("parallel").Parse([.. opts]);
            if (files.Count != 1) throw new UsageError("sandbox batch needs one JOBS file (or - for stdin)\n" + Usage);
            file = files[0];
            parallel = (int)(Count(p, "parallel") ?? Environment.ProcessorCount);
            if (parallel > 1024) throw new UsageError($"--parallel {parallel}: at most 1024");
        }
        catch (UsageError e)
        {
            Console.Error.WriteLine($"berth: {e.Message}");
            return 2;
        }
        // Workers are started from this process's protected copy (CVE-2019-5736) when their jails'
        // PID 1 is the runtime's init: re-exec once, here.
        if (!SandboxRunner.StubJail) Berth.Linux.Processes.SealedExe.Reexec(Environment.GetCommandLineArgs());
        List<string> lines;
        try { lines = file == "-" ? ReadAll(Console.In) : [.. File.ReadLines(file)]; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"berth: sandbox batch: {file}: {e.Message}");
            return 2;
        }
        try { return SandboxBatch.Coordinate(lines, Console.Out, parallel); }
        catch (EngineError e)
        {
            Console.Error.WriteLine($"berth: sandbox batch: {e.Message}");
            return 2;
        }
    }

    private static List<string> ReadAll(TextReader r)
    {
        var list = new List<string>();
        while (r.ReadLine() is { } l) list.Add(l);
        return list;
    }

    private static double? Seconds(ArgParser p, string name)
    {
        if (p.Get(name) is not { } s) return null;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v <= 0)
            throw new UsageError($"--{name} {s}: expected seconds > 0");
        return v;
    }

    private static long? Count(ArgParser p, string name)
    {
        if (p.Get(name) is not { } s) return null;
        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v <= 0)
            throw new UsageError($"--{name} {s}: expected a positive number");
        return v;
    }

    /// <summary>"64m", "1g", "512k", "1048576" (bytes).</summary>
    internal static long? Size(ArgParser p, string name)
    {
        if (p.Get(name) is not { } s) return null;
        long mult = 1;
        var num = s;
        if (s.Length > 0 && char.ToLowerInvariant(s[^1]) is 'k' or 'm' or 'g')
        {
            mult = char.ToLowerInvariant(s[^1]) switch { 'k' => 1L << 10, 'm' => 1L << 20, _ => 1L << 30 };
            num = s[..^1];
        }
        if (!long.TryParse(num, NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v <= 0)
            throw new UsageError($"--{name} {s}: expected a size such as 64m");
        return v * mult;
    }
}

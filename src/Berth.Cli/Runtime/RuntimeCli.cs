using System.Text.Json;
using Berth.Oci;
using Berth.Runtime;
using Berth.Runtime.Lifecycle;
using Berth.Runtime.Logging;
using Berth.Runtime.State;

namespace Berth.Cli.Runtime;

/// <summary>The runc-compatible command line: global flags, then one command per handler.</summary>
public static class RuntimeCli
{
    private const string Usage = """
        berth-runtime: a runc-compatible OCI runtime

        Usage: berth-runtime [global options] COMMAND [options] [arguments]

        Commands:
          create   create a container from a bundle (its process waits for start)
          start    start a created container's process
          run      create and start a container (foreground unless --detach)
          state    print a container's state as JSON
          kill     send a signal to a container's init (or --all processes)
          delete   delete a container and everything it holds
          exec     run a new process in a running container
          list     list containers
          spec     write a default config.json
          ps       list the processes of a container (--format table|json)
          pause    freeze every process of a container (cgroup freezer)
          resume   thaw a paused container
          update   change a running container's resource limits
          events   print resource usage and OOM events as JSON lines
          features print the runtime-spec features this runtime supports
          checkpoint  not supported yet (see checkpoint --help)

        Global options:
          --root DIR          state directory (default /run/berth)
          --log FILE          log file (default stderr)
          --log-format FMT    text or json
          --debug             debug logging
          --systemd-cgroup    use systemd cgroups (not supported)
          --version, -v       print the version
          --help, -h          show this help
        """;

    public static int Dispatch(string[] args)
    {
        var g = new ArgParser()
            .Option("root").Option("log").Option("log-format").Option("criu")
            .Flag("debug").Flag("systemd-cgroup").Flag("rootless").Flag("version|v").Flag("help|h");
        try
        {
            g.Parse(args);
        }
        catch (UsageError e)
        {
            Console.Error.WriteLine(e.Message);
            return 1;
        }
        Log.FilePath = g.Get("log");
        Log.Json = g.Get("log-format") switch
        {
            null or "text" => false,
            "json" => true,
            var f => Fail($"unknown log format \"{f}\" (text or json)"),
        };
        Log.DebugEnabled = g.Has("debug");
        if (g.Has("version"))
        {
            Console.WriteLine($"berth-runtime version {BerthVersion.Value}\nspec: {Berth.Oci.Runtime.SpecVersion.Current}");
            return 0;
        }
        if (g.Positional.Count == 0 || g.Has("help"))
        {
            Console.WriteLine(Usage);
            return g.Positional.Count == 0 && !g.Has("help") ? 1 : 0;
        }
        var store = new StateStore(g.Get("root") ?? "/run/berth");
        var cmd = g.Positional[0];
        var rest = g.Positional.Skip(1).ToList();
        try
        {
            if (g.Has("systemd-cgroup"))
                throw new RuntimeError("--systemd-cgroup is not supported: berth manages cgroupfs directly (omit the flag)");
            return cmd switch
            {
                "create" => CreateCmd(store, rest, run: false),
                "run" => CreateCmd(store, rest, run: true),
                "start" => Simple(rest, "start", id => Start.Execute(store, id)),
                "state" => Simple(rest, "state", id => Console.WriteLine(Query.State(store, id))),
                "kill" => KillCmd(store, rest),
                "delete" => DeleteCmd(store, rest),
                "list" => ListCmd(store, rest),
                "spec" => SpecCmd(rest),
                "exec" => ExecCmd(store, rest),
                "ps" => PsCmd(store, rest),
                "pause" => Simple(rest, "pause", id => Pause.Execute(store, id)),
                "resume" => Simple(rest, "resume", id => Pause.Resume(store, id)),
                "update" => UpdateCmd(store, rest),
                "events" => EventsCmd(store, rest),
                "features" => FeaturesCmd(rest),
                "checkpoint" => CheckpointCmd(rest),
                _ => throw new UsageError($"No help topic for '{cmd}'"),
            };
        }
        catch (UsageError e)
        {
            Log.Error(e.Message);
            return 1;
        }
        catch (RuntimeError e)
        {
            Log.Error(e.Message);
            return e.ExitCode;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Berth.Linux.LinuxException)
        {
            Log.Error(e.Message);
            return 1;
        }
    }

    private static bool Fail(string msg) => throw new UsageError(msg);

    private static string OneId(List<string> rest, string cmd)
    {
        if (rest.Count < 1) throw new UsageError($"\"{cmd}\" requires exactly 1 argument(s)");
        return rest[0];
    }

    private static int Simple(List<string> rest, string cmd, Action<string> action)
    {
        var p = new ArgParser().Flag("help|h").Parse(rest);
        action(OneId(p.Positional, cmd));
        return 0;
    }

    private static int CreateCmd(StateStore store, List<string> rest, bool run)
    {
        var p = new ArgParser()
            .Option("bundle|b").Option("pid-file").Option("console-socket").Option("preserve-fds")
            .Flag("no-pivot").Flag("no-new-keyring").Flag("detach|d").Flag("keep").Flag("no-subreaper")
            .Parse(rest);
        var id = OneId(p.Positional, run ? "run" : "create");
        // The init will sit in the container's pid namespace: create protects the binary
        // (CVE-2019-5736) with the sealed exec stub, or re-executes from a sealed copy (docs/adr/0013).
        var argv = Environment.GetCommandLineArgs();
        var o = new CreateOptions
        {
            ProtectExe = () => Berth.Linux.Processes.SealedExe.Reexec(argv),
            WarmUpMigration = true,
            Bundle = p.Get("bundle"),
            PidFile = p.Get("pid-file"),
            ConsoleSocket = p.Get("console-socket"),
            NoPivot = p.Has("no-pivot"),
            NoNewKeyring = p.Has("no-new-keyring"),
            PreserveFds = p.GetInt("preserve-fds", 0),
            InternalConsole = run && !p.Has("detach"),
        };
        if (!run)
        {
            Create.Execute(store, id, o);
            return 0;
        }
        return Berth.Runtime.Lifecycle.Run.Execute(store, id, o, p.Has("detach"));
    }

    private static int KillCmd(StateStore store, List<string> rest)
    {
        var p = new ArgParser().Flag("all|a").Parse(rest);
        var id = OneId(p.Positional, "kill");
        var sig = Kill.ParseSignal(p.Positional.Count > 1 ? p.Positional[1] : null);
        Kill.Execute(store, id, sig, p.Has("all"));
        return 0;
    }

    private static int DeleteCmd(StateStore store, List<string> rest)
    {
        var p = new ArgParser().Flag("force|f").Parse(rest);
        Delete.Execute(store, OneId(p.Positional, "delete"), p.Has("force"));
        return 0;
    }

    private static int ExecCmd(StateStore store, List<string> rest)
    {
        var p = new ArgParser()
            .Option("process|p").Option("pid-file").Option("console-socket").Option("cwd").Option("user|u")
            .Option("preserve-fds").Option("process-label").Option("apparmor").Option("cgroup")
            .Multi("env|e").Multi("cap|c").Multi("additional-gids|g")
            .Flag("detach|d").Flag("tty|t").Flag("no-new-privs").Flag("ignore-paused").Flag("no-subreaper")
            .Parse(rest);
        var id = OneId(p.Positional, "exec");
        if (p.Get("process") is null && p.Positional.Count < 2)
            throw new UsageError("exec needs a command to run (or --process FILE)");
        if (!Berth.Linux.Processes.SealedExe.WasReexecuted) Berth.Linux.Cgroups.MigrationWarmup.Kick();
        Berth.Linux.Processes.SealedExe.Reexec(Environment.GetCommandLineArgs());
        return Exec.Execute(store, id, new ExecOptions
        {
            ProcessFile = p.Get("process"),
            Detach = p.Has("detach"),
            PidFile = p.Get("pid-file"),
            Tty = p.Has("tty"),
            ConsoleSocket = p.Get("console-socket"),
            Cwd = p.Get("cwd"),
            User = p.Get("user"),
            Env = p.All("env"),
            Caps = p.All("cap"),
            AdditionalGids = p.All("additional-gids"),
            NoNewPrivs = p.Has("no-new-privs"),
            PreserveFds = p.GetInt("preserve-fds", 0),
            Args = p.Positional.Skip(1).ToList(),
        });
    }

    private static int SpecCmd(List<string> rest)
    {
        var p = new ArgParser().Option("bundle|b").Flag("rootless").Parse(rest);
        var dir = p.Get("bundle") ?? Directory.GetCurrentDirectory();
        var path = Path.Combine(dir, "config.json");
        if (File.Exists(path)) throw new RuntimeError($"File {path} exists. Remove it first");
        var spec = Berth.Runtime.Spec.DefaultSpec.Create(p.Has("rootless"),
            Berth.Linux.Interop.LibC.geteuid(), Berth.Linux.Interop.LibC.getegid());
        File.WriteAllText(path, JsonSerializer.Serialize(spec, OciJson.Indented.Spec) + "\n");
        return 0;
    }

    private static int ListCmd(StateStore store, List<string> rest)
    {
        var p = new ArgParser().Option("format|f").Flag("quiet|q").Parse(rest);
        var list = Query.List(store);
        if (p.Has("quiet"))
        {
            foreach (var s in list) Console.WriteLine(s.Id);
            return 0;
        }
        switch (p.Get("format") ?? "table")
        {
            case "json":
                Console.WriteLine(list.Count == 0 ? "null" : Berth.Oci.Runtime.StateWriter.ToJson(list));
                return 0;
            case "table":
                var rows = list.Select(s => new[]
                {
                    s.Id, s.Pid.ToString(), s.Status, s.Bundle, s.Created.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ"), s.Owner,
                }).ToList();
                string[] head = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
                var widths = head.Select((h, i) => Math.Max(h.Length, rows.Select(r => r[i].Length).DefaultIfEmpty(0).Max()) + 3).ToArray();
                Console.WriteLine(string.Concat(head.Select((h, i) => i == head.Length - 1 ? h : h.PadRight(widths[i]))));
                foreach (var r in rows)
                    Console.WriteLine(string.Concat(r.Select((v, i) => i == r.Length - 1 ? v : v.PadRight(widths[i]))));
                return 0;
            default:
                throw new UsageError($"invalid format option \"{p.Get("format")}\" (table or json)");
        }
    }

    private static int PsCmd(StateStore store, List<string> rest)
    {
        var p = new ArgParser().Option("format|f").Parse(rest);
        var id = OneId(p.Positional, "ps");
        var format = p.Get("format") ?? "table";
        if (format is not ("table" or "json")) throw new UsageError($"invalid format option \"{format}\" (table or json)");
        bool full = format == "table" && Ps.ParseOptions(p.Positional.Skip(1).ToList());
        var pids = Ps.Pids(store, id);
        Console.Write(format == "json" ? Ps.Json(pids) + "\n" : Ps.Table(pids, full));
        return 0;
    }

    private static int UpdateCmd(StateStore store, List<string> rest)
    {
        var parser = new ArgParser().Option("resources|r").Option("l3-cache-schema").Option("mem-bw-schema");
        foreach (var name in Update.FlagNames) parser.Option(name);
        var p = parser.Parse(rest);
        var id = OneId(p.Positional, "update");
        if (p.Get("l3-cache-schema") is not null || p.Get("mem-bw-schema") is not null)
            throw new RuntimeError("Intel RDT is not supported: --l3-cache-schema and --mem-bw-schema cannot be applied");
        // As with runc, a resources document wins and the other options are ignored.
        var file = p.Get("resources");
        var update = file is null
            ? Update.FromFlags(p.Values.Where(v => Update.FlagNames.Contains(v.Key)).ToDictionary())
            : Update.ParseResources(file == "-" ? Console.In.ReadToEnd() : File.ReadAllText(file), file == "-" ? "stdin" : file);
        Update.Execute(store, id, update);
        return 0;
    }

    private static int EventsCmd(StateStore store, List<string> rest)
    {
        var p = new ArgParser().Option("interval").Flag("stats").Parse(rest);
        var interval = Events.ParseInterval(p.Get("interval") ?? "5s");
        return Events.Execute(store, OneId(p.Positional, "events"), p.Has("stats"), interval, Console.Out);
    }

    private static int FeaturesCmd(List<string> rest)
    {
        new ArgParser().Parse(rest);
        Console.WriteLine(Features.Json(BerthVersion.Value));
        return 0;
    }

    private const string CheckpointHelp = """
        berth-runtime checkpoint - checkpoint a running container (NOT SUPPORTED YET)

        Usage: berth-runtime checkpoint [options] <container-id>

        berth-runtime does not implement checkpoint/restore yet: there is no CRIU integration, so no
        option (--image-path, --work-path, --leave-running, --tcp-established, --pre-dump, ...) is
        supported, and `checkpoint ID` fails without touching the container. This help exits with
        status 1 so that clients probing `checkpoint --help` (podman does) report that the runtime
        does not support checkpoint/restore, instead of failing later.
        """;

    private static int CheckpointCmd(List<string> rest)
    {
        if (rest.Any(a => a is "--help" or "-h" or "-help"))
        {
            Console.WriteLine(CheckpointHelp);
            return 1;
        }
        throw new RuntimeError("checkpoint is not supported yet by berth-runtime (no CRIU integration); the container was left as it is");
    }
}

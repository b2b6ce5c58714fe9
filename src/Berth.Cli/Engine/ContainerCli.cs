using Berth.Engine.Containers;
using Berth.Images.Store;
using Berth.Runtime;

namespace Berth.Cli.Engine;

/// <summary>The engine's container commands (first slice of issue 6): run, ps, rm.</summary>
public static class ContainerCli
{
    public static readonly HashSet<string> Commands = ["run", "ps", "rm", "exec", "stop", "kill", "inspect", "container", "top", "stats",
        "create", "start", "restart", "logs", "wait", "__start", "__exited", "port", .. FilesCli.Commands];

    public static int Dispatch(string[] args, string? storage)
    {
        try
        {
            var cmd = args[0];
            var rest = args[1..].ToList();
            return cmd switch
            {
                "run" => Run(rest, storage),
                "create" => Run(rest, storage, create: true),
                "start" => MonitorCli.Start(rest, Service(storage)),
                "restart" => MonitorCli.Restart(rest, Service(storage)),
                "logs" => MonitorCli.Logs(rest, Service(storage)),
                "wait" => MonitorCli.Wait(rest, Service(storage)),
                "__start" => MonitorCli.StartHelper(rest, Service(storage)),
                "__exited" => MonitorCli.ExitedHelper(rest, Service(storage)),
                "ps" => Ps(rest, storage),
                "rm" => Rm(rest, storage),
                "exec" => Exec(rest, storage),
                "stop" => Stop(rest, storage),
                "kill" => KillCmd(rest, storage),
                "top" when rest.Count == 1 => Print(Service(storage).Top(rest[0])),
                "stats" => StatsCmd(rest, storage),
                "port" => PortCmd(rest, storage),
                _ when FilesCli.Commands.Contains(cmd) => FilesCli.Dispatch(cmd, rest, Service(storage)),
                "container" when rest.Count > 0 && (rest[0] == "prune" || FilesCli.Commands.Contains(rest[0])) =>
                    FilesCli.Dispatch(rest[0], rest.Skip(1).ToList(), Service(storage)),
                "inspect" or "container" when cmd == "inspect" || (rest.Count > 0 && rest[0] == "inspect") =>
                    InspectCmd(cmd == "inspect" ? rest : rest.Skip(1).ToList(), storage),
                _ => throw new UsageError($"unknown command \"{cmd}\""),
            };
        }
        catch (Exception e) when (e is EngineError or RuntimeError or UsageError or IOException or Berth.Linux.LinuxException
            or Berth.Images.ImageNotFoundException or InvalidOperationException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"berth: {e.Message}");
            return e is RuntimeError r ? Math.Max(r.ExitCode, 125) : 125;
        }
    }

    private static ContainerService Service(string? storage)
    {
        var root = ImageStore.ResolveRoot(storage);
        return new ContainerService(new ImageStore(root), new EngineStore(root));
    }

    private static int Run(List<string> rest, string? storage, bool create = false)
    {
        var p = new ArgParser()
            .Option("name").Option("workdir|w").Option("user|u").Option("entrypoint").Option("hostname|h")
            .Option("network|net").Option("memory|m").Option("memory-swap").Option("pids-limit").Option("cpu-shares|c")
            .Option("cpus").Option("cpuset-cpus").Multi("sysctl").Multi("env|e").Multi("cap-add").Multi("cap-drop").Multi("security-opt")
            .Multi("publish|p").Multi("add-host").Multi("dns")
            .Flag("rm").Flag("init").Flag("detach|d").Flag("tty|t").Flag("interactive|i").Flag("read-only").Flag("privileged")
            .Flag("it").Flag("ti")
            .Option("restart").Multi("log-opt").Option("stop-signal").Option("stop-timeout")
            .Multi("volume|v").Multi("mount").Multi("tmpfs").Multi("env-file").Multi("ulimit").Multi("device").Multi("label|l").Option("platform")
            .Parse(rest);
        if (p.Positional.Count == 0) throw new UsageError("berth run needs an image (e.g. berth.local/busybox)");
        string? seccomp = null;
        foreach (var opt in p.All("security-opt"))
        {
            if (opt.StartsWith("seccomp=", StringComparison.Ordinal)) seccomp = opt[8..];
            else if (opt is not ("no-new-privileges" or "no-new-privileges=true"))
                throw new UsageError($"--security-opt {opt}: supported are seccomp=FILE|unconfined and no-new-privileges");
        }
        bool tty = p.Has("tty") || p.Has("it") || p.Has("ti");
        // The container's process is the runtime's; re-exec from a read-only copy first (CVE-2019-5736).
        // Detached or created containers are started by the monitor's helper, which does that itself.
        bool inProcess = !p.Has("detach") && !create;
        // Unless the container's init can end in the sealed exec stub (docs/adr/0013): a new pid
        // namespace (always, in the engine), no --init reaper, a seccomp profile that allows the stub's
        // calls (the default one does; a custom file may not), an unfiltered runtime, x86_64.
        bool stub = inProcess && Berth.Linux.Processes.ExecStub.Supported && !p.Has("init")
            && (seccomp is null || seccomp == "unconfined") && !Berth.Runtime.Init.ExecStubPolicy.RuntimeFiltered();
        if (inProcess && !Berth.Linux.Processes.SealedExe.WasReexecuted) Berth.Linux.Cgroups.MigrationWarmup.Kick();
        if (inProcess && !stub) Berth.Linux.Processes.SealedExe.Reexec(Environment.GetCommandLineArgs());
        return Service(storage).Run(new RunOptions
        {
            Image = p.Positional[0],
            Command = p.Positional.Skip(1).ToList(),
            Name = p.Get("name"),
            Remove = p.Has("rm"),
            Detach = p.Has("detach"),
            Tty = tty,
            Interactive = p.Has("interactive") || p.Has("it") || p.Has("ti"),
            Env = [.. RunCliExtras.EnvFiles(p.All("env-file")), .. p.All("env")],
            Workdir = p.Get("workdir"),
            User = p.Get("user"),
            Entrypoint = p.Get("entrypoint") is { } ep ? (ep.Length == 0 ? [] : [ep]) : null,
            Hostname = p.Get("hostname"),
            Network = p.Get("network") ?? "bridge",
            ReadOnly = p.Has("read-only"),
            Init = p.Has("init"),
            // Reached only if create refuses the stub after all: the engine has side effects by then
            // and cannot start over in a re-executed copy, so the run fails cleanly instead.
            ProtectExe = stub ? () => throw new Berth.Engine.Containers.EngineError(
                "the container cannot use berth's sealed exec stub (CVE-2019-5736 protection); run it again with --init") : null,
            Privileged = p.Has("privileged"),
            CapAdd = p.All("cap-add"),
            CapDrop = p.All("cap-drop"),
            Seccomp = seccomp,
            Memory = p.Get("memory") is { } m ? Berth.Runtime.Lifecycle.Update.ParseSize(m) : null,
            MemorySwap = p.Get("memory-swap") is { } ms ? Berth.Runtime.Lifecycle.Update.ParseSize(ms) : null,
            PidsLimit = p.Get("pids-limit") is { } pl ? (long.TryParse(pl, out var v) ? v : throw new UsageError($"--pids-limit \"{pl}\": not a number")) : null,
            CpuShares = p.Get("cpu-shares") is { } cs ? (ulong.TryParse(cs, out var sh) ? sh : throw new UsageError($"--cpu-shares \"{cs}\": not a number")) : null,
            Cpus = p.Get("cpus") is { } cp ? (double.TryParse(cp, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d) ? d : throw new UsageError($"--cpus \"{cp}\": not a number")) : null,
            CpusetCpus = p.Get("cpuset-cpus"),
            Publish = p.All("publish"),
            AddHost = p.All("add-host"),
            Dns = p.All("dns"),
            Mounts = RunCliExtras.Mounts(p),
            Ulimits = p.All("ulimit").Select(RunFlags.ParseUlimit).ToList(),
            Devices = p.All("device").Select(RunFlags.ParseDevice).ToList(),
            Labels = p.All("label").Select(RunFlags.ParseLabel).GroupBy(kv => kv.Key).ToDictionary(g => g.Key, g => g.Last().Value),
            Platform = p.Get("platform"),
            Sysctls = p.All("sysctl").Select(x => x.Split('=', 2)).ToDictionary(a => a[0], a => a.Length > 1 ? a[1] : throw new UsageError($"--sysctl {a[0]}: expected KEY=VALUE")),
            CreateOnly = create,
            RestartPolicy = p.Get("restart") is { } rp ? Checked(() => Berth.Engine.Monitor.RestartPolicy.Parse(rp).ToString()) : "no",
            Log = Checked(() => Berth.Engine.Monitor.LogOptions.Parse(p.All("log-opt"))),
            StopSignal = p.Get("stop-signal"),
            StopTimeout = p.Get("stop-timeout") is null ? null : p.GetInt("stop-timeout", 10),
        });
    }

    /// <summary>A flag value's parse error as a usage error (it names the flag).</summary>
    private static T Checked<T>(Func<T> parse)
    {
        try { return parse(); }
        catch (ArgumentException e) { throw new UsageError(e.Message); }
    }

    private static int Exec(List<string> rest, string? storage)
    {
        var p = new ArgParser().Option("workdir|w").Option("user|u").Multi("env|e")
            .Flag("detach|d").Flag("tty|t").Flag("interactive|i").Flag("it").Flag("ti").Parse(rest);
        if (p.Positional.Count < 2) throw new UsageError("berth exec needs a container and a command");
        bool tty = p.Has("tty") || p.Has("it") || p.Has("ti");
        if (tty && p.Has("detach")) throw new UsageError("berth exec -d -t: a detached exec has no terminal to attach; drop -t");
        if (!Berth.Linux.Processes.SealedExe.WasReexecuted) Berth.Linux.Cgroups.MigrationWarmup.Kick();
        Berth.Linux.Processes.SealedExe.Reexec(Environment.GetCommandLineArgs());
        return Service(storage).Exec(p.Positional[0], new Berth.Runtime.Lifecycle.ExecOptions
        {
            Args = p.Positional.Skip(1).ToList(),
            Env = p.All("env"),
            Cwd = p.Get("workdir"),
            User = p.Get("user"),
            Detach = p.Has("detach"),
            Tty = tty,
            InternalConsole = tty,
        });
    }

    private static int Stop(List<string> rest, string? storage)
    {
        var p = new ArgParser().Option("time|t").Option("signal|s").Parse(rest);
        if (p.Positional.Count == 0) throw new UsageError("berth stop needs a container name or id");
        var grace = TimeSpan.FromSeconds(p.GetInt("time", 10));
        var signal = Berth.Runtime.Lifecycle.Kill.ParseSignal(p.Get("signal") ?? "TERM");
        var svc = Service(storage);
        foreach (var r in p.Positional)
        {
            var c = svc.Find(r); // the container's --stop-signal/--stop-timeout (or the image's StopSignal) unless given here
            svc.Stop(r, p.Get("signal") is null ? svc.StopSignalOf(c) : signal, p.Get("time") is null ? svc.StopTimeoutOf(c) : grace);
            Console.WriteLine(r);
        }
        return 0;
    }

    private static int KillCmd(List<string> rest, string? storage)
    {
        var p = new ArgParser().Option("signal|s").Parse(rest);
        if (p.Positional.Count == 0) throw new UsageError("berth kill needs a container name or id");
        var signal = Berth.Runtime.Lifecycle.Kill.ParseSignal(p.Get("signal") ?? "KILL");
        var svc = Service(storage);
        foreach (var r in p.Positional) svc.Signal(r, signal);
        return 0;
    }

    private static int Print(string text)
    {
        Console.Write(text);
        return 0;
    }

    private static int StatsCmd(List<string> rest, string? storage)
    {
        var p = new ArgParser().Flag("no-stream").Parse(rest, stopAtPositional: false);
        if (!p.Has("no-stream")) throw new UsageError("berth stats streams with the container monitor, not built yet: use --no-stream");
        if (p.Positional.Count == 0) throw new UsageError("berth stats needs a container name or id");
        Service(storage).Stats(p.Positional, Console.Out);
        return 0;
    }

    /// <summary>`berth port NAME`: one line per published port (80/tcp -> 0.0.0.0:8080).</summary>
    private static int PortCmd(List<string> rest, string? storage)
    {
        var p = new ArgParser().Parse(rest, stopAtPositional: false);
        if (p.Positional.Count != 1) throw new UsageError("berth port needs one container name or id");
        foreach (var line in Service(storage).Ports(p.Positional[0])) Console.WriteLine(line);
        return 0;
    }

    private static int InspectCmd(List<string> rest, string? storage)
    {
        var p = new ArgParser().Parse(rest, stopAtPositional: false);
        if (p.Positional.Count == 0) throw new UsageError("berth inspect needs a container name or id");
        Console.WriteLine(Service(storage).InspectJson(p.Positional));
        return 0;
    }

    private static int Ps(List<string> rest, string? storage)
    {
        var p = new ArgParser().Flag("all|a").Flag("quiet|q").Option("format").Parse(rest);
        var rows = Service(storage).List(p.Has("all")).ToList();
        if (p.Get("format") is { } format)
        {
            if (format != "json") throw new UsageError($"--format {format}: only json is supported");
            using var ms = new MemoryStream();
            using (var w = new System.Text.Json.Utf8JsonWriter(ms, new System.Text.Json.JsonWriterOptions { Indented = true }))
            {
                w.WriteStartArray();
                foreach (var (c, status) in rows)
                {
                    w.WriteStartObject();
                    w.WriteString("Id", c.Id);
                    w.WriteStartArray("Names");
                    w.WriteStringValue(c.Name);
                    w.WriteEndArray();
                    w.WriteString("Image", c.Image);
                    w.WriteString("ImageID", c.ImageId);
                    w.WriteString("Command", c.Command);
                    w.WriteString("Created", c.Created.ToString("O"));
                    w.WriteString("State", status.StartsWith("exited", StringComparison.Ordinal) || status == "stopped" ? "exited" : status);
                    w.WriteString("Status", status);
                    if (c.ExitCode is { } code) w.WriteNumber("ExitCode", code);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            Console.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
            return 0;
        }
        if (p.Has("quiet"))
        {
            foreach (var (c, _) in rows) Console.WriteLine(c.ShortId);
            return 0;
        }
        Console.WriteLine($"{"CONTAINER ID",-14}{"IMAGE",-28}{"COMMAND",-24}{"CREATED",-22}{"STATUS",-14}NAMES");
        foreach (var (c, status) in rows)
        {
            var command = c.Command.Length > 22 ? c.Command[..21] + "…" : c.Command;
            Console.WriteLine($"{c.ShortId,-14}{c.Image,-28}{command,-24}{c.Created.ToString("yyyy-MM-dd HH:mm:ss"),-22}{status,-14}{c.Name}");
        }
        return 0;
    }

    private static int Rm(List<string> rest, string? storage)
    {
        var p = new ArgParser().Flag("force|f").Flag("volumes|v").Parse(rest);
        if (p.Positional.Count == 0) throw new UsageError("berth rm needs a container name or id");
        var svc = Service(storage);
        int rc = 0;
        foreach (var r in p.Positional)
        {
            try
            {
                if (p.Has("volumes")) svc.RemoveWithAnonymousVolumes(r, p.Has("force"));
                else svc.Remove(r, p.Has("force"));
                Console.WriteLine(r);
            }
            catch (EngineError e)
            {
                Console.Error.WriteLine($"berth: {e.Message}");
                rc = 1;
            }
        }
        return rc;
    }
}

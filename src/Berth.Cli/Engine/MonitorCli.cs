using Berth.Engine.Containers;
using Berth.Engine.Monitor;

namespace Berth.Cli.Engine;

/// <summary>
/// The commands of detached containers (docs/adr/0009): start, restart, logs, wait, and the
/// hidden helpers the container monitor runs (`__start`, `__exited`).
/// </summary>
public static class MonitorCli
{
    public static int Start(List<string> rest, ContainerService svc)
    {
        var p = new ArgParser().Flag("attach|a").Flag("interactive|i").Parse(rest, stopAtPositional: false);
        if (p.Has("attach") || p.Has("interactive")) throw new UsageError("berth start -a/-i: attaching is not supported; use berth logs -f");
        if (p.Positional.Count == 0) throw new UsageError("berth start needs a container name or id");
        int rc = 0;
        foreach (var r in p.Positional)
        {
            try
            {
                svc.Start(r);
                Console.WriteLine(r);
            }
            catch (EngineError e)
            {
                Console.Error.WriteLine($"berth: {e.Message}");
                rc = 125;
            }
        }
        return rc;
    }

    public static int Restart(List<string> rest, ContainerService svc)
    {
        var p = new ArgParser().Option("time|t").Parse(rest, stopAtPositional: false);
        if (p.Positional.Count == 0) throw new UsageError("berth restart needs a container name or id");
        TimeSpan? grace = p.Get("time") is null ? null : TimeSpan.FromSeconds(p.GetInt("time", 10));
        foreach (var r in p.Positional)
        {
            svc.Restart(r, grace);
            Console.WriteLine(r);
        }
        return 0;
    }

    public static int Logs(List<string> rest, ContainerService svc)
    {
        var p = new ArgParser().Flag("follow|f").Flag("timestamps|t").Option("tail|n").Parse(rest, stopAtPositional: false);
        if (p.Positional.Count != 1) throw new UsageError("berth logs needs one container name or id");
        int? tail = p.Get("tail") is null or "all" ? null : p.GetInt("tail", 0);
        var c = svc.Find(p.Positional[0]);
        using var stdout = Console.OpenStandardOutput();
        using var stderr = Console.OpenStandardError();
        LogReader.Run(svc.LogPath(c), tail, p.Has("follow"), p.Has("timestamps"), () => svc.StillLogging(c.Id), stdout, stderr);
        return 0;
    }

    public static int Wait(List<string> rest, ContainerService svc)
    {
        var p = new ArgParser().Parse(rest, stopAtPositional: false);
        if (p.Positional.Count == 0) throw new UsageError("berth wait needs a container name or id");
        int rc = 0;
        foreach (var r in p.Positional)
        {
            var code = svc.Wait(r);
            if (code is null)
            {
                Console.Error.WriteLine($"berth: container {r} was removed before its exit code was seen");
                rc = 125;
            }
            else Console.WriteLine(code);
        }
        return rc;
    }

    /// <summary>`__start ID RESTARTS` (fd 3: the monitor's report socket).</summary>
    public static int StartHelper(List<string> rest, ContainerService svc)
    {
        if (rest.Count != 2 || !int.TryParse(rest[1], out var restarts)) throw new UsageError("__start ID RESTARTS (run by the container monitor)");
        ReexecProtected();
        return svc.StartHelper(rest[0], restarts);
    }

    /// <summary>`__exited ID CODE final|restarting`.</summary>
    public static int ExitedHelper(List<string> rest, ContainerService svc)
    {
        if (rest.Count != 3 || !int.TryParse(rest[1], out var code) || rest[2] is not ("final" or "restarting"))
            throw new UsageError("__exited ID CODE final|restarting (run by the container monitor)");
        return svc.ExitedHelper(rest[0], code, rest[2] == "final");
    }

    /// <summary>The runtime's init enters the container: run from a copy it cannot write (CVE-2019-5736, ADR 0004).</summary>
    private static void ReexecProtected()
    {
        if (!Berth.Linux.Processes.SealedExe.WasReexecuted) Berth.Linux.Cgroups.MigrationWarmup.Kick();
        Berth.Linux.Processes.SealedExe.Reexec(Environment.GetCommandLineArgs());
    }
}

using Berth.Cli.Engine;
using Berth.Cli.Runtime;

namespace Berth.Cli;

/// <summary>
/// One binary, several faces: invoked as `berth-runtime` (or `berth runtime ...`) it is the
/// runc-compatible OCI runtime.
/// </summary>
public static class Program
{
    public const string Version = BerthVersion.Value;

    public static int Main(string[] args)
    {
        // The container monitor (docs/adr/0009) first: it touches nothing else of the binary.
        if (args.Length > 0 && args[0] == "__monitor") return Berth.Engine.Monitor.ContainerMonitor.Main(args);
        Berth.Runtime.Logging.Timing.Mark("main");
        var self = Path.GetFileName(Environment.GetCommandLineArgs()[0]);
        if (self.EndsWith("-runtime", StringComparison.Ordinal) || self == "runc")
            return RuntimeCli.Dispatch(args);
        if (args.Length > 0 && args[0] == "runtime")
            return RuntimeCli.Dispatch(args[1..]);
        if (args.Length > 0 && args[0] == "sandbox")
            return SandboxCli.Dispatch(args[1..]);
        // The engine's image commands; `--storage DIR` may come first. Nothing of the engine is
        // touched (or loaded) on the runtime path above.
        int cmdAt = 0;
        string? storage = null;
        if (args.Length > 1 && args[0] == "--storage") { storage = args[1]; cmdAt = 2; }
        else if (args.Length > 0 && args[0].StartsWith("--storage=", StringComparison.Ordinal)) { storage = args[0][10..]; cmdAt = 1; }
        if (args.Length > cmdAt && ImageCli.Commands.Contains(args[cmdAt]))
            return ImageCli.Dispatch(args[cmdAt..], storage);
        if (args.Length > cmdAt && ContainerCli.Commands.Contains(args[cmdAt]))
            return ContainerCli.Dispatch(args[cmdAt..], storage);
        if (args.Length > 0 && args[0] is "--version" or "-v" or "version")
        {
            Console.WriteLine($"berth version {Version}");
            return 0;
        }
        Console.Error.WriteLine(
            $"""
            berth {Version}: a Linux container runtime

            Usage:
              berth runtime COMMAND [ARGS]   the runc-compatible OCI runtime (also installed as berth-runtime)
              berth [--storage DIR] COMMAND  the engine (images under /var/lib/berth or $BERTH_STORAGE)
              berth --version

            Runtime commands: create, start, run, state, kill, delete, list, spec (berth runtime --help)
            Container commands: run [--rm] [-d] [-it] [--name N] [-e K=V] [-w DIR] [-u USER] [--network none|host] IMAGE [CMD...], ps [-a], rm [-f]
            Networking:       run --network bridge (default)|none|host|private|container:NAME -p [IP:]HOSTPORT:PORT[/udp]
                              --add-host NAME:IP --dns IP; port NAME (docs/adr/0010)
            Detached:         run -d [--restart P] [--log-opt max-size=S] IMAGE, create, start, restart, logs [-f] [--tail N] [-t], wait
            Files and volumes: run -v SRC:DST[:ro] --mount type=bind|volume|tmpfs,... --tmpfs DST, cp, diff, export, commit,
                              rename, container prune, volume create|ls|rm|inspect|prune
            Sandbox:          sandbox run [--box DIR] [--time S] [--wall-time S] [--memory M] ... -- PROGRAM ARGS (berth sandbox --help)
            Image commands:   load -i FILE, save -o FILE IMAGE..., images, image inspect|history|prune|default|unpack, tag, rmi
            """);
        return args.Length == 0 || args[0] is "--help" or "-h" or "help" ? 0 : 1;
    }
}

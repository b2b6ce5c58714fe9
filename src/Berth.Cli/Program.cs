using Berth.Cli.Runtime;

namespace Berth.Cli;

/// <summary>
/// One binary, several faces: invoked as `berth-runtime` (or `berth runtime ...`) it is the
/// runc-compatible OCI runtime.
/// </summary>
public static class Program
{
    public const string Version = "0.1.0";

    public static int Main(string[] args)
    {
        Berth.Runtime.Logging.Timing.Mark("main");
        var self = Path.GetFileName(Environment.GetCommandLineArgs()[0]);
        if (self.EndsWith("-runtime", StringComparison.Ordinal) || self == "runc")
            return RuntimeCli.Dispatch(args);
        if (args.Length > 0 && args[0] == "runtime")
            return RuntimeCli.Dispatch(args[1..]);
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
              berth --version

            Runtime commands: create, start, run, state, kill, delete, list, spec (berth runtime --help)
            """);
        return args.Length == 0 || args[0] is "--help" or "-h" or "help" ? 0 : 1;
    }
}

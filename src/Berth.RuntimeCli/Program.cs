using Berth.Cli.Runtime;

namespace Berth.Cli;

/// <summary>
/// `berth-runtime`: the runc-compatible OCI runtime as a binary of its own, without the engine, images
/// and sandbox of `berth` (which still serves `berth runtime ...`). Every runtime call starts a process,
/// and a smaller NativeAOT image starts faster: fewer types whose static bases are allocated at start-up,
/// fewer pages touched (docs/adr/0001).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        Berth.Runtime.Logging.Timing.Mark("main");
        return RuntimeCli.Dispatch(args);
    }
}

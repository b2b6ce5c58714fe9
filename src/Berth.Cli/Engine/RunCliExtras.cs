using Berth.Engine.Containers;
using Berth.Engine.Volumes;

namespace Berth.Cli.Engine;

/// <summary>The `run` flags of the volumes-and-files slice, read from the parsed command line.</summary>
internal static class RunCliExtras
{
    /// <summary>-v, --mount and --tmpfs in the order given (a later flag on the same destination is an error later).</summary>
    public static List<MountRequest> Mounts(ArgParser p) =>
        [.. p.All("volume").Select(MountSpec.ParseVolume), .. p.All("mount").Select(MountSpec.ParseMount), .. p.All("tmpfs").Select(MountSpec.ParseTmpfs)];

    /// <summary>--env-file FILE...: read in order, before any -e (so -e wins, as in docker).</summary>
    public static List<string> EnvFiles(IEnumerable<string> files)
    {
        var env = new List<string>();
        foreach (var f in files)
        {
            string text;
            try { text = File.ReadAllText(f); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new EngineError($"--env-file {f}: {(e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : e.Message)}");
            }
            env.AddRange(RunFlags.ParseEnvFile(text, f, Environment.GetEnvironmentVariable));
        }
        return env;
    }
}

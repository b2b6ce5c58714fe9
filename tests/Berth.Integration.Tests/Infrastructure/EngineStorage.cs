namespace Berth.Integration.Tests.Infrastructure;

/// <summary>
/// A throwaway engine store for one test: `berth --storage DIR ...`, and on dispose every container
/// removed (running ones killed), anything still mounted below DIR unmounted, DIR deleted.
/// </summary>
public sealed class EngineStorage : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("berth-engine-it.").FullName;
    private readonly string _berth;

    public EngineStorage(TestEnvironment env) => _berth = Path.Combine(Path.GetDirectoryName(env.RuntimePath)!, "berth");

    public ProcResult Run(params string[] args) => ProcessRunner.Run(_berth, ["--storage", Dir, .. args], Path.Combine(Dir, "cmds"));

    /// <summary>Runs and asserts success, returning stdout.</summary>
    public string Ok(params string[] args)
    {
        var r = Run(args);
        if (!r.Succeeded) throw new Xunit.Sdk.XunitException($"expected success: {r}");
        return r.Stdout;
    }

    public string[] Mounts() => File.ReadAllLines("/proc/self/mountinfo").Where(l => l.Split(' ')[4].StartsWith(Dir, StringComparison.Ordinal)).ToArray();

    public void Dispose()
    {
        var ids = Run("ps", "-a", "-q");
        foreach (var id in ids.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)) Run("rm", "-f", id.Trim());
        foreach (var line in Mounts().Reverse()) ProcessRunner.Host("umount", "-l", line.Split(' ')[4]);
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

using Xunit;

namespace Berth.Integration.Tests.Infrastructure;

/// <summary>
/// Once per test run: finds the runtime under test and makes one template bundle with
/// scripts/make-bundle, which every test copies into its own temp dir.
/// </summary>
public sealed class TestEnvironment : IDisposable
{
    /// <summary>Per-run scratch space: template bundle, host command output.</summary>
    public static readonly string ScratchRoot = Path.Combine("/tmp/berth-it", $"run-{Environment.ProcessId}");

    /// <summary>Parent of every test's --root state dir.</summary>
    public const string StateRootParent = "/run/berth-tests";

    public string RepoRoot { get; }
    public string RuntimePath { get; }
    public string TemplateBundle { get; }

    /// <summary>True when the suite is being validated against runc (BERTH_RUNTIME=/usr/sbin/runc).</summary>
    public bool IsRunc => Path.GetFileName(RuntimePath) == "runc";

    public TestEnvironment()
    {
        if (!OperatingSystem.IsLinux())
            throw new InvalidOperationException("the integration suite needs Linux");
        if (!Environment.IsPrivilegedProcess)
            throw new InvalidOperationException("the integration suite must run as root (it creates real containers)");

        RepoRoot = FindRepoRoot();
        string? fromEnv = Environment.GetEnvironmentVariable("BERTH_RUNTIME");
        RuntimePath = string.IsNullOrWhiteSpace(fromEnv)
            ? Path.Combine(RepoRoot, "artifacts", "bin", "berth-runtime")
            : Path.GetFullPath(fromEnv);
        if (!File.Exists(RuntimePath))
            throw new InvalidOperationException(
                $"runtime under test not found at {RuntimePath}: run scripts/build, or set BERTH_RUNTIME (e.g. BERTH_RUNTIME=/usr/sbin/runc)");

        Directory.CreateDirectory(ScratchRoot);
        MakeTraversable(ScratchRoot);
        Directory.CreateDirectory(StateRootParent);

        TemplateBundle = Path.Combine(ScratchRoot, "template");
        string makeBundle = Path.Combine(RepoRoot, "scripts", "make-bundle");
        var r = ProcessRunner.Run(makeBundle, [TemplateBundle], ScratchRoot, TimeSpan.FromMinutes(5));
        if (!r.Succeeded || !File.Exists(Path.Combine(TemplateBundle, "config.json")))
            throw new InvalidOperationException("scripts/make-bundle failed:\n" + r);
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "berth.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException($"no berth.slnx above {AppContext.BaseDirectory}");
    }

    /// <summary>chmod 755 the dir and each parent below /tmp: a user-namespaced root must traverse them.</summary>
    public static void MakeTraversable(string dir)
    {
        for (var d = new DirectoryInfo(dir); d is not null && d.FullName != "/tmp" && d.FullName != "/"; d = d.Parent)
        {
            if (d.Exists) File.SetUnixFileMode(d.FullName, Mode755);
        }
    }

    public const UnixFileMode Mode755 =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
        UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    public const UnixFileMode Mode777 = Mode755 | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    public void Dispose()
    {
        try { Directory.Delete(ScratchRoot, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class RuntimeCollection : ICollectionFixture<TestEnvironment>
{
    public const string Name = "runtime";
}

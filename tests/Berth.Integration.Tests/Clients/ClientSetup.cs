using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests.Clients;

/// <summary>
/// What scripts/setup-clients prepared (once per test run; the script is idempotent): podman's
/// private containers.conf and storage.conf registering berth, the busybox image, and the config
/// of a private containerd. Its KEY=VALUE output lines are parsed here.
/// </summary>
public sealed class ClientSetup
{
    private static readonly object s_lock = new();
    private static ClientSetup? s_done;

    public string ContainersConf { get; private init; } = "";
    public string StorageConf { get; private init; } = "";
    /// <summary>The binary registered as podman runtime "berth" (the runtime under test).</summary>
    public string Runtime { get; private init; } = "";
    public string Image { get; private init; } = "";
    public string OciArchive { get; private init; } = "";
    public string ContainerdConfig { get; private init; } = "";
    public string ContainerdAddress { get; private init; } = "";
    public string ContainerdState { get; private init; } = "";

    /// <summary>Exports for a /bin/sh prelude so podman uses the private config and storage.</summary>
    public string PodmanPrelude =>
        $"export CONTAINERS_CONF={ProcessRunner.Quote(ContainersConf)} CONTAINERS_STORAGE_CONF={ProcessRunner.Quote(StorageConf)}";

    public static ClientSetup Get(TestEnvironment env)
    {
        lock (s_lock)
        {
            if (s_done is not null) return s_done;
            string script = Path.Combine(env.RepoRoot, "scripts", "setup-clients");
            // BERTH_RUNTIME reaches the script through the environment (validating against runc).
            var r = ProcessRunner.Run(script, [], Path.Combine(TestEnvironment.ScratchRoot, "clients"), TimeSpan.FromMinutes(10));
            Assert.True(r.Succeeded, "scripts/setup-clients failed:\n" + r);
            var kv = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
            string Need(string k) => kv.TryGetValue(k, out var v) ? v : throw new InvalidOperationException($"setup-clients printed no {k}:\n{r}");
            s_done = new ClientSetup
            {
                ContainersConf = Need("CONTAINERS_CONF"),
                StorageConf = Need("CONTAINERS_STORAGE_CONF"),
                Runtime = Need("PODMAN_RUNTIME"),
                Image = Need("IMAGE"),
                OciArchive = Need("OCI_ARCHIVE"),
                ContainerdConfig = Need("CONTAINERD_CONFIG"),
                ContainerdAddress = Need("CONTAINERD_ADDRESS"),
                ContainerdState = Need("CONTAINERD_STATE"),
            };
            return s_done;
        }
    }

    /// <summary>A unique container name, like TestContainer's ids: bt-SLUG-HEX.</summary>
    public static string NewName(string test)
    {
        string slug = new string(test.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray());
        if (slug.Length > 24) slug = slug[..24];
        return $"bt-{slug.Trim('-')}-{Guid.NewGuid().ToString("N")[..8]}";
    }

    /// <summary>What a pty gave back: without NULs (raw, or echoed as "^@") and carriage returns.</summary>
    public static string PtyText(string s) => s.Replace("\0", "").Replace("^@", "").Replace("\r", "");

    /// <summary>Polls until the check finds nothing (killed processes take a moment to go), then asserts.</summary>
    public static void AssertNothingLeft(string what, Func<List<string>> find)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        List<string> left;
        while ((left = find()).Count > 0 && DateTime.UtcNow < deadline) Thread.Sleep(100);
        Assert.True(left.Count == 0, $"{what} left things behind:\n  " + string.Join("\n  ", left));
    }
}

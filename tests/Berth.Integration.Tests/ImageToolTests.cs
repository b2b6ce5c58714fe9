using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>
/// The engine's images against other tools (scripts/setup-image-tools installs them): the default
/// image is reproducible; an image made by umoci and copied by skopeo into an oci-archive loads into
/// berth and runs in berth-runtime; berth's docker-archive and oci-archive load into podman and run
/// there (crun). Every berth store and podman root is private to the test, under its work dir.
/// </summary>
public sealed class ImageToolTests(TestEnvironment env) : IntegrationTest(env)
{
    private string Berth => Path.Combine(Env.RepoRoot, "artifacts", "bin", "berth");
    private string DefaultArchive => Path.Combine(Env.RepoRoot, "artifacts", "bin", "berth-busybox.oci.tar");

    private static ProcResult Bash(TestContainer c, string script, int timeoutSeconds = 120) =>
        ProcessRunner.Run("/bin/bash", ["-euo", "pipefail", "-c", script], Path.Combine(c.WorkDir, "cmds"), TimeSpan.FromSeconds(timeoutSeconds));

    private ProcResult B(TestContainer c, params string[] args) =>
        ProcessRunner.Run(Berth, ["--storage", Path.Combine(c.WorkDir, "store"), .. args], Path.Combine(c.WorkDir, "cmds"), TimeSpan.FromSeconds(120));

    private static void Ok(ProcResult r) => Assert.True(r.Succeeded, r.ToString());

    [Fact]
    public void Default_image_loads_twice_as_one_image_and_rebuilds_to_the_same_bytes()
    {
        var c = NewContainer();
        Ok(B(c, "image", "default"));
        var first = JsonNode.Parse(B(c, "images", "--format", "json").Stdout)!.AsArray();
        Ok(B(c, "image", "default"));
        var second = JsonNode.Parse(B(c, "images", "--format", "json").Stdout)!.AsArray();
        Assert.Single(second);
        Assert.Equal((string?)first[0]!["Id"], (string?)second[0]!["Id"]);
        Assert.Equal((string?)first[0]!["Digest"], (string?)second[0]!["Digest"]);
        Assert.Equal("berth.local/busybox:latest", (string?)second[0]!["Names"]![0]);

        // Built again now from the host's busybox: the same bytes scripts/build wrote.
        var again = Path.Combine(c.WorkDir, "again.tar");
        var made = B(c, "image", "default", "-o", again);
        Ok(made);
        Assert.Equal(File.ReadAllBytes(DefaultArchive), File.ReadAllBytes(again));
        Assert.Equal((string?)second[0]!["Digest"], made.Stdout.Trim());
    }

    [Fact]
    public void An_image_from_umoci_and_skopeo_loads_into_berth_and_runs()
    {
        var c = NewContainer();
        string t = Path.Combine(c.WorkDir, "tools");
        // umoci builds the image (its own tar writer, gzip layers) from the busybox rootfs; skopeo
        // copies it into an oci-archive, named as a registry image would be.
        Ok(Bash(c, $"""
            t={ProcessRunner.Quote(t)}; mkdir -p "$t"; cd "$t"
            umoci init --layout layout
            umoci new --image layout:bb
            umoci unpack --image layout:bb bundle >/dev/null
            cp -a {ProcessRunner.Quote(c.RootFs)}/. bundle/rootfs/
            echo made-by-umoci > bundle/rootfs/etc/origin
            umoci repack --image layout:bb bundle >/dev/null
            umoci config --image layout:bb --config.cmd sh --config.env PATH=/bin:/sbin:/usr/bin --architecture amd64 --os linux
            skopeo copy -q oci:layout:bb oci-archive:bb.tar:example.com/tools/bb:1
            """));
        var load = B(c, "load", "-i", Path.Combine(t, "bb.tar"));
        Ok(load);
        Assert.Contains("example.com/tools/bb:1", load.Stdout);

        Ok(ProcessRunner.Host("rm", "-rf", c.RootFs));
        Ok(B(c, "image", "unpack", "example.com/tools/bb:1", c.RootFs));
        c.Sh("cat /etc/origin; ls /bin/busybox");
        var run = c.Run();
        Assert.True(run.Succeeded, run.ToString());
        Assert.Equal(["made-by-umoci", "/bin/busybox"], Lines(run.Stdout));
    }

    [Fact]
    public void The_default_image_runs_in_berth_runtime()
    {
        var c = NewContainer();
        Ok(ProcessRunner.Host("rm", "-rf", c.RootFs));
        Ok(B(c, "image", "unpack", "berth.local/busybox", c.RootFs)); // loaded on first use
        c.Sh("echo $PATH; id -u; ls -l /bin/sh");
        var run = c.Run();
        Assert.True(run.Succeeded, run.ToString());
        var lines = Lines(run.Stdout);
        Assert.Equal("0", lines[1]);
        Assert.Contains("/bin/sh -> busybox", lines[2]);
    }

    [Theory]
    [InlineData("docker-archive")]
    [InlineData("oci-archive")]
    public void An_archive_berth_saves_loads_into_podman_and_runs(string format)
    {
        var c = NewContainer();
        Ok(B(c, "image", "default"));
        Ok(B(c, "tag", "berth.local/busybox", "example.com/berth/saved:" + format));
        string archive = Path.Combine(c.WorkDir, "saved.tar");
        Ok(B(c, "save", "--format", format, "-o", archive, "example.com/berth/saved:" + format));

        // A private podman: its own root, runroot (podman wants it under 50 characters) and tmpdir
        // (vfs: no mounts left behind), and the limits this host allows (no CAP_SYS_RESOURCE:
        // /work/shared/guide/host-notes.md).
        var r = Bash(c, $$$"""
            p=$(mktemp -d /tmp/berth-pm.XXXXXX)
            cat > "$p/containers.conf" <<'C'
            [containers]
            default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
            [engine]
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            C
            export CONTAINERS_CONF="$p/containers.conf"
            pm() { podman --root "$p/root" --runroot "$p/run" --tmpdir "$p/tmp" --storage-driver vfs "$@"; }
            trap 'pm rm -af >/dev/null 2>&1 || true; pm rmi -af >/dev/null 2>&1 || true; rm -rf "$p"' EXIT
            pm load -q -i {{{ProcessRunner.Quote(archive)}}}
            pm images --format '{{.Repository}}:{{.Tag}}'
            pm run --rm --network none example.com/berth/saved:{{{format}}} echo hi from podman
            pm run --rm --network none example.com/berth/saved:{{{format}}} cat /etc/passwd
            """, 180);
        Assert.True(r.Succeeded, r.ToString());
        var lines = Lines(r.Stdout);
        Assert.Contains($"example.com/berth/saved:{format}", lines);
        Assert.Contains("hi from podman", lines);
        Assert.Contains(lines, l => l.StartsWith("root:x:0:0:", StringComparison.Ordinal));
    }
}

using System.Formats.Tar;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>`berth cp / diff / export / commit / rename / container prune`.</summary>
public sealed class EngineFilesTests(TestEnvironment env) : IntegrationTest(env)
{
    private const string Image = "berth.local/busybox";

    [Fact]
    public void Cp_in_and_out_of_running_and_stopped_containers_stays_inside_the_rootfs()
    {
        using var e = new EngineStorage(Env);
        var host = Directory.CreateDirectory(Path.Combine(e.Dir, "h")).FullName;
        File.WriteAllText(Path.Combine(host, "in.txt"), "payload\n");
        Directory.CreateDirectory(Path.Combine(host, "tree/sub"));
        File.WriteAllText(Path.Combine(host, "tree/sub/deep"), "deep\n");
        var marker = $"berth-cp-escape-{Guid.NewGuid():N}";
        try
        {
            // Links that point at the host's /etc if anything followed them outside the container.
            e.Ok("run", "-d", "--name", "live", Image, "sh", "-c", "ln -s /etc /abs; ln -s ../../../../../etc /rel; echo inside > /etc/hostname-copy; sleep 30");
            Thread.Sleep(300);
            e.Ok("cp", Path.Combine(host, "in.txt"), $"live:/abs/{marker}");
            e.Ok("cp", Path.Combine(host, "tree"), "live:/rel/");
            e.Ok("cp", Path.Combine(host, "in.txt"), "live:/tmp/renamed");
            Assert.False(File.Exists($"/etc/{marker}"), "cp wrote through a container symlink onto the host");
            Assert.False(Directory.Exists("/etc/tree"));
            var seen = e.Run("exec", "live", "sh", "-c", $"cat /etc/{marker} /etc/tree/sub/deep /tmp/renamed; stat -c %u:%g /etc/{marker}");
            Assert.Equal(["payload", "deep", "payload", "0:0"], Lines(seen.Stdout));

            var outDir = Directory.CreateDirectory(Path.Combine(e.Dir, "out")).FullName;
            e.Ok("cp", "live:/abs/hostname-copy", Path.Combine(outDir, "hc"));
            Assert.Equal("inside\n", File.ReadAllText(Path.Combine(outDir, "hc"))); // the container's /etc, not the host's
            e.Ok("cp", "live:/rel/tree", outDir);
            Assert.Equal("deep\n", File.ReadAllText(Path.Combine(outDir, "tree/sub/deep")));
            e.Ok("cp", "live:/abs", Path.Combine(outDir, "link"));
            Assert.Equal("/etc", new FileInfo(Path.Combine(outDir, "link")).LinkTarget); // a final link is copied as a link

            // Tar streams: out to stdout, in from stdin; a tar entry cannot leave the destination either.
            var berth = Path.Combine(Path.GetDirectoryName(Env.RuntimePath)!, "berth");
            var tarOut = Path.Combine(outDir, "tree.tar");
            var st = ProcessRunner.Host("sh", "-c", $"{berth} --storage {e.Dir} cp live:/rel/tree - > {tarOut}");
            Assert.True(st.Succeeded, st.ToString());
            Assert.Contains("tree/sub/deep", ProcessRunner.Host("tar", "-tf", tarOut).Stdout);
            var evil = Path.Combine(outDir, "evil.tar");
            using (var fs = File.Create(evil))
            using (var w = new TarWriter(fs))
            {
                w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "fine.txt") { DataStream = new MemoryStream("ok\n"u8.ToArray()) });
                w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"../../../../etc/{marker}-tar") { DataStream = new MemoryStream("x"u8.ToArray()) });
            }
            var tin = ProcessRunner.Host("sh", "-c", $"{berth} --storage {e.Dir} cp - live:/abs < {evil}");
            Assert.True(tin.Succeeded, tin.ToString());
            Assert.False(File.Exists($"/etc/{marker}-tar")); // ".." is cleaned lexically: it lands in the container's /etc/etc
            Assert.Equal(["ok", "x"], Lines(e.Ok("exec", "live", "sh", "-c", $"cat /etc/fine.txt; cat /etc/etc/{marker}-tar")));

            e.Ok("stop", "-t", "0", "live");
            var mountsBefore = e.Mounts();
            e.Ok("cp", Path.Combine(host, "in.txt"), "live:/root/");
            e.Ok("cp", "live:/root/in.txt", Path.Combine(outDir, "stopped.txt"));
            Assert.Equal("payload\n", File.ReadAllText(Path.Combine(outDir, "stopped.txt")));
            Assert.Equal(mountsBefore, e.Mounts()); // nothing mounted for the copies stays behind

            var missing = e.Run("cp", "live:/no/such", outDir);
            Assert.NotEqual(0, missing.ExitCode);
            Assert.Contains("live:/no/such", missing.Stderr);
            var nobody = e.Run("cp", Path.Combine(host, "in.txt"), "ghost:/x");
            Assert.Contains("no such container: ghost", nobody.Stderr);
        }
        finally
        {
            File.Delete($"/etc/{marker}");
            File.Delete($"/etc/{marker}-tar");
        }
    }

    [Fact]
    public void Diff_export_and_commit_a_container_then_run_the_committed_image()
    {
        using var e = new EngineStorage(Env);
        e.Ok("run", "--name", "work", Image, "sh", "-c", "echo hi > /root/new; rm /bin/ls; rm -rf /var/tmp; mkdir -p /srv/app; echo v1 > /srv/app/conf");
        var diff = Lines(e.Ok("diff", "work"));
        Assert.Equal(["C /bin", "D /bin/ls", "C /root", "A /root/new", "A /srv", "A /srv/app", "A /srv/app/conf", "C /var", "D /var/tmp"], diff);

        var tarPath = Path.Combine(e.Dir, "work.tar");
        e.Ok("export", "-o", tarPath, "work");
        Assert.Empty(e.Mounts()); // the overlay mounted for the export of the stopped container is gone again
        var names = new Dictionary<string, TarEntryType>();
        using (var fs = File.OpenRead(tarPath))
        using (var tar = new TarReader(fs))
            while (tar.GetNextEntry() is { } entry) names[entry.Name] = entry.EntryType;
        Assert.Equal(TarEntryType.RegularFile, names["root/new"]);
        Assert.Equal(TarEntryType.SymbolicLink, names["bin/sh"]);
        Assert.False(names.ContainsKey("bin/ls"));
        Assert.Equal(TarEntryType.RegularFile, names["bin/busybox"]);

        var blobs = Directory.GetFiles(Path.Combine(e.Dir, "blobs", "sha256")).Length;
        var badName = e.Run("commit", "work", "BAD NAME");
        Assert.Equal(125, badName.ExitCode);
        Assert.Contains("invalid image name \"BAD NAME\"", badName.Stderr);
        Assert.Equal(blobs, Directory.GetFiles(Path.Combine(e.Dir, "blobs", "sha256")).Length); // refused before writing anything
        var id = e.Ok("commit", "-m", "test", "work", "berth.test/committed:v1").Trim();
        Assert.StartsWith("sha256:", id);
        var r = e.Run("run", "--rm", "berth.test/committed:v1", "sh", "-c", "cat /root/new /srv/app/conf; ls /bin/ls /var/tmp");
        Assert.Equal(["hi", "v1"], Lines(r.Stdout));
        Assert.Contains("/bin/ls", r.Stderr); // the deletions came along as whiteouts
        Assert.Contains("/var/tmp", r.Stderr);
        // The committed image keeps the container's command.
        Assert.Equal(["hi", "v1"], Lines(e.Ok("run", "--rm", "berth.test/committed:v1", "cat", "/root/new", "/srv/app/conf")));
        Assert.Contains(Lines(e.Ok("images")), l => l.StartsWith("berth.test/committed", StringComparison.Ordinal));
    }

    [Fact]
    public void Rename_and_container_prune()
    {
        using var e = new EngineStorage(Env);
        e.Ok("run", "--name", "old", Image, "true");
        e.Ok("run", "--name", "other", Image, "true");
        e.Ok("run", "-d", "--name", "up", Image, "sleep", "30");
        e.Ok("rename", "old", "new");
        Assert.Contains("name \"other\" is already in use", e.Run("rename", "new", "other").Stderr);
        Assert.Contains("not a valid container name", e.Run("rename", "new", "bad name").Stderr);
        var ps = Lines(e.Ok("ps", "-a"));
        Assert.Contains(ps, l => l.EndsWith(" new", StringComparison.Ordinal));
        Assert.DoesNotContain(ps, l => l.EndsWith(" old", StringComparison.Ordinal));

        var pruned = Lines(e.Ok("container", "prune"));
        Assert.Equal(3, pruned.Length); // the header and the two stopped containers
        Assert.Equal(["up"], Lines(e.Ok("ps", "-a", "--format", "json")).Where(l => l.Contains("\"up\"")).Select(_ => "up"));
        Assert.Single(Directory.GetDirectories(Path.Combine(e.Dir, "containers")));
    }
}

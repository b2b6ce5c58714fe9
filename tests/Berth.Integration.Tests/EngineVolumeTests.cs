using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>`run -v / --mount / --tmpfs` and `berth volume`: real mounts in the container, data on the host.</summary>
public sealed class EngineVolumeTests(TestEnvironment env) : IntegrationTest(env)
{
    private const string Image = "berth.local/busybox";

    [Fact]
    public void Bind_mounts_are_read_only_or_writable_as_asked()
    {
        using var e = new EngineStorage(Env);
        var host = Directory.CreateDirectory(Path.Combine(e.Dir, "host")).FullName;
        File.WriteAllText(Path.Combine(host, "f"), "from-host\n");
        var r = e.Run("run", "--rm", "-v", $"{host}:/ro:ro", "-v", $"{host}/:/rw:rw,z", "--mount", $"type=bind,src={host},dst=/m,readonly",
            Image, "sh", "-c", "cat /ro/f; echo a > /ro/a || echo ro-refused; echo b > /m/b || echo m-refused; echo c > /rw/c && echo rw-ok");
        Assert.True(r.Succeeded, r.ToString());
        Assert.Equal(["from-host", "ro-refused", "m-refused", "rw-ok"], Lines(r.Stdout));
        Assert.Contains("Read-only file system", r.Stderr);
        Assert.Equal("c\n", File.ReadAllText(Path.Combine(host, "c")));
        Assert.False(File.Exists(Path.Combine(host, "a")));
        Assert.Empty(e.Mounts());
    }

    [Fact]
    public void A_named_volume_is_created_on_first_use_seeded_from_the_image_and_outlives_its_containers()
    {
        using var e = new EngineStorage(Env);
        // /etc in the image holds passwd and group: a new volume there starts with them.
        var first = e.Run("run", "--rm", "-v", "conf:/etc", Image, "sh", "-c", "ls /etc; echo kept > /etc/mine");
        Assert.True(first.Succeeded, first.ToString());
        Assert.Contains("passwd", Lines(first.Stdout));
        var data = Path.Combine(e.Dir, "volumes", "conf", "_data");
        Assert.Equal("kept\n", File.ReadAllText(Path.Combine(data, "mine")));
        Assert.StartsWith("root:x:0:0:", File.ReadAllText(Path.Combine(data, "passwd")));

        // A second container sees what the first wrote; an emptied volume is not seeded again.
        File.Delete(Path.Combine(data, "passwd"));
        var second = e.Run("run", "--rm", "-v", "conf:/etc:ro", Image, "sh", "-c", "cat /etc/mine; ls /etc/passwd");
        Assert.Equal("kept", Lines(second.Stdout)[0]);
        Assert.Contains("No such file", second.Stderr);

        // nocopy: a new volume stays empty even where the image has content.
        var bare = e.Run("run", "--rm", "--mount", "type=volume,src=bare,dst=/usr,volume-nocopy", Image, "ls", "-A", "/usr");
        Assert.True(bare.Succeeded, bare.ToString());
        Assert.Equal("", bare.Stdout.Trim());

        // Seeding keeps links as links and modes: a volume on /bin still runs the image's shell and applets.
        var bin = e.Run("run", "--rm", "-v", "tools:/bin", Image, "sh", "-c", "readlink /bin/ls; stat -c %a /bin/busybox; grep -c ' /bin ' /proc/self/mountinfo");
        Assert.True(bin.Succeeded, bin.ToString());
        Assert.Equal(["busybox", "755", "1"], Lines(bin.Stdout));
        Assert.Equal("busybox", new FileInfo(Path.Combine(e.Dir, "volumes", "tools", "_data", "ls")).LinkTarget);

        Assert.Equal(["bare", "conf", "tools"], Lines(e.Ok("volume", "ls", "-q")));
        var doc = JsonNode.Parse(e.Ok("volume", "inspect", "conf"))!.AsArray().Single()!;
        Assert.Equal(data, (string?)doc["Mountpoint"]);
        Assert.Equal("local", (string?)doc["Driver"]);
    }

    [Fact]
    public void Volume_rm_refuses_a_volume_in_use_and_inspect_lists_volumes_and_tmpfs()
    {
        using var e = new EngineStorage(Env);
        Assert.Equal("data", e.Ok("volume", "create", "data").Trim());
        e.Ok("run", "-d", "--name", "user", "-v", "data:/d", "--tmpfs", "/t", Image, "sleep", "30");
        var mounts = JsonNode.Parse(e.Ok("inspect", "user"))!.AsArray().Single()!["Mounts"]!.AsArray();
        var vol = mounts.Single(m => (string?)m!["Destination"] == "/d")!;
        Assert.Equal(("volume", "data", true), ((string?)vol["Type"], (string?)vol["Name"], (bool)vol["RW"]!));
        Assert.Equal("tmpfs", (string?)mounts.Single(m => (string?)m!["Destination"] == "/t")!["Type"]);

        var rm = e.Run("volume", "rm", "data");
        Assert.NotEqual(0, rm.ExitCode);
        Assert.Contains("volume data is in use by container user", rm.Stderr);
        Assert.True(Directory.Exists(Path.Combine(e.Dir, "volumes", "data", "_data")));
        e.Ok("stop", "-t", "0", "user");
        Assert.NotEqual(0, e.Run("volume", "rm", "data").ExitCode); // a stopped container still holds it, as in docker
        e.Ok("rm", "user");
        Assert.Equal("data", e.Ok("volume", "rm", "data").Trim());
        Assert.False(Directory.Exists(Path.Combine(e.Dir, "volumes", "data")));
        var missing = e.Run("volume", "rm", "data");
        Assert.Contains("no such volume: data", missing.Stderr);
    }

    [Fact]
    public void Tmpfs_flags_mount_tmpfs_with_their_options_and_anonymous_volumes_go_with_rm()
    {
        using var e = new EngineStorage(Env);
        var r = e.Run("run", "--rm", "--tmpfs", "/scratch:size=1m,mode=1777", "--mount", "type=tmpfs,dst=/t2,tmpfs-size=2m", "-v", "/anon",
            Image, "sh", "-c", "grep -E ' /(scratch|t2|anon) ' /proc/self/mountinfo; stat -c %a /scratch");
        Assert.True(r.Succeeded, r.ToString());
        var lines = Lines(r.Stdout).Where(l => l.Split(' ').Length > 4).ToArray();
        var scratch = lines.Single(l => l.Split(' ')[4] == "/scratch");
        Assert.Contains(" - tmpfs ", scratch);
        Assert.Contains("size=1024k", scratch);
        Assert.Contains("noexec", scratch);
        Assert.Contains("size=2048k", lines.Single(l => l.Split(' ')[4] == "/t2"));
        Assert.DoesNotContain(" - tmpfs ", lines.Single(l => l.Split(' ')[4] == "/anon"));
        Assert.Equal("1777", Lines(r.Stdout)[^1]);
        Assert.Empty(Lines(e.Ok("volume", "ls", "-q"))); // the anonymous volume went with --rm

        // rm -v takes a container's anonymous volumes with it, never a named one.
        e.Ok("run", "--name", "keep", "-v", "/anon", "-v", "named:/n", Image, "true");
        Assert.Equal(2, Lines(e.Ok("volume", "ls", "-q")).Length);
        e.Ok("rm", "-v", "keep");
        Assert.Equal(["named"], Lines(e.Ok("volume", "ls", "-q")));
        e.Ok("volume", "rm", "named");

        // Detached --rm: the monitor removes the container and its anonymous volume when it exits.
        e.Ok("run", "-d", "--rm", "-v", "/anon", Image, "sleep", "0.2");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline && Lines(e.Ok("volume", "ls", "-q")).Length > 0) Thread.Sleep(100);
        Assert.Empty(Lines(e.Ok("volume", "ls", "-q")));
    }

    [Fact]
    public void An_image_volume_becomes_an_anonymous_volume_seeded_from_the_image()
    {
        using var e = new EngineStorage(Env);
        LoadImageWithVolume(e, "/etc", "berth.test/withvol:1");
        var r = e.Run("run", "--rm", "berth.test/withvol:1", "sh", "-c", "cat /etc/group | head -1; grep -c '/volumes/[0-9a-f]*/_data /etc ' /proc/self/mountinfo");
        Assert.True(r.Succeeded, r.ToString());
        Assert.Equal(["root:x:0:", "1"], Lines(r.Stdout));
        Assert.Empty(Lines(e.Ok("volume", "ls", "-q"))); // --rm took it
        e.Ok("run", "--name", "keeps", "berth.test/withvol:1", "true");
        var name = Assert.Single(Lines(e.Ok("volume", "ls", "-q")));
        Assert.Matches("^[0-9a-f]{64}$", name);
        Assert.True(File.Exists(Path.Combine(e.Dir, "volumes", name, "_data", "passwd")));
        // A user mount on the same destination replaces the image's volume.
        e.Ok("run", "--rm", "-v", "mine:/etc", "berth.test/withvol:1", "true");
        Assert.Equal(2, Lines(e.Ok("volume", "ls", "-q")).Length);
    }

    /// <summary>The default image with config.Volumes set, written as an OCI layout and loaded.</summary>
    private void LoadImageWithVolume(EngineStorage e, string volume, string name)
    {
        var archive = Path.Combine(Path.GetDirectoryName(Env.RuntimePath)!, "berth-busybox.oci.tar");
        var layout = Directory.CreateDirectory(Path.Combine(e.Dir, "layout")).FullName;
        var blobs = Directory.CreateDirectory(Path.Combine(layout, "blobs", "sha256")).FullName;
        var files = new Dictionary<string, byte[]>();
        using (var fs = File.OpenRead(archive))
        using (var tar = new System.Formats.Tar.TarReader(fs))
            while (tar.GetNextEntry() is { } entry)
                if (entry.DataStream is { } ds) { var ms = new MemoryStream(); ds.CopyTo(ms); files[entry.Name] = ms.ToArray(); }
        foreach (var (n, data) in files.Where(f => f.Key.StartsWith("blobs/", StringComparison.Ordinal)))
            File.WriteAllBytes(Path.Combine(layout, n), data);
        string Hex(byte[] b) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(b));
        var index = JsonNode.Parse(files["index.json"])!;
        var manifest = JsonNode.Parse(files["blobs/sha256/" + ((string)index["manifests"]![0]!["digest"]!)[7..]])!;
        var config = JsonNode.Parse(files["blobs/sha256/" + ((string)manifest["config"]!["digest"]!)[7..]])!;
        config["config"]!["Volumes"] = new JsonObject { [volume] = new JsonObject() };
        var cfg = System.Text.Encoding.UTF8.GetBytes(config.ToJsonString());
        File.WriteAllBytes(Path.Combine(blobs, Hex(cfg)), cfg);
        manifest["config"]!["digest"] = "sha256:" + Hex(cfg);
        manifest["config"]!["size"] = cfg.Length;
        var man = System.Text.Encoding.UTF8.GetBytes(manifest.ToJsonString());
        File.WriteAllBytes(Path.Combine(blobs, Hex(man)), man);
        index["manifests"]![0]!["digest"] = "sha256:" + Hex(man);
        index["manifests"]![0]!["size"] = man.Length;
        index["manifests"]![0]!["annotations"] = new JsonObject { ["org.opencontainers.image.ref.name"] = name };
        File.WriteAllText(Path.Combine(layout, "index.json"), index.ToJsonString());
        File.WriteAllText(Path.Combine(layout, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        e.Ok("load", "-i", layout);
    }

    [Fact]
    public void Bad_mount_flags_fail_naming_the_flag_and_leave_nothing_behind()
    {
        using var e = new EngineStorage(Env);
        var missing = e.Run("run", "--rm", "-v", "/nonexistent-berth-src:/x", Image, "true");
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("-v /nonexistent-berth-src:/x: the host path /nonexistent-berth-src does not exist", missing.Stderr);
        var opt = e.Run("run", "--rm", "-v", "v1:/x:bogus", Image, "true");
        Assert.Contains("unknown option \"bogus\"", opt.Stderr);
        var mount = e.Run("run", "--rm", "--mount", "type=nfs,dst=/x", Image, "true");
        Assert.Contains("--mount type=nfs,dst=/x", mount.Stderr);
        // The volume is made before the bad --device is found: the failed run removes it again.
        var late = e.Run("run", "--rm", "-v", "made:/x", "--device", "/nonexistent-berth-dev", Image, "true");
        Assert.NotEqual(0, late.ExitCode);
        Assert.Contains("--device /nonexistent-berth-dev", late.Stderr);
        var notStarted = e.Run("run", "--rm", "-v", "made2:/x", Image, "/no/such/program");
        Assert.NotEqual(0, notStarted.ExitCode);
        Assert.Empty(Lines(e.Ok("volume", "ls", "-q")));
        Assert.Empty(Directory.GetDirectories(Path.Combine(e.Dir, "containers")));
        Assert.Empty(e.Mounts());
    }
}

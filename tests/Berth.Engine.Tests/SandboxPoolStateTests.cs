using System.Text.Json;
using Berth.Engine.Sandbox;
using Xunit;

namespace Berth.Engine.Tests;

/// <summary>A pool slot's state file (what one `sandbox run --pool` leaves the next) and the verdict's hand-written JSON.</summary>
public class SandboxPoolStateTests
{
    [Fact]
    public void A_state_survives_its_file_format_keys_with_newlines_and_backslashes_included()
    {
        var st = new SandboxPool.State(false, 128L << 20,
            new SandboxCgroup.Saved("-1|-1|64", true, 724992, 3, "v1 /sys/fs/cgroup/memory=memory /sys/fs/cgroup/cpu,cpuacct=cpu,cpuacct"),
            new SandboxPool.TemplateState(4242, 3968958, ["/dev/shm", "/tmp"], "/run/x/rootfs|a\\b\nc|;DevicePlan { Path = /dev/null }"));
        var back = SandboxPool.State.Parse(st.Format());
        Assert.NotNull(back);
        Assert.False(back.Busy);
        Assert.Equal(128L << 20, back.BoxSize);
        Assert.Equal(st.Cgroup, back.Cgroup);
        Assert.Equal(st.Template!.Key, back.Template!.Key);
        Assert.Equal((4242, 3968958UL), (back.Template.Pid, back.Template.StartTime));
        Assert.Equal(["/dev/shm", "/tmp"], back.Template.ScrubPaths);

        var busy = SandboxPool.State.Parse((st with { Busy = true }).Format());
        Assert.True(busy!.Busy);
        var empty = SandboxPool.State.Parse(SandboxPool.State.Empty.Format());
        Assert.Equal((false, null, null, null), (empty!.Busy, empty.BoxSize, empty.Cgroup, empty.Template));
    }

    [Fact]
    public void A_kept_box_image_survives_the_state_file_names_with_spaces_and_newlines_included()
    {
        var dir = Path.Combine(Path.GetTempPath(), "berth-keep-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(dir, "sub dir"));
        File.WriteAllText(Path.Combine(dir, "sub dir", "a\nb c"), "x");
        File.WriteAllText(Path.Combine(dir, "input"), "42");
        try
        {
            var image = new BoxImage("/caller/box dir", "0123456789abcdef-12", BoxImage.Snapshot(dir), keepBytes: false);
            var st = new SandboxPool.State(false, 1 << 20, null, null, image);
            var back = SandboxPool.State.Parse(st.Format());
            Assert.NotNull(back?.Kept);
            Assert.Equal("/caller/box dir", back.Kept.SourceDir);
            Assert.Equal("0123456789abcdef-12", back.Kept.Source);
            Assert.False(back.Kept.BytesVerified);
            // The same entries with the same identities: the box as it is passes, and fails once anything changes.
            Assert.True(back.Kept.RootIs(dir));
            Assert.True(back.Kept.Unchanged(dir));
            File.WriteAllText(Path.Combine(dir, "input"), "43");
            Assert.False(back.Kept.Unchanged(dir));
            // A state without a box image has none; a bad entry line makes the state unreadable.
            Assert.Null(SandboxPool.State.Parse(new SandboxPool.State(false, 1 << 20, null, null).Format())!.Kept);
            Assert.Null(SandboxPool.State.Parse("R\nbox 1\nkeep k /d\nentry 1 2 3\n"));
            Assert.Null(SandboxPool.State.Parse("R\nbox 1\nkeep k /d\n")); // no entry for the box itself
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void A_kept_box_whose_bytes_differ_from_its_dir_is_found_even_when_its_entries_look_the_same()
    {
        var root = Path.Combine(Path.GetTempPath(), "berth-bytes-" + Guid.NewGuid().ToString("N"));
        var dir = Path.Combine(root, "dir");
        var box = Path.Combine(root, "box");
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        Directory.CreateDirectory(Path.Combine(box, "sub"));
        var big = new byte[300_000]; // several of the comparison's 32 KiB chunks
        new Random(7).NextBytes(big);
        File.WriteAllBytes(Path.Combine(dir, "sub", "prog"), big);
        File.WriteAllBytes(Path.Combine(box, "sub", "prog"), big);
        try
        {
            // The state's image of the box as it is now (a write through a mapping that moved no time looks like this).
            BoxImage Image() => SandboxPool.State.Parse(new SandboxPool.State(false, 1, null, null,
                new BoxImage(dir, "k", BoxImage.Snapshot(box), keepBytes: false)).Format())!.Kept!;
            Assert.True(Image().VerifyBytes(box));
            big[200_001] ^= 1;
            File.WriteAllBytes(Path.Combine(box, "sub", "prog"), big);
            Assert.False(Image().VerifyBytes(box));
            File.WriteAllBytes(Path.Combine(box, "sub", "prog"), big[..^1]);
            Assert.False(Image().VerifyBytes(box));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void A_compiled_job_file_is_read_back_only_for_its_key_and_a_damaged_one_is_a_miss()
    {
        var path = Path.Combine(Path.GetTempPath(), "berth-jail-" + Guid.NewGuid().ToString("N"));
        try
        {
            var job = new Berth.Runtime.Lifecycle.StubJail.CompiledJob([1, 2, 3, 4], ["step one", "exec ./x\nwith a newline"], "tkey", 5, false, "berth-sandbox-init", [9, 8, 7, 6, 5, 4, 3, 2]);
            JailCache.Store(path, new JailCache.Entry("the key", "-1|-1|64", ["clone3"], job));
            uint me = GetEuid();
            var hit = JailCache.Load(path, "the key", me);
            Assert.NotNull(hit);
            Assert.Equal("-1|-1|64", hit.Limits);
            Assert.Equal(["clone3"], hit.ProfileErrno);
            Assert.Equal(job.Image, hit.Job.Image);
            Assert.Equal(job.Steps, hit.Job.Steps);
            Assert.Equal(job.Go, hit.Job.Go);
            Assert.Equal((job.TemplateKey, job.CgroupCount, job.FreshIpc, job.Name), (hit.Job.TemplateKey, hit.Job.CgroupCount, hit.Job.FreshIpc, hit.Job.Name));
            Assert.Null(JailCache.Load(path, "another key", me));
            Assert.Null(JailCache.Load(path, "the key", me + 1)); // another owner's file is not trusted
            File.SetUnixFileMode(path, (UnixFileMode)0x1b6); // 0666: writable by others
            Assert.Null(JailCache.Load(path, "the key", me));
            File.SetUnixFileMode(path, (UnixFileMode)0x180);
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..^3]);
            Assert.Null(JailCache.Load(path, "the key", me));
            File.WriteAllBytes(path, [.. bytes, 0]);
            Assert.Null(JailCache.Load(path, "the key", me));
            Assert.Null(JailCache.Load(path + "-missing", "the key", me));
        }
        finally { File.Delete(path); }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEuid();

    [Fact]
    public void The_compiled_job_key_changes_with_every_option_that_makes_the_program()
    {
        var slot = SandboxSlot.Fresh();
        string? Key(SandboxOptions o) => JailCache.Key(o, slot, ["/sys/fs/cgroup/pids/berth/x"], notify: true);
        var basic = new SandboxOptions { Command = ["./a"] };
        var k = Key(basic);
        Assert.NotNull(k);
        Assert.Equal(k, Key(new SandboxOptions { Command = ["./a"], Box = "/another/box", Stdout = "out" })); // not part of the program
        Assert.NotEqual(k, Key(new SandboxOptions { Command = ["./b"] }));
        Assert.NotEqual(k, Key(new SandboxOptions { Command = ["./a", "x"] }));
        Assert.NotEqual(k, Key(new SandboxOptions { Command = ["./a x"] }));
        Assert.NotEqual(k, Key(new SandboxOptions { Command = ["./a"], Time = 1 }));
        Assert.NotEqual(k, Key(new SandboxOptions { Command = ["./a"], Memory = 1 << 20 }));
        Assert.NotEqual(k, Key(new SandboxOptions { Command = ["./a"], OpenFiles = 3 }));
        Assert.NotEqual(k, Key(new SandboxOptions { Command = ["./a"], Net = true }));
        Assert.NotEqual(k, Key(new SandboxOptions { Command = ["./a"], OnViolation = ViolationMode.Log }));
        Assert.NotEqual(k, Key(new SandboxOptions { Command = ["./a"], Dirs = [new DirRule("/srv", "/srv", false)] }));
        Assert.NotEqual(k, JailCache.Key(basic, slot, ["/sys/fs/cgroup/pids/berth/y"], notify: true));
        Assert.NotEqual(k, JailCache.Key(basic, slot, ["/sys/fs/cgroup/pids/berth/x"], notify: false));
        Assert.Null(Key(new SandboxOptions { Command = ["./a"], Seccomp = "/p.json" }));
        Assert.Null(Key(new SandboxOptions { Command = ["./a"], Image = "busybox" }));
    }

    [Theory]
    [InlineData("")]
    [InlineData("X\n")]
    [InlineData("R\nbox lots\n")]
    [InlineData("R\ntemplate 12 34 /tmp\n")]          // a template without its key
    [InlineData("R\ntemplate -1 34 /tmp\nkey k\n")]   // no such pid
    [InlineData("R\nsomething else\n")]
    [InlineData("R\ncgroup - 1 x 0\n")]
    public void A_state_this_code_did_not_write_is_refused(string text) => Assert.Null(SandboxPool.State.Parse(text));

    [Theory]
    [InlineData("a")]
    [InlineData("judge-2")]
    public void Pool_names_are_letters_digits_and_dashes(string name) => Assert.Equal(name, SandboxPool.CheckName(name));

    [Theory]
    [InlineData("")]
    [InlineData("-x")]
    [InlineData("../x")]
    [InlineData("a b")]
    [InlineData("abcdefghijklmnopqrstuvwxyz0123456789")]
    public void Other_pool_names_are_refused(string name) =>
        Assert.Throws<Berth.Engine.Containers.EngineError>(() => SandboxPool.CheckName(name));

    [Fact]
    public void The_verdict_json_escapes_what_json_requires_and_parses_back()
    {
        var v = new Verdict { Status = "RE", ExitCode = 3, Time = 0.0123456, WallTime = 1.5, MaxRssKb = 512, Message = "say \"hi\"\\\n\t\u0001 é <b>" };
        var json = v.ToJson();
        Assert.EndsWith("}\n", json);
        Assert.StartsWith("{\"status\":\"RE\",", json);
        var e = JsonDocument.Parse(json).RootElement;
        Assert.Equal(v.Message, e.GetProperty("message").GetString());
        Assert.Equal(0.012, e.GetProperty("time").GetDouble());
        Assert.Equal(1.5, e.GetProperty("wall_time").GetDouble());
        Assert.Equal(3, e.GetProperty("exitcode").GetInt32());
        Assert.False(e.GetProperty("killed").GetBoolean());
        Assert.Contains("\"time\":0.012,\"wall_time\":1.5,", json);
        Assert.Contains("\"wall_time\":0,", new Verdict { Status = "OK" }.ToJson());
    }
}

using Berth.Engine.Containers;
using Berth.Images.Model;
using Berth.Oci.Runtime;
using Xunit;

namespace Berth.Engine.Tests;

public sealed class SpecExtrasTests
{
    private static Berth.Oci.Runtime.Spec Build(RunOptions o, string? user = null) =>
        SpecFromImage.Build(new ImageConfig { Config = new ContainerConfig { Cmd = ["sh"], User = user } }, o, "/merged", "h",
            new SpecFromImage.Files("/c/hostname", "/c/hosts"), n => n is "1000" or "app" ? (1000, 1000) : null);

    [Fact]
    public void A_non_root_user_holds_only_the_added_capabilities_in_every_set_the_kernel_needs_for_ambient()
    {
        var caps = Build(new RunOptions { Image = "i", User = "1000", CapAdd = ["net_bind_service"] }).Process!.Capabilities!;
        Assert.Equal(["CAP_NET_BIND_SERVICE"], caps.Ambient!);
        Assert.Equal(["CAP_NET_BIND_SERVICE"], caps.Inheritable!);
        Assert.Equal(["CAP_NET_BIND_SERVICE"], caps.Effective!);
        Assert.Contains("CAP_CHOWN", caps.Bounding!);

        var none = Build(new RunOptions { Image = "i" }, user: "app").Process!.Capabilities!;
        Assert.Empty(none.Effective!);
        Assert.Empty(none.Ambient!);

        var root = Build(new RunOptions { Image = "i", CapAdd = ["NET_ADMIN"] }).Process!.Capabilities!;
        Assert.Contains("CAP_NET_ADMIN", root.Effective!);
        Assert.Empty(root.Ambient!);
    }

    [Fact]
    public void User_mounts_replace_defaults_on_the_same_destination_and_come_before_the_etc_files()
    {
        var o = new RunOptions
        {
            Image = "i",
            Ulimits = [RunFlags.ParseUlimit("nofile=100:200"), RunFlags.ParseUlimit("nproc=50")],
            Labels = new() { ["team"] = "infra" },
        };
        var spec = Build(o);
        RunExtras.Apply(spec, o,
        [
            new Mount { Destination = "/dev/shm", Type = "tmpfs", Source = "tmpfs", Options = ["size=1m"] },
            new Mount { Destination = "/data", Type = "bind", Source = "/h", Options = ["rbind", "ro"] },
        ]);
        Assert.Single(spec.Mounts!, m => m.Destination == "/dev/shm");
        Assert.Equal(["size=1m"], spec.Mounts!.Single(m => m.Destination == "/dev/shm").Options!);
        // After the runtime's defaults, before the engine's /etc files (so a volume on /etc does not hide them).
        Assert.Equal(["/data", "/etc/hostname", "/etc/hosts"], spec.Mounts!.TakeLast(3).Select(m => m.Destination));
        Assert.True(spec.Mounts!.FindIndex(m => m.Destination == "/dev") < spec.Mounts.FindIndex(m => m.Destination == "/dev/shm"));
        var nofile = spec.Process!.Rlimits!.Single(r => r.Type == "RLIMIT_NOFILE");
        Assert.Equal((100ul, 200ul), (nofile.Soft, nofile.Hard));
        Assert.Contains(spec.Process.Rlimits!, r => r.Type == "RLIMIT_NPROC" && r.Soft == 50);
        Assert.Equal("infra", spec.Annotations![RunExtras.LabelPrefix + "team"]);
    }
}

public sealed class ImageVolumeTests
{
    [Fact]
    public void Image_volumes_become_anonymous_volumes_unless_a_user_mount_covers_them()
    {
        var cfg = System.Text.Json.JsonSerializer.Deserialize("""{"config":{"Volumes":{"/data":{},"/logs/":{},"/":{},"/a/../b":{}}},"rootfs":{"type":"layers","diff_ids":[]}}""",
            Berth.Images.Model.ImagesJson.Default.ImageConfig)!;
        var user = new List<Berth.Engine.Volumes.MountRequest> { Berth.Engine.Volumes.MountSpec.ParseVolume("/host:/data") };
        var all = RunExtras.WithImageVolumes(cfg, user);
        Assert.Equal(["/data", "/logs"], all.Select(m => m.Destination));
        Assert.Equal(Berth.Engine.Volumes.MountKind.Bind, all[0].Kind);
        Assert.Equal((Berth.Engine.Volumes.MountKind.Volume, ""), (all[1].Kind, all[1].Source));
        Assert.Empty(RunExtras.WithImageVolumes(new ImageConfig(), []));
    }
}

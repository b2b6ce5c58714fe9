using Berth.Engine.Containers;
using Berth.Images.Model;
using Xunit;

namespace Berth.Engine.Tests;

public sealed class SpecFromImageTests
{
    private static readonly SpecFromImage.Files Files = new("/c/hostname", "/c/hosts");

    private static (uint, uint)? Users(string name) => name switch
    {
        "user" or "1000" => (1000, 1000),
        "group:staff" => (0, 50),
        _ => null,
    };

    private static ImageConfig Image(List<string>? entry = null, List<string>? cmd = null, string? user = null,
        List<string>? env = null, string? workdir = null) =>
        new() { Config = new ContainerConfig { Entrypoint = entry, Cmd = cmd, User = user, Env = env, WorkingDir = workdir } };

    private static Berth.Oci.Runtime.Spec Build(ImageConfig img, RunOptions o) =>
        SpecFromImage.Build(img, o, "/merged", "host1", Files, Users);

    [Fact]
    public void Exposed_ports_come_from_the_image_config_normalised_and_sorted()
    {
        var img = System.Text.Json.JsonSerializer.Deserialize(
            """{"architecture":"amd64","os":"linux","config":{"ExposedPorts":{"8080/tcp":{},"53/UDP":{},"80":{},"x/tcp":{},"70000/tcp":{},"9/icmp":{}}},"rootfs":{"type":"layers","diff_ids":[]}}""",
            ImagesJson.Default.ImageConfig)!;
        Assert.Equal(["53/udp", "80/tcp", "8080/tcp"], SpecFromImage.ExposedPorts(img));
        Assert.Empty(SpecFromImage.ExposedPorts(Image()));
    }

    [Fact]
    public void Cmd_is_replaced_by_the_command_and_appended_to_the_entrypoint()
    {
        var img = Image(entry: ["/init"], cmd: ["--default"]);
        Assert.Equal(["/init", "--default"], Build(img, new RunOptions { Image = "i" }).Process!.Args);
        Assert.Equal(["/init", "x"], Build(img, new RunOptions { Image = "i", Command = ["x"] }).Process!.Args);
        Assert.Equal(["sh"], Build(img, new RunOptions { Image = "i", Entrypoint = ["sh"] }).Process!.Args);
    }

    [Fact]
    public void No_command_at_all_is_an_error()
    {
        var e = Assert.Throws<EngineError>(() => Build(Image(), new RunOptions { Image = "img" }));
        Assert.Contains("img", e.Message);
    }

    [Fact]
    public void Env_gets_a_default_path_and_overrides_replace_image_values()
    {
        var spec = Build(Image(cmd: ["sh"], env: ["A=1", "B=2"]), new RunOptions { Image = "i", Env = ["B=3"] });
        var env = spec.Process!.Env!;
        Assert.Contains(SpecFromImage.DefaultPath, env);
        Assert.Contains("A=1", env);
        Assert.Contains("B=3", env);
        Assert.DoesNotContain("B=2", env);
        Assert.Contains("HOSTNAME=host1", env);
    }

    [Fact]
    public void User_names_resolve_through_the_image_and_caps_go_ambient_for_non_root()
    {
        var spec = Build(Image(cmd: ["sh"], user: "user"), new RunOptions { Image = "i", CapAdd = ["NET_BIND_SERVICE"] });
        Assert.Equal(1000u, spec.Process!.User.Uid);
        Assert.Equal(1000u, spec.Process.User.Gid);
        Assert.Contains("CAP_NET_BIND_SERVICE", spec.Process.Capabilities!.Ambient!);
        Assert.Equal((1000u, 50u), SpecFromImage.ResolveUser("user:staff", Users));
        Assert.Equal((7u, 7u), SpecFromImage.ResolveUser("7", Users));
        Assert.Throws<EngineError>(() => SpecFromImage.ResolveUser("nobody-here", Users));
    }

    [Fact]
    public void Defaults_are_podmans_caps_seccomp_no_new_privs_and_a_private_network()
    {
        var spec = Build(Image(cmd: ["sh"]), new RunOptions { Image = "i" });
        Assert.Equal(SpecFromImage.DefaultCaps.Order(), spec.Process!.Capabilities!.Bounding!.Order());
        Assert.True(spec.Process.NoNewPrivileges);
        Assert.NotNull(spec.Linux!.Seccomp);
        Assert.Contains(spec.Linux.Namespaces!, n => n.Type == "network");
        Assert.Equal("/merged", spec.Root!.Path);
        Assert.Contains(spec.Mounts!, m => m.Destination == "/etc/hosts" && m.Source == "/c/hosts");
    }

    [Fact]
    public void Cap_drop_all_host_network_and_unconfined()
    {
        var spec = Build(Image(cmd: ["sh"]), new RunOptions { Image = "i", CapDrop = ["ALL"], Network = "host", Seccomp = "unconfined" });
        Assert.Empty(spec.Process!.Capabilities!.Bounding!);
        Assert.DoesNotContain(spec.Linux!.Namespaces!, n => n.Type == "network");
        Assert.Null(spec.Linux.Seccomp);
        Assert.Throws<EngineError>(() => Build(Image(cmd: ["sh"]), new RunOptions { Image = "i", Network = "bridge" }));
    }
}

using Berth.Engine.Containers;
using Berth.Engine.Volumes;
using Xunit;

namespace Berth.Engine.Tests;

public sealed class MountSpecTests
{
    [Fact]
    public void Volume_flag_tells_binds_from_named_and_anonymous_volumes()
    {
        var bind = MountSpec.ParseVolume("/host/dir/:/data:ro,z");
        Assert.Equal((MountKind.Bind, "/host/dir", "/data", true), (bind.Kind, bind.Source, bind.Destination, bind.ReadOnly));
        var named = MountSpec.ParseVolume("cache:/var/cache//x/:nocopy");
        Assert.Equal((MountKind.Volume, "cache", "/var/cache/x", false, true), (named.Kind, named.Source, named.Destination, named.ReadOnly, named.NoCopy));
        var anon = MountSpec.ParseVolume("/scratch");
        Assert.Equal((MountKind.Volume, "", "/scratch"), (anon.Kind, anon.Source, anon.Destination));
        Assert.Equal("rshared", MountSpec.ParseVolume("/a:/b:rw,rshared").Propagation);
        Assert.False(MountSpec.ParseVolume("/a:/b:ro,rw").ReadOnly); // the last one wins
    }

    [Theory]
    [InlineData("/a:relative", "absolute path in the container")]
    [InlineData("/a:/", "root")]
    [InlineData("/a:/b/../c", "\"..\"")]
    [InlineData("/a:/b:bogus", "unknown option \"bogus\"")]
    [InlineData("./rel:/b", "absolute host path")]
    [InlineData("bad name:/b", "not a valid volume name")]
    [InlineData("a:b:c:d", "expected SRC:DST")]
    [InlineData("/a::ro", "expected SRC:DST")]
    [InlineData("/a:/b:nocopy", "unknown option \"nocopy\"")]
    public void Volume_flag_errors_name_the_flag_and_the_fault(string spec, string fault)
    {
        var e = Assert.Throws<EngineError>(() => MountSpec.ParseVolume(spec));
        Assert.Contains("-v " + spec, e.Message);
        Assert.Contains(fault, e.Message);
    }

    [Fact]
    public void Mount_flag_reads_docker_keys()
    {
        var b = MountSpec.ParseMount("type=bind,source=/h,target=/c,readonly,bind-propagation=rslave");
        Assert.Equal((MountKind.Bind, "/h", "/c", true, "rslave"), (b.Kind, b.Source, b.Destination, b.ReadOnly, b.Propagation));
        var v = MountSpec.ParseMount("type=volume,src=data,dst=/d,volume-nocopy=true,readonly=false");
        Assert.Equal((MountKind.Volume, "data", "/d", false, true), (v.Kind, v.Source, v.Destination, v.ReadOnly, v.NoCopy));
        var t = MountSpec.ParseMount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770");
        Assert.Equal(["size=1m", "mode=1770"], t.TmpfsOptions);
        Assert.Equal(MountKind.Volume, MountSpec.ParseMount("dst=/anon").Kind); // docker's default type
    }

    [Theory]
    [InlineData("type=bind,dst=/c", "needs src=")]
    [InlineData("type=nfs,dst=/c", "type \"nfs\"")]
    [InlineData("type=bind,src=/h", "no destination")]
    [InlineData("type=volume,dst=/c,tmpfs-size=1m", "need type=tmpfs")]
    [InlineData("type=tmpfs,dst=/c,tmpfs-mode=rwx", "not an octal mode")]
    [InlineData("type=bind,src=/h,dst=/c,readonly=maybe", "not true or false")]
    [InlineData("type=bind,src=/h,dst=/c,colour=red", "unknown key \"colour\"")]
    [InlineData("type=tmpfs,src=x,dst=/c", "has no source")]
    public void Mount_flag_errors(string spec, string fault)
    {
        var e = Assert.Throws<EngineError>(() => MountSpec.ParseMount(spec));
        Assert.Contains("--mount " + spec, e.Message);
        Assert.Contains(fault, e.Message);
    }

    [Fact]
    public void Tmpfs_flag_keeps_options_and_reads_ro()
    {
        var t = MountSpec.ParseTmpfs("/run/x:size=64k,mode=700,ro");
        Assert.Equal(("/run/x", true), (t.Destination, t.ReadOnly));
        Assert.Equal(["size=64k", "mode=700"], t.TmpfsOptions);
        Assert.Empty(MountSpec.ParseTmpfs("/t").TmpfsOptions);
        Assert.Throws<EngineError>(() => MountSpec.ParseTmpfs("t"));
    }

    [Fact]
    public void Normalize_sorts_parents_first_and_refuses_two_mounts_on_one_place()
    {
        var sorted = MountSpec.Normalize([MountSpec.ParseVolume("/a:/x/y"), MountSpec.ParseTmpfs("/x")]);
        Assert.Equal(["/x", "/x/y"], sorted.Select(m => m.Destination));
        var e = Assert.Throws<EngineError>(() => MountSpec.Normalize([MountSpec.ParseVolume("/a:/x"), MountSpec.ParseTmpfs("/x/")]));
        Assert.Contains("two mounts on /x", e.Message);
    }
}

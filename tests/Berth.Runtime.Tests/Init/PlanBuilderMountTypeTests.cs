using Berth.Runtime.Init;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Tests.Init;

/// <summary>A mount type must be one the kernel knows: the usual ones without reading /proc/filesystems, the rest from it.</summary>
public class PlanBuilderMountTypeTests
{
    private static InitPlan Plan(string type)
    {
        var spec = DefaultSpec.Create(rootless: false);
        spec.Mounts!.Add(new Oci.Runtime.Mount { Destination = "/extra", Type = type, Source = "x" });
        return PlanBuilder.Build(spec, "c1", "/b", "/b/rootfs", new PlanBuilder.Options { FifoPath = "/run/berth/c1/exec.fifo" });
    }

    [Theory]
    [InlineData("tmpfs")]
    [InlineData("proc")]
    [InlineData("cgroup2")]
    [InlineData("ramfs")] // not in the short list: found in /proc/filesystems
    public void Known_types_plan(string type) =>
        Assert.Contains(Plan(type).Mounts, m => m.Destination == "/extra" && m.Type == type);

    [Fact]
    public void A_type_the_kernel_does_not_have_is_named()
    {
        var e = Assert.Throws<SpecException>(() => Plan("tmpsf"));
        Assert.Contains("unknown filesystem type \"tmpsf\"", e.Message);
        Assert.Contains(".type", e.Message);
    }
}

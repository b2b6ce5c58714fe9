using Berth.Linux.Cgroups;
using Xunit;

namespace Berth.Linux.Tests.Cgroups;

/// <summary>Cgroups.LayoutOf / FromLayout: a sandbox pool slot keeps the hierarchies it found, so later runs do not list the mount root again.</summary>
public class CgroupLayoutTests
{
    [Fact]
    public void A_v1_layout_rebuilds_the_same_directories_for_another_path()
    {
        var m = Berth.Linux.Cgroups.Cgroups.FromLayout("/berth/x", "v1 /sys/fs/cgroup/memory=memory /sys/fs/cgroup/cpu,cpuacct=cpu,cpuacct");
        Assert.NotNull(m);
        Assert.Equal("v1", m.Version);
        Assert.Equal(["/sys/fs/cgroup/memory/berth/x", "/sys/fs/cgroup/cpu,cpuacct/berth/x"], m.Directories);
        Assert.Equal("v1 /sys/fs/cgroup/memory=memory /sys/fs/cgroup/cpu,cpuacct=cpu,cpuacct", Berth.Linux.Cgroups.Cgroups.LayoutOf(m));
        var v2 = Berth.Linux.Cgroups.Cgroups.FromLayout("/berth/y", "v2");
        Assert.Equal("v2", v2!.Version);
        Assert.Equal("v2", Berth.Linux.Cgroups.Cgroups.LayoutOf(v2));
    }

    [Theory]
    [InlineData("v3")]
    [InlineData("v1")]
    [InlineData("v1 /elsewhere/memory=memory")]
    [InlineData("v1 /sys/fs/cgroup/memory")]
    public void Other_lines_are_not_layouts(string line) => Assert.Null(Berth.Linux.Cgroups.Cgroups.FromLayout("/berth/x", line));

    [Fact]
    public void A_path_that_climbs_out_is_refused_as_everywhere() =>
        Assert.Throws<CgroupException>(() => Berth.Linux.Cgroups.Cgroups.FromLayout("/berth/../..", "v1 /sys/fs/cgroup/memory=memory"));
}

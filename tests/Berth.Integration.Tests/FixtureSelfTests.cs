using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>The leak check must be able to fail: a live container is a leak of every kind it checks.</summary>
public sealed class FixtureSelfTests(TestEnvironment env) : IntegrationTest(env)
{
    [Fact]
    public void Leak_check_sees_a_live_container_and_nothing_after_delete()
    {
        var c = NewContainer();
        c.Args("sleep", "60");
        int pid = c.CreateAndStart();

        var leaks = c.FindLeaks();
        Assert.Contains(leaks, l => l.Kind == "state dir");
        Assert.Contains(leaks, l => l.Kind == "cgroup");
        Assert.Contains(leaks, l => l.Kind == "process" && l.Pid == pid);

        Assert.True(c.Delete(force: true).Succeeded);
        c.AssertNoLeaks("after delete --force");
    }

    [Fact]
    public void Leak_check_sees_a_mount_of_the_bundle()
    {
        var c = NewContainer();
        string target = Path.Combine(c.BundleDir, "mnt-probe");
        Directory.CreateDirectory(target);
        var mount = ProcessRunner.Host("mount", "-t", "tmpfs", "tmpfs", target);
        Assert.True(mount.Succeeded, mount.ToString());
        try
        {
            Assert.Contains(c.FindLeaks(), l => l.Kind == "mount" && l.What.Contains(target));
        }
        finally
        {
            ProcessRunner.Host("umount", target);
        }
        Assert.Empty(c.FindLeaks());
    }
}

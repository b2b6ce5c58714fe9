using System.Text.Json.Nodes;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

public sealed class UserNamespaceTests(TestEnvironment env) : IntegrationTest(env)
{
    private const int HostBase = 100000;
    private const int Size = 65536;

    [Fact]
    public void User_namespace_maps_root_to_an_unprivileged_host_uid()
    {
        var c = NewContainer();
        c.AddNamespace("user");
        JsonArray Map() => new(new JsonObject { ["containerID"] = 0, ["hostID"] = HostBase, ["size"] = Size });
        c.Linux["uidMappings"] = Map();
        c.Linux["gidMappings"] = Map();
        string share = c.ShareDir("/out");
        c.Sh("cat /proc/self/uid_map; cat /proc/self/gid_map; id -u; id -g; readlink /proc/self/ns/user; touch /out/created && echo TOUCHED");
        var lines = Lines(c.RunOk());

        Assert.Equal(["0", HostBase.ToString(), Size.ToString()], lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["0", HostBase.ToString(), Size.ToString()], lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("0", lines[2]);
        Assert.Equal("0", lines[3]);
        Assert.NotEqual(Kernel.HostNamespaces()["user"], lines[4]);
        Assert.Equal("TOUCHED", lines[5]);

        // Root inside, but the file on the host belongs to the mapped uid/gid.
        var stat = ProcessRunner.Host("stat", "-c", "%u:%g", Path.Combine(share, "created"));
        Assert.True(stat.Succeeded, stat.ToString());
        Assert.Equal($"{HostBase}:{HostBase}", stat.Stdout.Trim());
    }
}

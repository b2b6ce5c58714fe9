using Berth.Engine.Containers;
using Xunit;

namespace Berth.Engine.Tests;

/// <summary>meta.json round trips: what Save writes, TryLoad reads back (inspect and the monitor read it).</summary>
public sealed class EngineStoreTests
{
    [Fact]
    public void A_container_record_round_trips_with_its_exposed_ports_and_monitor_fields()
    {
        var root = Directory.CreateTempSubdirectory("berth-store-unit.").FullName;
        try
        {
            var store = new EngineStore(root);
            var id = new string('a', 64);
            Directory.CreateDirectory(store.Dir(id));
            var c = new EngineContainer
            {
                Id = id, Name = "web", Image = "img", ImageId = "sha256:1", Command = "httpd -f",
                Created = new DateTime(2026, 11, 29, 10, 0, 0, DateTimeKind.Utc), AutoRemove = true, ExitCode = 3,
                Layers = ["sha256:l1"], ExposedPorts = ["53/udp", "80/tcp"], RestartPolicy = "on-failure:2",
                StopSignal = "SIGQUIT", RestartCount = 2,
            };
            store.Save(c);
            var back = store.TryLoad(id)!;
            Assert.Equal(["53/udp", "80/tcp"], back.ExposedPorts);
            Assert.Equal(["sha256:l1"], back.Layers);
            Assert.Equal((c.Name, c.ExitCode, c.AutoRemove, c.RestartPolicy, c.StopSignal, c.RestartCount, c.Created),
                (back.Name, back.ExitCode, back.AutoRemove, back.RestartPolicy, back.StopSignal, back.RestartCount, back.Created));

            c.ExposedPorts = [];
            store.Save(c);
            Assert.Empty(store.TryLoad(id)!.ExposedPorts);
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}

using Berth.Runtime.State;

namespace Berth.Runtime.Tests.State;

/// <summary>state.json is written by hand: whatever the strings hold, it parses back to the same record.</summary>
public class RecordJsonTests
{
    [Fact]
    public void Round_trips_strings_that_need_escaping()
    {
        var r = new ContainerRecord
        {
            Id = "c-1", InitPid = 4242, InitStartTime = 123456789012, Bundle = "/srv/b \"q\" \\ back",
            Rootfs = "/srv/b/rootfs\twith\ttabs\nand newline", Created = new DateTime(2026, 11, 29, 13, 0, 0, DateTimeKind.Utc),
            Owner = "r\u00f6ot\u0001", Status = "created", CgroupPath = "/berth/c-1",
            Annotations = new Dictionary<string, string> { ["k\"ey"] = "v\u2028al", ["\u00e9"] = "caf\u00e9 \U0001F600" },
        };
        var text = System.Text.Encoding.UTF8.GetString(RecordJson.Serialize(r));
        using var _ = System.Text.Json.JsonDocument.Parse(text); // strict JSON
        var back = RecordJson.Parse(text);
        Assert.Equal(r.Id, back.Id);
        Assert.Equal(r.InitPid, back.InitPid);
        Assert.Equal(r.InitStartTime, back.InitStartTime);
        Assert.Equal(r.Bundle, back.Bundle);
        Assert.Equal(r.Rootfs, back.Rootfs);
        Assert.Equal(r.Created, back.Created);
        Assert.Equal(r.Owner, back.Owner);
        Assert.Equal(r.Status, back.Status);
        Assert.Equal(r.CgroupPath, back.CgroupPath);
        Assert.Equal(r.Annotations, back.Annotations);
    }
}

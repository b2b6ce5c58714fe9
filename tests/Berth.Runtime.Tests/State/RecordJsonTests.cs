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
            Config = "{\n  \"ociVersion\": \"1.0.2\", // a comment\n  \"process\": {\"args\": [\"sh\", \"-c\", \"echo \\\"\\\\x\\\"\"]},\n}\n",
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
        Assert.Equal(r.Config, back.Config);
    }
}

/// <summary>init.pid beside state.json (ADR 0003's amendment): written once init exists, merged on load.</summary>
public class StateStoreInitTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("berth-state-test-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void A_record_without_a_pid_is_creating_until_init_pid_is_written()
    {
        var store = new StateStore(_root);
        store.CreateDir("c1");
        var r = new ContainerRecord { Id = "c1", Status = "creating", CgroupPath = "/berth/c1", Created = DateTime.UtcNow };
        store.Save(r);
        Assert.Equal(0, store.Load("c1").InitPid);
        Assert.Equal("creating", store.Load("c1").Status);

        r.InitPid = 4321;
        r.InitStartTime = 987654321;
        store.SaveInit(r);
        var back = store.Load("c1");
        Assert.Equal(4321, back.InitPid);
        Assert.Equal(987654321UL, back.InitStartTime);
        Assert.Equal("created", back.Status);
        Assert.Equal("/berth/c1", back.CgroupPath);

        store.Remove("c1");
        Assert.False(Directory.Exists(Path.Combine(_root, "c1")));
    }

    [Fact]
    public void The_config_is_kept_in_the_state_and_an_older_config_json_is_still_read()
    {
        var store = new StateStore(_root);
        store.CreateDir("c3");
        var r = new ContainerRecord { Id = "c3", Status = "creating", Created = DateTime.UtcNow, Config = "{\"ociVersion\":\"1.2.0\"}" };
        store.Save(r);
        Assert.Equal(["state.json"], Directory.GetFiles(Path.Combine(_root, "c3")).Select(Path.GetFileName));
        Assert.Equal(r.Config, store.Config(store.Load("c3")));

        // The state of a berth from before the config moved into state.json: config.json beside it.
        store.CreateDir("old");
        store.Save(new ContainerRecord { Id = "old", Status = "creating", Created = DateTime.UtcNow });
        File.WriteAllText(Path.Combine(_root, "old", "config.json"), "{\"ociVersion\":\"1.0.2\"}");
        var old = store.Load("old");
        Assert.Equal("{\"ociVersion\":\"1.0.2\"}", store.Config(old));
        store.SaveConfig(old, "{\"ociVersion\":\"1.0.3\"}"); // update moves it into state.json
        Assert.False(File.Exists(Path.Combine(_root, "old", "config.json")));
        Assert.Equal("{\"ociVersion\":\"1.0.3\"}", store.Config(store.Load("old")));

        store.CreateDir("none");
        store.Save(new ContainerRecord { Id = "none", Status = "creating", Created = DateTime.UtcNow });
        var e = Assert.Throws<RuntimeError>(() => store.Config(store.Load("none")));
        Assert.Contains("saved config is missing", e.Message);
    }

    [Theory]
    [InlineData("a", true)]
    [InlineData("A1_b.c+d-e", true)]
    [InlineData("9", true)]
    [InlineData("", false)]
    [InlineData("-a", false)]
    [InlineData(".x", false)]
    [InlineData("_x", false)]
    [InlineData("a/b", false)]
    [InlineData("a b", false)]
    [InlineData("caf\u00e9", false)]
    [InlineData("a\n", false)]
    [InlineData("..", false)]
    public void Container_ids_are_letters_digits_and_a_few_marks(string id, bool valid)
    {
        if (valid) StateStore.ValidateId(id);
        else Assert.Throws<RuntimeError>(() => StateStore.ValidateId(id));
    }

    [Fact]
    public void A_corrupt_init_pid_is_named()
    {
        var store = new StateStore(_root);
        store.CreateDir("c2");
        store.Save(new ContainerRecord { Id = "c2", Status = "creating", Created = DateTime.UtcNow });
        File.WriteAllText(Path.Combine(_root, "c2", "init.pid"), "not a pid");
        var e = Assert.Throws<RuntimeError>(() => store.Load("c2"));
        Assert.Contains("init.pid", e.Message);
    }
}

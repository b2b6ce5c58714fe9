using Berth.Runtime.Lifecycle;
using Berth.Runtime.State;

namespace Berth.Runtime.Tests.Lifecycle;

/// <summary>start and delete read only the hooks of the saved config.json, skipping the parse when there can be none.</summary>
public sealed class LoadHooksTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("berth-hooks-").FullName;
    public void Dispose() => Directory.Delete(_root, recursive: true);

    private Berth.Oci.Runtime.Hooks? Load(string json)
    {
        var store = new StateStore(_root);
        Directory.CreateDirectory(Path.GetDirectoryName(store.ConfigPath("c1"))!);
        File.WriteAllText(store.ConfigPath("c1"), json);
        return Start.LoadHooks(store, "c1");
    }

    [Fact]
    public void Hooks_are_read_plain_or_with_an_escaped_key_and_absent_hooks_give_null()
    {
        Assert.Equal("/bin/post", Load("""{"ociVersion":"1.0.2","hooks":{"poststart":[{"path":"/bin/post"}]}}""")!.Poststart![0].Path);
        Assert.Equal("/bin/stop", Load("""{"\u0068ooks":{"poststop":[{"path":"/bin/stop"}]}}""")!.Poststop![0].Path);
        Assert.Null(Load("""{"ociVersion":"1.0.2","process":{"args":["sh"]}}"""));
    }
}

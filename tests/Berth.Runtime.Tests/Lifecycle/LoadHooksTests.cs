using Berth.Runtime.Lifecycle;

namespace Berth.Runtime.Tests.Lifecycle;

/// <summary>start and delete read only the hooks of the saved config, skipping the parse when there can be none.</summary>
public sealed class LoadHooksTests
{
    private static Berth.Oci.Runtime.Hooks? Load(string json) => Start.LoadHooks(json);

    [Fact]
    public void Hooks_are_read_plain_or_with_an_escaped_key_and_absent_hooks_give_null()
    {
        Assert.Equal("/bin/post", Load("""{"ociVersion":"1.0.2","hooks":{"poststart":[{"path":"/bin/post"}]}}""")!.Poststart![0].Path);
        Assert.Equal("/bin/stop", Load("""{"\u0068ooks":{"poststop":[{"path":"/bin/stop"}]}}""")!.Poststop![0].Path);
        Assert.Null(Load("""{"ociVersion":"1.0.2","process":{"args":["sh"]}}"""));
        // Comments and trailing commas, which the config loader accepts too.
        Assert.Equal("/bin/post", Load("""{"hooks":{"poststart":[{"path":"/bin/post",},]}, /* c */}""")!.Poststart![0].Path);
    }
}

using System.Runtime.CompilerServices;
using Berth.Integration.Tests.Infrastructure;
using Xunit;

namespace Berth.Integration.Tests;

/// <summary>
/// Base of every integration test class: one collection (so tests run one at a time), and
/// containers made through <see cref="NewContainer"/> are cleaned up after each test, pass or fail.
/// </summary>
[Collection(RuntimeCollection.Name)]
public abstract class IntegrationTest(TestEnvironment env) : IDisposable
{
    private readonly List<TestContainer> _containers = [];

    protected TestEnvironment Env { get; } = env;

    protected TestContainer NewContainer([CallerMemberName] string name = "c")
    {
        var c = new TestContainer(Env, name);
        _containers.Add(c);
        return c;
    }

    public void Dispose()
    {
        for (int i = _containers.Count - 1; i >= 0; i--) _containers[i].Dispose();
        GC.SuppressFinalize(this);
    }

    protected static string[] Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

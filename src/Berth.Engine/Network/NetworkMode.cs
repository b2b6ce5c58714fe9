using Berth.Engine.Containers;

namespace Berth.Engine.Network;

public enum NetworkKind { None, Host, Private, Bridge, Container }

/// <summary>`--network none|host|private|bridge|container:NAME`.</summary>
public sealed record NetworkMode(NetworkKind Kind, string? Target = null)
{
    public static NetworkMode Parse(string text) => text switch
    {
        "none" => new(NetworkKind.None),
        "host" => new(NetworkKind.Host),
        "private" => new(NetworkKind.Private),
        "bridge" or "default" => new(NetworkKind.Bridge),
        _ when text.StartsWith("container:", StringComparison.Ordinal) && text.Length > 10 => new(NetworkKind.Container, text[10..]),
        _ => throw new EngineError($"--network {text}: expected none, host, private, bridge or container:NAME"),
    };

    /// <summary>Does the container get a network namespace that berth creates and pins?</summary>
    public bool Pinned => Kind is NetworkKind.Private or NetworkKind.Bridge;

    public override string ToString() => Kind switch
    {
        NetworkKind.Container => "container:" + Target,
        _ => Kind.ToString().ToLowerInvariant(),
    };
}

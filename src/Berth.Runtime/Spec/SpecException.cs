namespace Berth.Runtime.Spec;

/// <summary>
/// config.json cannot be used: missing, malformed, of an unsupported version or invalid.
/// The message names the file or field at fault and the offending value.
/// </summary>
public sealed class SpecException : Exception
{
    /// <summary>The JSON path of the field at fault (e.g. "process.args"), when one is known.</summary>
    public string? Field { get; }

    public SpecException(string message, string? field = null, Exception? inner = null) : base(message, inner)
    {
        Field = field;
    }
}

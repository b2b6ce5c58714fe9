namespace Berth.Runtime;

/// <summary>An error the user sees: one line naming what failed and on which object.</summary>
public sealed class RuntimeError(string message, int exitCode = 1) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

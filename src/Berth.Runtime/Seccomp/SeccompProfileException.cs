namespace Berth.Runtime.Seccomp;

/// <summary>A seccomp profile berth refuses; the message names the entry at fault.</summary>
public sealed class SeccompProfileException(string message) : Exception($"seccomp: {message}");

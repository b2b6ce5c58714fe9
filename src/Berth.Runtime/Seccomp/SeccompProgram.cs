using Berth.Linux.Seccomp;

namespace Berth.Runtime.Seccomp;

/// <summary>
/// A compiled filter and what loading it needs. <see cref="Flags"/> go to seccomp(2) as they are
/// (see <see cref="SeccompLoader"/>); when <see cref="ListenerPath"/> is set they include
/// NEW_LISTENER and the fd seccomp(2) returns goes to the listener with the process state.
/// </summary>
public sealed record SeccompProgram(
    SockFilter[] Filter,
    uint Flags,
    string? ListenerPath,
    string? ListenerMetadata,
    IReadOnlyList<string> SkippedSyscalls,
    IReadOnlyList<string> SkippedArchitectures)
{
    public bool HasListener => (Flags & SeccompAbi.FILTER_FLAG_NEW_LISTENER) != 0;
}

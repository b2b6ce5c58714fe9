using System.Runtime.InteropServices;
using Berth.Linux.Processes;

namespace Berth.Runtime.Lifecycle;

/// <summary>Waits for a container process we reap (as subreaper), forwarding the signals a terminal sends.</summary>
internal static class Foreground
{
    private static readonly (PosixSignal Signal, int Number)[] Forwarded =
    [
        (PosixSignal.SIGINT, 2), (PosixSignal.SIGTERM, 15), (PosixSignal.SIGHUP, 1), (PosixSignal.SIGQUIT, 3),
        (PosixSignal.SIGWINCH, 28), ((PosixSignal)10, 10), ((PosixSignal)12, 12),
    ];

    public static ExitStatus Wait(int pid)
    {
        var registrations = Forwarded.Select(f => PosixSignalRegistration.Create(f.Signal, ctx =>
        {
            ctx.Cancel = true;
            Proc.Kill(pid, f.Number);
        })).ToList();
        try
        {
            return Proc.Wait(pid) ?? new ExitStatus(255, 0);
        }
        finally
        {
            foreach (var r in registrations) r.Dispose();
        }
    }
}

using System.Runtime.InteropServices;
using Berth.Linux.Processes;

namespace Berth.Linux.Tests.Processes;

/// <summary>The stop signals' handler (x86_64 code writing to a pipe), with real signals sent to this process.</summary>
public sealed partial class StopSignalsTests
{
    private const int SigUsr2 = 12;

    [LibraryImport("libc", EntryPoint = "kill")] private static partial int Kill(int pid, int sig);

    /// <summary>The handler address of signal <paramref name="sig"/>'s action (glibc's struct sigaction).</summary>
    private static unsafe nint Handler(int sig)
    {
        byte* old = stackalloc byte[152];
        Assert.Equal(0, Berth.Linux.Interop.LibC.sigaction(sig, null, old));
        return *(nint*)old;
    }

    [Fact]
    public void A_caught_signal_is_pending_once_and_the_earlier_action_comes_back()
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            Assert.Null(StopSignals.TryInstall(SigUsr2));
            return;
        }
        nint before = Handler(SigUsr2);
        using (var stops = StopSignals.TryInstall(SigUsr2))
        {
            Assert.NotNull(stops);
            Assert.NotEqual(before, Handler(SigUsr2));
            Assert.False(stops.Pending());
            // Twice: the process lives (the handler replaced the default action, which ends it), the pipe has both.
            Assert.Equal(0, Kill(Environment.ProcessId, SigUsr2));
            Assert.Equal(0, Kill(Environment.ProcessId, SigUsr2));
            var deadline = DateTime.UtcNow.AddSeconds(5);
            bool seen = false;
            while (!seen && DateTime.UtcNow < deadline)
            {
                seen = stops.Pending();
                if (!seen) Thread.Sleep(5);
            }
            Assert.True(seen);
            Assert.False(stops.Pending()); // drained
        }
        Assert.Equal(before, Handler(SigUsr2));

        // A second use drops what the first left pending.
        using (var again = StopSignals.TryInstall(SigUsr2))
        {
            Assert.NotNull(again);
            Assert.False(again.Pending());
        }
    }
}

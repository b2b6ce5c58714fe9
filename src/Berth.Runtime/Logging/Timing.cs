using System.Text;

namespace Berth.Runtime.Logging;

/// <summary>BERTH_TIMING=1 prints a timestamp per setup phase to stderr (raw write: safe in forked children).</summary>
public static class Timing
{
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("BERTH_TIMING") == "1";

    public static void Mark(string what)
    {
        if (!Enabled) return;
        var line = $"{DateTime.UtcNow:ss.ffff} [{Environment.ProcessId}] {what}\n";
        Berth.Linux.Files.Fd.WriteAll(2, Encoding.UTF8.GetBytes(line));
    }
}

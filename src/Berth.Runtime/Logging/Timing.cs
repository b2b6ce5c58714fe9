using System.Text;
using Berth.Linux.Interop;

namespace Berth.Runtime.Logging;

/// <summary>
/// BERTH_TIMING=1 prints a timestamp per setup phase to stderr; BERTH_TIMING=/ABSOLUTE/FILE appends
/// them to that file instead (batch workers' stderr is /dev/null). Raw writes: safe in forked children.
/// </summary>
public static class Timing
{
    private static readonly string? s_setting = Environment.GetEnvironmentVariable("BERTH_TIMING");
    public static readonly bool Enabled = s_setting == "1" || (s_setting?.StartsWith('/') ?? false);
    private static int s_fd = -1;
    private static readonly bool s_alloc = Environment.GetEnvironmentVariable("BERTH_TIMING_ALLOC") == "1";

    public static void Mark(string what)
    {
        if (!Enabled) return;
        var line = $"{DateTime.UtcNow:ss.ffffff} [{Environment.ProcessId}] {what}{(s_alloc ? $" ({GC.GetTotalAllocatedBytes(false) / 1024} KiB)" : "")}\n";
        int fd = 2;
        if (s_setting != "1")
        {
            if (s_fd < 0) s_fd = Berth.Linux.Files.Fd.Open(s_setting!, Consts.O_WRONLY | Consts.O_CREAT | Consts.O_APPEND | Consts.O_CLOEXEC, 0x1a4);
            fd = s_fd;
        }
        Berth.Linux.Files.Fd.WriteAll(fd, Encoding.UTF8.GetBytes(line));
    }
}

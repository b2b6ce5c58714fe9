using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Berth.Engine.Sandbox;

/// <summary>The result of one sandboxed run: status OK|RE|SG|TO|ML|OL|SV|XX and the figures behind it.</summary>
public sealed class Verdict
{
    public string Status { get; set; } = "XX";
    public int ExitCode { get; set; }
    public int ExitSig { get; set; }
    /// <summary>CPU time of the whole tree (cgroup), seconds.</summary>
    public double Time { get; set; }
    public double WallTime { get; set; }
    /// <summary>The cgroup's peak memory usage, KiB (also reported as cg_mem).</summary>
    public long MaxRssKb { get; set; }
    public bool Killed { get; set; }
    /// <summary>Processes still alive when the program's main process exited (killed by the jail's reaper).</summary>
    public int Orphans { get; set; }
    public string Message { get; set; } = "";
    /// <summary>Forbidden system calls the program attempted (seccomp supervisor), and the first of them.</summary>
    public int Violations { get; set; }
    public Violation? FirstViolation { get; set; }

    /// <summary>
    /// Decides the status: a kill for time wins, then an OOM kill in the cgroup, then SIGXFSZ
    /// (output limit), SIGXCPU (the RLIMIT_CPU backstop), any other signal, a non-zero exit.
    /// </summary>
    public static string Classify(bool timeKill, ulong oomKills, int exitCode, int exitSig)
    {
        if (timeKill) return "TO";
        if (oomKills > 0) return "ML";
        if (exitSig == 25) return "OL";
        if (exitSig == 24) return "TO";
        if (exitSig != 0) return "SG";
        return exitCode != 0 ? "RE" : "OK";
    }

    /// <summary>
    /// The verdict as one JSON object and a newline. Written by hand, not with Utf8JsonWriter: the
    /// writer's first use (encoder tables) cost ~0.1 ms of a ~5 ms `sandbox run`. Strings are escaped
    /// as JSON requires (quote, backslash, control characters); numbers are invariant, doubles in
    /// their shortest round-trip form, as Utf8JsonWriter writes them.
    /// </summary>
    public string ToJson()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder(192);
        sb.Append("{\"status\":");
        JsonString(sb, Status);
        sb.Append(",\"exitcode\":").Append(ExitCode.ToString(inv))
          .Append(",\"exitsig\":").Append(ExitSig.ToString(inv))
          .Append(",\"time\":").Append(Math.Round(Time, 3).ToString("R", inv))
          .Append(",\"wall_time\":").Append(Math.Round(WallTime, 3).ToString("R", inv))
          .Append(",\"max_rss\":").Append(MaxRssKb.ToString(inv))
          .Append(",\"cg_mem\":").Append(MaxRssKb.ToString(inv))
          .Append(",\"killed\":").Append(Killed ? "true" : "false")
          .Append(",\"orphans\":").Append(Orphans.ToString(inv))
          .Append(",\"message\":");
        JsonString(sb, Message);
        sb.Append(",\"violations\":").Append(Violations.ToString(inv));
        if (FirstViolation is { } fv) sb.Append(",\"violation\":").Append(fv.ToJson());
        return sb.Append("}\n").ToString();
    }

    private static void JsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            if (c == '"') sb.Append("\\\"");
            else if (c == '\\') sb.Append("\\\\");
            else if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        sb.Append('"');
    }

    /// <summary>isolate's meta file: key:value lines; status only when not OK, as isolate does.</summary>
    public string ToIsolate()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        if (Status != "OK") sb.Append("status:").Append(Status).Append('\n');
        if (ExitSig != 0) sb.Append("exitsig:").Append(ExitSig.ToString(inv)).Append('\n');
        else sb.Append("exitcode:").Append(ExitCode.ToString(inv)).Append('\n');
        sb.Append("time:").Append(Time.ToString("0.000", inv)).Append('\n');
        sb.Append("time-wall:").Append(WallTime.ToString("0.000", inv)).Append('\n');
        sb.Append("max-rss:").Append(MaxRssKb.ToString(inv)).Append('\n');
        sb.Append("cg-mem:").Append(MaxRssKb.ToString(inv)).Append('\n');
        if (Killed) sb.Append("killed:1\n");
        if (Violations > 0) sb.Append("violations:").Append(Violations.ToString(inv)).Append('\n');
        if (FirstViolation is { } fv) sb.Append("violation:").Append(fv.Syscall).Append('\n');
        if (Message.Length > 0) sb.Append("message:").Append(Message.Replace('\n', ' ')).Append('\n');
        return sb.ToString();
    }
}

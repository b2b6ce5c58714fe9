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

    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("status", Status);
            w.WriteNumber("exitcode", ExitCode);
            w.WriteNumber("exitsig", ExitSig);
            w.WriteNumber("time", Math.Round(Time, 3));
            w.WriteNumber("wall_time", Math.Round(WallTime, 3));
            w.WriteNumber("max_rss", MaxRssKb);
            w.WriteNumber("cg_mem", MaxRssKb);
            w.WriteBoolean("killed", Killed);
            w.WriteNumber("orphans", Orphans);
            w.WriteString("message", Message);
            w.WriteNumber("violations", Violations);
            if (FirstViolation is { } fv) { w.WritePropertyName("violation"); fv.Write(w); }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
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

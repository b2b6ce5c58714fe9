using System.Globalization;
using System.Text;
using Berth.Runtime.State;

namespace Berth.Runtime.Lifecycle;

/// <summary>
/// `ps [--format table|json] ID [ps options]`. runc runs ps(1) and filters its output; berth must
/// not fork casually, so the table is built from /proc with the columns of `ps -ef`
/// (UID PID PPID C STIME TTY TIME CMD), or of plain `ps` (PID TTY TIME CMD) without -f.
/// </summary>
public static class Ps
{
    /// <summary>Host pids in the container's cgroup, sorted; empty for a container without processes.</summary>
    public static IReadOnlyList<int> Pids(StateStore store, string id)
    {
        var c = Container.Load(store, id);
        var cg = CgroupSetup.Open(c.Record.CgroupPath);
        if (cg is null) return [];
        try { return [.. cg.Pids().Order()]; }
        catch (Berth.Linux.Cgroups.CgroupException) { return []; } // cgroup gone: the container stopped
    }

    /// <summary>The JSON array runc prints (`[1,2,3]`); berth prints `[]` where runc prints `null`.</summary>
    public static string Json(IReadOnlyList<int> pids) =>
        "[" + string.Join(",", pids.Select(p => p.ToString(CultureInfo.InvariantCulture))) + "]";

    /// <summary>
    /// Which table to print for the ps(1) options given: full (-f, the default -ef) or short.
    /// Selection options (-e, -A) are accepted and change nothing: the container's pids are the selection.
    /// </summary>
    public static bool ParseOptions(IReadOnlyList<string> options)
    {
        if (options.Count == 0) return true;
        bool full = false;
        foreach (var o in options)
        {
            if (o.Length < 2 || o[0] != '-' || o[1..].Any(ch => ch is not ('e' or 'f' or 'A')))
                throw new RuntimeError($"ps option \"{o}\" is not supported: berth reads /proc instead of running ps(1), " +
                    "and prints the columns of -ef (or of plain ps without -f); use --format json for pids");
            full |= o.Contains('f');
        }
        return full;
    }

    public static string Table(IReadOnlyList<int> pids, bool full)
    {
        var rows = new List<string[]>();
        var now = DateTime.Now;
        var boot = BootTime();
        double uptime = Uptime();
        long hz = 100; // USER_HZ, fixed at 100 on every Linux ABI
        var users = full ? UserNames() : [];
        foreach (var pid in pids)
        {
            var stat = ReadStat(pid);
            if (stat is null) continue; // exited meanwhile
            var (ppid, ttyNr, utime, stime, start) = stat.Value;
            double cpuSecs = (utime + stime) / (double)hz;
            var tty = TtyName(ttyNr);
            var time = CpuTime((long)cpuSecs);
            var cmd = Command(pid);
            if (!full)
            {
                rows.Add([pid.ToString(CultureInfo.InvariantCulture), tty, time, Comm(pid) ?? cmd]);
                continue;
            }
            uint uid = Uid(pid) ?? 0;
            double elapsed = uptime - start / (double)hz;
            int c = elapsed > 0 ? (int)Math.Min(99, cpuSecs * 100 / elapsed) : 0;
            var started = boot.AddSeconds(start / (double)hz).ToLocalTime();
            string stimeText = started.Date == now.Date
                ? started.ToString("HH:mm", CultureInfo.InvariantCulture)
                : started.Year == now.Year ? started.ToString("MMMdd", CultureInfo.InvariantCulture) : started.ToString("yyyy", CultureInfo.InvariantCulture);
            var user = users.TryGetValue(uid, out var name) && name.Length <= 8 ? name : uid.ToString(CultureInfo.InvariantCulture);
            rows.Add([user, pid.ToString(CultureInfo.InvariantCulture), ppid.ToString(CultureInfo.InvariantCulture),
                c.ToString(CultureInfo.InvariantCulture), stimeText, tty, time, cmd]);
        }
        // Column layout of procps: left-aligned text, right-aligned numbers, CMD last and unpadded.
        (string Head, int Min, bool Right)[] cols = full
            ? [("UID", 8, false), ("PID", 5, true), ("PPID", 5, true), ("C", 2, true), ("STIME", 5, false), ("TTY", 8, false), ("TIME", 8, true), ("CMD", 0, false)]
            : [("PID", 5, true), ("TTY", 8, false), ("TIME", 8, true), ("CMD", 0, false)];
        var widths = cols.Select((col, i) => Math.Max(col.Min, rows.Select(r => r[i].Length).DefaultIfEmpty(0).Max())).ToArray();
        var sb = new StringBuilder();
        void Line(IReadOnlyList<string> cells)
        {
            for (int i = 0; i < cols.Length; i++)
            {
                if (i > 0) sb.Append(' ');
                if (i == cols.Length - 1) sb.Append(cells[i]);
                else sb.Append(cols[i].Right ? cells[i].PadLeft(widths[i]) : cells[i].PadRight(widths[i]));
            }
            sb.Append('\n');
        }
        Line(cols.Select(c => c.Head).ToArray());
        foreach (var r in rows) Line(r);
        return sb.ToString();
    }

    /// <summary>ppid, tty_nr, utime, stime, starttime from /proc/PID/stat (comm may hold spaces and parens).</summary>
    private static (int Ppid, int TtyNr, ulong Utime, ulong Stime, ulong Start)? ReadStat(int pid)
    {
        string text;
        try { text = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return null; }
        int close = text.LastIndexOf(')');
        if (close < 0) return null;
        var f = text[(close + 2)..].Split(' ');
        // After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime ... starttime(20)
        if (f.Length < 20) return null;
        return (int.Parse(f[1], CultureInfo.InvariantCulture), int.Parse(f[4], CultureInfo.InvariantCulture),
            ulong.Parse(f[11], CultureInfo.InvariantCulture), ulong.Parse(f[12], CultureInfo.InvariantCulture),
            ulong.Parse(f[19], CultureInfo.InvariantCulture));
    }

    private static string? Comm(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n'); }
        catch (IOException) { return null; }
    }

    private static string Command(int pid)
    {
        try
        {
            var raw = File.ReadAllText($"/proc/{pid}/cmdline");
            var args = raw.TrimEnd('\0');
            if (args.Length > 0) return args.Replace('\0', ' ');
        }
        catch (IOException) { }
        return $"[{Comm(pid) ?? "?"}]";
    }

    private static uint? Uid(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("Uid:", StringComparison.Ordinal))
                    return uint.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        catch (IOException) { }
        return null;
    }

    /// <summary>The host's user names (ps(1) shows host names: it runs on the host).</summary>
    private static Dictionary<uint, string> UserNames()
    {
        var map = new Dictionary<uint, string>();
        try
        {
            foreach (var line in File.ReadLines("/etc/passwd"))
            {
                var f = line.Split(':');
                if (f.Length > 2 && uint.TryParse(f[2], CultureInfo.InvariantCulture, out var uid)) map.TryAdd(uid, f[0]);
            }
        }
        catch (IOException) { }
        return map;
    }

    /// <summary>tty_nr to a name as ps prints it: pts/N, ttyN, ttySN, or "?" for none.</summary>
    internal static string TtyName(int ttyNr)
    {
        if (ttyNr == 0) return "?";
        int major = (ttyNr >> 8) & 0xfff;
        int minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00);
        return major switch
        {
            >= 136 and <= 143 => $"pts/{(major - 136) * 256 + minor}",
            4 when minor < 64 => $"tty{minor}",
            4 => $"ttyS{minor - 64}",
            _ => "?",
        };
    }

    /// <summary>[DD-]HH:MM:SS, as ps prints cumulative CPU time.</summary>
    internal static string CpuTime(long seconds)
    {
        long days = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60, s = seconds % 60;
        var hms = $"{h:00}:{m:00}:{s:00}";
        return days > 0 ? $"{days}-{hms}" : hms;
    }

    private static DateTime BootTime()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/stat"))
                if (line.StartsWith("btime ", StringComparison.Ordinal))
                    return DateTime.UnixEpoch.AddSeconds(long.Parse(line[6..].Trim(), CultureInfo.InvariantCulture));
        }
        catch (IOException) { }
        return DateTime.UnixEpoch;
    }

    private static double Uptime()
    {
        try { return double.Parse(File.ReadAllText("/proc/uptime").Split(' ')[0], CultureInfo.InvariantCulture); }
        catch (IOException) { return 0; }
    }
}

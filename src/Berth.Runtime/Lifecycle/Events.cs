using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Linux.Cgroups;
using Berth.Runtime.State;

namespace Berth.Runtime.Lifecycle;

/// <summary>
/// `events [--stats] [--interval 5s] ID`: one JSON line per event, in runc's shape:
/// <c>{"type":"stats","id":ID,"data":{"cpu":...,"memory":...,"pids":...}}</c> every interval, and
/// <c>{"type":"oom","id":ID}</c> whenever the cgroup's oom_kill counter rises (polled). Ends when the
/// container stops. With --stats, prints one stats line and exits.
/// </summary>
public static class Events
{
    private static readonly TimeSpan OomPoll = TimeSpan.FromMilliseconds(200);

    /// <summary>Go duration syntax as runc's --interval takes it: 5s, 500ms, 1m30s, 1.5s.</summary>
    public static TimeSpan ParseInterval(string text)
    {
        double total = 0;
        int i = 0;
        if (text.Length == 0) throw Bad(text);
        while (i < text.Length)
        {
            int start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.')) i++;
            if (start == i || !double.TryParse(text[start..i], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n))
                throw Bad(text);
            int u = i;
            while (i < text.Length && !char.IsAsciiDigit(text[i]) && text[i] != '.') i++;
            total += n * (text[u..i] switch
            {
                "ns" => 1e-6, "us" or "µs" => 1e-3, "ms" => 1, "s" => 1000, "m" => 60_000, "h" => 3_600_000,
                _ => throw Bad(text),
            });
        }
        if (total <= 0) throw new RuntimeError($"duration interval must be greater than 0 (got \"{text}\")");
        return TimeSpan.FromMilliseconds(total);
    }

    private static RuntimeError Bad(string text) =>
        new($"invalid value \"{text}\" for --interval: a duration like 5s, 500ms or 1m");

    public static int Execute(StateStore store, string id, bool statsOnce, TimeSpan interval, TextWriter output)
    {
        var c = Container.Load(store, id);
        if (c.Status() is "stopped" or "creating") throw new RuntimeError($"container with id {id} is not running");
        var cg = CgroupSetup.Open(c.Record.CgroupPath) ?? throw new RuntimeError($"container {id} has no cgroup");
        if (statsOnce)
        {
            Write(output, new Event { Type = "stats", Id = id, Data = Collect(cg) });
            return 0;
        }
        ulong oomSeen = Oom(cg);
        var nextStats = DateTime.UtcNow;
        while (true)
        {
            if (c.Status() == "stopped") return 0;
            if (DateTime.UtcNow >= nextStats)
            {
                Write(output, new Event { Type = "stats", Id = id, Data = Collect(cg) });
                nextStats = DateTime.UtcNow + interval;
            }
            ulong oom = Oom(cg);
            if (oom > oomSeen) Write(output, new Event { Type = "oom", Id = id });
            oomSeen = Math.Max(oom, oomSeen);
            var wait = nextStats - DateTime.UtcNow;
            Thread.Sleep(wait < OomPoll ? (wait > TimeSpan.Zero ? wait : TimeSpan.Zero) : OomPoll);
        }
    }

    private static ulong Oom(ICgroupManager cg)
    {
        try { return cg.Stats().OomKills ?? 0; }
        catch (Exception e) when (e is IOException or CgroupException) { return 0; }
    }

    private static void Write(TextWriter output, Event e)
    {
        output.WriteLine(JsonSerializer.Serialize(e, EventsJson.Default.Event));
        output.Flush();
    }

    /// <summary>The usage figures in runc's stats layout, from the manager and the cgroup's own files.</summary>
    internal static StatsData Collect(ICgroupManager cg)
    {
        var s = cg.Stats();
        var files = new CgroupFiles(cg.Directories);
        var data = new StatsData();

        var cpu = data.Cpu;
        cpu.Usage.Total = s.CpuUsageNanos ?? 0;
        if (files.Find("cpuacct.usage_percpu") is { } percpu)
            cpu.Usage.Percpu = [.. percpu.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(v => ulong.Parse(v, CultureInfo.InvariantCulture))];
        const ulong TickNs = 10_000_000; // USER_HZ 100
        if (files.Keys("cpuacct.stat") is { } acct)
        {
            cpu.Usage.User = acct.GetValueOrDefault("user") * TickNs;
            cpu.Usage.Kernel = acct.GetValueOrDefault("system") * TickNs;
        }
        if (files.Keys("cpu.stat") is { } cs)
        {
            if (cs.TryGetValue("user_usec", out var uu)) cpu.Usage.User = uu * 1000; // v2
            if (cs.TryGetValue("system_usec", out var su)) cpu.Usage.Kernel = su * 1000;
            cpu.Throttling.Periods = cs.GetValueOrDefault("nr_periods");
            cpu.Throttling.ThrottledPeriods = cs.GetValueOrDefault("nr_throttled");
            cpu.Throttling.ThrottledTime = cs.TryGetValue("throttled_usec", out var tu) ? tu * 1000 : cs.GetValueOrDefault("throttled_time");
        }

        var mem = data.Memory;
        mem.Usage.Usage = s.MemoryUsage ?? 0;
        mem.Usage.Max = s.MemoryMaxUsage ?? 0;
        mem.Usage.Limit = s.MemoryLimit ?? ulong.MaxValue;
        mem.Usage.Failcnt = files.Number("memory.failcnt") ?? 0;
        if (files.Find("memory.memsw.usage_in_bytes") is not null)
            mem.Swap = new MemoryEntry
            {
                Usage = files.Number("memory.memsw.usage_in_bytes") ?? 0,
                Max = files.Number("memory.memsw.max_usage_in_bytes") ?? 0,
                Limit = files.Number("memory.memsw.limit_in_bytes") ?? ulong.MaxValue,
                Failcnt = files.Number("memory.memsw.failcnt") ?? 0,
            };
        else if (files.Find("memory.swap.current") is not null)
            mem.Swap = new MemoryEntry { Usage = files.Number("memory.swap.current") ?? 0, Limit = files.Number("memory.swap.max") ?? ulong.MaxValue };
        if (files.Keys("memory.stat") is { } raw)
        {
            mem.Raw = raw;
            mem.Cache = raw.TryGetValue("cache", out var cache) ? cache : raw.GetValueOrDefault("file");
        }

        data.Pids.Current = s.PidsCurrent ?? 0;
        data.Pids.Limit = s.PidsLimit;
        return data;
    }

    /// <summary>Reads a file from whichever of the cgroup's directories has it (v1: one per controller).</summary>
    private sealed class CgroupFiles(IReadOnlyList<string> dirs)
    {
        public string? Find(string name)
        {
            foreach (var d in dirs)
            {
                try { return File.ReadAllText(Path.Combine(d, name)).Trim(); }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
            return null;
        }

        public ulong? Number(string name) =>
            ulong.TryParse(Find(name), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;

        public SortedDictionary<string, ulong>? Keys(string name)
        {
            if (Find(name) is not { } text) return null;
            var map = new SortedDictionary<string, ulong>(StringComparer.Ordinal);
            foreach (var line in text.Split('\n'))
            {
                var f = line.Split(' ');
                if (f.Length == 2 && ulong.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out var v)) map[f[0]] = v;
            }
            return map;
        }
    }
}

public sealed class Event
{
    public string Type { get; set; } = "";
    public string Id { get; set; } = "";
    public StatsData? Data { get; set; }
}

public sealed class StatsData
{
    public CpuStats Cpu { get; set; } = new();
    public MemoryStats Memory { get; set; } = new();
    public PidsStats Pids { get; set; } = new();
    public Dictionary<string, ulong> Blkio { get; set; } = [];
    public Dictionary<string, ulong> Hugetlb { get; set; } = [];
}

public sealed class CpuStats
{
    public CpuUsage Usage { get; set; } = new();
    public Throttling Throttling { get; set; } = new();
}

public sealed class CpuUsage
{
    public ulong Total { get; set; }
    public List<ulong>? Percpu { get; set; }
    public ulong Kernel { get; set; }
    public ulong User { get; set; }
}

public sealed class Throttling
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Periods { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong ThrottledPeriods { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong ThrottledTime { get; set; }
}

public sealed class MemoryStats
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Cache { get; set; }
    public MemoryEntry Usage { get; set; } = new();
    public MemoryEntry? Swap { get; set; }
    public SortedDictionary<string, ulong>? Raw { get; set; }
}

public sealed class MemoryEntry
{
    public ulong Limit { get; set; }
    public ulong Usage { get; set; }
    public ulong Max { get; set; }
    public ulong Failcnt { get; set; }
}

public sealed class PidsStats
{
    public ulong Current { get; set; }
    public ulong? Limit { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(Event))]
internal sealed partial class EventsJson : JsonSerializerContext;

using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Berth.Linux.Cgroups;
using Berth.Linux.Files;
using Berth.Oci;
using Berth.Runtime.Cgroups;
using Berth.Runtime.State;
using OciSpec = Berth.Oci.Runtime;

namespace Berth.Runtime.Lifecycle;

/// <summary>
/// `update [--resources FILE|-] ID` and the flag form (--memory 64m, --cpu-share 512, --pids-limit 50, ...).
/// The new values are merged into the container's linux.resources (a field left out, or 0, keeps its
/// value, as with runc), written to the cgroup through <see cref="ICgroupManager.Apply"/>, and then
/// saved in the state dir's copy of config.json, so later commands see them. Device rules are
/// rewritten only when the update names some.
/// </summary>
public static partial class Update
{
    /// <summary>The flag names `update` takes (runc's, plus --cpu-shares as docker spells it) and what each sets.</summary>
    public static readonly IReadOnlyList<string> FlagNames =
    [
        "memory", "memory-reservation", "memory-swap", "cpu-share", "cpu-shares", "cpu-quota", "cpu-period",
        "cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "pids-limit", "blkio-weight",
    ];

    [GeneratedRegex(@"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")]
    private static partial Regex SizePattern();

    /// <summary>
    /// A byte count as runc (docker's RAMInBytes) reads it: a number with an optional binary suffix
    /// k, m, g, t or p (1024-based; "i" and "b" may follow: 64m, 64MB, 64MiB, 1.5g), or -1 for unlimited.
    /// </summary>
    public static long ParseSize(string text)
    {
        if (text == "-1") return -1;
        var m = SizePattern().Match(text);
        if (!m.Success || !double.TryParse(m.Groups[1].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n))
            throw new RuntimeError($"invalid size: '{text}'");
        int shift = m.Groups[2].Success ? "kmgtp".IndexOf(char.ToLowerInvariant(m.Groups[2].Value[0])) * 10 + 10 : 0;
        double bytes = n * Math.Pow(2, shift);
        if (bytes >= long.MaxValue) throw new RuntimeError($"invalid size: '{text}' is too large");
        return (long)bytes;
    }

    /// <summary>
    /// The resources the flags ask for; only the given fields are set. Throws a RuntimeError naming
    /// the flag for a value that does not parse.
    /// </summary>
    public static OciSpec.Resources FromFlags(IReadOnlyDictionary<string, string> flags)
    {
        var r = new OciSpec.Resources();
        OciSpec.Memory Mem() => r.Memory ??= new OciSpec.Memory();
        OciSpec.Cpu Cpu() => r.Cpu ??= new OciSpec.Cpu();
        foreach (var (name, value) in flags)
        {
            if (!FlagNames.Contains(name)) throw new RuntimeError($"update: unknown option --{name}");
            try
            {
                switch (name)
                {
                    case "memory": Mem().Limit = ParseSize(value); break;
                    case "memory-reservation": Mem().Reservation = ParseSize(value); break;
                    case "memory-swap": Mem().Swap = ParseSize(value); break;
                    case "cpu-share" or "cpu-shares": Cpu().Shares = ulong.Parse(value, CultureInfo.InvariantCulture); break;
                    case "cpu-quota": Cpu().Quota = long.Parse(value, CultureInfo.InvariantCulture); break;
                    case "cpu-period": Cpu().Period = ulong.Parse(value, CultureInfo.InvariantCulture); break;
                    case "cpu-rt-period": Cpu().RealtimePeriod = ulong.Parse(value, CultureInfo.InvariantCulture); break;
                    case "cpu-rt-runtime": Cpu().RealtimeRuntime = long.Parse(value, CultureInfo.InvariantCulture); break;
                    case "cpuset-cpus": Cpu().Cpus = value; break;
                    case "cpuset-mems": Cpu().Mems = value; break;
                    case "pids-limit": r.Pids = new OciSpec.Pids { Limit = long.Parse(value, CultureInfo.InvariantCulture) }; break;
                    case "blkio-weight": r.BlockIO = new OciSpec.BlockIo { Weight = ushort.Parse(value, CultureInfo.InvariantCulture) }; break;
                }
            }
            catch (Exception e) when (e is FormatException or OverflowException or RuntimeError)
            {
                var why = e is RuntimeError ? e.Message : $"\"{value}\" is not a valid number";
                throw new RuntimeError($"invalid value for {name}: {why}");
            }
        }
        return r;
    }

    /// <summary>linux.resources JSON as `--resources` gives it.</summary>
    public static OciSpec.Resources ParseResources(string json, string source)
    {
        try { return JsonSerializer.Deserialize(json, OciJson.Default.Resources) ?? new OciSpec.Resources(); }
        catch (JsonException e) { throw new RuntimeError($"update: {source} is not linux.resources JSON: {e.Message}"); }
    }

    /// <summary>
    /// <paramref name="current"/> with every field <paramref name="update"/> sets (non-null; for the
    /// numbers, also non-zero, since 0 means "unset" in the OCI model). Lists and maps replace whole.
    /// </summary>
    public static OciSpec.Resources Merge(OciSpec.Resources? current, OciSpec.Resources update)
    {
        // A deep copy, so the caller's object stays as it was (it is the rollback value).
        var r = current is null ? new OciSpec.Resources()
            : JsonSerializer.Deserialize(JsonSerializer.Serialize(current, OciJson.Default.Resources), OciJson.Default.Resources)!;
        if (update.Memory is { } um)
        {
            var m = r.Memory ??= new OciSpec.Memory();
            m.Limit = Pick(um.Limit, m.Limit);
            m.Reservation = Pick(um.Reservation, m.Reservation);
            m.Swap = Pick(um.Swap, m.Swap);
            m.Kernel = Pick(um.Kernel, m.Kernel);
            m.KernelTCP = Pick(um.KernelTCP, m.KernelTCP);
            m.Swappiness = um.Swappiness ?? m.Swappiness;
            m.DisableOOMKiller = um.DisableOOMKiller ?? m.DisableOOMKiller;
        }
        if (update.Cpu is { } uc)
        {
            var c = r.Cpu ??= new OciSpec.Cpu();
            c.Shares = Pick(uc.Shares, c.Shares);
            c.Quota = Pick(uc.Quota, c.Quota);
            c.Period = Pick(uc.Period, c.Period);
            c.Burst = uc.Burst ?? c.Burst;
            c.RealtimeRuntime = Pick(uc.RealtimeRuntime, c.RealtimeRuntime);
            c.RealtimePeriod = Pick(uc.RealtimePeriod, c.RealtimePeriod);
            c.Cpus = string.IsNullOrEmpty(uc.Cpus) ? c.Cpus : uc.Cpus;
            c.Mems = string.IsNullOrEmpty(uc.Mems) ? c.Mems : uc.Mems;
            c.Idle = uc.Idle ?? c.Idle;
        }
        if (update.Pids?.Limit is { } pids and not 0) r.Pids = new OciSpec.Pids { Limit = pids };
        if (update.BlockIO?.Weight is { } weight and not 0) (r.BlockIO ??= new OciSpec.BlockIo()).Weight = weight;
        if (update.Devices is not null) r.Devices = update.Devices;
        if (update.HugepageLimits is not null) r.HugepageLimits = update.HugepageLimits;
        if (update.Unified is not null) r.Unified = update.Unified;
        return r;
    }

    private static long? Pick(long? update, long? current) => update is null or 0 ? current : update;
    private static ulong? Pick(ulong? update, ulong? current) => update is null or 0 ? current : update;

    /// <summary>
    /// What to hand <see cref="ICgroupManager.Apply"/> for the merged resources: every limit (writing an
    /// unchanged value again is harmless and keeps memory/swap ordering right), but device rules,
    /// hugepage limits and unified files only when the update itself names them.
    /// </summary>
    public static CgroupResources ToCgroup(OciSpec.Linux? linux, OciSpec.Resources merged, OciSpec.Resources update)
    {
        try
        {
            var spec = new OciSpec.Linux { Resources = merged, Devices = linux?.Devices };
            var c = update.Devices is null ? ResourceMapping.FromSpec(merged) : ResourceMapping.ForContainer(spec);
            if (update.Devices is null) c.Devices.Clear();
            if (update.HugepageLimits is null) c.HugepageLimits.Clear();
            if (update.Unified is null) c.Unified.Clear();
            return c;
        }
        catch (CgroupSpecException e) { throw new RuntimeError(e.Message); }
    }

    public static void Execute(StateStore store, string id, OciSpec.Resources update)
    {
        StateStore.ValidateId(id);
        using (store.LockContainer(id))
        {
            // Loaded under the lock: the config saved below must be the one this update merged into.
            var c = Container.Load(store, id);
            if (c.Status() is "stopped" or "creating") throw new RuntimeError("container not running");
            var text = store.Config(c.Record);
            OciSpec.Spec spec;
            try { spec = JsonSerializer.Deserialize(text, OciJson.Default.Spec) ?? throw new JsonException("empty"); }
            catch (JsonException e) { throw new RuntimeError($"container {id}: its saved config is corrupt: {e.Message}"); }

            var current = spec.Linux?.Resources;
            var merged = Merge(current, update);
            var wanted = ToCgroup(spec.Linux, merged, update);
            var cg = CgroupSetup.Open(c.Record.CgroupPath) ?? throw new RuntimeError($"container {id} has no cgroup to update");
            try { cg.Apply(wanted); }
            catch (CgroupException e)
            {
                // Some files may already hold the new values: put the old ones back, as far as they go.
                try { cg.Apply(ToCgroup(spec.Linux, current ?? new OciSpec.Resources(), new OciSpec.Resources())); }
                catch (Exception undo) when (undo is CgroupException or RuntimeError)
                {
                    Logging.Log.Warn($"restoring the previous limits failed too ({undo.Message}); the cgroup may hold some of the new values");
                }
                throw new RuntimeError(e.Message);
            }
            store.SaveConfig(c.Record, WithResources(text, merged));
        }
    }

    /// <summary>The config with linux.resources replaced, every other field kept as written.</summary>
    private static string WithResources(string text, OciSpec.Resources merged)
    {
        var doc = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true })!.AsObject();
        var linuxKey = doc.Select(p => p.Key).FirstOrDefault(k => k.Equals("linux", StringComparison.OrdinalIgnoreCase)) ?? "linux";
        if (doc[linuxKey] is not JsonObject linux) doc[linuxKey] = linux = new JsonObject();
        foreach (var k in linux.Select(p => p.Key).Where(k => k.Equals("resources", StringComparison.OrdinalIgnoreCase)).ToList())
            linux.Remove(k);
        linux["resources"] = JsonSerializer.SerializeToNode(merged, OciJson.Default.Resources);
        return doc.ToJsonString();
    }
}

using Berth.Linux.Cgroups;
using OciSpec = Berth.Oci.Runtime;

namespace Berth.Runtime.Cgroups;

/// <summary>A linux.resources value the runtime will not apply; the message names the field and the value.</summary>
public sealed class CgroupSpecException(string message) : Exception(message);

/// <summary>
/// linux.resources (OCI) to <see cref="CgroupResources"/> (cgroup terms), validated in one pure step
/// before anything is created. 0 means "unset" for the numeric fields, as runc reads the spec.
/// Ignored on purpose: memory.kernel and memory.kernelTCP (kernel memory accounting is gone from
/// current kernels; runc ignores them too), memory.useHierarchy and checkBeforeUpdate, blockIO
/// fields other than weight (the throttle and per-device lists are not mapped yet).
/// </summary>
public static class ResourceMapping
{
    private const string F = "linux.resources";

    public static CgroupResources FromSpec(OciSpec.Resources? r)
    {
        var c = new CgroupResources();
        if (r is null) return c;
        if (r.Memory is { } m) MapMemory(m, c);
        if (r.Cpu is { } cpu) MapCpu(cpu, c);
        if (r.Pids?.Limit is { } pids) c.PidsLimit = pids; // 0 or negative: unlimited ("max")
        if (r.BlockIO?.Weight is { } weight and not 0)
        {
            if (weight is < 10 or > 1000) throw Bad($"{F}.blockIO.weight: {weight} is out of range (10 to 1000)");
            c.BlkioWeight = weight;
        }
        if (r.HugepageLimits is { } huge)
            for (int i = 0; i < huge.Count; i++)
            {
                try { V2Values.CheckPageSize(huge[i].PageSize); }
                catch (CgroupException) { throw Bad($"{F}.hugepageLimits[{i}].pageSize: \"{huge[i].PageSize}\" is not a page size like 2MB or 1GB"); }
                c.HugepageLimits.Add((huge[i].PageSize, huge[i].Limit));
            }
        if (r.Unified is { } unified)
            foreach (var (key, value) in unified)
            {
                try { V2Values.CheckUnifiedKey(key); }
                catch (CgroupException) { throw Bad($"{F}.unified: \"{key}\" is not a cgroup file name"); }
                c.Unified[key] = value;
            }
        if (r.Devices is { } devices)
            for (int i = 0; i < devices.Count; i++) c.Devices.Add(MapDevice(devices[i], i));
        return c;
    }

    private static void MapMemory(OciSpec.Memory m, CgroupResources c)
    {
        c.MemoryLimit = Bytes(m.Limit, "memory.limit");
        c.MemoryReservation = Bytes(m.Reservation, "memory.reservation");
        c.MemorySwap = Bytes(m.Swap, "memory.swap");
        if (c.MemorySwap is > 0 && c.MemoryLimit is { } limit && (limit == -1 || c.MemorySwap < limit))
            throw Bad($"{F}.memory.swap: {c.MemorySwap} is less than {F}.memory.limit ({limit}); swap is the memory+swap total");
        if (c.MemorySwap is > 0 && c.MemoryLimit is null)
            throw Bad($"{F}.memory.swap: {c.MemorySwap} needs {F}.memory.limit to be set as well");
        // Docker long sent -1 through a uint64 for "unset": read it as unset, not as a huge value.
        if (m.Swappiness is { } sw && sw != ulong.MaxValue)
        {
            if (sw > 100) throw Bad($"{F}.memory.swappiness: {sw} is out of range (0 to 100)");
            c.MemorySwappiness = sw;
        }
        if (m.DisableOOMKiller == true) c.DisableOomKiller = true;
    }

    private static long? Bytes(long? v, string field) => v switch
    {
        null or 0 => null,
        -1 or > 0 => v,
        _ => throw Bad($"{F}.{field}: {v} is not a valid limit (a byte count, or -1 for unlimited)"),
    };

    private static void MapCpu(OciSpec.Cpu cpu, CgroupResources c)
    {
        if (cpu.Shares is { } shares and not 0) c.CpuShares = shares;
        if (cpu.Quota is { } quota and not 0)
        {
            if (quota < -1) throw Bad($"{F}.cpu.quota: {quota} is not valid (microseconds per period, or -1 for unlimited)");
            c.CpuQuota = quota;
        }
        if (cpu.Period is { } period and not 0)
        {
            if (period is < 1000 or > 1_000_000) throw Bad($"{F}.cpu.period: {period} is out of range (1000 to 1000000 microseconds)");
            c.CpuPeriod = period;
        }
        c.CpuBurst = cpu.Burst;
        if (cpu.RealtimeRuntime is { } rt and not 0)
        {
            if (rt < -1) throw Bad($"{F}.cpu.realtimeRuntime: {rt} is not valid");
            c.CpuRealtimeRuntime = rt;
        }
        if (cpu.RealtimePeriod is { } rtp and not 0) c.CpuRealtimePeriod = rtp;
        c.CpusetCpus = CpuList(cpu.Cpus, "cpu.cpus");
        c.CpusetMems = CpuList(cpu.Mems, "cpu.mems");
        if (cpu.Idle is { } idle)
        {
            if (idle is not (0 or 1)) throw Bad($"{F}.cpu.idle: {idle} must be 0 or 1");
            c.CpuIdle = idle;
        }
    }

    /// <summary>A cpuset list: "0-3,5,7-8". Empty means unset.</summary>
    private static string? CpuList(string? v, string field)
    {
        if (string.IsNullOrWhiteSpace(v)) return null;
        foreach (var part in v.Split(','))
        {
            var ends = part.Split('-');
            if (ends.Length > 2 || ends.Any(e => e.Length == 0 || !e.All(char.IsAsciiDigit)) ||
                (ends.Length == 2 && ulong.Parse(ends[0]) > ulong.Parse(ends[1])))
                throw Bad($"{F}.{field}: \"{v}\" is not a list like 0-3,5");
        }
        return v;
    }

    private static DeviceRule MapDevice(OciSpec.DeviceCgroup d, int i)
    {
        char type = d.Type switch
        {
            null or "" or "a" => 'a',
            "b" => 'b',
            "c" => 'c',
            _ => throw Bad($"{F}.devices[{i}].type: \"{d.Type}\" must be a, b or c"),
        };
        var access = string.IsNullOrEmpty(d.Access) ? "rwm" : d.Access;
        if (access.Any(ch => ch is not ('r' or 'w' or 'm')) || access.Distinct().Count() != access.Length)
            throw Bad($"{F}.devices[{i}].access: \"{d.Access}\" must be made of r, w and m, each at most once");
        return new DeviceRule(d.Allow, type, DeviceNumber(d.Major, $"devices[{i}].major"), DeviceNumber(d.Minor, $"devices[{i}].minor"), access);
    }

    private static long DeviceNumber(long? v, string field) => v switch
    {
        null or -1 => -1,
        >= 0 and <= int.MaxValue => v.Value,
        _ => throw Bad($"{F}.{field}: {v} is not a device number"),
    };

    /// <summary>
    /// Allowed in every container, after the spec's own rules, as runc and crun do: mknod of any
    /// device (creating a node gives no access to it), and the default /dev nodes.
    /// </summary>
    public static IReadOnlyList<DeviceRule> DefaultAllowedDevices { get; } =
    [
        new(true, 'c', -1, -1, "m"),
        new(true, 'b', -1, -1, "m"),
        new(true, 'c', 1, 3, "rwm"),   // /dev/null
        new(true, 'c', 1, 5, "rwm"),   // /dev/zero
        new(true, 'c', 1, 7, "rwm"),   // /dev/full
        new(true, 'c', 1, 8, "rwm"),   // /dev/random
        new(true, 'c', 1, 9, "rwm"),   // /dev/urandom
        new(true, 'c', 5, 0, "rwm"),   // /dev/tty
        new(true, 'c', 5, 2, "rwm"),   // /dev/ptmx
        new(true, 'c', 136, -1, "rwm"), // /dev/pts/*
    ];

    /// <summary>
    /// The final ordered rule list: the spec's rules (already in <paramref name="resources"/>,
    /// typically starting with a deny-all), then <see cref="DefaultAllowedDevices"/>, then an allow
    /// for each device node the spec asks to create (linux.devices), so those stay usable.
    /// </summary>
    public static List<DeviceRule> DeviceRules(IEnumerable<DeviceRule> specRules, IEnumerable<OciSpec.Device>? created = null)
    {
        var rules = new List<DeviceRule>(specRules);
        int explicitCount = rules.Count;
        rules.AddRange(DefaultAllowedDevices);
        if (created is not null)
            foreach (var d in created)
                if (d.Type is "c" or "u" or "b")
                {
                    char type = d.Type == "b" ? 'b' : 'c';
                    // A node the config also names in resources.devices gets exactly the access given
                    // there (an engine's `--device /dev/x:/dev/x:r`), not the implicit rwm.
                    bool named = false;
                    for (int i = 0; i < explicitCount; i++)
                        if (rules[i].Type == type && rules[i].Major == d.Major && rules[i].Minor == d.Minor) { named = true; break; }
                    if (!named) rules.Add(new DeviceRule(true, type, d.Major, d.Minor, "rwm"));
                }
        return rules;
    }

    /// <summary>FromSpec plus the final device list: what the runtime hands to ICgroupManager.Apply.</summary>
    public static CgroupResources ForContainer(OciSpec.Linux? linux)
    {
        var c = FromSpec(linux?.Resources);
        var rules = DeviceRules(c.Devices, linux?.Devices);
        c.Devices.Clear();
        c.Devices.AddRange(rules);
        return c;
    }

    private static CgroupSpecException Bad(string message) => new(message);
}

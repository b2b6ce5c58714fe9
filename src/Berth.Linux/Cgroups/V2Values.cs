using System.Globalization;

namespace Berth.Linux.Cgroups;

/// <summary>
/// Conversions from the OCI (v1-shaped) resource values to cgroup v2 file values.
/// Pure, so the numbers that clients depend on are unit-tested exactly.
/// </summary>
public static class V2Values
{
    public const ulong DefaultCpuPeriod = 100_000;

    /// <summary>
    /// cpu.shares (2..262144, default 1024) to cpu.weight (1..10000, default 100) by the linear map
    /// runc and crun have long used: 1 + ((shares - 2) * 9999) / 262142. 0 means unset (null).
    /// </summary>
    public static ulong? CpuWeight(ulong shares)
    {
        if (shares == 0) return null;
        if (shares <= 2) return 1;
        if (shares >= 262_144) return 10_000;
        return 1 + (shares - 2) * 9_999 / 262_142;
    }

    /// <summary>blkio.weight (10..1000) to io.weight (1..10000), linearly; 0 means unset (null).</summary>
    public static ulong? IoWeight(ushort blkioWeight)
    {
        if (blkioWeight == 0) return null;
        if (blkioWeight <= 10) return 1;
        if (blkioWeight >= 1000) return 10_000;
        return 1 + (ulong)(blkioWeight - 10) * 9_999 / 990;
    }

    /// <summary>
    /// The memory.swap.max value for OCI's memory+swap <paramref name="swap"/>: swap minus limit,
    /// "max" for -1, null (leave alone) for unset/0. An unlimited memory limit with no swap value
    /// means swap unlimited too, as on v1 (memsw follows the limit).
    /// </summary>
    public static string? SwapMax(long? swap, long? limit)
    {
        if (limit == -1 && swap is null or 0) return "max";
        if (swap is null or 0) return null;
        if (swap == -1) return "max";
        if (swap < -1) throw new CgroupException($"cgroup: memory+swap limit {swap} is not valid");
        if (limit is null or 0 or -1)
            throw new CgroupException($"cgroup: a memory+swap limit ({swap}) needs a memory limit on cgroup v2");
        if (swap < limit)
            throw new CgroupException($"cgroup: memory+swap limit {swap} is lower than the memory limit {limit}; OCI swap counts memory plus swap");
        return (swap.Value - limit.Value).ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// cpu.max: "QUOTA PERIOD"; "max PERIOD" when no positive quota is given; the period defaults
    /// to 100000 us. Null when neither is set (0 counts as unset, as in OCI).
    /// </summary>
    public static string? CpuMax(long? quota, ulong? period)
    {
        bool hasQuota = quota is not null and not 0, hasPeriod = period is not null and not 0;
        if (!hasQuota && !hasPeriod) return null;
        var q = quota > 0 ? quota.Value.ToString(CultureInfo.InvariantCulture) : "max";
        var p = hasPeriod ? period!.Value : DefaultCpuPeriod;
        return q + " " + p.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>A byte limit: negative means unlimited ("max").</summary>
    public static string Limit(long v) => v < 0 ? "max" : v.ToString(CultureInfo.InvariantCulture);

    /// <summary>Hugepage sizes name files (hugetlb.2MB.max): digits plus KB, MB or GB, nothing else.</summary>
    public static void CheckPageSize(string size)
    {
        int i = 0;
        while (i < size.Length && char.IsAsciiDigit(size[i])) i++;
        var unit = size[i..];
        if (i == 0 || unit is not ("KB" or "MB" or "GB"))
            throw new CgroupException($"cgroup: hugepage size \"{size}\" is not valid (expected e.g. 2MB or 1GB)");
    }

    /// <summary>A linux.resources.unified key is one file name in the container's cgroup directory.</summary>
    public static void CheckUnifiedKey(string key)
    {
        if (key.Length == 0 || key.Contains('/') || key.Contains('\0') || key is "." or ".." || key.Contains(".."))
            throw new CgroupException($"cgroup: unified key \"{key}\" is not a cgroup file name");
    }
}

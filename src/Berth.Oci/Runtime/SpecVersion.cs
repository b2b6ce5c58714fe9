namespace Berth.Oci.Runtime;

/// <summary>Which runtime-spec versions berth accepts in config.json.</summary>
public static class SpecVersion
{
    public const string Current = "1.3.0";

    /// <summary>Every released 1.x line up to 1.3 (with patch levels and pre-release tags such as -rc.1 or -dev).</summary>
    public static bool IsSupported(string? version)
    {
        if (string.IsNullOrEmpty(version)) return false;
        var core = version.Split('-', '+')[0];
        var parts = core.Split('.');
        if (parts.Length != 3) return false;
        if (!int.TryParse(parts[0], out var major) || !int.TryParse(parts[1], out var minor) || !int.TryParse(parts[2], out _))
            return false;
        return major == 1 && minor is >= 0 and <= 3;
    }
}

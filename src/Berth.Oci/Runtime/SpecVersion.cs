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
        if (!parts.All(IsNumber)) return false;
        return int.Parse(parts[0]) == 1 && int.Parse(parts[1]) is >= 0 and <= 3;
    }

    /// <summary>The message for an unsupported version, naming what is accepted.</summary>
    public static string Supported => "1.0.x, 1.1.x, 1.2.x and 1.3.x";

    // SemVer numeric identifiers: digits only (no sign, no spaces), short enough for int.
    private static bool IsNumber(string s) => s.Length is > 0 and < 10 && s.All(char.IsAsciiDigit);
}

namespace Berth.Cli;

/// <summary>berth's version, shared by the `berth` and `berth-runtime` binaries.</summary>
public static class BerthVersion
{
    public const string Value = "0.1.0";
}

using System.Security.Cryptography;

namespace Berth.Images.Content;

/// <summary>
/// A content digest, "sha256:&lt;64 lowercase hex&gt;". Only sha256 is stored; anything else is
/// rejected when parsed, so a digest can always name a file safely (no "/" or "..").
/// </summary>
public readonly record struct Digest(string Hex)
{
    public const string Sha256 = "sha256";
    public string Algorithm => Sha256;
    public override string ToString() => $"sha256:{Hex}";
    public string Short => Hex[..12];

    public static Digest Parse(string s) =>
        TryParse(s, out var d) ? d : throw new ImageFormatException($"invalid digest \"{s}\" (expected sha256:<64 hex digits>)");

    public static bool TryParse(string? s, out Digest digest)
    {
        digest = default;
        if (s is null || !s.StartsWith("sha256:", StringComparison.Ordinal)) return false;
        var hex = s[7..];
        if (!IsHex(hex)) return false;
        digest = new Digest(hex);
        return true;
    }

    public static bool IsHex(string hex)
    {
        if (hex.Length != 64) return false;
        foreach (var c in hex)
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f'))) return false;
        return true;
    }

    public static Digest Of(ReadOnlySpan<byte> data) => new(Convert.ToHexStringLower(SHA256.HashData(data)));

    public static Digest From(IncrementalHash hash) => new(Convert.ToHexStringLower(hash.GetHashAndReset()));
}


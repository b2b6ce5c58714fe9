using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Berth.Images.Model;

namespace Berth.Images.Platforms;

/// <summary>
/// Picks the manifest for a platform out of an index. Variants are ordered levels (amd64 v1-v4,
/// arm v5-v8): a host of level N runs any variant up to N, and the highest it can run wins.
/// An explicit <c>--platform os/arch/vN</c> is treated the same way, with N as the ceiling.
/// </summary>
public static class PlatformMatcher
{
    public static Platform Parse(string spec)
    {
        var p = spec.Split('/');
        if (p.Length is < 2 or > 3 || p.Any(s => s.Length == 0))
            throw new ArgumentException($"invalid platform \"{spec}\" (expected os/arch[/variant], e.g. linux/arm64)");
        return new Platform { Os = p[0], Architecture = NormalizeArch(p[1]), Variant = p.Length == 3 ? p[2] : null };
    }

    public static string NormalizeArch(string a) => a switch
    {
        "x86_64" or "x86-64" => "amd64",
        "aarch64" => "arm64",
        "armhf" or "armel" => "arm",
        "i386" or "i686" => "386",
        _ => a,
    };

    /// <summary>This host: linux, its architecture, and the CPU's amd64 feature level or arm variant.</summary>
    public static Platform Host()
    {
        var arch = RuntimeInformation.OSArchitecture switch
        {
            Architecture.X64 => "amd64",
            Architecture.Arm64 => "arm64",
            Architecture.Arm => "arm",
            Architecture.X86 => "386",
            var a => a.ToString().ToLowerInvariant(),
        };
        return new Platform { Os = "linux", Architecture = arch, Variant = arch switch
        {
            "amd64" => "v" + Amd64Level(),
            "arm64" => "v8",
            "arm" => ArmVariant(),
            _ => null,
        } };
    }

    /// <summary>x86-64 micro-architecture level from CPUID (psABI: v2 SSE4.2+POPCNT, v3 AVX2+BMI+FMA, v4 AVX-512).</summary>
    public static int Amd64Level()
    {
        if (!X86Base.IsSupported) return 1;
        if (!(Sse42.IsSupported && Popcnt.IsSupported && Ssse3.IsSupported)) return 1;
        if (!(Avx2.IsSupported && Bmi1.IsSupported && Bmi2.IsSupported && Fma.IsSupported && Lzcnt.IsSupported)) return 2;
        if (!(Avx512F.IsSupported && Avx512BW.IsSupported && Avx512CD.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported)) return 3;
        return 4;
    }

    private static string ArmVariant()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("CPU architecture", StringComparison.Ordinal))
                {
                    var v = line[(line.IndexOf(':') + 1)..].Trim();
                    return v.StartsWith('8') ? "v8" : v.StartsWith('6') ? "v6" : v.StartsWith('5') ? "v5" : "v7";
                }
        }
        catch (IOException) { }
        return "v7";
    }

    /// <summary>The level of a variant for ordering ("v3" -> 3); defaults per architecture when absent.</summary>
    public static int Level(string arch, string? variant)
    {
        if (string.IsNullOrEmpty(variant)) return arch switch { "arm64" => 8, "arm" => 7, _ => 1 };
        return variant.Length >= 2 && variant[0] == 'v' && int.TryParse(variant[1..], out var n) ? n : -1;
    }

    /// <summary>The best descriptor for <paramref name="want"/>, or an error that lists what the index has.</summary>
    public static Descriptor Select(IReadOnlyList<Descriptor> manifests, Platform want)
    {
        var arch = NormalizeArch(want.Architecture);
        int ceiling = Level(arch, want.Variant);
        Descriptor? best = null;
        int bestLevel = -1;
        foreach (var d in manifests)
        {
            if (d.Platform is not { } p) continue;
            if (p.Os != want.Os || NormalizeArch(p.Architecture) != arch) continue;
            int level = Level(arch, p.Variant);
            if (level < 0 || level > ceiling) continue;
            // arm64 images are v8 unless they say otherwise; an explicit lower variant asked for is honoured by the ceiling.
            if (level > bestLevel) { best = d; bestLevel = level; }
        }
        if (best is not null) return best;
        var present = manifests.Select(d => d.Platform?.ToString() ?? "(no platform)").Distinct();
        throw new NoMatchingPlatformException(
            $"no image for {want} in this index; it has: {string.Join(", ", present)} (choose one with --platform)");
    }
}

public sealed class NoMatchingPlatformException(string message) : ImageFormatException(message);

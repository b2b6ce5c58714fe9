using System.Globalization;

namespace Berth.Engine.Monitor;

/// <summary>
/// `--log-opt max-size=SIZE` and `max-file=N`: the log file rotates when the next line would
/// take it past max-size, keeping max-file files in all (the live one included). The default,
/// 10m x 2, always keeps at least the last 10 MiB and never takes more than 20 MiB of disk.
/// </summary>
public readonly record struct LogOptions(long MaxSize, int MaxFile)
{
    public static readonly LogOptions Default = new(10L << 20, 2);

    /// <summary>Applies each `KEY=VALUE` over the defaults; throws <see cref="ArgumentException"/> naming the option.</summary>
    public static LogOptions Parse(IEnumerable<string> opts)
    {
        var o = Default;
        foreach (var opt in opts)
        {
            var kv = opt.Split('=', 2);
            if (kv.Length != 2) throw new ArgumentException($"--log-opt {opt}: expected KEY=VALUE (max-size, max-file)");
            o = kv[0] switch
            {
                "max-size" => o with { MaxSize = ParseSize(kv[1]) },
                "max-file" => o with
                {
                    MaxFile = int.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1 && n <= 100
                        ? n : throw new ArgumentException($"--log-opt max-file={kv[1]}: expected a number from 1 to 100"),
                },
                _ => throw new ArgumentException($"--log-opt {kv[0]}: unknown option (supported: max-size, max-file)"),
            };
        }
        return o;
    }

    /// <summary>
    /// "1024", "512k", "10m", "1g" (binary units, as docker's memory flags): at least 1 KiB, so
    /// one line of the largest size the monitor writes (16 KiB) may exceed it but a rotation never loops.
    /// </summary>
    public static long ParseSize(string text)
    {
        if (text.Length == 0) throw new ArgumentException("--log-opt max-size: empty size");
        var digits = text.EndsWith('b') || text.EndsWith('B') ? text[..^1] : text;
        int shift = digits.Length == 0 ? 0 : char.ToLowerInvariant(digits[^1]) switch { 'k' => 10, 'm' => 20, 'g' => 30, _ => 0 };
        if (shift != 0) digits = digits[..^1];
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > (long.MaxValue >> shift))
            throw new ArgumentException($"--log-opt max-size={text}: expected a size such as 512k, 10m or 1g");
        var bytes = n << shift;
        if (bytes < 1024) throw new ArgumentException($"--log-opt max-size={text}: at least 1k");
        return bytes;
    }
}

namespace Berth.Engine.Monitor;

/// <summary>
/// One log record as docker's json-file driver writes it:
/// {"log":"TEXT","stream":"stdout|stderr","time":"RFC3339 with nanoseconds"}\n. Hand-written
/// (no System.Text.Json) so the monitor stays small; bytes that are not valid UTF-8 become U+FFFD.
/// </summary>
public static class LogLine
{
    /// <summary>The longest record for <paramref name="textLength"/> bytes of text (every byte escaped as \u00XX).</summary>
    public static int MaxLength(int textLength) => 96 + 6 * textLength; // 69 bytes of fields and time around the text

    /// <summary>Writes the record into <paramref name="dest"/> (at least <see cref="MaxLength"/>); returns its length.</summary>
    public static int Encode(Span<byte> dest, bool stderr, long unixSeconds, int nanos, ReadOnlySpan<byte> text)
    {
        int n = 0;
        n += Put(dest[n..], "{\"log\":\""u8);
        n += Escape(dest[n..], text);
        n += Put(dest[n..], stderr ? "\",\"stream\":\"stderr\",\"time\":\""u8 : "\",\"stream\":\"stdout\",\"time\":\""u8);
        n += FormatTime(dest[n..], unixSeconds, nanos);
        n += Put(dest[n..], "\"}\n"u8);
        return n;
    }

    /// <summary>RFC 3339 in UTC with nine fraction digits: 2026-11-29T08:42:44.123456789Z.</summary>
    public static int FormatTime(Span<byte> dest, long unixSeconds, int nanos)
    {
        long days = Math.DivRem(unixSeconds, 86400, out long secs);
        if (secs < 0) { secs += 86400; days--; }
        var (y, m, d) = CivilFromDays(days);
        int n = 0;
        n += Digits(dest[n..], y, 4); dest[n++] = (byte)'-';
        n += Digits(dest[n..], m, 2); dest[n++] = (byte)'-';
        n += Digits(dest[n..], d, 2); dest[n++] = (byte)'T';
        n += Digits(dest[n..], secs / 3600, 2); dest[n++] = (byte)':';
        n += Digits(dest[n..], secs / 60 % 60, 2); dest[n++] = (byte)':';
        n += Digits(dest[n..], secs % 60, 2); dest[n++] = (byte)'.';
        n += Digits(dest[n..], nanos, 9); dest[n++] = (byte)'Z';
        return n;
    }

    /// <summary>Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).</summary>
    internal static (long Year, long Month, long Day) CivilFromDays(long z)
    {
        z += 719468;
        long era = (z >= 0 ? z : z - 146096) / 146097;
        long doe = z - era * 146097;
        long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        long mp = (5 * doy + 2) / 153;
        long d = doy - (153 * mp + 2) / 5 + 1;
        long m = mp < 10 ? mp + 3 : mp - 9;
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d);
    }

    private static int Digits(Span<byte> dest, long v, int width)
    {
        for (int i = width - 1; i >= 0; i--) { dest[i] = (byte)('0' + v % 10); v /= 10; }
        return width;
    }

    private static int Put(Span<byte> dest, ReadOnlySpan<byte> s)
    {
        s.CopyTo(dest);
        return s.Length;
    }

    /// <summary>JSON string escaping of UTF-8 text; invalid sequences become U+FFFD.</summary>
    internal static int Escape(Span<byte> dest, ReadOnlySpan<byte> text)
    {
        int n = 0;
        for (int i = 0; i < text.Length;)
        {
            byte b = text[i];
            if (b < 0x80)
            {
                switch (b)
                {
                    case (byte)'"': dest[n++] = (byte)'\\'; dest[n++] = (byte)'"'; break;
                    case (byte)'\\': dest[n++] = (byte)'\\'; dest[n++] = (byte)'\\'; break;
                    case (byte)'\n': dest[n++] = (byte)'\\'; dest[n++] = (byte)'n'; break;
                    case (byte)'\r': dest[n++] = (byte)'\\'; dest[n++] = (byte)'r'; break;
                    case (byte)'\t': dest[n++] = (byte)'\\'; dest[n++] = (byte)'t'; break;
                    default:
                        if (b < 0x20 || b == 0x7f)
                        {
                            n += Put(dest[n..], "\\u00"u8);
                            dest[n++] = Hex(b >> 4);
                            dest[n++] = Hex(b & 0xf);
                        }
                        else dest[n++] = b;
                        break;
                }
                i++;
                continue;
            }
            int len = ValidSequence(text[i..]);
            if (len == 0)
            {
                n += Put(dest[n..], "\uFFFD"u8);
                i++;
            }
            else
            {
                text.Slice(i, len).CopyTo(dest[n..]);
                n += len;
                i += len;
            }
        }
        return n;
    }

    private static byte Hex(int v) => (byte)(v < 10 ? '0' + v : 'a' + v - 10);

    /// <summary>Length of the valid UTF-8 sequence at the start of <paramref name="s"/> (a lead byte >= 0x80), or 0.</summary>
    private static int ValidSequence(ReadOnlySpan<byte> s)
    {
        byte b = s[0];
        int len; int min;
        if (b >= 0xC2 && b <= 0xDF) { len = 2; min = 0x80; }
        else if (b >= 0xE0 && b <= 0xEF) { len = 3; min = 0x800; }
        else if (b >= 0xF0 && b <= 0xF4) { len = 4; min = 0x10000; }
        else return 0;
        if (s.Length < len) return 0;
        int cp = b & (0xFF >> (len + 1));
        for (int k = 1; k < len; k++)
        {
            if ((s[k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        return len;
    }
}

namespace Berth.Linux.Mounts;

/// <summary>One line of /proc/PID/mountinfo.</summary>
public sealed record MountInfoEntry(int Id, int ParentId, string Root, string MountPoint, string Options,
    string OptionalFields, string FsType, string Source, string SuperOptions)
{
    /// <summary>Parses the file's text. Escapes (\040 etc.) in paths are decoded.</summary>
    public static List<MountInfoEntry> Parse(string text)
    {
        var list = new List<MountInfoEntry>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var dash = line.IndexOf(" - ", StringComparison.Ordinal);
            if (dash < 0) continue;
            var left = line[..dash].Split(' ');
            var right = line[(dash + 3)..].Split(' ');
            if (left.Length < 6 || right.Length < 3) continue;
            list.Add(new MountInfoEntry(int.Parse(left[0]), int.Parse(left[1]), Unescape(left[3]), Unescape(left[4]),
                left[5], string.Join(' ', left.Skip(6)), right[0], Unescape(right[1]), right[2]));
        }
        return list;
    }

    public static List<MountInfoEntry> ReadSelf() => Parse(File.ReadAllText("/proc/self/mountinfo"));

    private static string Unescape(string s)
    {
        if (!s.Contains('\\')) return s;
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && i + 3 < s.Length && char.IsDigit(s[i + 1]))
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else sb.Append(s[i]);
        }
        return sb.ToString();
    }
}

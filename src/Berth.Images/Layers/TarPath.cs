namespace Berth.Images.Layers;

/// <summary>Lexical clean-up of tar entry names: relative, no ".", no "..", no empty parts.</summary>
public static class TarPath
{
    /// <summary>
    /// "a/../../etc/x" -> "etc/x", "/abs" -> "abs", "./" -> "". ".." never climbs above the root:
    /// the result is always a path inside the target, before any link is looked at.
    /// </summary>
    public static string Normalize(string name)
    {
        if (name.Contains('\0')) throw new ImageFormatException($"tar entry name contains a NUL byte: \"{name.Replace("\0", "\\0")}\"");
        var parts = new List<string>();
        foreach (var p in name.Split('/'))
        {
            if (p is "" or ".") continue;
            if (p == "..") { if (parts.Count > 0) parts.RemoveAt(parts.Count - 1); continue; }
            parts.Add(p);
        }
        return string.Join('/', parts);
    }

    public static (string Parent, string Name) Split(string rel)
    {
        int i = rel.LastIndexOf('/');
        return i < 0 ? ("", rel) : (rel[..i], rel[(i + 1)..]);
    }
}

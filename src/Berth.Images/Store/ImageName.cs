namespace Berth.Images.Store;

/// <summary>Image references as people type them: "busybox", "busybox:1.36", "docker.io/library/busybox:latest".</summary>
public static class ImageName
{
    /// <summary>Adds ":latest" when no tag or digest is given; validates the characters.</summary>
    public static string Normalize(string name)
    {
        if (name.Length == 0 || name.Length > 255 || name.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)) || name.StartsWith("sha256:", StringComparison.Ordinal))
            throw new ArgumentException($"invalid image name \"{name}\"");
        if (name.Contains('@')) return name;
        var last = name[(name.LastIndexOf('/') + 1)..];
        return last.Contains(':') ? name : name + ":latest";
    }

    /// <summary>The names a short reference may be stored under, most specific first.</summary>
    public static IEnumerable<string> Candidates(string reference)
    {
        string n;
        try { n = Normalize(reference); }
        catch (ArgumentException) { yield break; }
        yield return n;
        var first = n.Split('/')[0];
        bool hasDomain = n.Contains('/') && (first.Contains('.') || first.Contains(':') || first == "localhost");
        if (!hasDomain)
        {
            yield return (n.Contains('/') ? "docker.io/" : "docker.io/library/") + n;
            yield return "localhost/" + n;
        }
    }

    /// <summary>(repository, tag) for the `images` table.</summary>
    public static (string Repo, string Tag) SplitTag(string name)
    {
        int at = name.IndexOf('@');
        if (at >= 0) return (name[..at], name[(at + 1)..]);
        int slash = name.LastIndexOf('/'), colon = name.LastIndexOf(':');
        return colon > slash ? (name[..colon], name[(colon + 1)..]) : (name, "latest");
    }
}

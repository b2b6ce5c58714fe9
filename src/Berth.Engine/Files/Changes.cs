namespace Berth.Engine.Files;

/// <summary>One entry of a container's overlay upper dir, as the walk found it.</summary>
/// <param name="Path">Absolute in the container ("/etc/passwd").</param>
/// <param name="IsWhiteout">A character device 0:0: overlayfs's mark for a deleted lower entry.</param>
/// <param name="IsOpaque">A directory with trusted.overlay.opaque=y: nothing of the lower directory shows through.</param>
/// <param name="IsStub">An empty file or directory the runtime made as a mount point (/etc/hostname, a volume's target).</param>
public sealed record UpperEntry(string Path, bool IsDirectory, bool IsWhiteout = false, bool IsOpaque = false, bool IsStub = false);

/// <summary>
/// `berth diff`: the upper dir's entries as docker's A (added), C (changed) and D (deleted) lines.
/// Pure: what exists below comes from the callers' look at the image's layers.
/// </summary>
public static class Changes
{
    public static List<(char Kind, string Path)> Classify(IReadOnlyList<UpperEntry> entries, Func<string, bool> existsBelow,
        Func<string, IEnumerable<string>> namesBelow)
    {
        var result = new List<(char, string)>();
        var present = entries.Select(e => e.Path).ToHashSet(StringComparer.Ordinal);
        // A directory that holds nothing but mount-point stubs did not change in any way a user made.
        var real = entries.Where(e => !e.IsStub).Select(e => e.Path).ToList();
        foreach (var e in entries)
        {
            if (e.IsStub) continue;
            if (e.IsWhiteout)
            {
                if (existsBelow(e.Path)) result.Add(('D', e.Path));
                continue;
            }
            bool below = existsBelow(e.Path);
            if (!below)
            {
                result.Add(('A', e.Path));
                continue;
            }
            if (e.IsDirectory && !e.IsOpaque)
            {
                var prefix = e.Path + "/";
                bool anyChild = entries.Any(x => x.Path.StartsWith(prefix, StringComparison.Ordinal));
                bool realChild = real.Any(p => p.StartsWith(prefix, StringComparison.Ordinal));
                if (anyChild && !realChild) continue;
            }
            result.Add(('C', e.Path));
            if (e.IsOpaque)
                foreach (var n in namesBelow(e.Path))
                {
                    var p = e.Path + "/" + n;
                    if (!present.Contains(p)) result.Add(('D', p));
                }
        }
        return result.OrderBy(r => r.Item2, StringComparer.Ordinal).ToList();
    }
}

/// <summary>overlayfs whiteouts in OCI layer form (image-spec layer.md): ".wh.NAME" files and the ".wh..wh..opq" marker.</summary>
public static class Whiteouts
{
    public const string Prefix = ".wh.", OpaqueMarker = ".wh..wh..opq";

    /// <summary>The tar name of a deletion of <paramref name="relPath"/> ("a/b" -> "a/.wh.b").</summary>
    public static string EntryFor(string relPath)
    {
        var slash = relPath.LastIndexOf('/');
        return slash < 0 ? Prefix + relPath : relPath[..(slash + 1)] + Prefix + relPath[(slash + 1)..];
    }

    /// <summary>The marker that hides everything below an opaque directory ("a/b" -> "a/b/.wh..wh..opq").</summary>
    public static string OpaqueEntryFor(string relDir) => relDir.TrimEnd('/') + "/" + OpaqueMarker;
}

namespace Berth.Runtime.Spec;

/// <summary>realpath(3) in managed code: an absolute path with ".", ".." and every symlink resolved.</summary>
internal static class RealPath
{
    private const int MaxLinks = 40; // the kernel's MAXSYMLINKS

    /// <summary>The resolved path, or null when a component does not exist (or links loop).</summary>
    public static string? Resolve(string absolutePath)
    {
        var pending = new List<string>(absolutePath.Split('/', StringSplitOptions.RemoveEmptyEntries));
        var current = "/";
        int links = 0;
        while (pending.Count > 0)
        {
            var part = pending[0];
            pending.RemoveAt(0);
            if (part == ".") continue;
            if (part == "..") { current = Path.GetDirectoryName(current) ?? "/"; continue; }
            var next = current == "/" ? "/" + part : current + "/" + part;
            string? target;
            try { target = new FileInfo(next).LinkTarget; }
            catch (IOException) { return null; }
            catch (UnauthorizedAccessException) { return null; }
            if (target is null)
            {
                if (!Path.Exists(next)) return null;
                current = next;
                continue;
            }
            if (++links > MaxLinks) return null;
            if (target.StartsWith('/')) current = "/";
            pending.InsertRange(0, target.Split('/', StringSplitOptions.RemoveEmptyEntries));
        }
        return current;
    }
}

using Berth.Images.Content;
using Berth.Images.Layers;

namespace Berth.Images.Store;

/// <summary>
/// Unpacked layers by diff-id, <c>ROOT/layers/HEX</c>, shared by every image that has the layer.
/// A layer is unpacked into a temporary directory and renamed into place when complete, so a
/// directory under its diff-id is always whole; a second writer of the same layer loses the
/// rename race and removes its copy.
/// </summary>
public sealed class LayerCache
{
    private readonly string _dir;

    public LayerCache(string root)
    {
        _dir = Path.Combine(root, "layers");
        Directory.CreateDirectory(_dir);
    }

    public string PathOf(Digest diffId) => Path.Combine(_dir, diffId.Hex);
    public bool Has(Digest diffId) => Directory.Exists(PathOf(diffId));

    public IEnumerable<Digest> List()
    {
        foreach (var d in Directory.EnumerateDirectories(_dir))
            if (Digest.IsHex(Path.GetFileName(d))) yield return new Digest(Path.GetFileName(d));
    }

    /// <summary>Unpacks <paramref name="blob"/> as layer <paramref name="diffId"/> unless it is there already.</summary>
    public bool Ensure(Digest diffId, Func<Stream> blob, UnpackOptions opts)
    {
        if (Has(diffId)) return false;
        var tmp = Path.Combine(_dir, $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            using (var s = blob()) LayerUnpacker.Unpack(s, tmp, opts, diffId);
            File.SetUnixFileMode(tmp, (UnixFileMode)0x1ed);
            try { Directory.Move(tmp, PathOf(diffId)); }
            catch (IOException) when (Has(diffId)) { return false; } // another writer finished first
            return true;
        }
        finally
        {
            if (Directory.Exists(tmp)) RemoveTree(tmp);
        }
    }

    public void Delete(Digest diffId) => RemoveTree(PathOf(diffId));

    /// <summary>Leftovers of crashed unpacks (only under the store's exclusive lock).</summary>
    public int CleanTemporary()
    {
        int n = 0;
        foreach (var d in Directory.EnumerateDirectories(_dir, ".tmp-*")) { RemoveTree(d); n++; }
        return n;
    }

    /// <summary>rm -rf that does not follow links and copes with read-only directories from a layer.</summary>
    internal static void RemoveTree(string path)
    {
        if (!Directory.Exists(path)) return;
        foreach (var d in Directory.EnumerateDirectories(path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint }))
        {
            try { File.SetUnixFileMode(d, (UnixFileMode)0x1c0); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        File.SetUnixFileMode(path, (UnixFileMode)0x1c0);
        Directory.Delete(path, recursive: true);
    }
}

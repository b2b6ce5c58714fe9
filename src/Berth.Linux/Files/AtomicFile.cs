namespace Berth.Linux.Files;

/// <summary>Write-temp, fsync, rename: readers see the old or the new file, never a torn one.</summary>
public static class AtomicFile
{
    public static void Write(string path, ReadOnlySpan<byte> data)
    {
        var dir = Path.GetDirectoryName(path)!;
        var tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            fs.Write(data);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }
}

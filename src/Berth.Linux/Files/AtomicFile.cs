namespace Berth.Linux.Files;

/// <summary>
/// Write-temp then rename: readers and a crashed writer leave the old or the new file, never a
/// torn one. <paramref name="durable"/> adds an fsync for data that must survive power loss;
/// runtime state does not (it describes processes that die with the machine), and an fsync per
/// state change cost ~0.5 ms each on these disks.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, ReadOnlySpan<byte> data, bool durable = false)
    {
        var dir = Path.GetDirectoryName(path)!;
        var tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            fs.Write(data);
            fs.Flush(flushToDisk: durable);
        }
        File.Move(tmp, path, overwrite: true);
    }
}

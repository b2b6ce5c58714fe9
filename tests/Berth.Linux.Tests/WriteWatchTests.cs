using System.IO.MemoryMappedFiles;
using Berth.Linux.Files;
using Berth.Linux.Interop;

namespace Berth.Linux.Tests;

/// <summary>
/// The kernel's word that marked files were not written: any write, and any open that could write
/// (a shared writable mapping included), is reported; reads are not. fanotify needs CAP_SYS_ADMIN.
/// </summary>
public sealed class WriteWatchTests : IDisposable
{
    private readonly string _dir = MakeDir();

    /// <summary>On tmpfs, as a sandbox box is, where there is one.</summary>
    private static string MakeDir()
    {
        if (!Directory.Exists("/dev/shm")) return Directory.CreateTempSubdirectory("berth-watch-").FullName;
        var dir = Path.Combine("/dev/shm", "berth-watch-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(dir);
        return dir;
    }
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string File1(string text = "clean")
    {
        var path = Path.Combine(_dir, Guid.NewGuid().ToString("n"));
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Writes_and_writable_opens_are_reported_and_reads_are_not()
    {
        using var w = WriteWatch.TryCreate();
        if (LibC.geteuid() != 0)
        {
            Assert.Null(w); // fanotify without FAN_REPORT_FID is root's only
            return;
        }
        Assert.NotNull(w);
        var read = File1();
        var written = File1();
        var mapped = File1();
        var opened = File1();
        foreach (var f in new[] { read, written, mapped, opened }) Assert.True(w.Mark(f));
        Assert.True(w.Quiet());

        Assert.Equal("clean", File.ReadAllText(read));
        using (var s = File.OpenRead(read)) s.ReadByte();
        Assert.True(w.Quiet());

        File.AppendAllText(written, "!");
        Assert.False(w.Quiet());
        Assert.True(w.Quiet()); // drained

        using (var m = MemoryMappedFile.CreateFromFile(mapped, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite))
        using (var v = m.CreateViewAccessor(0, 5))
            v.Write(0, (byte)'D');
        Assert.False(w.Quiet());

        using (File.Open(opened, FileMode.Open, FileAccess.ReadWrite)) { } // could have written: counts
        Assert.False(w.Quiet());
        Assert.True(w.Quiet());
    }

    [Fact]
    public void A_symlink_is_not_followed_when_marking()
    {
        using var w = WriteWatch.TryCreate();
        if (w is null) return; // not root: covered above
        var target = File1();
        var link = Path.Combine(_dir, "link");
        File.CreateSymbolicLink(link, target);
        w.Mark(link); // marks the link itself (or fails): the target stays unwatched
        File.AppendAllText(target, "!");
        Assert.True(w.Quiet());
    }
}

using Berth.Engine.Files;
using Xunit;

namespace Berth.Engine.Tests;

public sealed class ChangesTests
{
    private static readonly HashSet<string> Below = ["/etc", "/etc/passwd", "/etc/group", "/bin", "/bin/sh", "/old", "/old/a", "/old/b", "/tmp"];

    private static IEnumerable<string> NamesBelow(string dir) =>
        Below.Where(p => p.StartsWith(dir + "/", StringComparison.Ordinal) && !p[(dir.Length + 1)..].Contains('/')).Select(p => p[(dir.Length + 1)..]);

    [Fact]
    public void Added_changed_and_deleted()
    {
        var upper = new List<UpperEntry>
        {
            new("/etc", true), new("/etc/passwd", false), new("/etc/new", false),
            new("/bin", true), new("/bin/sh", false, IsWhiteout: true),
            new("/data", true), new("/data/f", false),
            new("/gone", false, IsWhiteout: true), // a whiteout with nothing below is no change
        };
        var got = Changes.Classify(upper, Below.Contains, NamesBelow);
        Assert.Equal([('C', "/bin"), ('D', "/bin/sh"), ('A', "/data"), ('A', "/data/f"), ('C', "/etc"), ('A', "/etc/new"), ('C', "/etc/passwd")], got);
    }

    [Fact]
    public void An_opaque_directory_deletes_what_it_hides()
    {
        var upper = new List<UpperEntry> { new("/old", true, IsOpaque: true), new("/old/b", false) };
        Assert.Equal([('C', "/old"), ('D', "/old/a"), ('C', "/old/b")], Changes.Classify(upper, Below.Contains, NamesBelow));
    }

    [Fact]
    public void Mount_point_stubs_and_directories_holding_only_stubs_are_not_changes()
    {
        var upper = new List<UpperEntry>
        {
            new("/etc", true), new("/etc/hostname", false, IsStub: true), new("/etc/hosts", false, IsStub: true),
            new("/vol", true, IsStub: true),
            new("/tmp", true), // a directory copied up for its own sake (chmod): a change
        };
        Assert.Equal([('C', "/tmp")], Changes.Classify(upper, Below.Contains, NamesBelow));
    }

    [Fact]
    public void Whiteouts_in_oci_form()
    {
        Assert.Equal(".wh.x", Whiteouts.EntryFor("x"));
        Assert.Equal("a/b/.wh.c", Whiteouts.EntryFor("a/b/c"));
        Assert.Equal("a/b/.wh..wh..opq", Whiteouts.OpaqueEntryFor("a/b"));
    }
}

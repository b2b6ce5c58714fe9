using System.Formats.Tar;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Microsoft.Win32.SafeHandles;

namespace Berth.Engine.Files;

/// <summary>
/// Walks a directory by descriptors (O_NOFOLLOW at every step) and writes it as tar: `export` (a
/// merged rootfs) and `commit` (an upper dir, whiteouts turned into OCI .wh. entries).
/// </summary>
public static class TreeTar
{
    public sealed record Entry(string RelPath, StatX Stat, int ParentFd, string Name, bool Opaque);

    /// <summary>Visits every entry below <paramref name="dirFd"/>, parents first, names sorted.</summary>
    public static void Walk(int dirFd, string rel, Action<Entry> visit)
    {
        foreach (var name in FsTree.Names(dirFd))
        {
            var path = rel.Length == 0 ? name : rel + "/" + name;
            if (!StatX.TryAt(dirFd, name, out var st, out _)) continue; // gone meanwhile
            if (!st.IsDirectory)
            {
                visit(new Entry(path, st, dirFd, name, false));
                continue;
            }
            int d = FsTree.TryOpenAt(dirFd, name, Consts.O_RDONLY | Consts.O_DIRECTORY, 0, out _);
            if (d < 0) continue;
            try
            {
                bool opaque = StatX.GetXattr(d, "trusted.overlay.opaque") == "y";
                visit(new Entry(path, st, dirFd, name, opaque));
                Walk(d, path, visit);
            }
            finally { LibC.close(d); }
        }
    }

    /// <param name="overlayWhiteouts">Convert whiteouts and opaque dirs to OCI form (an upper dir); otherwise a 0:0 device is written as is.</param>
    /// <param name="skip">Relative paths to leave out.</param>
    public static void Write(Stream output, int rootFd, bool overlayWhiteouts, Func<Entry, bool>? skip = null)
    {
        using var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        var links = new Dictionary<(ulong, ulong), string>();
        Walk(rootFd, "", e => Emit(tar, e, overlayWhiteouts, links, skip));
    }

    /// <summary>`cp NAME:PATH -`: <paramref name="name"/> in <paramref name="parentFd"/> and, for a directory, everything below it.</summary>
    public static void WriteOne(Stream output, int parentFd, string name, string what)
    {
        using var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        var links = new Dictionary<(ulong, ulong), string>();
        var st = StatX.At(parentFd, name, what);
        if (!st.IsDirectory)
        {
            Emit(tar, new Entry(name, st, parentFd, name, false), false, links, null);
            return;
        }
        int d = FsTree.OpenAt(parentFd, name, Consts.O_RDONLY | Consts.O_DIRECTORY, what);
        try
        {
            Emit(tar, new Entry(name, st, parentFd, name, false), false, links, null);
            Walk(d, name, e => Emit(tar, e, false, links, null));
        }
        finally { LibC.close(d); }
    }

    private static void Emit(TarWriter tar, Entry e, bool overlayWhiteouts, Dictionary<(ulong, ulong), string> links, Func<Entry, bool>? skip)
    {
        {
            if (skip?.Invoke(e) == true) return;
            var st = e.Stat;
            if (overlayWhiteouts && st.IsWhiteout)
            {
                tar.WriteEntry(Header(TarEntryType.RegularFile, Whiteouts.EntryFor(e.RelPath), st, 0));
                return;
            }
            switch (st.Type)
            {
                case Consts.S_IFDIR:
                    tar.WriteEntry(Header(TarEntryType.Directory, e.RelPath + "/", st, st.Permissions));
                    if (overlayWhiteouts && e.Opaque)
                        tar.WriteEntry(Header(TarEntryType.RegularFile, Whiteouts.OpaqueEntryFor(e.RelPath), st, 0));
                    break;
                case Consts.S_IFREG:
                {
                    if (st.Nlink > 1 && links.TryGetValue((st.Dev, st.Ino), out var first))
                    {
                        var h = Header(TarEntryType.HardLink, e.RelPath, st, st.Permissions);
                        h.LinkName = first;
                        tar.WriteEntry(h);
                        break;
                    }
                    if (st.Nlink > 1) links[(st.Dev, st.Ino)] = e.RelPath;
                    int fd = FsTree.OpenAt(e.ParentFd, e.Name, Consts.O_RDONLY, e.RelPath);
                    using var fs = new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Read, 1 << 16);
                    var h2 = Header(TarEntryType.RegularFile, e.RelPath, st, st.Permissions);
                    h2.DataStream = fs;
                    tar.WriteEntry(h2);
                    break;
                }
                case Consts.S_IFLNK:
                {
                    var h = Header(TarEntryType.SymbolicLink, e.RelPath, st, st.Permissions);
                    h.LinkName = StatX.ReadLinkAt(e.ParentFd, e.Name, e.RelPath);
                    tar.WriteEntry(h);
                    break;
                }
                case Consts.S_IFCHR or Consts.S_IFBLK:
                {
                    var h = Header(st.Type == Consts.S_IFCHR ? TarEntryType.CharacterDevice : TarEntryType.BlockDevice, e.RelPath, st, st.Permissions);
                    h.DeviceMajor = (int)st.RdevMajor;
                    h.DeviceMinor = (int)st.RdevMinor;
                    tar.WriteEntry(h);
                    break;
                }
                case Consts.S_IFIFO:
                    tar.WriteEntry(Header(TarEntryType.Fifo, e.RelPath, st, st.Permissions));
                    break;
                default: break; // sockets have no tar form
            }
        }
    }

    private static PaxTarEntry Header(TarEntryType type, string name, StatX st, uint mode) => new(type, name)
    {
        Mode = (UnixFileMode)(mode & 0xfff),
        Uid = (int)st.Uid,
        Gid = (int)st.Gid,
        ModificationTime = DateTimeOffset.FromUnixTimeSeconds(st.MtimeSec),
    };
}

namespace Berth.Runtime.Tests.Spec;

using Berth.Runtime.Spec;
using Xunit;

public class MountOptionsTests
{
    // Values from <linux/mount.h>, written out here so a typo in the runtime's constants shows up.
    private const ulong RDONLY = 0x1, NOSUID = 0x2, NODEV = 0x4, NOEXEC = 0x8, SYNCHRONOUS = 0x10, REMOUNT = 0x20,
        MANDLOCK = 0x40, DIRSYNC = 0x80, NOSYMFOLLOW = 0x100, NOATIME = 0x400, NODIRATIME = 0x800, BIND = 0x1000,
        REC = 0x4000, SILENT = 0x8000, UNBINDABLE = 0x20000, PRIVATE = 0x40000, SLAVE = 0x80000, SHARED = 0x100000,
        RELATIME = 0x200000, I_VERSION = 0x800000, STRICTATIME = 0x1000000, LAZYTIME = 0x2000000;

    private const ulong ATTR_RDONLY = 0x1, ATTR_NOSUID = 0x2, ATTR_NODEV = 0x4, ATTR_NOEXEC = 0x8, ATTR_NOATIME = 0x10,
        ATTR_STRICTATIME = 0x20, ATTR__ATIME = 0x70, ATTR_NODIRATIME = 0x80, ATTR_NOSYMFOLLOW = 0x200000;

    public static TheoryData<string, ulong> SetFlags => new()
    {
        { "bind", BIND }, { "dirsync", DIRSYNC }, { "iversion", I_VERSION }, { "lazytime", LAZYTIME },
        { "mand", MANDLOCK }, { "noatime", NOATIME }, { "nodev", NODEV }, { "nodiratime", NODIRATIME },
        { "noexec", NOEXEC }, { "nosuid", NOSUID }, { "nosymfollow", NOSYMFOLLOW }, { "rbind", BIND | REC },
        { "relatime", RELATIME }, { "remount", REMOUNT }, { "ro", RDONLY }, { "silent", SILENT },
        { "strictatime", STRICTATIME }, { "sync", SYNCHRONOUS },
    };

    public static TheoryData<string, ulong> ClearFlags => new()
    {
        { "async", SYNCHRONOUS }, { "atime", NOATIME }, { "dev", NODEV }, { "diratime", NODIRATIME },
        { "exec", NOEXEC }, { "loud", SILENT }, { "noiversion", I_VERSION }, { "nolazytime", LAZYTIME },
        { "nomand", MANDLOCK }, { "norelatime", RELATIME }, { "nostrictatime", STRICTATIME }, { "rw", RDONLY },
        { "suid", NOSUID }, { "symfollow", NOSYMFOLLOW },
    };

    public static TheoryData<string, ulong> Propagations => new()
    {
        { "private", PRIVATE }, { "rprivate", PRIVATE | REC }, { "shared", SHARED }, { "rshared", SHARED | REC },
        { "slave", SLAVE }, { "rslave", SLAVE | REC }, { "unbindable", UNBINDABLE }, { "runbindable", UNBINDABLE | REC },
    };

    public static TheoryData<string, ulong, ulong> RecursiveAttrs => new()
    {
        { "rro", ATTR_RDONLY, 0 }, { "rrw", 0, ATTR_RDONLY },
        { "rnosuid", ATTR_NOSUID, 0 }, { "rsuid", 0, ATTR_NOSUID },
        { "rnodev", ATTR_NODEV, 0 }, { "rdev", 0, ATTR_NODEV },
        { "rnoexec", ATTR_NOEXEC, 0 }, { "rexec", 0, ATTR_NOEXEC },
        { "rnodiratime", ATTR_NODIRATIME, 0 }, { "rdiratime", 0, ATTR_NODIRATIME },
        { "rnosymfollow", ATTR_NOSYMFOLLOW, 0 }, { "rsymfollow", 0, ATTR_NOSYMFOLLOW },
        // The atime mode is a field: setting any of it needs MOUNT_ATTR__ATIME in attr_clr.
        { "rrelatime", 0, ATTR__ATIME }, { "rnorelatime", 0, ATTR__ATIME },
        { "rnoatime", ATTR_NOATIME, ATTR__ATIME }, { "ratime", 0, ATTR__ATIME },
        { "rstrictatime", ATTR_STRICTATIME, ATTR__ATIME }, { "rnostrictatime", 0, ATTR__ATIME },
    };

    [Theory, MemberData(nameof(SetFlags))]
    public void Flag_options_set_their_flag(string option, ulong flag)
    {
        var p = MountOptions.Parse([option]);
        Assert.Equal(flag, p.Flags);
        Assert.Equal(0ul, p.ClearFlags);
        Assert.Equal("", p.Data);
        Assert.Empty(p.Propagation);
        Assert.False(p.HasRecursiveAttrs);
    }

    [Theory, MemberData(nameof(ClearFlags))]
    public void Negative_options_clear_their_flag(string option, ulong flag)
    {
        var p = MountOptions.Parse([option]);
        Assert.Equal(0ul, p.Flags);
        Assert.Equal(flag, p.ClearFlags);
        Assert.Equal("", p.Data);
    }

    [Theory, MemberData(nameof(ClearFlags))]
    public void Negative_option_after_positive_one_wins(string option, ulong flag)
    {
        var positive = MountOptions.Known.First(k => MountOptions.Parse([k]).Flags == flag);
        var p = MountOptions.Parse([positive, option]);
        Assert.Equal(0ul, p.Flags & flag);
        Assert.Equal(flag, p.ClearFlags);
        var q = MountOptions.Parse([option, positive]);
        Assert.Equal(flag, q.Flags & flag);
        Assert.Equal(0ul, q.ClearFlags);
    }

    [Theory, MemberData(nameof(Propagations))]
    public void Propagation_options_are_listed_in_order(string option, ulong flag)
    {
        var p = MountOptions.Parse([option]);
        Assert.Equal([flag], p.Propagation);
        Assert.Equal(0ul, p.Flags);
        Assert.Equal("", p.Data);
    }

    [Fact]
    public void Several_propagation_options_keep_their_order()
    {
        var p = MountOptions.Parse(["rshared", "bind", "private", "rslave"]);
        Assert.Equal([SHARED | REC, PRIVATE, SLAVE | REC], p.Propagation);
        Assert.Equal(BIND, p.Flags);
    }

    [Theory, MemberData(nameof(RecursiveAttrs))]
    public void Recursive_attribute_options_map_to_mount_setattr(string option, ulong set, ulong clear)
    {
        var p = MountOptions.Parse([option]);
        Assert.True(p.HasRecursiveAttrs);
        Assert.Equal(set, p.RecursiveAttrSet);
        Assert.Equal(clear, p.RecursiveAttrClear);
        Assert.Equal(0ul, p.Flags);
        Assert.Equal("", p.Data);
    }

    [Fact]
    public void Later_recursive_attribute_wins()
    {
        var p = MountOptions.Parse(["rro", "rnosuid", "rrw"]);
        Assert.Equal(ATTR_NOSUID, p.RecursiveAttrSet);
        Assert.Equal(ATTR_RDONLY, p.RecursiveAttrClear);
    }

    [Fact]
    public void Bind_and_rbind()
    {
        Assert.False(MountOptions.Parse(["ro"]).Bind);
        var bind = MountOptions.Parse(["bind"]);
        Assert.True(bind.Bind);
        Assert.False(bind.RecursiveBind);
        var rbind = MountOptions.Parse(["rbind", "ro"]);
        Assert.True(rbind.Bind);
        Assert.True(rbind.RecursiveBind);
        Assert.Equal(BIND | REC | RDONLY, rbind.Flags);
    }

    [Fact]
    public void Type_bind_is_a_bind_mount()
    {
        var m = new Oci.Runtime.Mount { Destination = "/x", Type = "bind", Source = "/y" };
        Assert.True(MountOptions.IsBind(m, MountOptions.Parse(null)));
        Assert.False(MountOptions.IsBind(new Oci.Runtime.Mount { Type = "tmpfs" }, MountOptions.Parse(null)));
    }

    [Fact]
    public void Idmap_ridmap_and_tmpcopyup()
    {
        var idmap = MountOptions.Parse(["bind", "idmap"]);
        Assert.True(idmap.IdMap);
        Assert.False(idmap.RecursiveIdMap);
        var ridmap = MountOptions.Parse(["rbind", "ridmap"]);
        Assert.True(ridmap.IdMap);
        Assert.True(ridmap.RecursiveIdMap);
        Assert.Equal("", ridmap.Data);
        Assert.False(MountOptions.Parse(["ridmap", "idmap"]).RecursiveIdMap);
        Assert.True(MountOptions.Parse(["tmpcopyup"]).TmpCopyUp);
        Assert.Equal("", MountOptions.Parse(["tmpcopyup"]).Data);
    }

    [Fact]
    public void Defaults_sets_nothing()
    {
        var p = MountOptions.Parse(["defaults"]);
        Assert.Equal(0ul, p.Flags);
        Assert.Equal(0ul, p.ClearFlags);
        Assert.Equal("", p.Data);
    }

    [Fact]
    public void Unknown_options_are_filesystem_data_in_order()
    {
        var p = MountOptions.Parse(["nosuid", "strictatime", "mode=755", "size=65536k"]);
        Assert.Equal(NOSUID | STRICTATIME, p.Flags);
        Assert.Equal("mode=755,size=65536k", p.Data);

        var devpts = MountOptions.Parse(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]);
        Assert.Equal("newinstance,ptmxmode=0666,mode=0620,gid=5", devpts.Data);
        Assert.Equal(NOSUID | NOEXEC, devpts.Flags);

        // "acl" is filesystem data, not MS_POSIXACL (runc does the same).
        Assert.Equal("acl", MountOptions.Parse(["acl"]).Data);
        // Options are case-sensitive, like mount(8).
        Assert.Equal("RO", MountOptions.Parse(["RO"]).Data);
    }

    [Fact]
    public void No_options()
    {
        foreach (var p in new[] { MountOptions.Parse(null), MountOptions.Parse([]) })
        {
            Assert.Equal(0ul, p.Flags);
            Assert.Equal(0ul, p.ClearFlags);
            Assert.Empty(p.Propagation);
            Assert.Equal("", p.Data);
            Assert.False(p.Bind || p.IdMap || p.TmpCopyUp || p.HasRecursiveAttrs);
        }
    }

    [Fact]
    public void Every_known_option_is_covered_by_these_tests()
    {
        var covered = SetFlags.Select(r => (string)r[0]).Concat(ClearFlags.Select(r => (string)r[0]))
            .Concat(Propagations.Select(r => (string)r[0])).Concat(RecursiveAttrs.Select(r => (string)r[0]))
            .Concat(["defaults", "idmap", "ridmap", "tmpcopyup"]).Order(StringComparer.Ordinal);
        Assert.Equal(covered, MountOptions.Known);
    }

    [Fact]
    public void Knows_every_option_runc_features_lists()
    {
        // `runc features` (runc 1.2+) .mountOptions, which is runc's whole vocabulary of mount options.
        string[] runc =
        [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion", "lazytime", "loud",
            "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand", "norelatime",
            "nostrictatime", "nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev", "rdiratime", "relatime",
            "remount", "rexec", "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime",
            "rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave",
            "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave", "strictatime",
            "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
        ];
        Assert.Empty(runc.Except(MountOptions.Known));
    }
}

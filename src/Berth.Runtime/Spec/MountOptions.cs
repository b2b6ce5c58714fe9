namespace Berth.Runtime.Spec;

using Berth.Linux.Interop;
using Berth.Oci.Runtime;

/// <summary>
/// A config.json mount's "options" split into what mount(2) and mount_setattr(2) take.
/// Options are applied in order, so a later option wins over an earlier one ("ro,rw" is rw).
/// </summary>
public sealed class ParsedMountOptions
{
    /// <summary>MS_* flags to set on mount(2), MS_BIND and MS_REC included for bind/rbind.</summary>
    public ulong Flags { get; internal set; }

    /// <summary>MS_* flags the options explicitly clear (rw, suid, dev, exec, atime, ...); never also in <see cref="Flags"/>.</summary>
    public ulong ClearFlags { get; internal set; }

    /// <summary>Propagation changes (MS_PRIVATE, MS_SHARED|MS_REC, ...), one per option, to apply in order after the mount.</summary>
    public IReadOnlyList<ulong> Propagation => _propagation;

    /// <summary>"bind" or "rbind" was given.</summary>
    public bool Bind => (Flags & Consts.MS_BIND) != 0;

    /// <summary>"rbind" was given: bind the whole mount tree under the source.</summary>
    public bool RecursiveBind => Bind && (Flags & Consts.MS_REC) != 0;

    /// <summary>Every option that is not a known flag, comma-joined, for the filesystem (e.g. "mode=755,size=65536k").</summary>
    public string Data { get; internal set; } = "";

    /// <summary>MOUNT_ATTR_* to set with mount_setattr(AT_RECURSIVE) (from rro, rnosuid, rnodev, rnoexec, ...).</summary>
    public ulong RecursiveAttrSet { get; internal set; }

    /// <summary>MOUNT_ATTR_* to clear with mount_setattr(AT_RECURSIVE); includes MOUNT_ATTR__ATIME whenever an r*atime option is given, as the kernel requires.</summary>
    public ulong RecursiveAttrClear { get; internal set; }

    /// <summary>Any recursive attribute option was given, so a mount_setattr call is needed.</summary>
    public bool HasRecursiveAttrs { get; internal set; }

    /// <summary>"idmap" or "ridmap": an id-mapped bind mount (the mappings come from the mount's uidMappings/gidMappings).</summary>
    public bool IdMap { get; internal set; }

    /// <summary>"ridmap": id-map every mount of a recursive bind, not just the top one.</summary>
    public bool RecursiveIdMap { get; internal set; }

    /// <summary>"tmpcopyup" (runc extension): copy the destination's existing content into a new tmpfs.</summary>
    public bool TmpCopyUp { get; internal set; }

    internal readonly List<ulong> _propagation = [];
}

/// <summary>Parses mount options with the vocabulary runc accepts (`runc features` lists the same names).</summary>
public static class MountOptions
{
    private readonly record struct FlagOption(bool Clear, ulong Flag);

    // mount(2) flags. "defaults" is known but sets nothing. "acl" is deliberately not here: MS_POSIXACL is
    // not a per-mount flag, so like runc we pass it to the filesystem as data.
    private static readonly Dictionary<string, FlagOption> Flags = new(StringComparer.Ordinal)
    {
        ["async"] = new(true, Consts.MS_SYNCHRONOUS),
        ["atime"] = new(true, Consts.MS_NOATIME),
        ["bind"] = new(false, Consts.MS_BIND),
        ["defaults"] = new(false, 0),
        ["dev"] = new(true, Consts.MS_NODEV),
        ["diratime"] = new(true, Consts.MS_NODIRATIME),
        ["dirsync"] = new(false, Consts.MS_DIRSYNC),
        ["exec"] = new(true, Consts.MS_NOEXEC),
        ["iversion"] = new(false, Consts.MS_I_VERSION),
        ["lazytime"] = new(false, Consts.MS_LAZYTIME),
        ["loud"] = new(true, Consts.MS_SILENT),
        ["mand"] = new(false, Consts.MS_MANDLOCK),
        ["noatime"] = new(false, Consts.MS_NOATIME),
        ["nodev"] = new(false, Consts.MS_NODEV),
        ["nodiratime"] = new(false, Consts.MS_NODIRATIME),
        ["noexec"] = new(false, Consts.MS_NOEXEC),
        ["noiversion"] = new(true, Consts.MS_I_VERSION),
        ["nolazytime"] = new(true, Consts.MS_LAZYTIME),
        ["nomand"] = new(true, Consts.MS_MANDLOCK),
        ["norelatime"] = new(true, Consts.MS_RELATIME),
        ["nostrictatime"] = new(true, Consts.MS_STRICTATIME),
        ["nosuid"] = new(false, Consts.MS_NOSUID),
        ["nosymfollow"] = new(false, Consts.MS_NOSYMFOLLOW),
        ["rbind"] = new(false, Consts.MS_BIND | Consts.MS_REC),
        ["relatime"] = new(false, Consts.MS_RELATIME),
        ["remount"] = new(false, Consts.MS_REMOUNT),
        ["ro"] = new(false, Consts.MS_RDONLY),
        ["rw"] = new(true, Consts.MS_RDONLY),
        ["silent"] = new(false, Consts.MS_SILENT),
        ["strictatime"] = new(false, Consts.MS_STRICTATIME),
        ["suid"] = new(true, Consts.MS_NOSUID),
        ["symfollow"] = new(true, Consts.MS_NOSYMFOLLOW),
        ["sync"] = new(false, Consts.MS_SYNCHRONOUS),
    };

    private static readonly Dictionary<string, ulong> PropagationFlags = new(StringComparer.Ordinal)
    {
        ["private"] = Consts.MS_PRIVATE,
        ["rprivate"] = Consts.MS_PRIVATE | Consts.MS_REC,
        ["shared"] = Consts.MS_SHARED,
        ["rshared"] = Consts.MS_SHARED | Consts.MS_REC,
        ["slave"] = Consts.MS_SLAVE,
        ["rslave"] = Consts.MS_SLAVE | Consts.MS_REC,
        ["unbindable"] = Consts.MS_UNBINDABLE,
        ["runbindable"] = Consts.MS_UNBINDABLE | Consts.MS_REC,
    };

    // mount_setattr(2) attributes applied with AT_RECURSIVE. MOUNT_ATTR_RELATIME is 0: "rrelatime"
    // works by clearing the atime field (see Parse).
    private static readonly Dictionary<string, FlagOption> RecursiveAttrs = new(StringComparer.Ordinal)
    {
        ["rro"] = new(false, MountAttr.RDONLY),
        ["rrw"] = new(true, MountAttr.RDONLY),
        ["rnosuid"] = new(false, MountAttr.NOSUID),
        ["rsuid"] = new(true, MountAttr.NOSUID),
        ["rnodev"] = new(false, MountAttr.NODEV),
        ["rdev"] = new(true, MountAttr.NODEV),
        ["rnoexec"] = new(false, MountAttr.NOEXEC),
        ["rexec"] = new(true, MountAttr.NOEXEC),
        ["rnodiratime"] = new(false, MountAttr.NODIRATIME),
        ["rdiratime"] = new(true, MountAttr.NODIRATIME),
        ["rrelatime"] = new(false, MountAttr.RELATIME),
        ["rnorelatime"] = new(true, MountAttr.RELATIME),
        ["rnoatime"] = new(false, MountAttr.NOATIME),
        ["ratime"] = new(true, MountAttr.NOATIME),
        ["rstrictatime"] = new(false, MountAttr.STRICTATIME),
        ["rnostrictatime"] = new(true, MountAttr.STRICTATIME),
        ["rnosymfollow"] = new(false, MountAttr.NOSYMFOLLOW),
        ["rsymfollow"] = new(true, MountAttr.NOSYMFOLLOW),
    };

    /// <summary>Every option name with a meaning of its own (anything else is filesystem data), sorted.</summary>
    public static IReadOnlyList<string> Known =>
        [.. Flags.Keys.Concat(PropagationFlags.Keys).Concat(RecursiveAttrs.Keys)
            .Concat(["idmap", "ridmap", "tmpcopyup"]).Order(StringComparer.Ordinal)];

    public static ParsedMountOptions Parse(IEnumerable<string>? options)
    {
        var result = new ParsedMountOptions();
        if (options is null) return result;
        var data = new List<string>();
        foreach (var option in options)
        {
            if (Flags.TryGetValue(option, out var f))
            {
                if (f.Flag == 0) continue;
                if (f.Clear) { result.Flags &= ~f.Flag; result.ClearFlags |= f.Flag; }
                else { result.Flags |= f.Flag; result.ClearFlags &= ~f.Flag; }
            }
            else if (PropagationFlags.TryGetValue(option, out var p))
            {
                result._propagation.Add(p);
            }
            else if (RecursiveAttrs.TryGetValue(option, out var a))
            {
                if (a.Clear) { result.RecursiveAttrClear |= a.Flag; result.RecursiveAttrSet &= ~a.Flag; }
                else { result.RecursiveAttrSet |= a.Flag; result.RecursiveAttrClear &= ~a.Flag; }
                // The atime mode is a field, not a bit: mount_setattr(2) only changes it when
                // MOUNT_ATTR__ATIME is in attr_clr.
                if ((a.Flag & MountAttr.ATIME_MASK) == a.Flag) result.RecursiveAttrClear |= MountAttr.ATIME_MASK;
                result.HasRecursiveAttrs = true;
            }
            else if (option == "idmap") { result.IdMap = true; result.RecursiveIdMap = false; }
            else if (option == "ridmap") { result.IdMap = true; result.RecursiveIdMap = true; }
            else if (option == "tmpcopyup") result.TmpCopyUp = true;
            else data.Add(option);
        }
        result.Data = string.Join(',', data);
        return result;
    }

    /// <summary>A bind mount: "bind"/"rbind" in the options, or type "bind" (which crun and youki treat as a bind too).</summary>
    public static bool IsBind(Mount mount, ParsedMountOptions parsed) =>
        parsed.Bind || mount.Type == "bind";
}

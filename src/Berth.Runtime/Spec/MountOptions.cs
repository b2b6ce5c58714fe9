using Berth.Linux.Interop;

namespace Berth.Runtime.Spec;

// TEMPORARY minimal parser; replaced by the full one from the `oci` branch.
public sealed class ParsedMountOptions
{
    public ulong Flags { get; set; }
    public ulong ClearFlags { get; set; }
    public List<ulong> Propagation { get; } = [];
    public bool Bind { get; set; }
    public bool RecursiveBind { get; set; }
    public string Data { get; set; } = "";
}

public static class MountOptions
{
    public static ParsedMountOptions Parse(IEnumerable<string>? options)
    {
        var p = new ParsedMountOptions();
        var data = new List<string>();
        foreach (var o in options ?? [])
        {
            switch (o)
            {
                case "ro": p.Flags |= Consts.MS_RDONLY; break;
                case "rw": p.ClearFlags |= Consts.MS_RDONLY; break;
                case "nosuid": p.Flags |= Consts.MS_NOSUID; break;
                case "nodev": p.Flags |= Consts.MS_NODEV; break;
                case "noexec": p.Flags |= Consts.MS_NOEXEC; break;
                case "relatime": p.Flags |= Consts.MS_RELATIME; break;
                case "strictatime": p.Flags |= Consts.MS_STRICTATIME; break;
                case "noatime": p.Flags |= Consts.MS_NOATIME; break;
                case "bind": p.Bind = true; break;
                case "rbind": p.Bind = true; p.RecursiveBind = true; break;
                case "private": p.Propagation.Add(Consts.MS_PRIVATE); break;
                case "rprivate": p.Propagation.Add(Consts.MS_PRIVATE | Consts.MS_REC); break;
                case "shared": p.Propagation.Add(Consts.MS_SHARED); break;
                case "rshared": p.Propagation.Add(Consts.MS_SHARED | Consts.MS_REC); break;
                case "slave": p.Propagation.Add(Consts.MS_SLAVE); break;
                case "rslave": p.Propagation.Add(Consts.MS_SLAVE | Consts.MS_REC); break;
                case "unbindable": p.Propagation.Add(Consts.MS_UNBINDABLE); break;
                case "runbindable": p.Propagation.Add(Consts.MS_UNBINDABLE | Consts.MS_REC); break;
                default: data.Add(o); break;
            }
        }
        p.Data = string.Join(',', data);
        return p;
    }
}

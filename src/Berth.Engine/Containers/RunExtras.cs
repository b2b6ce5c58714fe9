using Berth.Engine.Files;
using Berth.Engine.Volumes;
using Berth.Images.Platforms;
using Berth.Images.Store;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Oci.Runtime;
using RtSpec = Berth.Oci.Runtime.Spec;

namespace Berth.Engine.Containers;

/// <summary>
/// The `run` flags that touch the host before the container exists (volumes, binds, devices) and
/// their place in the OCI config: user mounts after the defaults (replacing a default on the same
/// destination), --ulimit, --device with its device-cgroup rule, --label.
/// </summary>
public static class RunExtras
{
    public const string LabelPrefix = "io.berth.label.";
    private static readonly HashSet<string> EngineEtcFiles = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];

    /// <summary>--platform: refuse an image of another platform rather than fail at exec.</summary>
    public static void CheckPlatform(ImageRecord img, string? platform)
    {
        if (platform is null) return;
        Berth.Images.Model.Platform want;
        try { want = PlatformMatcher.Parse(platform); }
        catch (ArgumentException e) { throw new EngineError($"--platform {platform}: {e.Message}"); }
        var have = PlatformMatcher.Parse(img.Platform);
        bool same = want.Os == have.Os && want.Architecture == have.Architecture
            && (string.IsNullOrEmpty(want.Variant) || want.Variant == have.Variant);
        if (!same) throw new EngineError($"--platform {platform}: image {img.Names.FirstOrDefault() ?? img.ShortId} is {img.Platform}");
    }

    /// <summary>
    /// Host side of the user's mounts: bind sources checked, named volumes created on first use and
    /// seeded from the image's content at the destination (resolved inside <paramref name="rootfs"/>).
    /// Volumes this call created are added to <paramref name="created"/> so a failed run can remove them.
    /// Call with the volume store's lock held.
    /// </summary>
    public static List<Mount> ResolveMounts(IReadOnlyList<MountRequest> requests, VolumeStore volumes, string rootfs, List<string> created)
    {
        var result = new List<Mount>();
        foreach (var r in MountSpec.Normalize(requests))
        {
            switch (r.Kind)
            {
                case MountKind.Bind:
                    if (!File.Exists(r.Source) && !Directory.Exists(r.Source))
                        throw new EngineError($"{r.Origin}: the host path {r.Source} does not exist");
                    result.Add(new Mount { Destination = r.Destination, Type = "bind", Source = r.Source, Options = BindOptions(r) });
                    break;
                case MountKind.Volume:
                {
                    var (v, isNew) = volumes.Ensure(r.Source.Length == 0 ? null : r.Source, anonymous: r.Source.Length == 0);
                    if (isNew) created.Add(v.Name);
                    if (!v.Seeded && !r.NoCopy)
                    {
                        if (Directory.EnumerateFileSystemEntries(v.Mountpoint).Any()) volumes.MarkSeeded(v);
                        else
                        {
                            Seed(rootfs, r.Destination, v.Mountpoint, r.Origin);
                            volumes.MarkSeeded(v);
                        }
                    }
                    result.Add(new Mount { Destination = r.Destination, Type = "bind", Source = v.Mountpoint, Options = BindOptions(r) });
                    break;
                }
                case MountKind.Tmpfs:
                    result.Add(new Mount
                    {
                        Destination = r.Destination, Type = "tmpfs", Source = "tmpfs",
                        Options = ["nosuid", "nodev", "noexec", .. r.TmpfsOptions, .. (r.ReadOnly ? new[] { "ro" } : [])],
                    });
                    break;
            }
        }
        return result;
    }

    private static List<string> BindOptions(MountRequest r)
    {
        var o = new List<string> { "rbind", r.ReadOnly ? "ro" : "rw" };
        if (r.Propagation is not null) o.Add(r.Propagation);
        return o;
    }

    /// <summary>A new volume takes the image's directory at the destination: its content, mode and owner (docker's copy-up).</summary>
    private static void Seed(string rootfs, string destination, string data, string origin)
    {
        int root = Fd.Open(rootfs, Consts.O_PATH | Consts.O_DIRECTORY | Consts.O_CLOEXEC);
        try
        {
            int src = InRoot.TryOpen(root, destination, Consts.O_RDONLY | Consts.O_DIRECTORY, 0, false, out int err);
            if (src < 0)
            {
                if (err is Consts.ENOENT or Consts.ENOTDIR) return; // nothing in the image there
                throw new LinuxException($"{origin}: open the image's", destination, err);
            }
            int dst = FsTree.OpenDir(data);
            try
            {
                foreach (var n in FsTree.Names(src)) FsTree.Copy(src, n, dst, n, new FsTree.CopyOptions(), $"{destination}/{n}");
                var st = StatX.At(src, "", destination);
                LibC.fchown(dst, st.Uid, st.Gid);
                LibC.fchmod(dst, st.Permissions);
            }
            finally
            {
                LibC.close(dst);
                LibC.close(src);
            }
        }
        finally { LibC.close(root); }
    }

    /// <summary>
    /// The image's VOLUME entries (config.Volumes) that no user mount covers become anonymous volumes,
    /// seeded from the image, as docker and podman do.
    /// </summary>
    public static List<MountRequest> WithImageVolumes(Berth.Images.Model.ImageConfig image, IReadOnlyList<MountRequest> user)
    {
        var all = new List<MountRequest>(user);
        if (image.Config?.Extra is not { } extra || !extra.TryGetValue("Volumes", out var vols) || vols.ValueKind != System.Text.Json.JsonValueKind.Object)
            return all;
        var taken = user.Select(m => m.Destination).ToHashSet(StringComparer.Ordinal);
        foreach (var v in vols.EnumerateObject())
        {
            var dest = "/" + string.Join('/', v.Name.Split('/', StringSplitOptions.RemoveEmptyEntries));
            if (dest == "/" || v.Name.Split('/').Contains("..") || !taken.Add(dest)) continue;
            all.Add(new MountRequest { Kind = MountKind.Volume, Destination = dest, Origin = $"image VOLUME {v.Name}" });
        }
        return all;
    }

    /// <summary>Puts the resolved mounts, --ulimit, --device and --label into the OCI config.</summary>
    public static void Apply(RtSpec spec, RunOptions o, IReadOnlyList<Mount> userMounts)
    {
        if (userMounts.Count > 0)
        {
            var dests = userMounts.Select(m => m.Destination).ToHashSet(StringComparer.Ordinal);
            var kept = (spec.Mounts ?? []).Where(m => !dests.Contains(m.Destination.TrimEnd('/'))).ToList();
            // Before the engine's /etc/hostname, /etc/hosts and /etc/resolv.conf binds, so a volume on /etc does not hide them.
            int at = kept.FindIndex(m => EngineEtcFiles.Contains(m.Destination));
            kept.InsertRange(at < 0 ? kept.Count : at, userMounts);
            spec.Mounts = kept;
        }
        var process = spec.Process!;
        foreach (var u in o.Ulimits)
        {
            (process.Rlimits ??= []).RemoveAll(r => r.Type == u.Type);
            process.Rlimits.Add(u);
        }
        foreach (var d in o.Devices) AddDevice(spec.Linux!, d);
        foreach (var (k, v) in o.Labels) (spec.Annotations ??= [])[LabelPrefix + k] = v;
    }

    /// <summary>The node (type and numbers from the host's) and a device-cgroup rule that allows the access asked for.</summary>
    private static void AddDevice(Berth.Oci.Runtime.Linux linux, DeviceRequest d)
    {
        string what = $"--device {d.HostPath}";
        int fd = Fd.TryOpen(d.HostPath, Consts.O_PATH | Consts.O_CLOEXEC); // follows a link, as docker does (/dev/disk/by-id/...)
        if (fd < 0) throw new EngineError($"{what}: {d.HostPath} does not exist");
        StatX st;
        try { st = StatX.At(fd, "", d.HostPath); }
        finally { LibC.close(fd); }
        string type = st.Type switch
        {
            Consts.S_IFCHR => "c",
            Consts.S_IFBLK => "b",
            _ => throw new EngineError($"{what}: {d.HostPath} is not a character or block device"),
        };
        (linux.Devices ??= []).RemoveAll(x => x.Path == d.ContainerPath);
        linux.Devices.Add(new Device
        {
            Path = d.ContainerPath, Type = type, Major = st.RdevMajor, Minor = st.RdevMinor,
            FileMode = st.Permissions, Uid = st.Uid, Gid = st.Gid,
        });
        ((linux.Resources ??= new Resources()).Devices ??= []).Add(new DeviceCgroup
        {
            Allow = true, Type = type, Major = st.RdevMajor, Minor = st.RdevMinor, Access = d.Access,
        });
    }
}

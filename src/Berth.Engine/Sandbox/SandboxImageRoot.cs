using Berth.Engine.Containers;
using Berth.Images;
using Berth.Images.Archives;
using Berth.Images.Content;
using Berth.Images.Store;
using Berth.Linux;
using Berth.Linux.Interop;

namespace Berth.Engine.Sandbox;

/// <summary>
/// --image REF: the jail's root is the image's layers (berth's image store, as `berth run` uses it)
/// under an overlay whose upper and work directories are on the slot's tmpfs. The overlay is writable
/// only while the jail is built (mount points for /box, /tmp, --dir targets); the runtime makes the
/// root read-only before the program runs, as it does the host-directory root. The store's shared
/// lock is held while the overlay is mounted, so `image prune` cannot remove its layers.
/// </summary>
public sealed class SandboxImageRoot : IDisposable
{
    /// <summary>The reference the job gave and the image it resolved to.</summary>
    public string Reference { get; }
    public string ImageId { get; }
    private readonly IReadOnlyList<string> _lowersTopFirst;
    private FileLock? _lock;

    private SandboxImageRoot(string reference, string imageId, IReadOnlyList<string> lowers, FileLock storeLock)
    {
        Reference = reference;
        ImageId = imageId;
        _lowersTopFirst = lowers;
        _lock = storeLock;
    }

    /// <summary>Finds the image (the embedded default is loaded on first use, as `berth run` does) and holds the store.</summary>
    public static SandboxImageRoot Resolve(string reference)
    {
        var images = new ImageStore(ImageStore.ResolveRoot(null));
        var storeLock = images.LockShared();
        try
        {
            ImageRecord img;
            try { img = images.Resolve(reference); }
            catch (ImageNotFoundException) when (DefaultImage.Names(reference))
            {
                storeLock.Dispose();
                DefaultImage.Load(images);
                storeLock = images.LockShared();
                img = images.Resolve(reference);
            }
            images.EnsureLayers(img);
            var config = images.ReadConfig(images.ReadManifest(img));
            var lowers = config.Rootfs.DiffIds.AsEnumerable().Reverse().Select(d => images.Layers.PathOf(Digest.Parse(d))).ToList();
            if (lowers.Count == 0) throw new EngineError($"--image {reference}: the image has no layers");
            return new SandboxImageRoot(reference, img.Id, lowers, storeLock);
        }
        catch (ImageNotFoundException) { storeLock.Dispose(); throw new EngineError($"--image {reference}: no such image (berth load or berth pull it first)"); }
        catch { storeLock.Dispose(); throw; }
    }

    /// <summary>Mounts the overlay on <paramref name="rootfs"/>, its upper and work directories beside it in <paramref name="slotDir"/>.</summary>
    public void Mount(string slotDir, string rootfs)
    {
        var upper = Path.Combine(slotDir, "root-upper");
        var work = Path.Combine(slotDir, "root-work");
        Directory.CreateDirectory(upper);
        Directory.CreateDirectory(work);
        Directory.CreateDirectory(rootfs);
        var data = $"lowerdir={string.Join(':', _lowersTopFirst)},upperdir={upper},workdir={work}";
        int err = Berth.Linux.Mounts.Mount.TryApply("overlay", rootfs, "overlay", Consts.MS_NOSUID | Consts.MS_NODEV, data);
        if (err != 0) throw new EngineError($"--image {Reference}: mount its layers on {rootfs}: {LinuxException.Describe(err)}");
        // The jail's mount points (in the upper directory; the image is not touched).
        foreach (var d in new[] { "box", "tmp", "proc", "dev", "sys" })
            if (!Directory.Exists(Path.Combine(rootfs, d))) Directory.CreateDirectory(Path.Combine(rootfs, d));
    }

    /// <summary>The names the slot directory holds besides the root and the box while an image root is mounted.</summary>
    public static readonly string[] SlotEntries = ["root-upper", "root-work"];

    /// <summary>Releases the store (the overlay is gone with the slot's tmpfs by now).</summary>
    public void Dispose()
    {
        _lock?.Dispose();
        _lock = null;
    }
}

using Berth.Engine.Containers;
using Berth.Images;
using Berth.Images.Archives;
using Berth.Images.Store;
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
    /// <summary>The reference the job gave (a worker keeps this root for the next job that gives the same).</summary>
    public string Reference { get; }
    private readonly IReadOnlyList<string> _lowersTopFirst;
    private FileLock? _lock;

    private SandboxImageRoot(string reference, IReadOnlyList<string> lowers, FileLock storeLock)
    {
        Reference = reference;
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
            var img = DefaultImage.Resolve(images, reference);
            images.EnsureLayers(img);
            var lowers = images.LayerDirsTopFirst(images.ReadConfig(images.ReadManifest(img)));
            if (lowers.Count == 0) throw new EngineError($"--image {reference}: the image has no layers");
            return new SandboxImageRoot(reference, lowers, storeLock);
        }
        catch (ImageNotFoundException) { storeLock.Dispose(); throw new EngineError($"--image {reference}: no such image (berth load or berth pull it first)"); }
        catch { storeLock.Dispose(); throw; }
    }

    /// <summary>Mounts the overlay on <paramref name="rootfs"/> (nosuid, nodev), its upper and work directories beside it in <paramref name="slotDir"/>.</summary>
    public void Mount(string slotDir, string rootfs)
    {
        try
        {
            Overlay.Mount(_lowersTopFirst, Path.Combine(slotDir, "root-upper"), Path.Combine(slotDir, "root-work"), rootfs,
                Consts.MS_NOSUID | Consts.MS_NODEV);
        }
        catch (EngineError e) { throw new EngineError($"--image {Reference}: {e.Message}"); }
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

using Berth.Linux.Interop;

namespace Berth.Images.Layers;

/// <summary>How whiteouts in a layer are written.</summary>
public enum WhiteoutMode
{
    /// <summary>Delete what they hide: layers applied in order onto one directory (a flat rootfs).</summary>
    Apply,
    /// <summary>Overlayfs form: a 0/0 char device per removed name, trusted.overlay.opaque=y on opaque dirs (root only).</summary>
    Overlay,
}

public sealed record UnpackOptions
{
    /// <summary>Bound on the uncompressed tar stream: a decompression bomb stops here.</summary>
    public long MaxBytes { get; init; } = 64L << 30;
    /// <summary>Create char/block device nodes (root only); otherwise they are skipped and counted.</summary>
    public bool CreateDevices { get; init; }
    /// <summary>chown entries to their uid/gid; only meaningful (and the default) as root.</summary>
    public bool PreserveOwnership { get; init; } = LibC.geteuid() == 0;
    public WhiteoutMode Whiteouts { get; init; } = WhiteoutMode.Apply;
}

public sealed record UnpackResult(string DiffId, long Bytes, int Entries, int SkippedDevices, int SkippedXattrs);

namespace Berth.Images;

public static class MediaTypes
{
    public const string OciLayoutFile = "oci-layout";
    public const string Index = "application/vnd.oci.image.index.v1+json";
    public const string Manifest = "application/vnd.oci.image.manifest.v1+json";
    public const string Config = "application/vnd.oci.image.config.v1+json";
    public const string Layer = "application/vnd.oci.image.layer.v1.tar";
    public const string LayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string LayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";
    public const string DockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    public const string DockerLayer = "application/vnd.docker.image.rootfs.diff.tar";

    public const string AnnotationRefName = "org.opencontainers.image.ref.name";
    public const string AnnotationContainerdName = "io.containerd.image.name";

    public static bool IsIndex(string? t) => t is Index or DockerManifestList;
    public static bool IsManifest(string? t) => t is Manifest or DockerManifest;

    public static bool IsLayer(string? t) => t is Layer or LayerGzip or LayerZstd or DockerLayer or DockerLayerGzip
        or "application/vnd.oci.image.layer.nondistributable.v1.tar"
        or "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        or "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
}

using System.Text.Json;
using Berth.Images.Content;
using Berth.Images.Model;
using Berth.Images.Store;

namespace Berth.Images.Tests.Store;

/// <summary>Makes small single-layer images directly in a store.</summary>
public static class StoreFixture
{
    public static (Digest Manifest, byte[] Layer) AddImage(ImageStore store, string file, string content, string arch = "amd64", string? variant = null)
    {
        var layer = TarBuilder.Gzip(new TarBuilder().File(file, content).Bytes());
        var diffId = Digest.Of(new TarBuilder().File(file, content).Bytes());
        var config = new ImageConfig
        {
            Architecture = arch, Os = "linux", Variant = variant, Created = TarBuilder.Mtime,
            Config = new ContainerConfig { Cmd = ["/bin/sh"] },
            Rootfs = new RootFs { DiffIds = [diffId.ToString()] },
        };
        var configBytes = JsonSerializer.SerializeToUtf8Bytes(config, ImagesJson.Default.ImageConfig);
        var cd = store.Content.Write(configBytes);
        var ld = store.Content.Write(layer);
        var manifest = new ImageManifest
        {
            MediaType = MediaTypes.Manifest,
            Config = new Descriptor { MediaType = MediaTypes.Config, Digest = cd.ToString(), Size = configBytes.Length },
            Layers = [new Descriptor { MediaType = MediaTypes.LayerGzip, Digest = ld.ToString(), Size = layer.Length }],
        };
        return (store.Content.Write(JsonSerializer.SerializeToUtf8Bytes(manifest, ImagesJson.Default.ImageManifest)), layer);
    }
}

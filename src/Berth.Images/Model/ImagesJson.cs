using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Images.Store;

namespace Berth.Images.Model;

/// <summary>Source-generated JSON for image documents and the store's own records (NativeAOT safe).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    PropertyNameCaseInsensitive = true, AllowTrailingCommas = true)]
[JsonSerializable(typeof(ImageIndex))]
[JsonSerializable(typeof(ImageManifest))]
[JsonSerializable(typeof(ImageConfig))]
[JsonSerializable(typeof(OciLayoutMarker))]
[JsonSerializable(typeof(List<DockerArchiveEntry>))]
[JsonSerializable(typeof(ImageDatabase))]
[JsonSerializable(typeof(List<ImageRecord>))]
public sealed partial class ImagesJson : JsonSerializerContext
{
    private static ImagesJson? _indented;
    public static ImagesJson Indented => _indented ??= new ImagesJson(new JsonSerializerOptions(Default.Options) { WriteIndented = true });

    public static T Parse<T>(ReadOnlySpan<byte> json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info, string what)
    {
        try
        {
            return JsonSerializer.Deserialize(json, info) ?? throw new ImageFormatException($"{what}: empty document");
        }
        catch (JsonException e)
        {
            throw new ImageFormatException($"{what}: invalid JSON: {e.Message}");
        }
    }
}

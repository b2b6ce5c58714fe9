using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Oci.Runtime;
using Berth.Oci.Seccomp;

namespace Berth.Oci;

// Keys match case-insensitively on read, as Go's encoding/json (runc, containerd) does.
/// <summary>Source-generated JSON for every OCI document berth reads or writes (NativeAOT safe).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = false,
    ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true,
    PropertyNameCaseInsensitive = true)]
[JsonSerializable(typeof(Spec))]
[JsonSerializable(typeof(State))]
[JsonSerializable(typeof(Process))]
[JsonSerializable(typeof(List<State>))]
[JsonSerializable(typeof(Resources))]
[JsonSerializable(typeof(SeccompProfile))]
[JsonSerializable(typeof(ContainerProcessState))]
public sealed partial class OciJson : JsonSerializerContext
{
    private static OciJson? _indented;

    /// <summary>The same context, writing indented JSON (for `spec` and `state`).</summary>
    public static OciJson Indented => _indented ??= new OciJson(new JsonSerializerOptions(Default.Options) { WriteIndented = true });
}

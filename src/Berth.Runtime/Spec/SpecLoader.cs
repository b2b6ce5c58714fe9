using System.Text.Json;
using Berth.Oci;

namespace Berth.Runtime.Spec;

// TEMPORARY minimal loader; replaced by the full one from the `oci` branch.
public sealed class SpecException(string message) : Exception(message);

public static class SpecLoader
{
    public static Berth.Oci.Runtime.Spec Load(string bundleDir)
    {
        var path = Path.Combine(bundleDir, "config.json");
        if (!File.Exists(path)) throw new SpecException($"{path}: no such file");
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(path), OciJson.Default.Spec)
                ?? throw new SpecException($"{path}: empty document");
        }
        catch (JsonException e) { throw new SpecException($"{path}: invalid JSON: {e.Message}"); }
    }
}

public static class SpecValidator
{
    public static void Validate(Berth.Oci.Runtime.Spec spec, string bundleDir) { }

    public static string RootfsPath(Berth.Oci.Runtime.Spec spec, string bundle)
    {
        var p = spec.Root?.Path ?? throw new SpecException("root.path: missing");
        return Path.GetFullPath(Path.IsPathRooted(p) ? p : Path.Combine(bundle, p));
    }
}

using System.Text.Json;
using Berth.Oci;

namespace Berth.Runtime.Tests.Spec;

/// <summary>A throwaway bundle directory with a rootfs/ and, when given, a config.json.</summary>
internal sealed class TempBundle : IDisposable
{
    public string Dir { get; }
    public string Rootfs => Path.Combine(Dir, "rootfs");
    public string ConfigPath => Path.Combine(Dir, "config.json");

    public TempBundle(bool withRootfs = true)
    {
        Dir = Directory.CreateTempSubdirectory("berth-spec-").FullName;
        if (withRootfs) Directory.CreateDirectory(Rootfs);
    }

    public TempBundle WriteConfig(string json)
    {
        File.WriteAllText(ConfigPath, json);
        return this;
    }

    public TempBundle WriteConfig(Oci.Runtime.Spec spec) =>
        WriteConfig(JsonSerializer.Serialize(spec, OciJson.Indented.Spec));

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

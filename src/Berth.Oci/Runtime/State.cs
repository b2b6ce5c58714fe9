namespace Berth.Oci.Runtime;

/// <summary>The OCI state document printed by `state` and handed to hooks on stdin.</summary>
public sealed class State
{
    public string OciVersion { get; set; } = SpecVersion.Current;
    public string Id { get; set; } = "";
    public string Status { get; set; } = "";
    public int Pid { get; set; }
    public string Bundle { get; set; } = "";
    public string Rootfs { get; set; } = "";
    public DateTime Created { get; set; }
    public string Owner { get; set; } = "";
    public Dictionary<string, string>? Annotations { get; set; }
}

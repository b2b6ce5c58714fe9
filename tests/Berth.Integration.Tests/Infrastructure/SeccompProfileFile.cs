using System.Text.Json.Nodes;

namespace Berth.Integration.Tests.Infrastructure;

/// <summary>
/// Turns a seccomp profile file (containers/common / Docker format: archMap, name/names,
/// includes/excludes) into the OCI linux.seccomp section for one container, the way podman does
/// (containers/common pkg/seccomp, setupSeccomp). Written again here, independently of berth's
/// SeccompProfiles.Resolve, so the differential test hands both runtimes the section podman would.
/// </summary>
public static class SeccompProfileFile
{
    /// <param name="profile">the profile file's JSON</param>
    /// <param name="boundingCaps">the container's bounding set (includes.caps needs all, excludes.caps any)</param>
    /// <param name="arch">libseccomp name of the host ABI, e.g. SCMP_ARCH_X86_64</param>
    /// <param name="goArch">Go name of the host ABI, for includes/excludes.arches, e.g. amd64</param>
    /// <param name="kernel">the running kernel's major.minor, for minKernel</param>
    public static JsonObject ToOci(JsonObject profile, IReadOnlyCollection<string> boundingCaps, string arch, string goArch, Version kernel)
    {
        var oci = new JsonObject { ["defaultAction"] = (string)profile["defaultAction"]! };
        if (profile["defaultErrnoRet"] is JsonNode der) oci["defaultErrnoRet"] = (uint)der;

        var arches = new JsonArray();
        foreach (var map in profile["archMap"]?.AsArray() ?? [])
        {
            if ((string?)map!["architecture"] != arch) continue;
            arches.Add(arch);
            foreach (var sub in map["subArchitectures"]?.AsArray() ?? []) arches.Add((string)sub!);
        }
        foreach (var a in profile["architectures"]?.AsArray() ?? []) arches.Add((string)a!);
        oci["architectures"] = arches;
        if (profile["flags"] is JsonArray flags) oci["flags"] = flags.DeepClone();

        var syscalls = new JsonArray();
        foreach (var node in profile["syscalls"]?.AsArray() ?? [])
        {
            var rule = node!.AsObject();
            if (rule["excludes"] is JsonObject ex)
            {
                if (Strings(ex["arches"]).Contains(goArch)) continue;
                if (Strings(ex["caps"]).Any(boundingCaps.Contains)) continue;
                if (ex["minKernel"] is JsonNode mk && kernel >= ParseKernel((string)mk!)) continue;
            }
            if (rule["includes"] is JsonObject inc)
            {
                var incArches = Strings(inc["arches"]);
                if (incArches.Count > 0 && !incArches.Contains(goArch)) continue;
                if (!Strings(inc["caps"]).All(boundingCaps.Contains)) continue;
                if (inc["minKernel"] is JsonNode mk && kernel < ParseKernel((string)mk!)) continue;
            }
            var names = Strings(rule["names"]);
            if (rule["name"] is JsonNode n && ((string?)n)?.Length > 0) names.Add((string)n!);
            if (names.Count == 0) continue;
            var outRule = new JsonObject
            {
                ["names"] = new JsonArray(names.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray()),
                ["action"] = (string)rule["action"]!,
            };
            if (rule["errnoRet"] is JsonNode er) outRule["errnoRet"] = (uint)er;
            if (rule["args"] is JsonArray { Count: > 0 } args) outRule["args"] = args.DeepClone();
            syscalls.Add(outRule);
        }
        oci["syscalls"] = syscalls;
        return oci;
    }

    public static Version RunningKernel()
    {
        var parts = File.ReadAllText("/proc/sys/kernel/osrelease").Trim().Split('.', '-');
        return new Version(int.Parse(parts[0]), int.Parse(parts[1]));
    }

    private static Version ParseKernel(string text)
    {
        var v = Version.Parse(text.Contains('.') ? text : text + ".0");
        return new Version(v.Major, v.Minor);
    }

    private static List<string> Strings(JsonNode? node) =>
        node is JsonArray a ? a.Select(x => (string)x!).ToList() : [];
}

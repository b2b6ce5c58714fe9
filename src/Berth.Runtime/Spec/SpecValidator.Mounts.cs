namespace Berth.Runtime.Spec;

using Berth.Oci.Runtime;

// The "mounts" array.
public static partial class SpecValidator
{
    private static void ValidateMounts(List<Mount>? mounts, List<string> warnings)
    {
        if (mounts is null) return;
        for (int i = 0; i < mounts.Count; i++)
        {
            var m = mounts[i];
            var at = $"mounts[{i}]";
            if (m is null) Fail(at, "null");
            var dest = m.Destination ?? "";
            if (dest.Length == 0) Fail($"{at}.destination", "empty");
            CheckNoNul($"{at}.destination", dest);
            CheckNoNul($"{at}.source", m.Source);
            CheckNoNul($"{at}.type", m.Type);
            // The spec says SHOULD be absolute; runc still runs old configs, taking the path from "/".
            if (!dest.StartsWith('/'))
                warnings.Add($"{at}.destination: {Quote(dest)} is not absolute; taken as /{dest} (deprecated by the runtime spec)");

            if (m.Options is { } options)
                for (int j = 0; j < options.Count; j++)
                {
                    if (options[j] is null) Fail($"{at}.options[{j}]", "null");
                    CheckNoNul($"{at}.options[{j}]", options[j]);
                }

            var parsed = MountOptions.Parse(m.Options);
            bool bind = MountOptions.IsBind(m, parsed);
            if (!bind && string.IsNullOrEmpty(m.Type))
                Fail($"{at}.type", $"missing for {Quote(dest)}; only bind mounts (options bind or rbind) may leave it out");
            if (bind && string.IsNullOrEmpty(m.Source))
                Fail($"{at}.source", $"missing for the bind mount at {Quote(dest)}");
            // The kernel ignores filesystem options on a bind mount; refuse them rather than drop them silently.
            if (bind && parsed.Data.Length > 0)
                Fail($"{at}.options", $"{Quote(parsed.Data)} cannot apply to a bind mount (only mount flags can)");

            bool idmapped = parsed.IdMap || m.UidMappings is not null || m.GidMappings is not null;
            if (idmapped)
            {
                if (!bind) Fail($"{at}.options", $"id-mapped mounts must be bind mounts ({Quote(dest)} is type {Quote(m.Type)})");
                if (m.UidMappings is not { Count: > 0 } || m.GidMappings is not { Count: > 0 })
                    Fail(m.UidMappings is { Count: > 0 } ? $"{at}.gidMappings" : $"{at}.uidMappings",
                        "an id-mapped mount needs uidMappings and gidMappings");
                CheckMappings($"{at}.uidMappings", m.UidMappings);
                CheckMappings($"{at}.gidMappings", m.GidMappings);
            }
        }
    }
}

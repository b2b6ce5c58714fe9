using System.Text.Json;
using Berth.Engine.Containers;
using Berth.Engine.Volumes;

namespace Berth.Cli.Engine;

/// <summary>`berth volume create|ls|rm|inspect|prune`.</summary>
internal static class VolumeCli
{
    public static int Dispatch(List<string> rest, ContainerService svc)
    {
        if (rest.Count == 0) throw new UsageError("berth volume needs a command: create, ls, rm, inspect, prune");
        var args = rest.Skip(1).ToList();
        switch (rest[0])
        {
            case "create":
            {
                var p = new ArgParser().Option("driver|d").Parse(args);
                if (p.Get("driver") is { } d && d != "local") throw new UsageError($"--driver {d}: only the local driver exists");
                if (p.Positional.Count > 1) throw new UsageError("berth volume create takes at most one name");
                Console.WriteLine(svc.CreateVolume(p.Positional.FirstOrDefault()).Name);
                return 0;
            }
            case "ls" or "list":
            {
                var p = new ArgParser().Flag("quiet|q").Parse(args);
                if (!p.Has("quiet")) Console.WriteLine($"{"DRIVER",-10}VOLUME NAME");
                foreach (var v in svc.Volumes.List()) Console.WriteLine(p.Has("quiet") ? v.Name : $"{"local",-10}{v.Name}");
                return 0;
            }
            case "rm" or "remove":
            {
                var p = new ArgParser().Flag("force|f").Parse(args, stopAtPositional: false);
                if (p.Positional.Count == 0) throw new UsageError("berth volume rm needs a volume name");
                int rc = 0;
                foreach (var n in p.Positional)
                {
                    try
                    {
                        if (p.Has("force") && svc.Volumes.TryGet(n) is null) continue;
                        svc.RemoveVolume(n);
                        Console.WriteLine(n);
                    }
                    catch (EngineError e)
                    {
                        Console.Error.WriteLine($"berth: {e.Message}");
                        rc = 1;
                    }
                }
                return rc;
            }
            case "inspect":
            {
                var p = new ArgParser().Parse(args, stopAtPositional: false);
                if (p.Positional.Count == 0) throw new UsageError("berth volume inspect needs a volume name");
                var vols = p.Positional.Select(svc.Volumes.Get).ToList();
                using var ms = new MemoryStream();
                using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
                {
                    w.WriteStartArray();
                    foreach (var v in vols) VolumeStore.WriteJson(w, v);
                    w.WriteEndArray();
                }
                Console.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
                return 0;
            }
            case "prune":
            {
                new ArgParser().Flag("force|f").Parse(args);
                foreach (var v in svc.Volumes.List().ToList())
                {
                    if (svc.VolumeUsers(v.Name).Count > 0) continue;
                    try { svc.RemoveVolume(v.Name); Console.WriteLine(v.Name); }
                    catch (EngineError) { } // taken up by a container meanwhile
                }
                return 0;
            }
            default: throw new UsageError($"unknown volume command \"{rest[0]}\"");
        }
    }
}

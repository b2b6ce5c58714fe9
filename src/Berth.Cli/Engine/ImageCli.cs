using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Images;
using Berth.Images.Archives;
using Berth.Images.Content;
using Berth.Images.Model;
using Berth.Images.Platforms;
using Berth.Images.Store;

namespace Berth.Cli.Engine;

/// <summary>The engine's image commands: load, save, images, image inspect|ls|rm|prune|history|tag, tag, rmi.</summary>
public static class ImageCli
{
    public static readonly HashSet<string> Commands = ["load", "save", "images", "image", "tag", "rmi"];

    private const string ImageUsage = """
        Usage: berth image COMMAND

          ls             list images (same as berth images)
          inspect IMAGE  show an image's record, config and manifest as JSON
          history IMAGE  show the layer history
          tag SRC NEW    give an image another name
          rm IMAGE...    remove images (same as berth rmi)
          prune          delete blobs and unpacked layers no image uses
          default        load berth.local/busybox:latest, the image made from a static busybox
                         (-o FILE: write it as an oci-archive instead; --busybox PATH: build from PATH)
          unpack IMAGE DIR   apply the image's layers onto DIR (a flat rootfs, e.g. a bundle's)
        """;

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>argv from the command on; <paramref name="storage"/> from a global --storage before it.</summary>
    public static int Dispatch(string[] args, string? storage)
    {
        try
        {
            var cmd = args[0];
            var rest = args[1..];
            if (cmd == "image")
            {
                if (rest.Length == 0 || rest[0] is "--help" or "-h") { Console.WriteLine(ImageUsage); return rest.Length == 0 ? 1 : 0; }
                (cmd, rest) = rest[0] switch
                {
                    "ls" or "list" => ("images", rest[1..]),
                    "rm" => ("rmi", rest[1..]),
                    "load" or "save" or "tag" or "inspect" or "history" or "prune" or "default" or "unpack" => (rest[0], rest[1..]),
                    var c => throw new UsageError($"unknown image command \"{c}\"\n{ImageUsage}"),
                };
            }
            return cmd switch
            {
                "load" => Load(rest, storage),
                "save" => Save(rest, storage),
                "images" => Images(rest, storage),
                "inspect" => Inspect(rest, storage),
                "history" => History(rest, storage),
                "tag" => Tag(rest, storage),
                "rmi" => Rmi(rest, storage),
                "prune" => Prune(rest, storage),
                "default" => Default(rest, storage),
                "unpack" => Unpack(rest, storage),
                _ => throw new UsageError($"unknown command \"{cmd}\""),
            };
        }
        catch (UsageError e) { Console.Error.WriteLine($"berth: {e.Message}"); return 2; }
        catch (Exception e) when (e is ImageFormatException or ImageNotFoundException or ArgumentException or InvalidOperationException
                                  or IOException or UnauthorizedAccessException or Berth.Linux.LinuxException)
        {
            Console.Error.WriteLine($"berth: {e.Message}");
            return 1;
        }
    }

    private static ArgParser Parser() => new ArgParser().Option("storage").Flag("help|h");

    private static ImageStore Open(ArgParser p, string? storage) => new(ImageStore.ResolveRoot(p.Get("storage") ?? storage));

    private static ImageRecord Resolve(ImageStore store, string reference) => DefaultImage.Resolve(store, reference);

    private static int Default(string[] args, string? storage)
    {
        var p = Parser().Option("output|o").Option("busybox").Option("input|i").Parse(args, stopAtPositional: false);
        if (p.Has("help"))
        {
            Console.WriteLine($"""
                Usage: berth image default [-o FILE] [--busybox PATH] [-i FILE]
                  loads {DefaultImage.Name}: from -i FILE, else {DefaultImage.ArchiveFileName} beside the binary
                  (scripts/build writes it), else built now from this host's static busybox.
                  -o FILE writes the oci-archive (built from --busybox or the host's) and loads nothing.
                """);
            return 0;
        }
        if (p.Get("output") is { } output)
        {
            var bb = p.Get("busybox") ?? DefaultImage.FindStaticBusybox() ?? throw new InvalidOperationException("no static busybox on this host (apt-get install busybox-static, or --busybox PATH)");
            var d = DefaultImage.WriteArchiveFile(bb, output);
            Console.WriteLine(d);
            return 0;
        }
        var img = DefaultImage.Load(Open(p, storage), p.Get("input"), p.Get("busybox"));
        Console.WriteLine($"Loaded image: {string.Join(", ", img.Names)}");
        return 0;
    }

    private static int Unpack(string[] args, string? storage)
    {
        var p = Parser().Parse(args, stopAtPositional: false);
        if (p.Has("help")) { Console.WriteLine("Usage: berth image unpack IMAGE DIR\n  applies every layer onto DIR (created if missing), as a flat root filesystem"); return 0; }
        if (p.Positional.Count != 2) throw new UsageError("usage: berth image unpack IMAGE DIR");
        var store = Open(p, storage);
        var img = Resolve(store, p.Positional[0]);
        bool root = Berth.Linux.Interop.LibC.geteuid() == 0;
        using (store.LockShared())
            store.Materialize(img, p.Positional[1], new Berth.Images.Layers.UnpackOptions { Whiteouts = Berth.Images.Layers.WhiteoutMode.Apply, CreateDevices = root });
        return 0;
    }

    private static int Load(string[] args, string? storage)
    {
        var p = Parser().Option("input|i").Option("platform").Flag("quiet|q").Parse(args, stopAtPositional: false);
        if (p.Has("help")) { Console.WriteLine("Usage: berth load -i FILE|DIR [--platform os/arch[/variant]] [-q]\n  an OCI layout dir, oci-archive or docker-archive (optionally gzip/zstd)"); return 0; }
        var input = p.Get("input") ?? (p.Positional.Count == 1 ? p.Positional[0] : throw new UsageError("load needs -i FILE"));
        var store = Open(p, storage);
        var sw = Stopwatch.StartNew();
        bool showProgress = !p.Has("quiet") && !Console.IsErrorRedirected;
        var importer = new ImageImporter(store)
        {
            Platform = p.Get("platform") is { } pl ? PlatformMatcher.Parse(pl) : null,
            Progress = showProgress ? n => Console.Error.Write($"\rloading {n / 1e6:F1} MB ({n / 1e6 / Math.Max(sw.Elapsed.TotalSeconds, 0.001):F1} MB/s)   ") : null,
        };
        var images = importer.Load(input);
        if (showProgress) Console.Error.WriteLine();
        foreach (var img in images)
            Console.WriteLine(img.Names.Count > 0 ? $"Loaded image: {string.Join(", ", img.Names)}" : $"Loaded image ID: {img.Id}");
        return 0;
    }

    private static int Save(string[] args, string? storage)
    {
        var p = Parser().Option("output|o").Option("format").Parse(args, stopAtPositional: false);
        if (p.Has("help")) { Console.WriteLine("Usage: berth save -o FILE [--format oci-archive|docker-archive] IMAGE..."); return 0; }
        var output = p.Get("output") ?? throw new UsageError("save needs -o FILE");
        if (p.Positional.Count == 0) throw new UsageError("save needs at least one IMAGE");
        var store = Open(p, storage);
        foreach (var r in p.Positional) Resolve(store, r);
        new ImageExporter(store).Save(p.Positional, output, ImageExporter.ParseFormat(p.Get("format")));
        return 0;
    }

    private static int Images(string[] args, string? storage)
    {
        var p = Parser().Option("format").Flag("quiet|q").Flag("all|a").Flag("no-trunc").Parse(args, stopAtPositional: false);
        var images = Open(p, storage).List().OrderByDescending(i => i.Created ?? i.Loaded).ToList();
        if (p.Has("quiet"))
        {
            foreach (var id in images.Select(i => p.Has("no-trunc") ? i.Id : i.ShortId).Distinct()) Console.WriteLine(id);
            return 0;
        }
        if (p.Get("format") is "json")
        {
            var arr = new JsonArray();
            foreach (var i in images) arr.Add((JsonNode)RecordJson(i));
            Console.WriteLine(arr.ToJsonString(Indented));
            return 0;
        }
        if (p.Get("format") is { } f && f != "table") throw new UsageError($"unknown format \"{f}\" (table or json)");
        var rows = new List<string[]> { new[] { "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "PLATFORM" } };
        foreach (var i in images)
        {
            var names = i.Names.Count > 0 ? i.Names : ["<none>:<none>"];
            foreach (var n in names)
            {
                var (repo, tag) = n == "<none>:<none>" ? ("<none>", "<none>") : ImageName.SplitTag(n);
                rows.Add([repo, tag, p.Has("no-trunc") ? i.Id : i.ShortId, Ago(i.Created), Size(i.Size), i.Platform]);
            }
        }
        PrintTable(rows);
        return 0;
    }

    private static int Inspect(string[] args, string? storage)
    {
        var p = Parser().Parse(args, stopAtPositional: false);
        if (p.Positional.Count == 0) throw new UsageError("inspect needs an IMAGE");
        var store = Open(p, storage);
        var arr = new JsonArray();
        foreach (var r in p.Positional)
        {
            var img = Resolve(store, r);
            var o = RecordJson(img);
            var md = Digest.Parse(img.Manifest);
            o["Manifest"] = JsonNode.Parse(store.Content.ReadVerified(md, "manifest"));
            var m = store.ReadManifest(img);
            o["Config"] = JsonNode.Parse(store.Content.ReadVerified(Digest.Parse(m.Config.Digest), "config"));
            arr.Add((JsonNode)o);
        }
        Console.WriteLine(arr.ToJsonString(Indented));
        return 0;
    }

    private static int History(string[] args, string? storage)
    {
        var p = Parser().Parse(args, stopAtPositional: false);
        if (p.Positional.Count != 1) throw new UsageError("history needs one IMAGE");
        var store = Open(p, storage);
        var img = Resolve(store, p.Positional[0]);
        var m = store.ReadManifest(img);
        var config = store.ReadConfig(m);
        var rows = new List<string[]> { new[] { "LAYER", "CREATED", "CREATED BY", "SIZE", "COMMENT" } };
        int layer = m.Layers.Count - 1;
        var history = config.History ?? [];
        // Newest first; entries with empty_layer have no layer of their own.
        var lines = new List<string[]>();
        int li = 0;
        foreach (var h in history)
        {
            bool empty = h.EmptyLayer == true;
            var desc = !empty && li < m.Layers.Count ? m.Layers[li++] : null;
            lines.Add([desc is null ? "<missing>" : desc.Digest[7..19], Ago(h.Created), Trunc(h.CreatedBy ?? "", 60), desc is null ? "0B" : Size(desc.Size), h.Comment ?? ""]);
        }
        for (; li < m.Layers.Count; li++) lines.Add([m.Layers[li].Digest[7..19], "", "", Size(m.Layers[li].Size), ""]);
        lines.Reverse();
        rows.AddRange(lines);
        PrintTable(rows);
        _ = layer;
        return 0;
    }

    private static int Tag(string[] args, string? storage)
    {
        var p = Parser().Parse(args, stopAtPositional: false);
        if (p.Positional.Count != 2) throw new UsageError("usage: berth tag IMAGE NEWNAME");
        var store = Open(p, storage);
        Resolve(store, p.Positional[0]);
        store.Tag(p.Positional[0], p.Positional[1]);
        return 0;
    }

    private static int Rmi(string[] args, string? storage)
    {
        var p = Parser().Flag("force|f").Parse(args, stopAtPositional: false);
        if (p.Positional.Count == 0) throw new UsageError("rmi needs at least one IMAGE");
        var store = Open(p, storage);
        int rc = 0;
        foreach (var r in p.Positional)
        {
            try
            {
                var engine = new Berth.Engine.Containers.EngineStore(store.Root);
                var (img, deleted, untagged) = store.Remove(r, p.Has("force"), inUse: i => engine.List().Any(c => c.ImageId == i.Id));
                if (untagged is not null) Console.WriteLine($"Untagged: {untagged}");
                if (deleted) Console.WriteLine($"Deleted: {img.Id}");
            }
            catch (Exception e) when (e is ImageNotFoundException or InvalidOperationException or ArgumentException)
            {
                Console.Error.WriteLine($"berth: {e.Message}");
                rc = 1;
            }
        }
        return rc;
    }

    private static int Prune(string[] args, string? storage)
    {
        var p = Parser().Flag("all|a").Flag("force|f").Parse(args, stopAtPositional: false);
        var store = Open(p, storage);
        var engine = new Berth.Engine.Containers.EngineStore(store.Root);
        var r = store.Prune(engine.List().SelectMany(c => c.Layers).Where(l => l.Length > 0).Select(Digest.Parse));
        Console.WriteLine($"Deleted {r.Blobs} blobs ({Size(r.Bytes)}), {r.Layers} unpacked layers, {r.Leftovers} leftovers of interrupted writes");
        return 0;
    }

    private static JsonObject RecordJson(ImageRecord i) => new()
    {
        ["Id"] = i.Id,
        ["Names"] = new JsonArray(i.Names.Select(n => (JsonNode?)JsonValue.Create(n)).ToArray()),
        ["Digest"] = i.Manifest,
        ["MediaType"] = i.ManifestMediaType,
        ["Created"] = i.Created?.ToString("O"),
        ["Loaded"] = i.Loaded.ToString("O"),
        ["Size"] = i.Size,
        ["Platform"] = i.Platform,
    };

    private static void PrintTable(List<string[]> rows)
    {
        var widths = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        foreach (var r in rows)
            Console.WriteLine(string.Join("   ", r.Select((cell, c) => c == r.Length - 1 ? cell : cell.PadRight(widths[c]))).TrimEnd());
    }

    private static string Trunc(string s, int n) => s.Length <= n ? s : s[..(n - 3)] + "...";

    internal static string Size(long bytes) => bytes switch
    {
        < 1000 => $"{bytes}B",
        < 1_000_000 => $"{bytes / 1e3:0.#}kB",
        < 1_000_000_000 => $"{bytes / 1e6:0.#}MB",
        _ => $"{bytes / 1e9:0.##}GB",
    };

    internal static string Ago(DateTimeOffset? t)
    {
        if (t is null) return "";
        var d = DateTimeOffset.UtcNow - t.Value;
        return d.TotalSeconds < 60 ? "Less than a minute ago"
            : d.TotalHours < 1 ? $"{(int)d.TotalMinutes} minutes ago"
            : d.TotalDays < 2 ? $"{(int)d.TotalHours} hours ago"
            : d.TotalDays < 60 ? $"{(int)d.TotalDays} days ago"
            : d.TotalDays < 730 ? $"{(int)(d.TotalDays / 30)} months ago"
            : $"{(int)(d.TotalDays / 365)} years ago";
    }
}

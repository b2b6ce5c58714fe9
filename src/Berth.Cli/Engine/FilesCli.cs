using Berth.Engine.Containers;

namespace Berth.Cli.Engine;

/// <summary>`berth cp / diff / export / commit / rename / container prune / volume ...`.</summary>
internal static class FilesCli
{
    public static readonly HashSet<string> Commands = ["cp", "diff", "export", "commit", "rename", "volume"];

    public static int Dispatch(string cmd, List<string> rest, ContainerService svc) => cmd switch
    {
        "cp" => Cp(rest, svc),
        "diff" => Diff(rest, svc),
        "export" => Export(rest, svc),
        "commit" => Commit(rest, svc),
        "rename" => Rename(rest, svc),
        "prune" => Prune(rest, svc),
        "volume" => VolumeCli.Dispatch(rest, svc),
        _ => throw new UsageError($"unknown command \"{cmd}\""),
    };

    /// <summary>NAME:PATH -> (NAME, PATH); a host path (absolute, relative with ./ or without a colon) -> null.</summary>
    private static (string Container, string Path)? ContainerPath(string arg)
    {
        if (arg.StartsWith('/') || arg.StartsWith('.')) return null;
        var colon = arg.IndexOf(':');
        if (colon <= 0) return null;
        return (arg[..colon], arg[(colon + 1)..] is { Length: > 0 } p ? p : "/");
    }

    private static int Cp(List<string> rest, ContainerService svc)
    {
        var p = new ArgParser().Flag("archive|a").Flag("follow-link|L").Parse(rest, stopAtPositional: false);
        if (p.Positional.Count != 2) throw new UsageError("usage: berth cp [-a] CONTAINER:SRC HOSTDEST|- | HOSTSRC|- CONTAINER:DEST");
        var src = ContainerPath(p.Positional[0]);
        var dst = ContainerPath(p.Positional[1]);
        if (src is not null && dst is not null) throw new UsageError("berth cp copies between a container and the host, not between two containers");
        if (src is null && dst is null) throw new UsageError("berth cp needs CONTAINER:PATH on one side");
        if (src is { } ts && p.Positional[1] == "-")
        {
            if (!Console.IsOutputRedirected) throw new UsageError("berth cp: refusing to write a tar to a terminal; redirect the output");
            using var stdout = Console.OpenStandardOutput();
            svc.CopyOutTar(ts.Container, ts.Path, stdout);
            return 0;
        }
        if (dst is { } td && p.Positional[0] == "-")
        {
            using var stdin = Console.OpenStandardInput();
            svc.CopyInTar(stdin, td.Container, td.Path);
            return 0;
        }
        if (src is { } s) svc.CopyOut(s.Container, s.Path, p.Positional[1], p.Has("archive"));
        else svc.CopyIn(p.Positional[0], dst!.Value.Container, dst.Value.Path, p.Has("archive"));
        return 0;
    }

    private static int Diff(List<string> rest, ContainerService svc)
    {
        var p = new ArgParser().Parse(rest);
        if (p.Positional.Count != 1) throw new UsageError("usage: berth diff CONTAINER");
        foreach (var (k, path) in svc.Diff(p.Positional[0])) Console.WriteLine($"{k} {path}");
        return 0;
    }

    private static int Export(List<string> rest, ContainerService svc)
    {
        var p = new ArgParser().Option("output|o").Parse(rest);
        if (p.Positional.Count != 1) throw new UsageError("usage: berth export [-o FILE] CONTAINER");
        if (p.Get("output") is not { } file)
        {
            if (!Console.IsOutputRedirected) throw new UsageError("berth export: refusing to write a tar to a terminal; use -o FILE or redirect");
            using var stdout = Console.OpenStandardOutput();
            svc.Export(p.Positional[0], stdout);
            return 0;
        }
        var full = Path.GetFullPath(file);
        var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
                svc.Export(p.Positional[0], fs);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
        return 0;
    }

    private static int Commit(List<string> rest, ContainerService svc)
    {
        var p = new ArgParser().Option("author|a").Option("message|m").Flag("pause|p").Parse(rest);
        if (p.Positional.Count is < 1 or > 2) throw new UsageError("usage: berth commit [-a AUTHOR] [-m MESSAGE] CONTAINER [REPOSITORY[:TAG]]");
        var rec = svc.Commit(p.Positional[0], p.Positional.ElementAtOrDefault(1), p.Get("author"), p.Get("message"));
        Console.WriteLine(rec.Id);
        return 0;
    }

    private static int Rename(List<string> rest, ContainerService svc)
    {
        var p = new ArgParser().Parse(rest);
        if (p.Positional.Count != 2) throw new UsageError("usage: berth rename CONTAINER NEW_NAME");
        svc.Rename(p.Positional[0], p.Positional[1]);
        return 0;
    }

    private static int Prune(List<string> rest, ContainerService svc)
    {
        new ArgParser().Flag("force|f").Parse(rest);
        var removed = svc.Prune();
        if (removed.Count > 0) Console.WriteLine("Deleted Containers:");
        foreach (var id in removed) Console.WriteLine(id);
        return 0;
    }
}

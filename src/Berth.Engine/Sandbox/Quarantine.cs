using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Berth.Linux;
using Berth.Linux.Cgroups;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Processes;

namespace Berth.Engine.Sandbox;

/// <summary>
/// --on-violation quarantine: incident response as one step, on the first violation. Freeze the
/// jail (cgroup freezer; SIGSTOP to each process if the freezer cannot), collect the process list
/// (cmdline, status, open fds of every process in the jail's cgroup), snapshot the writable layer
/// (the box) to a tar with a SHA-256 manifest, copy the audit records, SIGKILL everything, roll
/// the box back (the jail's copy is emptied; the caller's --box DIR is verified unchanged against
/// the hashes taken before the run), and write it all to --evidence DIR. Layout: docs/sandbox.md.
/// </summary>
public static class Quarantine
{
    /// <summary>What the run needs back: the figures for the verdict message and the evidence dir.</summary>
    public sealed record Report(int Processes, int Files, bool Frozen, bool CallerBoxUnchanged, string Directory);

    public static Report Run(string id, ICgroupManager cg, int initPid, string jailBox, string? callerBox,
        Dictionary<string, string>? callerBoxBefore, Supervisor supervisor, string evidence)
    {
        var sw = Stopwatch.StartNew();
        var timeline = new List<(string Step, double Ms)>();
        void Mark(string step) => timeline.Add((step, Math.Round(sw.Elapsed.TotalMilliseconds, 3)));
        Directory.CreateDirectory(evidence);
        File.SetUnixFileMode(evidence, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        // 1. Freeze: nothing in the jail runs while we look at it.
        bool frozen = false;
        string freezeHow;
        try { cg.Freeze(); frozen = true; freezeHow = "cgroup freezer"; }
        catch (CgroupException e)
        {
            foreach (var p in cg.Pids()) Proc.Kill(p, Signals.SIGSTOP);
            freezeHow = $"SIGSTOP ({e.Message})";
        }
        Mark("frozen");

        // 2. The process list, from /proc of every process in the jail's cgroup.
        var pids = cg.Pids().Order().ToList();
        using (var fs = new FileStream(Path.Combine(evidence, "processes.json"), FileMode.CreateNew))
        using (var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartArray();
            foreach (var pid in pids) WriteProcess(w, pid);
            w.WriteEndArray();
        }
        Mark("processes collected");

        // 3. The writable layer: a tar and a manifest of SHA-256 hashes (sha256sum -c format, relative to the box).
        var manifest = Snapshot(jailBox, Path.Combine(evidence, "box.tar"));
        File.WriteAllText(Path.Combine(evidence, "box.sha256"),
            string.Concat(manifest.Select(kv => $"{kv.Value}  ./{kv.Key}\n")));
        Mark("box snapshot");

        // 4. The audit records so far.
        File.WriteAllText(Path.Combine(evidence, "audit.jsonl"), string.Concat(supervisor.Records.Select(r => r.ToJson() + "\n")));
        Mark("audit collected");

        // 5. Kill everything; a frozen task dies once thawed.
        Proc.Kill(initPid, Signals.SIGKILL);
        foreach (var p in cg.Pids()) Proc.Kill(p, Signals.SIGKILL);
        if (frozen)
        {
            try { cg.Thaw(); } catch (CgroupException) { }
        }
        else foreach (var p in cg.Pids()) Proc.Kill(p, Signals.SIGCONT);
        var deadline = DateTime.UtcNow.AddSeconds(2);
        while (cg.Pids().Count > 0 && DateTime.UtcNow < deadline) Thread.Sleep(2);
        Mark("killed");

        // 6. Roll back: the jail's writable copy goes; the caller's box must be as it was.
        foreach (var e in new DirectoryInfo(jailBox).EnumerateFileSystemInfos())
        {
            if (e is DirectoryInfo d && d.LinkTarget is null) d.Delete(recursive: true);
            else e.Delete();
        }
        bool unchanged = callerBox is null || callerBoxBefore is null || SameContent(callerBoxBefore, Hashes(callerBox));
        Mark("rolled back");

        var tarHash = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(evidence, "box.tar"))));
        using (var fs = new FileStream(Path.Combine(evidence, "incident.json"), FileMode.CreateNew))
        using (var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("id", id);
            w.WriteString("time", DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture));
            if (supervisor.First is { } first) { w.WritePropertyName("violation"); first.Write(w); }
            w.WriteString("freeze", freezeHow);
            w.WriteNumber("processes", pids.Count);
            w.WriteNumber("files", manifest.Count);
            w.WriteString("box_tar_sha256", tarHash);
            w.WriteBoolean("box_rolled_back", !new DirectoryInfo(jailBox).EnumerateFileSystemInfos().Any());
            if (callerBox is not null) w.WriteBoolean("caller_box_unchanged", unchanged);
            w.WriteStartArray("timeline_ms");
            foreach (var (step, ms) in timeline)
            {
                w.WriteStartObject();
                w.WriteString("step", step);
                w.WriteNumber("ms", ms);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return new Report(pids.Count, manifest.Count, frozen, unchanged, evidence);
    }

    private static void WriteProcess(Utf8JsonWriter w, int pid)
    {
        w.WriteStartObject();
        w.WriteNumber("pid", pid);
        w.WriteString("cmdline", ReadText($"/proc/{pid}/cmdline")?.TrimEnd('\0').Replace('\0', ' ') ?? "");
        w.WriteString("exe", TryReadLink($"/proc/{pid}/exe") ?? "");
        w.WriteString("cwd", TryReadLink($"/proc/{pid}/cwd") ?? "");
        w.WriteString("status", ReadText($"/proc/{pid}/status") ?? "");
        w.WriteStartArray("fds");
        try
        {
            foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd")
                         .Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)).OrderBy(n => int.Parse(n!, CultureInfo.InvariantCulture)))
            {
                w.WriteStartObject();
                w.WriteNumber("fd", int.Parse(fd!, CultureInfo.InvariantCulture));
                w.WriteString("target", TryReadLink($"/proc/{pid}/fd/{fd}") ?? "");
                w.WriteEndObject();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static string? ReadText(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private static string? TryReadLink(string path)
    {
        try { return Fd.ReadLink(path); }
        catch (LinuxException) { return null; }
    }

    /// <summary>Tars the box (regular files, dirs, symlinks; nothing followed, fifos and devices skipped); returns path -> SHA-256 of each regular file.</summary>
    private static SortedDictionary<string, string> Snapshot(string box, string tarPath)
    {
        var manifest = new SortedDictionary<string, string>(StringComparer.Ordinal);
        using var output = new FileStream(tarPath, FileMode.CreateNew);
        using var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: false);
        void Walk(string dir, string rel)
        {
            foreach (var e in new DirectoryInfo(dir).EnumerateFileSystemInfos().OrderBy(x => x.Name, StringComparer.Ordinal))
            {
                var name = rel.Length == 0 ? e.Name : rel + "/" + e.Name;
                if (e.LinkTarget is { } link)
                {
                    tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = link });
                    continue;
                }
                if (e is DirectoryInfo d)
                {
                    tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, name + "/") { Mode = d.UnixFileMode });
                    Walk(d.FullName, name);
                    continue;
                }
                if (e is not FileInfo f || (f.Attributes & FileAttributes.Device) != 0) continue;
                int fd;
                try { fd = Fd.Open(f.FullName, Consts.O_RDONLY | Consts.O_NOFOLLOW | Consts.O_NONBLOCK | Consts.O_CLOEXEC); }
                catch (LinuxException) { continue; }
                using var input = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true), FileAccess.Read);
                if (!input.CanSeek) continue; // a fifo or socket
                manifest[name] = Convert.ToHexStringLower(SHA256.HashData(input));
                input.Position = 0;
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = f.UnixFileMode, DataStream = input });
            }
        }
        Walk(box, "");
        return manifest;
    }

    /// <summary>Path -> SHA-256 (or "dir", "link:TARGET") of everything under <paramref name="root"/>: the caller's box before and after.</summary>
    public static Dictionary<string, string> Hashes(string root)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        void Walk(string dir, string rel)
        {
            foreach (var e in new DirectoryInfo(dir).EnumerateFileSystemInfos())
            {
                var name = rel.Length == 0 ? e.Name : rel + "/" + e.Name;
                if (e.LinkTarget is { } link) result[name] = "link:" + link;
                else if (e is DirectoryInfo d) { result[name] = "dir"; Walk(d.FullName, name); }
                // Regular files only: opening a fifo in the caller's box would block the run forever.
                else if (e is FileInfo f && Berth.Linux.Files.StatX.Of(f.FullName).IsRegular)
                {
                    using var s = f.OpenRead();
                    result[name] = Convert.ToHexStringLower(SHA256.HashData(s));
                }
            }
        }
        Walk(root, "");
        return result;
    }

    private static bool SameContent(Dictionary<string, string> a, Dictionary<string, string> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);
}

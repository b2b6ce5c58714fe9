using System.Text.Json;
using Berth.Engine.Files;
using Berth.Images;
using Berth.Images.Content;
using Berth.Images.Model;
using Berth.Images.Store;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Runtime;
using Berth.Runtime.Spec;
using Berth.Runtime.State;

namespace Berth.Engine.Containers;

/// <summary>`berth cp / diff / export / commit / rename / container prune`.</summary>
public sealed partial class ContainerService
{
    /// <summary>An O_PATH fd of a container's root, and the overlay to unmount afterwards if this call mounted it.</summary>
    private sealed class RootHandle(int fd, string? mountedHere) : IDisposable
    {
        public int Fd { get; } = fd;
        public void Dispose()
        {
            LibC.close(Fd);
            if (mountedHere is not null) Overlay.Unmount(mountedHere);
        }
    }

    /// <summary>The container's live root (/proc/PID/root, volumes and mounts included) while it runs; else its overlay, mounted for the call.</summary>
    private RootHandle OpenRoot(EngineContainer c, bool live)
    {
        if (live && RunningPid(c) is int pid and > 0)
        {
            int fd = Fd.TryOpen($"/proc/{pid}/root", Consts.O_PATH | Consts.O_DIRECTORY | Consts.O_CLOEXEC);
            if (fd >= 0) return new RootHandle(fd, null);
        }
        var merged = store.Merged(c.Id);
        string? mounted = null;
        if (!Overlay.IsMounted(merged))
        {
            if (c.Layers.Count == 0) throw new EngineError($"container {c.Name} has no layer list; cannot mount its filesystem");
            var lowers = c.Layers.AsEnumerable().Reverse().Select(d => images.Layers.PathOf(Digest.Parse(d))).ToList();
            foreach (var l in lowers)
                if (!Directory.Exists(l)) throw new EngineError($"container {c.Name}: image layer {l} is missing from the store");
            Overlay.Mount(lowers, store.Upper(c.Id), store.Work(c.Id), merged);
            mounted = merged;
        }
        try { return new RootHandle(Fd.Open(merged, Consts.O_PATH | Consts.O_DIRECTORY | Consts.O_CLOEXEC), mounted); }
        catch
        {
            if (mounted is not null) Overlay.Unmount(mounted);
            throw;
        }
    }

    private int? RunningPid(EngineContainer c)
    {
        if (!_runtime.Exists(c.Id)) return null;
        try
        {
            var rc = Container.Load(_runtime, c.Id);
            return rc.Status() is "running" or "paused" or "created" ? rc.Record.InitPid : null;
        }
        catch (RuntimeError) { return null; }
    }

    /// <summary>`cp CONTAINER:SRC HOSTDEST`: container paths resolve inside its root (RESOLVE_IN_ROOT); a final symlink is copied as a link.</summary>
    public void CopyOut(string reference, string src, string hostDest, bool archive)
    {
        var c = store.Find(reference);
        using var root = OpenRoot(c, live: true);
        var (srcParent, srcName, contents) = OpenSourceInRoot(root.Fd, src, c.Name);
        try
        {
            var opts = archive ? new FsTree.CopyOptions() : new FsTree.CopyOptions(LibC.geteuid(), LibC.getegid());
            int hostParent = Fd.TryOpen(Path.GetDirectoryName(Path.GetFullPath(hostDest).TrimEnd('/')) is { Length: > 0 } p ? p : "/", Consts.O_PATH | Consts.O_DIRECTORY | Consts.O_CLOEXEC);
            if (hostParent < 0) throw new EngineError($"cp: the directory of {hostDest} does not exist");
            try { CopyInto(srcParent, srcName, contents, hostParent, hostDest, Path.GetFileName(Path.GetFullPath(hostDest).TrimEnd('/')), opts, $"{c.Name}:{src}", hostDest); }
            finally { LibC.close(hostParent); }
        }
        finally { LibC.close(srcParent); }
    }

    /// <summary>`cp HOSTSRC CONTAINER:DEST`: the destination resolves inside the container's root, symlinks and ".." included.</summary>
    public void CopyIn(string hostSrc, string reference, string dest, bool archive)
    {
        var c = store.Find(reference);
        var full = Path.GetFullPath(hostSrc);
        bool contents = hostSrc.EndsWith("/.", StringComparison.Ordinal);
        var trimmed = contents ? Path.GetFullPath(hostSrc[..^2]) : full.TrimEnd('/');
        if (trimmed.Length == 0) trimmed = "/";
        if (!File.Exists(trimmed) && !Directory.Exists(trimmed) && new FileInfo(trimmed).LinkTarget is null)
            throw new EngineError($"cp: {hostSrc}: no such file or directory");
        int srcParent = Fd.Open(trimmed == "/" ? "/" : Path.GetDirectoryName(trimmed)!, Consts.O_PATH | Consts.O_DIRECTORY | Consts.O_CLOEXEC);
        try
        {
            using var root = OpenRoot(c, live: true);
            var opts = archive ? new FsTree.CopyOptions() : new FsTree.CopyOptions(0, 0);
            var destNorm = "/" + dest.Trim('/');
            int dstParent = InRoot.TryOpen(root.Fd, Path.GetDirectoryName(destNorm) ?? "/", Consts.O_PATH | Consts.O_DIRECTORY, 0, false, out int err);
            if (dstParent < 0) throw new EngineError($"cp: {c.Name}:{Path.GetDirectoryName(destNorm)}: {LinuxException.Describe(err)}");
            try
            {
                var name = trimmed == "/" ? "." : Path.GetFileName(trimmed);
                CopyIntoRoot(srcParent, name, contents || trimmed == "/", root.Fd, dstParent, destNorm, dest.EndsWith('/'), opts, hostSrc, $"{c.Name}:{dest}");
            }
            finally { LibC.close(dstParent); }
        }
        finally { LibC.close(srcParent); }
    }

    /// <summary>`cp CONTAINER:SRC -`: the source as a tar stream (docker's form: the entry under its own name).</summary>
    public void CopyOutTar(string reference, string src, Stream output)
    {
        var c = store.Find(reference);
        using var root = OpenRoot(c, live: true);
        var (parent, name, contents) = OpenSourceInRoot(root.Fd, src, c.Name);
        try { TreeTar.WriteOne(output, parent, contents ? "." : name, $"{c.Name}:{src}"); }
        finally { LibC.close(parent); }
    }

    /// <summary>`cp - CONTAINER:DIR`: a tar from stdin unpacked into an existing directory, nothing resolving outside it.</summary>
    public void CopyInTar(Stream tar, string reference, string dest)
    {
        var c = store.Find(reference);
        using var root = OpenRoot(c, live: true);
        int dir = InRoot.TryOpen(root.Fd, dest, Consts.O_PATH | Consts.O_DIRECTORY, 0, false, out int err);
        if (dir < 0) throw new EngineError($"cp: {c.Name}:{dest} must be an existing directory to unpack a tar into ({LinuxException.Describe(err)})");
        try { Berth.Images.Layers.LayerUnpacker.Unpack(tar, $"/proc/self/fd/{dir}", new Berth.Images.Layers.UnpackOptions()); }
        finally { LibC.close(dir); }
    }

    /// <summary>The parent dir of a container source path (resolved in root) and the final name; "/." or "/" means the directory's contents.</summary>
    private static (int Parent, string Name, bool Contents) OpenSourceInRoot(int rootFd, string src, string container)
    {
        bool contents = src.EndsWith("/.", StringComparison.Ordinal) || src.Trim('/').Length == 0;
        var norm = "/" + (contents ? src[..^1] : src).Trim('/');
        var parentPath = contents ? norm : Path.GetDirectoryName(norm) ?? "/";
        int parent = InRoot.TryOpen(rootFd, parentPath, Consts.O_PATH | Consts.O_DIRECTORY, 0, false, out int err);
        if (parent < 0) throw new EngineError($"cp: {container}:{src}: {LinuxException.Describe(err)}");
        var name = contents ? "" : Path.GetFileName(norm);
        if (!contents && !StatX.TryAt(parent, name, out _, out err))
        {
            LibC.close(parent);
            throw new EngineError($"cp: {container}:{src}: {LinuxException.Describe(err)}");
        }
        return (parent, name, contents);
    }

    /// <summary>docker cp's rules for a host destination: into an existing directory, else as the new name.</summary>
    private static void CopyInto(int srcParent, string srcName, bool contents, int hostParent, string hostDest, string destName,
        FsTree.CopyOptions opts, string what, string whatDest)
    {
        if (Directory.Exists(hostDest))
        {
            int d = FsTree.OpenDir(hostDest);
            try { CopyEntries(srcParent, srcName, contents, d, opts, what); }
            finally { LibC.close(d); }
            return;
        }
        if (hostDest.EndsWith('/')) throw new EngineError($"cp: the destination directory {whatDest} does not exist");
        if (contents)
        {
            int d = FsTree.MakeDir(hostParent, destName, whatDest);
            try { CopyEntries(srcParent, "", true, d, opts, what); }
            finally { LibC.close(d); }
        }
        else FsTree.Copy(srcParent, srcName, hostParent, destName, opts, what);
    }

    private static void CopyIntoRoot(int srcParent, string srcName, bool contents, int rootFd, int dstParent, string destNorm, bool destIsDir,
        FsTree.CopyOptions opts, string what, string whatDest)
    {
        int existing = InRoot.TryOpen(rootFd, destNorm, Consts.O_RDONLY | Consts.O_DIRECTORY, 0, false, out _);
        if (existing >= 0)
        {
            try { CopyEntries(srcParent, srcName, contents, existing, opts, what); }
            finally { LibC.close(existing); }
            return;
        }
        if (destIsDir) throw new EngineError($"cp: the destination directory {whatDest} does not exist");
        var destName = Path.GetFileName(destNorm);
        if (destName.Length == 0) throw new EngineError($"cp: {whatDest} is not a valid destination");
        if (contents)
        {
            int d = FsTree.MakeDir(dstParent, destName, whatDest);
            try { CopyEntries(srcParent, "", true, d, opts, what); }
            finally { LibC.close(d); }
        }
        else FsTree.Copy(srcParent, srcName, dstParent, destName, opts, what);
    }

    /// <summary>Into the open directory <paramref name="dstDir"/>: the source itself under its name, or (contents) what it holds.</summary>
    private static void CopyEntries(int srcParent, string srcName, bool contents, int dstDir, FsTree.CopyOptions opts, string what)
    {
        if (!contents)
        {
            FsTree.Copy(srcParent, srcName, dstDir, srcName, opts, what);
            return;
        }
        int s = srcName.Length == 0 ? FsTree.OpenAt(srcParent, ".", Consts.O_RDONLY | Consts.O_DIRECTORY, what)
            : FsTree.OpenAt(srcParent, srcName, Consts.O_RDONLY | Consts.O_DIRECTORY, what);
        try
        {
            foreach (var n in FsTree.Names(s)) FsTree.Copy(s, n, dstDir, n, opts, $"{what}/{n}");
        }
        finally { LibC.close(s); }
    }

    /// <summary>`berth diff`: the upper dir as A/C/D lines against the image's layers.</summary>
    public List<(char Kind, string Path)> Diff(string reference)
    {
        var c = store.Find(reference);
        var entries = UpperEntries(c);
        var lowers = c.Layers.AsEnumerable().Reverse().Select(d => images.Layers.PathOf(Digest.Parse(d))).Where(Directory.Exists)
            .Select(p => Fd.Open(p, Consts.O_PATH | Consts.O_DIRECTORY | Consts.O_CLOEXEC)).ToList();
        try
        {
            bool ExistsBelow(string path)
            {
                foreach (var l in lowers)
                {
                    int fd = InRoot.TryOpen(l, path, Consts.O_PATH | Consts.O_NOFOLLOW, 0, false, out _);
                    if (fd < 0) continue;
                    try { return !StatX.At(fd, "", path).IsWhiteout; }
                    finally { LibC.close(fd); }
                }
                return false;
            }
            IEnumerable<string> NamesBelow(string path)
            {
                var names = new SortedSet<string>(StringComparer.Ordinal);
                foreach (var l in lowers)
                {
                    int fd = InRoot.TryOpen(l, path, Consts.O_RDONLY | Consts.O_DIRECTORY | Consts.O_NOFOLLOW, 0, false, out _);
                    if (fd < 0) continue;
                    try { foreach (var n in FsTree.Names(fd)) if (ExistsBelow(path + "/" + n)) names.Add(n); }
                    finally { LibC.close(fd); }
                }
                return names;
            }
            return Changes.Classify(entries, ExistsBelow, NamesBelow);
        }
        finally { foreach (var l in lowers) LibC.close(l); }
    }

    /// <summary>Mount destinations whose empty file or directory in the upper dir the runtime made, not the user.</summary>
    private HashSet<string> MountStubs(EngineContainer c)
    {
        try { return (SpecLoader.Load(store.Dir(c.Id)).Mounts ?? []).Select(m => "/" + m.Destination.Trim('/')).ToHashSet(StringComparer.Ordinal); }
        catch (SpecException) { return []; }
    }

    private static bool IsStub(TreeTar.Entry e, HashSet<string> stubs) =>
        stubs.Contains("/" + e.RelPath) && (e.Stat.IsRegular && e.Stat.Size == 0 || e.Stat.IsDirectory && IsEmptyDir(e));

    private static bool IsEmptyDir(TreeTar.Entry e)
    {
        int d = FsTree.TryOpenAt(e.ParentFd, e.Name, Consts.O_RDONLY | Consts.O_DIRECTORY, 0, out _);
        if (d < 0) return false;
        try { return FsTree.Names(d).Count == 0; }
        finally { LibC.close(d); }
    }

    private List<UpperEntry> UpperEntries(EngineContainer c)
    {
        var stubs = MountStubs(c);
        var list = new List<UpperEntry>();
        int upper = FsTree.OpenDir(store.Upper(c.Id));
        try
        {
            TreeTar.Walk(upper, "", e => list.Add(new UpperEntry("/" + e.RelPath, e.Stat.IsDirectory, e.Stat.IsWhiteout, e.Opaque, IsStub(e, stubs))));
        }
        finally { LibC.close(upper); }
        return list;
    }

    /// <summary>`berth export`: the container's whole filesystem (its overlay, without the runtime's mounts) as a tar.</summary>
    public void Export(string reference, Stream output)
    {
        var c = store.Find(reference);
        using var root = OpenRoot(c, live: false);
        int dir = InRoot.Open(root.Fd, "/", Consts.O_RDONLY | Consts.O_DIRECTORY);
        try { TreeTar.Write(output, dir, overlayWhiteouts: false); }
        finally { LibC.close(dir); }
    }

    /// <summary>`berth commit`: the upper dir as a new layer on the container's image, with the container's config; returns the image id.</summary>
    public ImageRecord Commit(string reference, string? name, string? author, string? message)
    {
        if (name is not null)
        {
            try { ImageName.Normalize(name); }
            catch (ArgumentException e) { throw new EngineError($"commit: {e.Message}"); }
        }
        var c = store.Find(reference);
        using var storeLock = images.LockShared();
        ImageRecord baseImage;
        try { baseImage = images.Resolve(c.ImageId); }
        catch (Berth.Images.ImageNotFoundException) { throw new EngineError($"commit {c.Name}: its image {c.Image} ({c.ImageId[..Math.Min(19, c.ImageId.Length)]}) is no longer in the store"); }
        var manifest = images.ReadManifest(baseImage);
        var config = images.ReadConfig(manifest);
        var stubs = MountStubs(c);

        var ingest = Path.Combine(images.Root, "ingest");
        Directory.CreateDirectory(ingest);
        var tmp = Path.Combine(ingest, $"commit-{Environment.ProcessId}-{Guid.NewGuid():N}.tar");
        Digest layer;
        long size;
        try
        {
            int upper = FsTree.OpenDir(store.Upper(c.Id));
            try
            {
                using var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
                TreeTar.Write(fs, upper, overlayWhiteouts: true, e => IsStub(e, stubs));
            }
            finally { LibC.close(upper); }
            size = new FileInfo(tmp).Length;
            using (var read = File.OpenRead(tmp)) layer = images.Content.Write(read);
        }
        finally { File.Delete(tmp); }

        var now = DateTimeOffset.UtcNow;
        config.Created = now;
        if (author is not null) config.Author = author;
        config.Rootfs.DiffIds.Add(layer.ToString()); // uncompressed: the diff-id is the blob's digest
        (config.History ??= []).Add(new HistoryEntry { Created = now, CreatedBy = $"berth commit {c.Name}", Author = author, Comment = message });
        ApplyContainerConfig(config, c);
        var configBytes = JsonSerializer.SerializeToUtf8Bytes(config, ImagesJson.Default.ImageConfig);
        var configDigest = images.Content.Write(configBytes);
        var newManifest = new ImageManifest
        {
            MediaType = MediaTypes.Manifest,
            Config = new Descriptor { MediaType = MediaTypes.Config, Digest = configDigest.ToString(), Size = configBytes.Length },
            Layers = [.. manifest.Layers, new Descriptor { MediaType = MediaTypes.Layer, Digest = layer.ToString(), Size = size }],
        };
        var manifestDigest = images.Content.Write(JsonSerializer.SerializeToUtf8Bytes(newManifest, ImagesJson.Default.ImageManifest));
        var rec = images.Register(manifestDigest, name is null ? [] : [name]);
        images.EnsureLayers(rec);
        return rec;
    }

    /// <summary>What the container ran with becomes the image's config (docker commit keeps the container's Cmd, Env, WorkingDir, User).</summary>
    private void ApplyContainerConfig(ImageConfig config, EngineContainer c)
    {
        Berth.Oci.Runtime.Spec spec;
        try { spec = SpecLoader.Load(store.Dir(c.Id)); }
        catch (SpecException) { return; }
        var cfg = config.Config ??= new ContainerConfig();
        var p = spec.Process!;
        var args = p.Args ?? [];
        var entry = cfg.Entrypoint ?? [];
        if (entry.Count > 0 && args.Take(entry.Count).SequenceEqual(entry)) cfg.Cmd = args.Skip(entry.Count).ToList();
        else if (entry.Count > 0) { cfg.Entrypoint = args.Take(1).ToList(); cfg.Cmd = args.Skip(1).ToList(); }
        else cfg.Cmd = args.ToList();
        cfg.Env = (p.Env ?? []).Where(e => !e.StartsWith("HOSTNAME=", StringComparison.Ordinal)).ToList();
        cfg.WorkingDir = p.Cwd;
        if (p.User.Uid != 0 || p.User.Gid != 0 || !string.IsNullOrEmpty(cfg.User)) cfg.User = $"{p.User.Uid}:{p.User.Gid}";
        foreach (var (k, v) in spec.Annotations ?? [])
            if (k.StartsWith(RunExtras.LabelPrefix, StringComparison.Ordinal)) (cfg.Labels ??= [])[k[RunExtras.LabelPrefix.Length..]] = v;
    }

    /// <summary>`berth rename OLD NEW`.</summary>
    public void Rename(string reference, string newName)
    {
        if (newName.Length < 1 || !char.IsAsciiLetterOrDigit(newName[0]) || !newName.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '.' or '-'))
            throw new EngineError($"rename: \"{newName}\" is not a valid container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)");
        var c = store.Find(reference);
        if (c.Name == newName) throw new EngineError($"rename: container {c.Name} already has that name");
        if (store.List().Any(o => o.Name == newName && o.Id != c.Id)) throw new EngineError($"rename: the name \"{newName}\" is already in use");
        c.Name = newName;
        store.Save(c);
    }

    /// <summary>`berth container prune`: removes every stopped container; returns their ids.</summary>
    public List<string> Prune()
    {
        var removed = new List<string>();
        foreach (var (c, status) in List(all: true).ToList())
        {
            if (status is "running" or "paused" or "created" or "creating" or "unknown") continue;
            // No runtime state and no exit code: a run still setting up (or one that crashed): leave young ones alone.
            if (!_runtime.Exists(c.Id) && c.ExitCode is null && DateTime.UtcNow - c.Created < TimeSpan.FromMinutes(1)) continue;
            try
            {
                Remove(c.Id, force: false);
                removed.Add(c.Id);
            }
            catch (EngineError) { } // started meanwhile
        }
        return removed;
    }
}

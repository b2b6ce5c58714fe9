using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Berth.Images;
using Berth.Images.Archives;
using Berth.Images.Content;
using Berth.Images.Store;
using Berth.Engine.Network;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Oci;
using Berth.Runtime;
using Berth.Runtime.Lifecycle;
using Berth.Runtime.State;

namespace Berth.Engine.Containers;

/// <summary>
/// `berth run / ps / rm`: an image's layers as a read-only overlay below a per-container upper
/// dir, an OCI config made from the image config, and berth's runtime run in-process.
/// </summary>
public sealed partial class ContainerService(ImageStore images, EngineStore store)
{
    private readonly StateStore _runtime = new(EngineStore.RuntimeRoot);
    private readonly Volumes.VolumeStore _volumes = new(Path.GetDirectoryName(store.Root)!);

    public int Run(RunOptions o)
    {
        if (o.Name is not null && store.List().Any(c => c.Name == o.Name))
            throw new EngineError($"the container name \"{o.Name}\" is already in use");
        // Network flags are checked before anything exists, so a typo leaves nothing behind.
        var netMode = NetworkMode.Parse(o.Network);
        var ports = o.Publish.Select(PortMapping.Parse).ToList();
        var addHosts = o.AddHost.Select(EtcFiles.ParseAddHost).ToList();
        var dns = o.Dns.Select(EtcFiles.ParseDns).ToList();
        if (ports.Count > 0 && netMode.Kind != NetworkKind.Bridge)
            throw new EngineError($"-p {o.Publish[0]}: publishing ports needs --network bridge, not {netMode}");
        // The shared store lock keeps `image prune` out until the container's record names its layers.
        using var storeLock = images.LockShared();
        Berth.Runtime.Logging.Timing.Mark("engine: resolve image");
        var img = ResolveImage(o.Image);
        RunExtras.CheckPlatform(img, o.Platform);
        images.EnsureLayers(img);
        var manifest = images.ReadManifest(img);
        var config = images.ReadConfig(manifest);
        Berth.Runtime.Logging.Timing.Mark("engine: image read");

        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var dir = store.Dir(id);
        Directory.CreateDirectory(dir);
        var meta = new EngineContainer
        {
            Id = id, Name = o.Name ?? id[..12], Image = o.Image, ImageId = img.Id, Created = DateTime.UtcNow, AutoRemove = o.Remove,
            Layers = [.. config.Rootfs.DiffIds],
        };
        RecordMonitorOptions(meta, o, config);
        var createdVolumes = new List<string>();
        try
        {
            Overlay.Mount(images.LayerDirsTopFirst(config), store.Upper(id), store.Work(id), store.Merged(id));
            Berth.Runtime.Logging.Timing.Mark("engine: overlay mounted");
            var hostname = o.Hostname ?? id[..12];
            var net = ContainerNetwork.Setup(id, dir, netMode, ports, ResolveNetworkTarget);
            var files = ContainerNetwork.WriteEtcFiles(dir, hostname, meta.Name, net, addHosts, dns,
                netMode.Kind == NetworkKind.Container ? ResolveNetworkTarget(netMode.Target!).Dir : null);
            File.WriteAllText(files.Hostname, hostname + "\n");
            var spec = SpecFromImage.Build(config, o, store.Merged(id), hostname, files, n => LookupUser(store.Merged(id), n), net.Netns);
            var mountRequests = RunExtras.WithImageVolumes(config, o.Mounts);
            using var volumeLock = mountRequests.Count > 0 ? _volumes.LockShared() : null;
            RunExtras.Apply(spec, o, RunExtras.ResolveMounts(mountRequests, _volumes, store.Merged(id), createdVolumes));
            Berth.Runtime.Logging.Timing.Mark("engine: spec built");
            meta.Command = string.Join(' ', spec.Process!.Args!);
            File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(spec, OciJson.Indented.Spec));
            store.Save(meta);
            Berth.Runtime.Logging.Timing.Mark("engine: bundle written");
        }
        catch
        {
            Cleanup(id);
            RemoveVolumes(createdVolumes);
            throw;
        }

        storeLock.Dispose();
        if (o.Detach || o.CreateOnly) return CreatedOrDetached(meta, o);
        int code;
        try
        {
            code = Berth.Runtime.Lifecycle.Run.Execute(_runtime, id,
                new CreateOptions { Bundle = dir, InternalConsole = !o.Detach, InitProcess = o.Init, ProtectExe = o.ProtectExe }, o.Detach);
        }
        catch
        {
            Cleanup(id);
            RemoveVolumes(createdVolumes);
            throw;
        }
        if (o.Detach)
        {
            Console.WriteLine(id);
            return 0;
        }
        if (o.Remove)
        {
            var anonymous = AnonymousVolumes(id);
            Cleanup(id);
            RemoveVolumes(anonymous);
            Berth.Runtime.Logging.Timing.Mark("engine: cleaned up");
        }
        else
        {
            meta.ExitCode = code;
            store.Save(meta);
            Overlay.Unmount(store.Merged(id));
            ContainerNetwork.Teardown(store, id); // released at exit, as in docker; start sets it up again
        }
        return code;
    }

    /// <summary>container:NAME for --network: its id, directory and the pid of its init (0 if not running).</summary>
    private (string Id, string Dir, int Pid) ResolveNetworkTarget(string reference)
    {
        EngineContainer t;
        try { t = store.Find(reference); }
        catch (EngineError e) { throw new EngineError($"--network container:{reference}: {e.Message}"); }
        int pid = 0;
        if (_runtime.Exists(t.Id))
        {
            var rc = Container.Load(_runtime, t.Id);
            if (rc.Status() is "running" or "paused" or "created") pid = rc.Record.InitPid;
        }
        return (t.Id, store.Dir(t.Id), pid);
    }

    /// <summary>`berth port`: the container's published ports, docker's way (80/tcp -> 0.0.0.0:8080).</summary>
    public IEnumerable<string> Ports(string reference) =>
        (NetworkRecord.Load(store.Dir(store.Find(reference).Id))?.Ports ?? []).Select(p => p.ToString());

    private ImageRecord ResolveImage(string reference) => DefaultImage.Resolve(images, reference);

    /// <summary>`berth exec`: a process in a running container, through the runtime's exec.</summary>
    public int Exec(string reference, ExecOptions o)
    {
        var c = store.Find(reference);
        if (!_runtime.Exists(c.Id)) throw new EngineError($"container {c.Name} is not running");
        if (o.Detach) return ExecDetached(() => Berth.Runtime.Lifecycle.Exec.Execute(_runtime, c.Id, o));
        return Berth.Runtime.Lifecycle.Exec.Execute(_runtime, c.Id, o);
    }

    /// <summary>`berth stop`: the stop signal, a grace period, then SIGKILL, as docker and podman do.</summary>
    public void Stop(string reference, int signal, TimeSpan grace)
    {
        var c = store.Find(reference);
        MarkStoppedByUser(c);
        if (!_runtime.Exists(c.Id)) { WaitForMonitor(c, grace + TimeSpan.FromSeconds(5)); return; } // already stopped (or between restarts)
        var rc = Container.Load(_runtime, c.Id);
        if (rc.Status() is "stopped") { WaitForMonitor(c, grace + TimeSpan.FromSeconds(5)); return; }
        if (rc.Status() == "paused") Berth.Runtime.Lifecycle.Pause.Resume(_runtime, c.Id);
        Kill.Execute(_runtime, c.Id, signal, all: false);
        var deadline = DateTime.UtcNow + grace;
        while (DateTime.UtcNow < deadline && rc.InitAlive()) Thread.Sleep(20);
        if (rc.InitAlive())
        {
            Kill.Execute(_runtime, c.Id, Berth.Linux.Processes.Signals.SIGKILL, all: true);
            var hard = DateTime.UtcNow.AddSeconds(5);
            while (DateTime.UtcNow < hard && rc.InitAlive()) Thread.Sleep(20);
        }
        WaitForMonitor(c, TimeSpan.FromSeconds(10));
    }

    /// <summary>`berth kill`: one signal to the container's main process.</summary>
    public void Signal(string reference, int signal)
    {
        var c = store.Find(reference);
        if (!_runtime.Exists(c.Id)) throw new EngineError($"container {c.Name} is not running");
        MarkStoppedByUser(c);
        Kill.Execute(_runtime, c.Id, signal, all: false);
    }

    /// <summary>`berth top`: the container's processes, as a ps -ef table read from /proc.</summary>
    public string Top(string reference)
    {
        var c = store.Find(reference);
        if (!_runtime.Exists(c.Id)) throw new EngineError($"container {c.Name} is not running");
        return Ps.Table(Ps.Pids(_runtime, c.Id), full: true);
    }

    /// <summary>`berth stats --no-stream`: one JSON line of cgroup figures per running container.</summary>
    public void Stats(IEnumerable<string> references, TextWriter output)
    {
        foreach (var r in references)
        {
            var c = store.Find(r);
            if (!_runtime.Exists(c.Id)) throw new EngineError($"container {c.Name} is not running");
            Events.Execute(_runtime, c.Id, statsOnce: true, TimeSpan.Zero, output);
        }
    }

    public string InspectJson(IEnumerable<string> references) =>
        Inspect.Json(store, _runtime, references.Select(store.Find).ToList());

    /// <summary>Is <paramref name="imageId"/> used by a container (for rmi)?</summary>
    public bool ImageInUse(string imageId) => store.List().Any(c => c.ImageId == imageId);

    /// <summary>Layers containers still mount (for prune).</summary>
    public IEnumerable<Digest> LayersInUse() =>
        store.List().SelectMany(c => c.Layers).Where(l => l.Length > 0).Select(Digest.Parse).Distinct();

    public IEnumerable<(EngineContainer Container, string Status)> List(bool all)
    {
        foreach (var c in store.List())
        {
            string status;
            if (_runtime.Exists(c.Id))
            {
                try { status = Container.Load(_runtime, c.Id).Status(); }
                catch (RuntimeError) { status = "unknown"; }
            }
            else if (c.Restarting && MonitorAlive(c)) status = "restarting";
            else status = c.ExitCode is { } code ? $"exited ({code})" : c.StartedAt is null && c.MonitorPid == 0 && c.ExitCode is null ? "created" : "exited";
            if (all || status is "running" or "paused" or "restarting" || (status == "created" && _runtime.Exists(c.Id))) yield return (c, status);
        }
    }

    public void Remove(string reference, bool force)
    {
        var c = store.Find(reference);
        if (MonitorAlive(c))
        {
            if (!force) throw new EngineError($"container {c.Name} is running: stop it first or use --force");
            StopMonitored(c);
        }
        if (_runtime.Exists(c.Id))
        {
            var status = Container.Load(_runtime, c.Id).Status();
            if (status is "running" or "paused" && !force)
                throw new EngineError($"container {c.Name} is {status}: stop it first or use --force");
            Delete.Execute(_runtime, c.Id, force: true);
        }
        Cleanup(c.Id);
    }

    /// <summary>Unmounts the rootfs and removes the container's directory; never deletes through a live mount.</summary>
    private void Cleanup(string id)
    {
        using var network = ContainerNetwork.BeginTeardown(store, id);
        var merged = store.Merged(id);
        Overlay.Unmount(merged);
        if (Overlay.IsMounted(merged)) throw new EngineError($"{merged} is still mounted; not removing the container's files");
        try { Directory.Delete(store.Dir(id), recursive: true); }
        catch (DirectoryNotFoundException) { }
    }

    /// <summary>user or "group:NAME" from the image's /etc/passwd and /etc/group, read without leaving the rootfs.</summary>
    private static (uint Uid, uint Gid)? LookupUser(string rootfs, string name)
    {
        bool group = name.StartsWith("group:", StringComparison.Ordinal);
        var key = group ? name[6..] : name;
        var text = ReadInRoot(rootfs, group ? "/etc/group" : "/etc/passwd");
        foreach (var line in text.Split('\n'))
        {
            var f = line.Split(':');
            if (group && f.Length >= 3 && (f[0] == key || f[2] == key) && uint.TryParse(f[2], out var g)) return (0, g);
            if (!group && f.Length >= 4 && (f[0] == key || f[2] == key) && uint.TryParse(f[2], out var u) && uint.TryParse(f[3], out var pg))
                return (u, pg);
        }
        return null;
    }

    private static string ReadInRoot(string rootfs, string path)
    {
        int root = Fd.TryOpen(rootfs, Consts.O_PATH | Consts.O_DIRECTORY);
        if (root < 0) return "";
        try
        {
            int fd = InRoot.TryOpen(root, path, Consts.O_RDONLY, 0, false, out _);
            if (fd < 0) return "";
            using var fs = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true), FileAccess.Read);
            using var r = new StreamReader(fs, Encoding.UTF8);
            return r.ReadToEnd();
        }
        finally { LibC.close(root); }
    }
}

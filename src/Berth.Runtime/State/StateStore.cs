using System.Text.Json;
using Berth.Linux.Files;
using Berth.Linux.Interop;

namespace Berth.Runtime.State;

/// <summary>
/// The runtime's state root (--root, default /run/berth): one directory per container holding
/// state.json (written atomically, with the config.json text the container was created from),
/// init.pid once init exists, and exec.fifo while a `create`d container waits for `start` (`run`
/// starts its init through a pipe instead); operations on it are serialised by a flock on the directory.
/// Every file is a new inode on the state's filesystem, and on a journal-less ext4 (these machines'
/// /run) each one costs ~0.3 ms of scanning past recently deleted inodes during a burst of
/// containers, so the directory holds as few as it can (docs/adr/0003).
/// </summary>
public sealed class StateStore(string root)
{
    public string Root { get; } = root;

    /// <summary>^[A-Za-z0-9][A-Za-z0-9_.+-]*$, by hand: the regex's first use costs ~0.05 ms of every command.</summary>
    private static bool IdPattern(string id)
    {
        if (id.Length == 0 || !char.IsAsciiLetterOrDigit(id[0])) return false;
        foreach (char c in id)
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('_' or '.' or '+' or '-')) return false;
        return true;
    }

    public static void ValidateId(string id)
    {
        if (string.IsNullOrEmpty(id)) throw new RuntimeError("container id cannot be empty");
        if (id.Length > 1024 || !IdPattern(id) || id is "." or "..")
            throw new RuntimeError($"invalid container id \"{id}\": use letters, digits, '_', '.', '+' and '-'");
    }

    public string Dir(string id) => Path.Combine(Root, id);
    public string FifoPath(string id) => Path.Combine(Dir(id), "exec.fifo");
    /// <summary>Where berth before ADR 0003's second amendment kept the config (read for such containers only).</summary>
    private string LegacyConfigPath(string id) => Path.Combine(Dir(id), "config.json");
    private string StatePath(string id) => Path.Combine(Dir(id), "state.json");
    private string InitPath(string id) => Path.Combine(Dir(id), "init.pid");

    /// <summary>Creates the container's directory; fails if the id is taken.</summary>
    public void CreateDir(string id)
    {
        ValidateId(id);
        Directory.CreateDirectory(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var dir = Dir(id);
        if (Directory.Exists(dir)) throw new RuntimeError($"container with id \"{id}\" already exists");
        try
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        }
        catch (IOException e) { throw new RuntimeError($"create state directory {dir}: {e.Message}"); }
    }

    public bool Exists(string id) => File.Exists(StatePath(id)) || Directory.Exists(Dir(id));

    public ContainerRecord Load(string id)
    {
        ValidateId(id);
        var path = StatePath(id);
        string text;
        try { text = File.ReadAllText(path); }
        catch (DirectoryNotFoundException) { throw new RuntimeError("container does not exist"); }
        catch (FileNotFoundException)
        {
            if (Directory.Exists(Dir(id))) return new ContainerRecord { Id = id, Status = "creating" };
            throw new RuntimeError("container does not exist");
        }
        ContainerRecord r;
        try { r = RecordJson.Parse(text); }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException) { throw new RuntimeError($"state of container \"{id}\" is corrupt ({path}): {e.Message}"); }
        if (r.InitPid == 0 && ReadInit(id) is var (pid, start))
        {
            r.InitPid = pid;
            r.InitStartTime = start;
            if (r.Status == "creating") r.Status = "created";
        }
        return r;
    }

    public void Save(ContainerRecord record) =>
        AtomicFile.Write(StatePath(record.Id), RecordJson.Serialize(record));

    /// <summary>The config.json text the container was created from: in its state, or the file an older berth wrote.</summary>
    public string Config(ContainerRecord record)
    {
        if (record.Config is not null) return record.Config;
        var path = LegacyConfigPath(record.Id);
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RuntimeError($"container \"{record.Id}\": its saved config is missing ({StatePath(record.Id)} has none, {path}: {e.Message})");
        }
    }

    /// <summary>Replaces the saved config (update): state.json is rewritten atomically with it.</summary>
    public void SaveConfig(ContainerRecord record, string config)
    {
        record.Config = config;
        Save(record);
        File.Delete(LegacyConfigPath(record.Id));
    }

    /// <summary>
    /// Records init's pid and start time once it exists, in init.pid beside state.json (which create
    /// wrote before the cgroup, with no pid yet). A new file, not a second state.json: on ext4 a
    /// rename over an existing file forces the new one's blocks to be allocated (auto_da_alloc), and
    /// deleting allocated blocks later costs again, together ~0.17 ms of every run measured here.
    /// The status is the kernel's (<see cref="Container.Status"/>), so start writes nothing.
    /// </summary>
    public void SaveInit(ContainerRecord record) =>
        AtomicFile.Write(InitPath(record.Id), System.Text.Encoding.ASCII.GetBytes(
            $"{record.InitPid.ToString(System.Globalization.CultureInfo.InvariantCulture)} {record.InitStartTime.ToString(System.Globalization.CultureInfo.InvariantCulture)}\n"));

    private (int Pid, ulong Start)? ReadInit(string id)
    {
        string text;
        try { text = File.ReadAllText(InitPath(id)); }
        catch (IOException) { return null; }
        var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return parts.Length == 2 && int.TryParse(parts[0], System.Globalization.CultureInfo.InvariantCulture, out int pid) && pid > 0 &&
               ulong.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out ulong start)
            ? (pid, start)
            : throw new RuntimeError($"state of container \"{id}\" is corrupt ({InitPath(id)}): \"{text.Trim()}\"");
    }

    /// <summary>
    /// The user who created the container: the owner of its state directory, by name when
    /// /etc/passwd has it (as runc's state and list find it, rather than create looking it up).
    /// </summary>
    public string OwnerOf(string id)
    {
        if (!Berth.Linux.Files.StatX.TryAt(Consts.AT_FDCWD, Dir(id), out var st, out _)) return "";
        var uid = st.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            foreach (var line in File.ReadLines("/etc/passwd"))
            {
                var f = line.Split(':');
                if (f.Length > 2 && f[2] == uid) return f[0];
            }
        }
        catch (IOException) { }
        return uid;
    }

    public IEnumerable<string> Ids()
    {
        if (!Directory.Exists(Root)) return [];
        return Directory.GetDirectories(Root).Select(Path.GetFileName).Where(n => n is not null && !n.StartsWith('.'))!
            .Order(StringComparer.Ordinal)!;
    }

    /// <summary>The files a container's state dir holds (the common case is removed without listing it).</summary>
    private static readonly string[] KnownFiles = ["state.json", "init.pid", "config.json", "exec.fifo"];

    public unsafe void Remove(string id)
    {
        var dir = Dir(id);
        foreach (var name in KnownFiles)
            fixed (byte* p = Berth.Linux.CString.Of(dir + "/" + name)) LibC.unlinkat(Consts.AT_FDCWD, p, 0);
        fixed (byte* p = Berth.Linux.CString.Of(dir))
            if (LibC.unlinkat(Consts.AT_FDCWD, p, Consts.AT_REMOVEDIR) == 0 ||
                System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Consts.ENOENT) return;
        try { Directory.Delete(dir, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }

    /// <summary>
    /// Takes an exclusive flock on the container's directory; dispose to release. (The directory, not
    /// a lock file in it: on this ext4 /run every file made and unlinked costs journal work, ~0.1 ms.)
    /// </summary>
    public Lock LockContainer(string id) => new(Dir(id));

    public sealed class Lock : IDisposable
    {
        private int _fd;

        public Lock(string path)
        {
            _fd = Fd.TryOpen(path, Consts.O_RDONLY | Consts.O_DIRECTORY);
            if (_fd < 0) throw new RuntimeError("container does not exist");
            if (LibC.flock(_fd, Consts.LOCK_EX) != 0) throw Berth.Linux.LinuxException.Last("flock", path);
        }

        public void Dispose()
        {
            if (_fd >= 0) LibC.close(_fd);
            _fd = -1;
        }
    }
}

using System.Text.Json;
using System.Text.RegularExpressions;
using Berth.Linux.Files;
using Berth.Linux.Interop;

namespace Berth.Runtime.State;

/// <summary>
/// The runtime's state root (--root, default /run/berth): one directory per container holding
/// state.json (written atomically), init.pid once init exists, config.json (the spec it was created
/// from), exec.fifo while it waits for `start`; operations on it are serialised by a flock on the directory.
/// </summary>
public sealed partial class StateStore(string root)
{
    public string Root { get; } = root;

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")]
    private static partial Regex IdPattern();

    public static void ValidateId(string id)
    {
        if (string.IsNullOrEmpty(id)) throw new RuntimeError("container id cannot be empty");
        if (id.Length > 1024 || !IdPattern().IsMatch(id) || id is "." or "..")
            throw new RuntimeError($"invalid container id \"{id}\": use letters, digits, '_', '.', '+' and '-'");
    }

    public string Dir(string id) => Path.Combine(Root, id);
    public string FifoPath(string id) => Path.Combine(Dir(id), "exec.fifo");
    public string ConfigPath(string id) => Path.Combine(Dir(id), "config.json");
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

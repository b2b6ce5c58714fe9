using System.Text;

namespace Berth.Integration.Tests.Infrastructure;

/// <summary>
/// Finds what a container left behind: its state dir, cgroup dirs named after it, mounts of its
/// bundle, and processes that belong to it (its bundle in cmdline or cwd, or the unique marker
/// variable every test container carries in its environment).
/// </summary>
public static class LeakCheck
{
    public const int CgroupSearchDepth = 5;

    public sealed record Leak(string Kind, string What, int? Pid = null)
    {
        public override string ToString() => $"{Kind}: {What}";
    }

    public static List<Leak> Find(string id, string stateRoot, string bundleDir, string envMarker)
    {
        var leaks = new List<Leak>();

        string stateDir = Path.Combine(stateRoot, id);
        if (Directory.Exists(stateDir) || File.Exists(stateDir))
            leaks.Add(new Leak("state dir", stateDir + " [" + string.Join(", ", SafeList(stateDir)) + "]"));

        foreach (var dir in CgroupDirs(id)) leaks.Add(new Leak("cgroup", dir));

        foreach (var m in Kernel.ParseMountInfo(File.ReadAllText("/proc/self/mountinfo")))
        {
            if (m.MountPoint.StartsWith(bundleDir, StringComparison.Ordinal) || m.Root.Contains(bundleDir, StringComparison.Ordinal))
                leaks.Add(new Leak("mount", m.Line));
        }

        foreach (var (pid, why) in Processes(bundleDir, envMarker, id))
            leaks.Add(new Leak("process", $"pid {pid}: {why}", pid));

        return leaks;
    }

    private static IEnumerable<string> SafeList(string dir)
    {
        try { return Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).ToList()!; }
        catch (IOException) { return []; }
    }

    /// <summary>Every directory below /sys/fs/cgroup (to a bounded depth) whose name contains the id.</summary>
    public static List<string> CgroupDirs(string id)
    {
        var found = new List<string>();
        void Walk(string dir, int depth)
        {
            if (depth > CgroupSearchDepth) return;
            IEnumerable<string> subdirs;
            try { subdirs = Directory.EnumerateDirectories(dir).ToList(); }
            catch (IOException) { return; }
            catch (UnauthorizedAccessException) { return; }
            foreach (var sub in subdirs)
            {
                if (new DirectoryInfo(sub).LinkTarget is not null) continue; // cpu,cpuacct style links
                if (Path.GetFileName(sub).Contains(id, StringComparison.Ordinal)) found.Add(sub);
                Walk(sub, depth + 1);
            }
        }
        Walk("/sys/fs/cgroup", 1);
        return found;
    }

    public static List<(int Pid, string Why)> Processes(string bundleDir, string envMarker, string id)
    {
        var result = new List<(int, string)>();
        int self = Environment.ProcessId;
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), out int pid) || pid == self) continue;
            if (!Kernel.ProcessAlive(pid)) continue;
            try
            {
                string cmdline = Encoding.UTF8.GetString(File.ReadAllBytes($"{entry}/cmdline")).Replace('\0', ' ').Trim();
                if (cmdline.Contains(bundleDir, StringComparison.Ordinal))
                {
                    result.Add((pid, "cmdline " + cmdline));
                    continue;
                }
                // The runtime itself while it runs has the id in argv; after it exits nothing should.
                if (cmdline.Split(' ').Contains(id))
                {
                    result.Add((pid, "cmdline " + cmdline));
                    continue;
                }
                string? cwd = null;
                try { cwd = new DirectoryInfo($"{entry}/cwd").LinkTarget; } catch (IOException) { }
                if (cwd is not null && cwd.Contains(bundleDir, StringComparison.Ordinal))
                {
                    result.Add((pid, "cwd " + cwd + " (" + cmdline + ")"));
                    continue;
                }
                byte[] environ = File.ReadAllBytes($"{entry}/environ");
                if (Encoding.UTF8.GetString(environ).Split('\0').Contains(envMarker))
                    result.Add((pid, "environment carries " + envMarker + " (" + cmdline + ")"));
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return result;
    }
}

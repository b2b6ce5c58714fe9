using System.Text.Json;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Processes;
using Berth.Oci;
using Berth.Runtime.Init;
using Berth.Runtime.Spec;
using Berth.Runtime.State;

namespace Berth.Runtime.Lifecycle;

public sealed class ExecOptions
{
    public string? ProcessFile { get; init; }
    public bool Detach { get; init; }
    public string? PidFile { get; init; }
    public bool Tty { get; init; }
    public string? ConsoleSocket { get; init; }
    public string? Cwd { get; init; }
    public List<string> Env { get; init; } = [];
    public string? User { get; init; }
    public List<string> AdditionalGids { get; init; } = [];
    public List<string> Caps { get; init; } = [];
    public bool NoNewPrivs { get; init; }
    public int PreserveFds { get; init; }
    public List<string> Args { get; init; } = [];
    /// <summary>The engine's `exec -t`: with no --console-socket, the runtime takes the pty master itself and proxies it.</summary>
    public bool InternalConsole { get; init; }
}

/// <summary>
/// `exec`: a new process in a running container's namespaces and cgroup, with the container's
/// seccomp filter. The process comes from --process FILE (what podman and containerd send) or
/// from the container's own process with the runc flags applied.
/// </summary>
public static class Exec
{
    public static int Execute(StateStore store, string id, ExecOptions o)
    {
        var c = Container.Load(store, id);
        switch (c.Status())
        {
            case "running" or "created": break;
            case "paused": throw new RuntimeError("cannot exec in a paused container");
            case "stopped": throw new RuntimeError("cannot exec in a stopped container");
            case var s: throw new RuntimeError($"cannot exec in a container that is {s}");
        }
        // Until create has finished, init may still be the runtime itself (docs/adr/0013).
        if (c.Record.Status == "creating") throw new RuntimeError("cannot exec in a container that is still being created");
        Oci.Runtime.Spec spec;
        try { spec = SpecLoader.Parse(store.Config(c.Record), $"the saved config of container {id}"); }
        catch (SpecException e) { throw new RuntimeError($"read the container's config: {e.Message}"); }

        var process = o.ProcessFile is not null ? ReadProcess(o.ProcessFile) : FromFlags(spec, o);
        if (o.Tty) process.Terminal = true;
        if (process.Args is not { Count: > 0 }) throw new RuntimeError("exec: no command given (args are empty)");
        if (process.Terminal && o.ConsoleSocket is null && !o.InternalConsole)
            throw new RuntimeError("exec --tty needs --console-socket (or run without a terminal)");

        InitPlan plan;
        try
        {
            plan = PlanBuilder.BuildExec(spec, id, c.Record.Bundle, c.Record.Rootfs, c.Record.InitPid, process,
                new PlanBuilder.Options
                {
                    PreserveFds = o.PreserveFds,
                    CgroupPath = c.Record.CgroupPath,
                    LastCap = Berth.Linux.Security.Capabilities.LastCap(),
                });
        }
        catch (SpecException e) { throw new RuntimeError(e.Message.Replace("process.", "exec process.")); }

        int receive = -1;
        if (o.ConsoleSocket is not null)
            plan.ConsoleSocketFd = Berth.Linux.Sockets.UnixSocket.Connect(o.ConsoleSocket, "console socket");
        else if (process.Terminal)
            (receive, plan.ConsoleSocketFd) = Fd.SocketPair();
        int pid;
        try
        {
            pid = Launcher.Launch(plan, CgroupSetup.Open(c.Record.CgroupPath), new ExecHost(spec, c));
        }
        catch (Exception e) when (e is LinuxException or IOException or Berth.Linux.Cgroups.CgroupException)
        {
            Fd.Close(receive);
            throw new RuntimeError(e.Message);
        }
        finally { Fd.Close(plan.ConsoleSocketFd); }
        int master = -1;
        if (receive >= 0)
        {
            try { master = Berth.Linux.Sockets.UnixSocket.ReceiveFd(receive, "the exec process's pty"); }
            finally { Fd.Close(receive); }
        }
        if (o.PidFile is not null)
            AtomicFile.Write(Path.GetFullPath(o.PidFile), System.Text.Encoding.ASCII.GetBytes(pid.ToString()));
        if (o.Detach)
        {
            Fd.Close(master);
            return 0;
        }
        return (master >= 0 ? TerminalProxy.Run(pid, master) : Foreground.Wait(pid)).ShellCode;
    }

    /// <summary>exec runs no hooks; a seccomp listener gets the exec'd process's notify fd.</summary>
    private sealed class ExecHost(Oci.Runtime.Spec spec, Container c) : Launcher.IHost
    {
        public (string Creating, string Created) OnInitPid(int pid) => ("", "");
        public void RunRuntimeHooks() { }
        public void SendSeccompFd(int pid, int notifyFd) => Create.SendToListener(spec, c, pid, notifyFd, c.Status());
    }

    private static Oci.Runtime.Process ReadProcess(string path)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), OciJson.Default.Process)
                ?? throw new RuntimeError($"--process {path}: the document is null");
        }
        catch (JsonException e) { throw new RuntimeError($"--process {path}: invalid JSON: {e.Message}"); }
        catch (IOException e) { throw new RuntimeError($"--process {path}: {e.Message}"); }
    }

    /// <summary>runc's rule: the container's process is the template, the flags override it.</summary>
    private static Oci.Runtime.Process FromFlags(Oci.Runtime.Spec spec, ExecOptions o)
    {
        var t = spec.Process ?? new Oci.Runtime.Process();
        var p = new Oci.Runtime.Process
        {
            Args = [.. o.Args],
            Env = [.. t.Env ?? []],
            Cwd = o.Cwd ?? t.Cwd,
            User = new Oci.Runtime.User { Uid = t.User.Uid, Gid = t.User.Gid, Umask = t.User.Umask, AdditionalGids = t.User.AdditionalGids },
            Capabilities = t.Capabilities is null ? null : new Oci.Runtime.Capabilities
            {
                Bounding = [.. t.Capabilities.Bounding ?? []],
                Effective = [.. t.Capabilities.Effective ?? []],
                Permitted = [.. t.Capabilities.Permitted ?? []],
                Inheritable = [.. t.Capabilities.Inheritable ?? []],
                Ambient = [.. t.Capabilities.Ambient ?? []],
            },
            Rlimits = t.Rlimits,
            NoNewPrivileges = t.NoNewPrivileges || o.NoNewPrivs,
            ApparmorProfile = t.ApparmorProfile,
        };
        foreach (var kv in o.Env)
        {
            var key = kv.Split('=', 2)[0] + "=";
            p.Env.RemoveAll(e => e.StartsWith(key, StringComparison.Ordinal));
            p.Env.Add(kv.Contains('=') ? kv : kv + "=" + Environment.GetEnvironmentVariable(kv));
        }
        if (o.User is not null)
        {
            var parts = o.User.Split(':');
            if (!uint.TryParse(parts[0], out var uid) || parts.Length > 2 || (parts.Length == 2 && !uint.TryParse(parts[1], out _)))
                throw new RuntimeError($"--user \"{o.User}\": expected UID[:GID] (numbers)");
            p.User.Uid = uid;
            if (parts.Length == 2) p.User.Gid = uint.Parse(parts[1]);
        }
        if (o.AdditionalGids.Count > 0)
            p.User.AdditionalGids = [.. o.AdditionalGids.Select(g => uint.TryParse(g, out var v) ? v
                : throw new RuntimeError($"--additional-gids \"{g}\": not a number"))];
        if (o.Caps.Count > 0)
        {
            p.Capabilities ??= new Oci.Runtime.Capabilities { Bounding = [], Effective = [], Permitted = [] };
            foreach (var cap in o.Caps)
            {
                var name = cap.StartsWith("CAP_", StringComparison.Ordinal) ? cap : "CAP_" + cap.ToUpperInvariant();
                foreach (var set in new[] { p.Capabilities.Bounding ??= [], p.Capabilities.Effective ??= [], p.Capabilities.Permitted ??= [] })
                    if (!set.Contains(name)) set.Add(name);
            }
        }
        return p;
    }
}

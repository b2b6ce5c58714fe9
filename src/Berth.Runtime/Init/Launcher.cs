using System.Text;
using Berth.Linux;
using Berth.Linux.Cgroups;
using Berth.Linux.Files;
using Berth.Linux.Processes;
using Berth.Oci.Runtime;

namespace Berth.Runtime.Init;

/// <summary>
/// The parent side of container creation: forks the intermediate stage, places it in the
/// cgroup, writes uid/gid maps, runs the runtime-namespace hooks when init asks, and returns
/// once init reports "ready" (blocked on the exec fifo).
/// </summary>
public static class Launcher
{
    /// <summary>Callbacks into the lifecycle code, so this stays about processes.</summary>
    public interface IHost
    {
        /// <summary>Init exists with this pid; record it. Returns the state JSON for hooks (status creating, created).</summary>
        (string Creating, string Created) OnInitPid(int pid);
        /// <summary>Runs prestart and createRuntime hooks.</summary>
        void RunRuntimeHooks();
        /// <summary>Hands init's seccomp notify fd to linux.seccomp.listenerPath with the process state.</summary>
        void SendSeccompFd(int pid, int notifyFd);
    }

    /// <summary>Starts the container's init and waits until it is ready. Returns its host pid.</summary>
    public static int Launch(InitPlan plan, ICgroupManager? cgroup, IHost host)
    {
        // Init becomes our grandchild; as subreaper we can still reap it if setup fails (and `run` waits on it).
        Proc.Prctl(Berth.Linux.Interop.Consts.PR_SET_CHILD_SUBREAPER, 1, what: "prctl(PR_SET_CHILD_SUBREAPER)");
        var (parentEnd, childEnd) = Fd.SocketPair();
        // The fork below must find every other thread parked in native code (docs/adr/0002).
        GC.WaitForPendingFinalizers();
        int child = Proc.Fork();
        if (child == 0)
        {
            Fd.Close(parentEnd);
            Intermediate.Run(plan, new SyncChannel(childEnd));
            Proc.Exit(1);
        }
        Fd.Close(childEnd);
        var sync = new SyncChannel(parentEnd);
        int initPid = 0;
        bool intermediateReaped = false;
        // The intermediate's "pid" and init's own messages share this socket from two processes:
        // a quick exec's "ready" (or an init's "hooks") can come first. Handle them once the pid is known.
        bool readyEarly = false, hooksEarly = false;
        bool viaStub = plan.ExecStubFd >= 0, stubReady = false;
        try
        {
            cgroup?.AddProcess(child);
            Logging.Timing.Mark("joined cgroup");
            sync.Send("go");
            while (true)
            {
                var msg = sync.Receive();
                // With the exec stub, init's exec closes its end: EOF after "ready" is success.
                if (msg is null && stubReady && initPid != 0) return initPid;
                if (msg is null) throw new RuntimeError(
                    initPid == 0 ? "container init exited before it started (see errors above)" : "container init exited during setup");
                switch (msg[0])
                {
                    case "userns":
                        WriteIdMaps(child, plan);
                        sync.Send("mapped");
                        break;
                    case "pid":
                        initPid = int.Parse(msg[1]);
                        Proc.Wait(child);
                        intermediateReaped = true;
                        if (hooksEarly) RunHooks(host, initPid, sync);
                        if (readyEarly && !viaStub) return initPid;
                        break;
                    case "hooks":
                        if (initPid == 0) hooksEarly = true;
                        else RunHooks(host, initPid, sync);
                        break;
                    case "seccompfd":
                        int notifyFd = sync.TakeFd();
                        if (notifyFd < 0) throw new RuntimeError("linux.seccomp: container init sent no notify fd");
                        try { host.SendSeccompFd(initPid, notifyFd); }
                        finally { Fd.Close(notifyFd); }
                        break;
                    case "ready" when viaStub:
                        stubReady = true;
                        break;
                    case "ready":
                        if (initPid == 0) readyEarly = true;
                        else return initPid;
                        break;
                    case "error":
                        throw new RuntimeError(msg.Length > 2 ? $"{msg[1]}: {msg[2]}" : string.Join(' ', msg.Skip(1)));
                    default:
                        throw new RuntimeError($"container init sent an unknown message \"{msg[0]}\"");
                }
            }
        }
        catch
        {
            if (initPid > 0)
            {
                Proc.Kill(initPid, Signals.SIGKILL);
                Proc.Wait(initPid);
            }
            if (!intermediateReaped)
            {
                Proc.Kill(child, Signals.SIGKILL);
                Proc.Wait(child);
            }
            throw;
        }
        finally { sync.Close(); }
    }

    private static void RunHooks(IHost host, int initPid, SyncChannel sync)
    {
        var (creating, created) = host.OnInitPid(initPid);
        host.RunRuntimeHooks();
        sync.Send("hooksdone", creating, created);
    }

    private static void WriteIdMaps(int pid, InitPlan plan)
    {
        static string Lines(List<IdMapping> maps) =>
            string.Concat(maps.Select(m => $"{m.ContainerID} {m.HostID} {m.Size}\n"));
        try
        {
            Fd.WriteFile($"/proc/{pid}/uid_map", Lines(plan.UidMappings));
        }
        catch (LinuxException e) { throw new RuntimeError($"linux.uidMappings: write uid_map: {LinuxException.Describe(e.Errno)}"); }
        try
        {
            Fd.WriteFile($"/proc/{pid}/gid_map", Lines(plan.GidMappings));
        }
        catch (LinuxException e) { throw new RuntimeError($"linux.gidMappings: write gid_map: {LinuxException.Describe(e.Errno)}"); }
    }
}

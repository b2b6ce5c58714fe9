using System.Text.Json;
using Berth.Linux;
using Berth.Linux.Cgroups;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Processes;
using Berth.Oci;
using Berth.Runtime.Hooks;
using Berth.Runtime.Init;
using Berth.Runtime.Spec;
using Berth.Runtime.State;

namespace Berth.Runtime.Lifecycle;

public sealed class CreateOptions
{
    public string? Bundle { get; init; }
    public string? PidFile { get; init; }
    public string? ConsoleSocket { get; init; }
    public bool NoPivot { get; init; }
    public bool NoNewKeyring { get; init; }
    public int PreserveFds { get; init; }
    /// <summary>A foreground `run`: with process.terminal and no --console-socket, the runtime takes the pty itself.</summary>
    public bool InternalConsole { get; init; }
    /// <summary>Set by create when <see cref="InternalConsole"/> applies: our end of the console socketpair.</summary>
    public int ConsoleReceiveFd { get; set; } = -1;
    /// <summary>See <see cref="InitPlan.ReaperStatusFd"/>: the write end of a pipe the caller reads after init exits.</summary>
    public int ReaperStatusFd { get; init; } = -1;
    /// <summary>`--init` (engine): a minimal init as PID 1 that forwards signals and reaps zombies.</summary>
    public bool InitProcess { get; init; }
    /// <summary>
    /// CVE-2019-5736 for a runtime binary that may be writable: re-executes the runtime from a protected
    /// copy (returns only if it already is one). Create calls it before any side effect, unless the
    /// container can use the sealed exec stub instead (docs/adr/0013). Null: the caller already did it.
    /// </summary>
    public Action? ProtectExe { get; init; }
    /// <summary>Fork the cgroup migration warm-up (<see cref="MigrationWarmup.Kick"/>) when the .NET init is used.</summary>
    public bool WarmUpMigration { get; init; }
    /// <summary>
    /// `run`: this process starts the container itself, so init waits on a pipe it holds
    /// (<see cref="Container.StartFd"/>) and no exec fifo is made in the state dir.
    /// </summary>
    public bool StartInProcess { get; set; }
}

/// <summary>`create`: validate, plan, then set up the container and leave its init blocked on the exec fifo.</summary>
public static class Create
{
    public static Container Execute(StateStore store, string id, CreateOptions o)
    {
        Logging.Timing.Mark("create");
        StateStore.ValidateId(id);
        if (store.Exists(id)) throw new RuntimeError($"container with id \"{id}\" already exists");
        var bundle = Path.GetFullPath(o.Bundle is { Length: > 0 } ? o.Bundle : Directory.GetCurrentDirectory());
        if (!Directory.Exists(bundle)) throw new RuntimeError($"bundle {bundle} does not exist");

        Oci.Runtime.Spec spec;
        byte[] configBytes;
        InitPlan plan;
        CgroupResources resources;
        string cgPath;
        try
        {
            spec = SpecLoader.Load(bundle, out configBytes);
            Logging.Timing.Mark("loaded");
            foreach (var warning in SpecValidator.Validate(spec, bundle)) Logging.Log.Warn(warning);
            Logging.Timing.Mark("validated");
            var rootfs = SpecValidator.RootfsPath(spec, bundle);
            if (!Directory.Exists(rootfs)) throw new SpecException($"root.path: rootfs {rootfs} does not exist");
            cgPath = CgroupSetup.ResolvePath(spec.Linux?.CgroupsPath, id);
            resources = CgroupSetup.Resources(spec.Linux);
            Logging.Timing.Mark("cgroup resources");
            plan = PlanBuilder.Build(spec, id, bundle, rootfs, new PlanBuilder.Options
            {
                FifoPath = store.FifoPath(id),
                PreserveFds = o.PreserveFds,
                NoPivot = o.NoPivot,
                NoNewKeyring = o.NoNewKeyring,
                CgroupPath = cgPath,
                LastCap = Berth.Linux.Security.Capabilities.LastCap(),
            });
        }
        catch (SpecException e) { throw new RuntimeError(e.Message); }
        if (plan.Terminal && o.ConsoleSocket is null && !o.InternalConsole)
            throw new RuntimeError("process.terminal: true needs --console-socket (or set terminal to false, or run it in the foreground)");
        if (!plan.Terminal && o.ConsoleSocket is not null)
            throw new RuntimeError("--console-socket was given but process.terminal is false");

        plan.ReaperStatusFd = o.ReaperStatusFd;
        plan.InitProcess = o.InitProcess;
        bool viaJailStub = UseJailStub(plan);
        // The fork-based cgroup warm-up is for the forking init; the stub's path warms up from a thread.
        if (!viaJailStub && o.WarmUpMigration && !SealedExe.WasReexecuted) MigrationWarmup.Kick();
        int stubFd = viaJailStub ? -1 : ChooseExeProtection(plan, o);
        Logging.Timing.Mark("planned");
        store.CreateDir(id);
        ICgroupManager? cgroup = null;
        StubJail.PreparedContainer? prepared = null;
        int startFd = -1;
        try
        {
            // No flock here: the state dir was created exclusively above, and a lock fd would be
            // inherited by the forked init and outlive this command.
            var record = new ContainerRecord
            {
                Id = id, Bundle = bundle, Rootfs = plan.Rootfs, Created = DateTime.UtcNow,
                Status = "creating", CgroupPath = cgPath, Annotations = spec.Annotations,
                Config = System.Text.Encoding.UTF8.GetString(configBytes),
            };
            // The state is on disk before the cgroup is made: a crash in between leaves a container
            // that `delete --force` finds and cleans up.
            void SaveState()
            {
                if (!o.StartInProcess) MakeFifo(store.FifoPath(id));
                store.Save(record);
                Logging.Timing.Mark("state saved");
            }
            if (viaJailStub) prepared = PrepareBeside(plan, cgPath, SaveState, resources, out cgroup);
            else
            {
                SaveState();
                cgroup = CgroupSetup.Open(cgPath);
                cgroup?.Create();
                cgroup?.Apply(resources);
            }
            Logging.Timing.Mark("cgroup ready");

            var host = new Host(store, record, spec);
            if (o.StartInProcess) (plan.FifoFd, startFd) = StartPipe();
            else plan.FifoFd = Fd.Open(store.FifoPath(id), Consts.O_RDWR);
            if (plan.ReaperStatusFd >= 0 || plan.InitProcess) Reaper.Prepare();
            if (o.ConsoleSocket is not null)
                plan.ConsoleSocketFd = Berth.Linux.Sockets.UnixSocket.Connect(o.ConsoleSocket, "console socket");
            else if (plan.Terminal)
                (o.ConsoleReceiveFd, plan.ConsoleSocketFd) = Fd.SocketPair();
            plan.ExecStubFd = stubFd;
            int pid;
            try
            {
                pid = prepared is not null
                    ? StubJail.LaunchContainer(prepared, plan, cgroup, (initPid, fd) =>
                    {
                        // The listener gets the state with init's pid, as from the .NET init (Host.OnInitPid).
                        record.InitPid = initPid;
                        host.SendSeccompFd(initPid, fd);
                    })
                    : Launcher.Launch(plan, cgroup, host);
            }
            finally
            {
                Fd.Close(plan.FifoFd);
                Fd.Close(plan.ConsoleSocketFd);
                Fd.Close(stubFd);
                stubFd = -1;
            }
            Logging.Timing.Mark("init ready");
            record.InitPid = pid;
            record.InitStartTime = Proc.StartTime(pid) ?? 0;
            record.Status = "created";
            if (!host.InitSaved) store.SaveInit(record);
            if (o.PidFile is not null) WritePidFile(o.PidFile, pid);
            var created = new Container(store, record) { KnownHooks = spec.Hooks, HooksKnown = true, StartFd = startFd };
            startFd = -1;
            return created;
        }
        catch (Exception e)
        {
            prepared?.Dispose();
            Fd.Close(stubFd);
            Fd.Close(startFd);
            Fd.Close(o.ConsoleReceiveFd);
            o.ConsoleReceiveFd = -1;
            try { cgroup?.Destroy(); } catch (Exception ce) { Logging.Log.Warn($"cleanup: {ce.Message}"); }
            store.Remove(id);
            if (e is RuntimeError) throw;
            if (e is LinuxException or CgroupException or IOException or SpecException) throw new RuntimeError(e.Message);
            throw;
        }
    }

    /// <summary>
    /// The stub's program is compiled and sealed while another thread writes the state and then makes
    /// the cgroup (each about half a millisecond, more when the state's disk is busy). The state is
    /// written while this thread finds the cgroup hierarchies (<see cref="CgroupSetup.Open"/>), which
    /// the cgroup's creation and the program both need. No fork follows on this path, so the thread
    /// is safe. A pthread (<see cref="NativeThread"/>): Thread.Start would spin until it has started. <paramref name="cgroup"/> is set even when this throws, for the caller's cleanup.
    /// </summary>
    private static unsafe StubJail.PreparedContainer PrepareBeside(InitPlan plan, string cgPath, Action saveState,
        CgroupResources resources, out ICgroupManager? cgroup)
    {
        Exception? failed = null;
        ICgroupManager? cg = null;
        using var opened = new ManualResetEventSlim(false);
        var maker = NativeThread.Start(() =>
        {
            try
            {
                fixed (byte* name = "state+cgroup\0"u8) LibC.prctl(Consts.PR_SET_NAME, (ulong)name, 0, 0, 0);
                saveState();
                opened.Wait();
                if (cg is null) return;
                Berth.Linux.Cgroups.MigrationWarmup.MoveThisThread();
                cg.Create();
                cg.Apply(resources);
            }
            catch (Exception e) { failed = e; }
        });
        Logging.Timing.Mark("beside started");
        StubJail.PreparedContainer? prepared = null;
        try
        {
            try { cg = CgroupSetup.Open(cgPath); }
            finally { opened.Set(); }
            Logging.Timing.Mark("cgroups found");
            prepared = StubJail.PrepareContainer(plan, cg);
        }
        finally
        {
            maker.Join();
            cgroup = cg;
        }
        if (failed is not null)
        {
            prepared.Dispose();
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed);
        }
        return prepared;
    }

    /// <summary>
    /// Whether the container's init is the jail stub (docs/adr/0017) rather than a fork of berth.
    /// BERTH_RUNTIME_INIT=dotnet forces the .NET init.
    /// </summary>
    private static bool UseJailStub(InitPlan plan)
    {
        if (Environment.GetEnvironmentVariable("BERTH_RUNTIME_INIT") == "dotnet") return false;
        var why = StubJail.ContainerUnsupported(plan)
                  ?? (StubJail.ExecutableInRootfs(plan) ? null : $"a process.args[0] ({plan.Args[0]}) not found in the rootfs");
        if (why is not null) Logging.Log.Debug($"container init: berth's own (the jail stub does not do {why})");
        return why is null;
    }

    /// <summary>
    /// CVE-2019-5736: the sealed exec stub when the plan allows it (its fd, for init), else the re-exec
    /// of <see cref="CreateOptions.ProtectExe"/> (-1). Runs before any side effect: the re-exec starts over.
    /// </summary>
    private static int ChooseExeProtection(InitPlan plan, CreateOptions o)
    {
        if (o.ProtectExe is null || SealedExe.IsProtected()) return -1;
        var why = ExecStubPolicy.Refusal(plan, ExecStubPolicy.RuntimeFiltered());
        if (why is null)
        {
            try { return ExecStub.CreateSealed(); }
            catch (LinuxException e) { why = e.Message; }
        }
        Logging.Log.Debug($"re-executing from a protected copy of the runtime (no exec stub: {why})");
        o.ProtectExe();
        return -1;
    }

    private sealed class Host(StateStore store, ContainerRecord record, Oci.Runtime.Spec spec) : Launcher.IHost
    {
        /// <summary>init.pid was written for the hooks already.</summary>
        public bool InitSaved { get; private set; }

        public (string Creating, string Created) OnInitPid(int pid)
        {
            Logging.Timing.Mark("init ready");
            record.InitPid = pid;
            record.InitStartTime = Proc.StartTime(pid) ?? 0;
            store.SaveInit(record);
            InitSaved = true;
            var c = new Container(store, record);
            return (StateJson(c, "creating"), StateJson(c, "created"));
        }

        public void SendSeccompFd(int pid, int notifyFd) =>
            SendToListener(spec, new Container(store, record), pid, notifyFd, "creating");

        public void RunRuntimeHooks()
        {
            var state = StateJson(new Container(store, record), "creating");
            HookRunner.RunAll(spec.Hooks?.Prestart, state, "prestart");
            HookRunner.RunAll(spec.Hooks?.CreateRuntime, state, "createRuntime");
        }
    }

    /// <summary>Hands a seccomp notify fd to linux.seccomp.listenerPath with the process state (runtime-spec).</summary>
    internal static void SendToListener(Oci.Runtime.Spec spec, Container c, int pid, int notifyFd, string status)
    {
        var seccomp = spec.Linux!.Seccomp!;
        var state = new Berth.Oci.Seccomp.ContainerProcessState
        {
            Fds = ["seccompFd"],
            Pid = pid,
            Metadata = seccomp.ListenerMetadata,
            State = c.ToOciState(status),
        };
        var json = JsonSerializer.SerializeToUtf8Bytes(state, OciJson.Default.ContainerProcessState);
        try { Berth.Linux.Seccomp.SeccompListener.SendToListener(seccomp.ListenerPath!, notifyFd, json); }
        catch (LinuxException e) { throw new RuntimeError($"linux.seccomp.listenerPath: {e.Message}"); }
    }

    public static string StateJson(Container c, string status) =>
        Oci.Runtime.StateWriter.ToJson(c.ToOciState(status));

    /// <summary>
    /// For `run`: init's end of a pipe opened read-write, as the fifo is (init holds a writer itself,
    /// so it never reads EOF and waits for a byte however this process ends, exactly as on the fifo),
    /// and this process's write end. A pipe is no inode on the state's filesystem.
    /// </summary>
    private static (int InitEnd, int StartEnd) StartPipe()
    {
        var (read, write) = Fd.Pipe();
        try
        {
            return (Fd.Open($"/proc/self/fd/{read}", Consts.O_RDWR | Consts.O_CLOEXEC), write);
        }
        catch
        {
            Fd.Close(write);
            throw;
        }
        finally { Fd.Close(read); }
    }

    private static unsafe void MakeFifo(string path)
    {
        fixed (byte* p = CString.Of(path))
            if (LibC.mkfifo(p, 0x192 /* 0622 */) != 0) throw LinuxException.Last("mkfifo", path);
    }

    private static void WritePidFile(string path, int pid)
    {
        var full = Path.GetFullPath(path);
        AtomicFile.Write(full, System.Text.Encoding.ASCII.GetBytes(pid.ToString()));
    }
}

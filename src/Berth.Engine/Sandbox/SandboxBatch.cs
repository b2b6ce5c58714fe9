using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Berth.Engine.Containers;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Processes;

namespace Berth.Engine.Sandbox;

/// <summary>
/// `berth sandbox batch JOBS.jsonl [--parallel N]`: a coordinator and N worker processes.
///
/// The coordinator (this process, multi-threaded, never forks itself) reads every line, starts
/// the workers (`berth sandbox batch-worker`, the same protected binary: no second re-exec),
/// hands each idle worker the next job and prints one result line per job in input order as soon
/// as all earlier ones are done.
///
/// A worker (single-threaded, so it may fork: docs/adr/0002) runs its jobs one after another
/// through <see cref="SandboxRunner.Run(SandboxOptions, SandboxSlot)"/>, the code path of `run`,
/// with what it can safely keep between jobs: one .NET process, its slot (the run directory and,
/// on v1 hosts, the cgroup: verified empty and reset after every job) and one network namespace
/// (only lo; a program without capabilities cannot change it, and its sockets die with it).
/// Every job still gets a fresh pid, mount, ipc, uts and cgroup namespace, a fresh tmpfs with a
/// fresh copy of its box, a fresh /tmp, /dev and /proc.
/// </summary>
public static class SandboxBatch
{
    public const string WorkerCommand = "batch-worker";

    /// <summary>Runs the jobs of <paramref name="lines"/>; writes results to <paramref name="output"/>. Returns the exit status.</summary>
    public static int Coordinate(IReadOnlyList<string> lines, TextWriter output, int parallel)
    {
        var jobs = new List<(int LineNo, string Text)>();
        for (int i = 0; i < lines.Count; i++)
            if (!string.IsNullOrWhiteSpace(lines[i])) jobs.Add((i + 1, lines[i]));
        var results = new string?[jobs.Count];
        int next = -1;
        bool interrupted = false;
        int workersCount = Math.Max(1, Math.Min(parallel, jobs.Count));
        var workers = new List<Worker>();
        var gate = new object();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, Stop);

        void Stop(PosixSignalContext ctx)
        {
            ctx.Cancel = true;
            Volatile.Write(ref interrupted, true);
            lock (workers)
                foreach (var w in workers)
                    if (!w.Exited) LibC.kill(w.Pid, Signals.SIGTERM);
        }

        void Done(int i, string result)
        {
            lock (gate)
            {
                results[i] = result;
                System.Threading.Monitor.PulseAll(gate);
            }
        }

        var threads = new List<Thread>();
        // Every worker process first (they start up in parallel), then a feeding thread each.
        for (int w = 0; w < workersCount && jobs.Count > 0; w++)
        {
            Worker started;
            try { started = Worker.Start(); }
            catch (Exception e) when (e is LinuxException or IOException)
            {
                if (w == 0) throw new EngineError($"start a batch worker: {e.Message}");
                break;
            }
            lock (workers) workers.Add(started);
        }
        for (int w = 0; w < workers.Count; w++)
        {
            var p = workers[w];
            var t = new Thread(() =>
            {
                while (true)
                {
                    int i = Interlocked.Increment(ref next);
                    if (i >= jobs.Count) break;
                    if (Volatile.Read(ref interrupted)) { Done(i, Xx(jobs[i].LineNo, null, "interrupted: berth was asked to stop")); continue; }
                    string? reply;
                    try
                    {
                        p.Input.Write(string.Create(CultureInfo.InvariantCulture, $"{i}\t{jobs[i].LineNo}\t{Flat(jobs[i].Text)}\n"));
                        p.Input.Flush();
                        reply = p.Output.ReadLine();
                    }
                    catch (IOException) { reply = null; }
                    var tab = reply?.IndexOf('\t') ?? -1;
                    if (reply is null || tab < 0 || reply[..tab] != i.ToString(CultureInfo.InvariantCulture))
                    {
                        Done(i, Xx(jobs[i].LineNo, null, Volatile.Read(ref interrupted)
                            ? "interrupted: berth was asked to stop" : "the batch worker running this job exited"));
                        break; // this worker is gone; the others take the rest
                    }
                    Done(i, reply[(tab + 1)..]);
                }
            }) { IsBackground = true, Name = $"batch worker {w}" };
            threads.Add(t);
            t.Start();
        }

        Berth.Runtime.Logging.Timing.Mark("batch: workers started");
        bool anyXx = false;
        for (int i = 0; i < jobs.Count; i++)
        {
            string r;
            lock (gate)
            {
                while (results[i] is null)
                {
                    // Every worker gone with jobs undone: those jobs cannot run.
                    if (threads.All(t => !t.IsAlive) && results[i] is null)
                    {
                        results[i] = Xx(jobs[i].LineNo, null, Volatile.Read(ref interrupted)
                            ? "interrupted: berth was asked to stop" : "no batch worker left to run this job");
                        break;
                    }
                    System.Threading.Monitor.Wait(gate, 100);
                }
                r = results[i]!;
            }
            anyXx |= r.StartsWith("{\"status\":\"XX\"", StringComparison.Ordinal);
            output.Write(r);
            output.Write('\n');
            output.Flush();
        }
        Berth.Runtime.Logging.Timing.Mark("batch: all results");
        foreach (var p in workers)
        {
            try { p.Input.Close(); } catch (IOException) { }
        }
        foreach (var p in workers) p.WaitOrKill(TimeSpan.FromSeconds(30));
        Berth.Runtime.Logging.Timing.Mark("batch: workers exited");
        if (Volatile.Read(ref interrupted)) return 2;
        return anyXx ? 1 : 0;
    }

    /// <summary>
    /// A worker process: `berth sandbox batch-worker` from /proc/self/exe (this process's own binary, so a
    /// protected copy stays protected), started with posix_spawn, its stdin and stdout our pipes.
    /// </summary>
    private sealed class Worker
    {
        public required int Pid { get; init; }
        public required StreamWriter Input { get; init; }
        public required StreamReader Output { get; init; }
        public bool Exited { get; private set; }

        public static Worker Start()
        {
            var (inRead, inWrite) = Fd.Pipe();
            var (outRead, outWrite) = Fd.Pipe();
            int pid;
            try
            {
                var env = new List<string>();
                foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
                    env.Add($"{e.Key}={e.Value}");
                pid = Proc.SpawnWithFds("/proc/self/exe", [Environment.GetCommandLineArgs()[0], "sandbox", WorkerCommand], env,
                    [(inRead, 0), (outWrite, 1)]);
            }
            catch
            {
                Fd.Close(inWrite);
                Fd.Close(outRead);
                throw;
            }
            finally
            {
                Fd.Close(inRead);
                Fd.Close(outWrite);
            }
            var input = new StreamWriter(new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(inWrite, true), FileAccess.Write, 1)) { AutoFlush = false };
            var output = new StreamReader(new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(outRead, true), FileAccess.Read, 1));
            return new Worker { Pid = pid, Input = input, Output = output };
        }

        /// <summary>Waits for the worker to exit (it cleans its slot up first); SIGKILL after <paramref name="timeout"/>.</summary>
        public unsafe void WaitOrKill(TimeSpan timeout)
        {
            int pidfd = (int)LibC.syscall(Syscalls.PidfdOpen, Pid, 0, 0, 0, 0, 0);
            if (pidfd >= 0)
            {
                int* pfd = stackalloc int[2];
                pfd[0] = pidfd; pfd[1] = Consts.POLLIN;
                if (LibC.poll(pfd, 1, (int)timeout.TotalMilliseconds) == 0) LibC.kill(Pid, Signals.SIGKILL);
                Fd.Close(pidfd);
            }
            Proc.Wait(Pid);
            Exited = true;
            Output.Dispose();
        }
    }

    private static string Flat(string line) => line.Replace('\n', ' ').Replace('\r', ' ');

    /// <summary>A result line for a job that did not run (bad line, interrupted, worker gone).</summary>
    public static string Xx(int lineNo, string? id, string message) =>
        WithJob(new Verdict { Status = "XX", Message = $"line {lineNo}: {message}" }, lineNo, id);

    /// <summary>The verdict's JSON (exactly `run`'s) with "line" and, when given, "id" appended.</summary>
    public static string WithJob(Verdict v, int lineNo, string? id)
    {
        var json = v.ToJson().TrimEnd();
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("line", lineNo);
            if (id is not null) w.WriteString("id", id);
            w.WriteEndObject();
        }
        var extra = Encoding.UTF8.GetString(ms.ToArray());
        return json[..^1] + "," + extra[1..];
    }

    /// <summary>
    /// The worker: reads "INDEX\tLINE\tJSON" lines on stdin, answers "INDEX\tRESULT" on stdout.
    /// Its own stdin/stdout move to fds above 10 (close-on-exec) and /dev/null takes fds 0-2, so a
    /// job's program never inherits the batch's pipes: its stdio is /dev/null unless the job names files.
    /// </summary>
    public static int Work()
    {
        int inFd = MoveHigh(0), outFd = MoveHigh(1), errFd = MoveHigh(2);
        int devnull = Fd.Open("/dev/null", Consts.O_RDWR);
        for (int fd = 0; fd < 3; fd++) LibC.dup3(devnull, fd, 0);
        Fd.Close(devnull);
        using var input = new StreamReader(new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(inFd, true), FileAccess.Read, 1));
        // Plain write(2)s: a FileStream on a regular file would pwrite at its own offset.
        int output = outFd, errors = errFd;
        bool stop = false;
        // SIGTERM between jobs: finish, clean the slot up and exit (during a job the job's own handler makes it XX).
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; Volatile.Write(ref stop, true); });
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; Volatile.Write(ref stop, true); });
        var slot = SandboxSlot.Pool();
        int netns = -1;
        Berth.Runtime.Logging.Timing.Mark("worker ready");
        try
        {
            return Serve(input, output, errors, slot, ref netns, ref stop);
        }
        catch (Exception e)
        {
            Write(errors, $"berth: batch worker: {e}\n");
            return 2;
        }
        finally
        {
            Berth.Runtime.Logging.Timing.Mark("worker cleanup");
            Fd.Close(netns);
            try { slot.Dispose(); }
            catch (Exception e) when (e is IOException or Berth.Linux.Cgroups.CgroupException or UnauthorizedAccessException)
            {
                Write(errors, $"berth: batch worker: cleanup: {e.Message}\n");
            }
            Fd.Close(output);
            Fd.Close(errors);
            Berth.Runtime.Logging.Timing.Mark("worker done");
        }
    }

    private static int Serve(StreamReader input, int output, int errors, SandboxSlot slot, ref int netns, ref bool stop)
    {
        while (!Volatile.Read(ref stop))
        {
            var line = input.ReadLine();
            if (line is null) break;
            var parts = line.Split('\t', 3);
            if (parts.Length != 3 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var lineNo))
            {
                Write(errors, $"berth: batch worker: bad request \"{line}\"\n");
                return 2;
            }
            var result = RunLine(parts[2], lineNo, slot, ref netns);
            Write(output, parts[0] + "\t" + result + "\n");
        }
        return 0;
    }

    /// <summary>One job: parse, run in the worker's slot (joining its network namespace), the result line.</summary>
    private static string RunLine(string text, int lineNo, SandboxSlot slot, ref int netns)
    {
        SandboxJobLine.Job job;
        try { job = SandboxJobLine.Parse(text); }
        catch (EngineError e) { return Xx(lineNo, null, e.Message); }
        var o = job.Options;
        // With template jails the slot's template holds the network namespace its jobs join; without,
        // the worker keeps one for all its jobs.
        if (!o.Net && !SandboxRunner.Templates)
        {
            if (netns < 0)
            {
                try { netns = NewNetNs(); }
                catch (LinuxException e) { return Xx(lineNo, job.Id, $"network namespace: {e.Message}"); }
            }
            o.NetNsPath = $"/proc/self/fd/{netns}";
        }
        return WithJob(SandboxRunner.Run(o, slot), lineNo, job.Id);
    }

    private static void Write(int fd, string text) => Fd.WriteAll(fd, Encoding.UTF8.GetBytes(text));

    private static int MoveHigh(int fd)
    {
        int r = LibC.fcntl(fd, 1030 /* F_DUPFD_CLOEXEC */, 10);
        if (r < 0) throw LinuxException.Last("fcntl(F_DUPFD_CLOEXEC)", fd.ToString(CultureInfo.InvariantCulture));
        return r;
    }

    /// <summary>
    /// A network namespace with only lo, kept open by this fd (close-on-exec) for the worker's
    /// life: a short-lived child unshares it and waits until we hold it.
    /// </summary>
    private static unsafe int NewNetNs()
    {
        var (readyR, readyW) = Fd.Pipe();
        var (holdR, holdW) = Fd.Pipe();
        int child = Proc.Fork();
        if (child == 0)
        {
            byte b = 1;
            LibC.close(readyR);
            LibC.close(holdW);
            if (LibC.unshare(Consts.CLONE_NEWNET) != 0) LibC._exit(1);
            LibC.write(readyW, &b, 1);
            LibC.read(holdR, &b, 1); // EOF once the parent closes its end
            LibC._exit(0);
        }
        Fd.Close(readyW);
        Fd.Close(holdR);
        try
        {
            byte b;
            if (LibC.read(readyR, &b, 1) != 1) throw new LinuxException("unshare", "CLONE_NEWNET", Consts.EPERM);
            return Fd.Open($"/proc/{child}/ns/net", Consts.O_RDONLY | Consts.O_CLOEXEC);
        }
        finally
        {
            Fd.Close(readyR);
            Fd.Close(holdW);
            Proc.Wait(child);
        }
    }
}

using System.Text;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Processes;
using Berth.Oci.Runtime;

namespace Berth.Runtime.Hooks;

/// <summary>
/// Runs OCI hooks: fork+exec (fork-safe, from the main thread or a single-threaded init), the
/// state JSON on stdin, the hook's timeout enforced with SIGKILL.
/// </summary>
public static class HookRunner
{
    public static void RunAll(IReadOnlyList<Hook>? hooks, string stateJson, string kind)
    {
        if (hooks is null) return;
        for (int i = 0; i < hooks.Count; i++) Run(hooks[i], stateJson, $"{kind}[{i}]");
    }

    public static void Run(Hook hook, string stateJson, string what)
    {
        if (!hook.Path.StartsWith('/')) throw new RuntimeError($"hooks.{what}.path: \"{hook.Path}\" must be absolute");
        var args = hook.Args is { Count: > 0 } ? hook.Args : [hook.Path];
        var env = hook.Env ?? Environment.GetEnvironmentVariables().Keys.Cast<string>()
            .Select(k => $"{k}={Environment.GetEnvironmentVariable(k)}").ToList();
        var (r, w) = Fd.Pipe();
        int pid = Proc.Fork();
        if (pid == 0)
        {
            try
            {
                Fd.Dup2(r, 0);
                Fd.CloexecFrom(3);
                Proc.Exec(hook.Path, args, env);
            }
            catch (Exception e)
            {
                try { Fd.WriteAll(2, Encoding.UTF8.GetBytes($"berth: hook {hook.Path}: {e.Message}\n")); } catch (Exception) { }
            }
            Proc.Exit(127);
        }
        Fd.Close(r);
        try { Fd.WriteAll(w, Encoding.UTF8.GetBytes(stateJson), "hook stdin"); }
        catch (LinuxException) { /* the hook did not read its stdin */ }
        Fd.Close(w);

        var deadline = hook.Timeout is > 0 ? DateTime.UtcNow.AddSeconds(hook.Timeout.Value) : DateTime.MaxValue;
        int sleep = 1;
        while (true)
        {
            var (done, status) = Proc.TryWait(pid);
            if (done == pid)
            {
                if (status.Signal != 0 || status.Code != 0)
                    throw new RuntimeError($"{what} hook {hook.Path} failed: " +
                        (status.Signal != 0 ? $"killed by {Signals.Name(status.Signal)}" : $"exit status {status.Code}"));
                return;
            }
            if (done < 0) throw new RuntimeError($"{what} hook {hook.Path}: lost track of the hook process");
            if (DateTime.UtcNow >= deadline)
            {
                Proc.Kill(pid, Signals.SIGKILL);
                Proc.Wait(pid);
                throw new RuntimeError($"{what} hook {hook.Path} timed out after {hook.Timeout} s");
            }
            Thread.Sleep(sleep);
            if (sleep < 20) sleep *= 2;
        }
    }
}

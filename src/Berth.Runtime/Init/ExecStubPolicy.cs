using Berth.Linux.Processes;
using Berth.Linux.Seccomp;

namespace Berth.Runtime.Init;

/// <summary>
/// Whether a container's init may skip the CVE-2019-5736 re-exec of the whole runtime and execute
/// its program through the sealed exec stub instead (docs/adr/0013). The stub protects the runtime
/// binary only if no process in the container can see init before the stub runs and nothing of
/// the runtime stays in the container after it; everything else falls back to the re-exec.
/// </summary>
public static class ExecStubPolicy
{
    // x86_64 numbers of what the stub and init's last step call under the container's filter.
    private static readonly (string Name, uint Nr)[] StubSyscalls =
        [("read", 0), ("write", 1), ("close", 3), ("exit_group", 231), ("execveat", 322)];

    /// <summary>Why the stub cannot be used for this plan, or null when it can.</summary>
    /// <param name="runtimeFiltered">The runtime itself runs under a seccomp filter (inherited by init; unknown to us).</param>
    public static string? Refusal(InitPlan plan, bool runtimeFiltered)
    {
        if (!ExecStub.Supported) return "the exec stub exists for x86_64 only";
        if (plan.IsExec) return "exec joins a running container";
        // Joined or host pid namespace: other processes could watch init while it is still the runtime.
        if (!plan.NewPidNs) return "the container does not get a new pid namespace";
        if (plan.PreserveFds > 0) return "--preserve-fds: init's own fds could sit among the preserved ones";
        if (plan.ReaperStatusFd >= 0 || plan.InitProcess) return "a berth reaper stays PID 1 in the container";
        if (plan.Spec.Hooks?.StartContainer is { Count: > 0 }) return "startContainer hooks run in init after start";
        var process = plan.Spec.Process;
        if (!string.IsNullOrEmpty(process?.ApparmorProfile) || !string.IsNullOrEmpty(process?.SelinuxLabel))
            return "an LSM label would apply at the stub's exec, not the program's";
        if (runtimeFiltered) return "the runtime runs under a seccomp filter";
        if (plan.Seccomp is { } s)
            foreach (var (name, nr) in StubSyscalls)
                if (!FilterProbe.AllowsRegardlessOfArgs(s.Filter, SeccompAbi.AUDIT_ARCH_X86_64, nr))
                    return $"linux.seccomp does not plainly allow {name}";
        return null;
    }

    /// <summary>True when this process runs under a seccomp filter (prctl PR_GET_SECCOMP).</summary>
    public static bool RuntimeFiltered() => Berth.Linux.Interop.LibC.prctl(21 /* PR_GET_SECCOMP */, 0, 0, 0, 0) != 0;
}

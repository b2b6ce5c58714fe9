namespace Berth.Engine.Sandbox;

/// <summary>
/// The security hooks of a job's phases (seccomp profile, supervisor, violations, quarantine,
/// the verdict's SV): thin calls into <see cref="SandboxSecurity"/>, so the phases stay readable.
/// </summary>
public sealed partial class SandboxJob
{
    private SandboxSecurity? _security;

    /// <summary>BuildPlan: the seccomp filter into the spec; the audit log and evidence dir checked.</summary>
    private void SecureSpec()
    {
        _security ??= new SandboxSecurity(Options, Slot.Dir, _kernelAudit);
        _security.Apply(_spec!);
    }

    /// <summary>Launch: the runtime hands init's notify fd to the supervisor.</summary>
    private Action<int, int>? SeccompListener => _security is { } s ? s.OnSeccompFd : null;

    /// <summary>Launch, jail stub: the listener is answered by the run loop itself (no thread).</summary>
    private Action<int, int>? SeccompListenerInline => _security is { } s ? (pid, fd) => s.Supervisor.Attach(pid, fd, threaded: false) : null;

    /// <summary>Wait: the notify fd the loop answers itself (-1: none, or the supervisor's thread does).</summary>
    private int SecurityNotifyFd => _security?.Supervisor.NotifyFd ?? -1;

    private void SecurityHandlePending() => _security?.Supervisor.HandlePending();

    /// <summary>Wait, before the release: calls notified from now on are the program's.</summary>
    private void SecureStart() => _security?.ProgramStarting();

    /// <summary>Wait, every round: kill (or quarantine, then kill) the jail on a violation. True once done.</summary>
    private bool SecureCheck() => _security?.Check(_cg!.Manager, _pid, Box, Slot.Id) ?? false;

    /// <summary>Readable when a violation wants the jail killed, for the wait's poll (-1: none).</summary>
    private int SecurityWakeFd => _security?.Supervisor.WakeFd ?? -1;

    /// <summary>Collect: nothing of a jail killed for a violation is copied back.</summary>
    private bool SecurityForbidsCopyBack => _security?.Acted ?? false;

    /// <summary>Collect, last: SV, the violation count and the first violation.</summary>
    private void SecureVerdict(Verdict v) => _security?.Finish(v);

    /// <summary>Teardown, once the jail's processes are dead: every held notification answered, the supervisor stopped.</summary>
    private void SecureTeardown()
    {
        _security?.Dispose();
        _security = null;
    }
}

using Berth.Engine.Containers;
using Berth.Engine.Sandbox;
using Berth.Linux.Seccomp;
using Berth.Runtime.Seccomp;
using Xunit;

namespace Berth.Engine.Tests;

/// <summary>The sandbox's built-in seccomp allowlist and custom profiles (pure: profile -> OCI section -> BPF).</summary>
public sealed class SandboxProfileTests
{
    private static readonly string[] MustBeViolations =
        ["ptrace", "mount", "umount2", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
         "io_uring_setup", "io_uring_enter", "io_uring_register", "pivot_root", "chroot", "init_module", "finit_module",
         "kexec_load", "reboot", "swapon", "process_vm_readv", "process_vm_writev", "userfaultfd", "open_by_handle_at",
         "fsopen", "move_mount", "mknod", "syslog", "personality", "seccomp", "clock_settime", "settimeofday", "acct",
         // No System V or POSIX IPC: batch jobs in a template jail share its ipc namespace (docs/adr/0016).
         "shmget", "shmat", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget", "msgsnd", "msgrcv", "msgctl",
         "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr"];

    [Theory]
    [InlineData(SeccompArch.X86_64)]
    [InlineData(SeccompArch.Aarch64)]
    public void Built_in_profile_names_every_known_call_and_compiles(SeccompArch arch)
    {
        var s = SandboxProfile.BuiltIn(net: false, "/run/x/seccomp.sock", arch);
        Assert.Equal("SCMP_ACT_ERRNO", s.DefaultAction); // only numbers the table does not know
        Assert.Equal(38u, s.DefaultErrnoRet);
        Assert.Equal([SandboxProfile.ScmpArch(arch)], s.Architectures);
        var named = s.Syscalls!.SelectMany(r => r.Names).ToHashSet();
        foreach (var name in SyscallTable.Names(arch)) Assert.Contains(name, named);
        var notified = s.Syscalls!.Where(r => r.Action == "SCMP_ACT_NOTIFY" && r.Args is null).SelectMany(r => r.Names).ToHashSet();
        foreach (var name in MustBeViolations.Where(n => SyscallTable.Resolve(arch, n) >= 0)) Assert.Contains(name, notified);
        var allowed = s.Syscalls!.Where(r => r.Action == "SCMP_ACT_ALLOW" && r.Args is null).SelectMany(r => r.Names).ToHashSet();
        Assert.Empty(allowed.Intersect(notified));
        Assert.DoesNotContain("socket", allowed);
        Assert.DoesNotContain("clone", allowed);
        var program = SeccompCompiler.Compile(s, arch);
        Assert.True(program.HasListener);
        Assert.Empty(program.SkippedSyscalls);
        Assert.InRange(program.Filter.Length, 10, 4096);
    }

    [Fact]
    public void Net_allows_socket_and_clone_only_without_namespace_flags()
    {
        var off = SandboxProfile.BuiltIn(net: false, "/l", SeccompArch.X86_64);
        var on = SandboxProfile.BuiltIn(net: true, "/l", SeccompArch.X86_64);
        Assert.Contains(on.Syscalls!, r => r.Action == "SCMP_ACT_ALLOW" && r.Args is null && r.Names.Contains("socket"));
        // Without --net: AF_UNIX allowed, anything else a violation.
        var sock = off.Syscalls!.Where(r => r.Names.Contains("socket")).ToList();
        Assert.Equal(("SCMP_ACT_ALLOW", 1UL), (sock[0].Action, sock[0].Args!.Single().Value));
        Assert.Equal("SCMP_ACT_NOTIFY", sock[1].Action);
        var clone = off.Syscalls!.Where(r => r.Names.Contains("clone")).ToList();
        Assert.Equal("SCMP_ACT_NOTIFY", clone[0].Action);
        Assert.Contains(clone[0].Args!, a => a.Op == "SCMP_CMP_MASKED_EQ" && a.Value == 0x10000000 && a.ValueTwo == 0x10000000);
        Assert.Equal("SCMP_ACT_ALLOW", clone[1].Action);
        // clone3's flags are out of the filter's reach: ENOSYS, libc falls back to clone.
        Assert.DoesNotContain(off.Syscalls!, r => r.Names.Contains("clone3") && r.Action is "SCMP_ACT_ALLOW" or "SCMP_ACT_NOTIFY");
    }

    [Fact]
    public void Without_a_listener_violations_become_kernel_actions()
    {
        foreach (var (mode, action) in new[] { (ViolationMode.Log, "SCMP_ACT_LOG"), (ViolationMode.Deny, "SCMP_ACT_ERRNO"),
                     (ViolationMode.Kill, "SCMP_ACT_KILL_PROCESS"), (ViolationMode.Quarantine, "SCMP_ACT_KILL_PROCESS") })
        {
            var s = SandboxProfile.BuiltIn(net: false, "/l", SeccompArch.X86_64);
            SandboxProfile.WithoutListener(s, mode);
            Assert.Null(s.ListenerPath);
            Assert.DoesNotContain(s.Syscalls!, r => r.Action == "SCMP_ACT_NOTIFY");
            Assert.Contains(s.Syscalls!, r => r.Action == action && r.Names.Contains("ptrace"));
            Assert.Contains("SECCOMP_FILTER_FLAG_LOG", s.Flags!);
            var program = SeccompCompiler.Compile(s, SeccompArch.X86_64);
            Assert.False(program.HasListener);
        }
    }

    [Fact]
    public void Custom_profiles_get_the_listener_only_when_they_notify_and_errors_name_the_file()
    {
        var dir = Directory.CreateTempSubdirectory("berth-profile-").FullName;
        try
        {
            var plain = Path.Combine(dir, "plain.json");
            File.WriteAllText(plain, """{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO"}]}""");
            Assert.Null(SandboxProfile.Custom(plain, "/l", SeccompArch.X86_64).ListenerPath);
            var notify = Path.Combine(dir, "notify.json");
            File.WriteAllText(notify, """{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_NOTIFY"}]}""");
            Assert.Equal("/l", SandboxProfile.Custom(notify, "/l", SeccompArch.X86_64).ListenerPath);
            var bad = Path.Combine(dir, "bad.json");
            File.WriteAllText(bad, """{"defaultAction":"SCMP_ACT_NOTIFY"}""");
            var e = Assert.Throws<EngineError>(() => SandboxProfile.Custom(bad, "/l", SeccompArch.X86_64));
            Assert.Contains(bad, e.Message);
            File.WriteAllText(bad, "not json");
            Assert.Contains(bad, Assert.Throws<EngineError>(() => SandboxProfile.Custom(bad, "/l", SeccompArch.X86_64)).Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Verdict_carries_the_violation_count_and_the_first_one()
    {
        var v = new Verdict { Status = "SV", ExitSig = 9, Killed = true, Violations = 2, Message = "security violation: ptrace",
            FirstViolation = new Violation(new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc), 42, "a.out", "ptrace", 101, "x86_64",
                [0, 1, 2, 3, 4, 0xffffffffffffffff], 0x401000, "kill", false) };
        var json = System.Text.Json.JsonDocument.Parse(v.ToJson()).RootElement;
        Assert.Equal("SV", json.GetProperty("status").GetString());
        Assert.Equal(2, json.GetProperty("violations").GetInt32());
        var f = json.GetProperty("violation");
        Assert.Equal("ptrace", f.GetProperty("syscall").GetString());
        Assert.Equal("2026-01-02T03:04:05.000000Z", f.GetProperty("time").GetString());
        Assert.Equal("0xffffffffffffffff", f.GetProperty("args")[5].GetString());
        Assert.Contains("violations:2\n", v.ToIsolate());
        Assert.Contains("violation:ptrace\n", v.ToIsolate());
        Assert.StartsWith("status:SV\n", v.ToIsolate());
    }
}

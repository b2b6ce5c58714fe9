using Berth.Linux.Seccomp;
using Berth.Oci.Runtime;
using Berth.Runtime.Init;
using Berth.Runtime.Seccomp;
using Berth.Runtime.Spec;
using Berth.Runtime.Tests.Seccomp;
using static Berth.Runtime.Tests.Seccomp.SeccompCompilerTests;

namespace Berth.Runtime.Tests.Init;

/// <summary>When create may use the sealed exec stub instead of re-executing the runtime (docs/adr/0013).</summary>
public class ExecStubPolicyTests
{
    private static InitPlan Plan(Action<Oci.Runtime.Spec>? edit = null, PlanBuilder.Options? o = null)
    {
        var spec = DefaultSpec.Create(rootless: false);
        edit?.Invoke(spec);
        return PlanBuilder.Build(spec, "c1", "/b", "/b/rootfs", o ?? new PlanBuilder.Options { FifoPath = "/run/berth/c1/exec.fifo" });
    }

    [Fact]
    public void The_default_spec_uses_the_stub()
    {
        Assert.True(Berth.Linux.Processes.ExecStub.Supported);
        Assert.Null(ExecStubPolicy.Refusal(Plan(), runtimeFiltered: false));
    }

    [Fact]
    public void A_joined_or_host_pid_namespace_refuses()
    {
        var joined = Plan(s => s.Linux!.Namespaces!.First(n => n.Type == "pid").Path = "/proc/42/ns/pid");
        Assert.Contains("pid namespace", ExecStubPolicy.Refusal(joined, false));
        var host = Plan(s => s.Linux!.Namespaces!.RemoveAll(n => n.Type == "pid"));
        Assert.Contains("pid namespace", ExecStubPolicy.Refusal(host, false));
    }

    [Fact]
    public void A_reaper_start_hooks_lsm_labels_preserved_fds_or_a_filtered_runtime_refuse()
    {
        var reaper = Plan();
        reaper.InitProcess = true;
        Assert.Contains("reaper", ExecStubPolicy.Refusal(reaper, false));
        var sandbox = Plan();
        sandbox.ReaperStatusFd = 9;
        Assert.Contains("reaper", ExecStubPolicy.Refusal(sandbox, false));
        var hooks = Plan(s => s.Hooks = new Berth.Oci.Runtime.Hooks { StartContainer = [new Berth.Oci.Runtime.Hook { Path = "/bin/true" }] });
        Assert.Contains("startContainer", ExecStubPolicy.Refusal(hooks, false));
        var apparmor = Plan(s => s.Process!.ApparmorProfile = "berth-default");
        Assert.Contains("LSM", ExecStubPolicy.Refusal(apparmor, false));
        var fds = Plan(o: new PlanBuilder.Options { FifoPath = "/f", PreserveFds = 2 });
        Assert.Contains("preserve-fds", ExecStubPolicy.Refusal(fds, false));
        Assert.Contains("seccomp", ExecStubPolicy.Refusal(Plan(), runtimeFiltered: true));
        var exec = Plan();
        exec.IsExec = true;
        Assert.NotNull(ExecStubPolicy.Refusal(exec, false));
    }

    private static InitPlan WithFilter(Berth.Oci.Runtime.Seccomp profile)
    {
        var plan = Plan();
        plan.Seccomp = SeccompCompiler.Compile(profile, SeccompArch.X86_64);
        return plan;
    }

    [Fact]
    public void Podmans_default_profile_allows_the_stubs_calls()
    {
        var resolved = SeccompProfiles.Resolve(SeccompProfiles.Default, null, SeccompArch.X86_64)!;
        Assert.Null(ExecStubPolicy.Refusal(WithFilter(resolved), false));
    }

    [Theory]
    [InlineData("SCMP_ACT_ERRNO")]
    [InlineData("SCMP_ACT_LOG")]
    [InlineData("SCMP_ACT_NOTIFY")]
    [InlineData("SCMP_ACT_KILL")]
    public void A_filter_that_does_anything_but_allow_execveat_refuses(string action)
    {
        var profile = Profile("SCMP_ACT_ALLOW", Rule(action, "execveat"));
        if (action == "SCMP_ACT_NOTIFY") profile.ListenerPath = "/run/agent.sock";
        Assert.Contains("execveat", ExecStubPolicy.Refusal(WithFilter(profile), false));
    }

    [Fact]
    public void A_filter_that_looks_at_the_arguments_refuses_even_if_it_would_allow()
    {
        // Allowed only with fd 3: the stub's fd number is not known when the plan is made.
        var profile = Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", "execveat", null, Arg(0, "SCMP_CMP_EQ", 3)),
            Rule("SCMP_ACT_ALLOW", "read"), Rule("SCMP_ACT_ALLOW", "write"), Rule("SCMP_ACT_ALLOW", "close"),
            Rule("SCMP_ACT_ALLOW", "exit_group"));
        var program = Compile(profile);
        Assert.Equal(SeccompAbi.RET_ALLOW, BpfInterpreter.Run(program, SeccompAbi.AUDIT_ARCH_X86_64, Nr("execveat"), 3).Action);
        Assert.False(FilterProbe.AllowsRegardlessOfArgs(program, SeccompAbi.AUDIT_ARCH_X86_64, Nr("execveat")));
        Assert.True(FilterProbe.AllowsRegardlessOfArgs(program, SeccompAbi.AUDIT_ARCH_X86_64, Nr("read")));
        Assert.Contains("execveat", ExecStubPolicy.Refusal(WithFilter(profile), false));
    }

    [Fact]
    public void The_probe_answers_for_the_arch_asked()
    {
        var program = Compile(Profile("SCMP_ACT_ALLOW"));
        Assert.True(FilterProbe.AllowsRegardlessOfArgs(program, SeccompAbi.AUDIT_ARCH_X86_64, Nr("execveat")));
        Assert.False(FilterProbe.AllowsRegardlessOfArgs([], SeccompAbi.AUDIT_ARCH_X86_64, 0));
    }
}

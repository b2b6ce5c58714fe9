using Berth.Linux.Processes;
using Berth.Oci.Runtime;
using Berth.Runtime.Init;
using Berth.Runtime.Lifecycle;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Tests.Lifecycle;

/// <summary>
/// The container init as a jail program (docs/adr/0017): which configs it takes, and that the program
/// never names a path inside the (untrusted) rootfs in a path-based call: every mount lands on
/// /proc/self/fd/1000 of a target resolved with openat2(RESOLVE_IN_ROOT) (CVE-2021-30465). Pure.
/// </summary>
public class ContainerStubTests
{
    /// <summary>A real directory: a read-only root's flags are read from it (statvfs) when the program is compiled.</summary>
    private const string Rootfs = "/tmp";
    private const long Mount = 165, Open = 2, Mkdir = 83, Mknod = 133, Symlink = 88, Unlink = 87, Lchown = 94, Chdir = 80,
        Openat2 = 437, Execve = 59, Read = 0, Write = 1;

    /// <summary>`berth spec`'s config: root, the default capabilities, every default mount (cgroup included).</summary>
    private static InitPlan Plan(Action<Oci.Runtime.Spec>? edit = null)
    {
        var spec = DefaultSpec.Create(rootless: false);
        spec.Process!.Terminal = false;
        spec.Mounts!.Add(new Oci.Runtime.Mount { Destination = "/data/in", Type = "bind", Source = "/srv", Options = ["rbind", "ro"] });
        spec.Linux!.Devices = [new Device { Path = "/dev/fuse", Type = "c", Major = 10, Minor = 229 }];
        edit?.Invoke(spec);
        return PlanBuilder.Build(spec, "c1", "/", Rootfs, new PlanBuilder.Options { FifoPath = "/run/berth/c1/exec.fifo", LastCap = 40 });
    }

    [Fact]
    public void The_default_config_runs_as_the_stub()
    {
        Assert.Null(StubJail.ContainerUnsupported(Plan()));
    }

    [Fact]
    public void What_only_the_dotnet_init_does_is_refused_by_name()
    {
        Assert.Contains("terminal", StubJail.ContainerUnsupported(Plan(s => s.Process!.Terminal = true)));
        Assert.Contains("hooks", StubJail.ContainerUnsupported(Plan(s => s.Hooks = new Oci.Runtime.Hooks { CreateContainer = [new Hook { Path = "/bin/true" }] })));
        Assert.Contains("hooks", StubJail.ContainerUnsupported(Plan(s => s.Hooks = new Oci.Runtime.Hooks { Prestart = [new Hook { Path = "/bin/true" }] })));
        Assert.Null(StubJail.ContainerUnsupported(Plan(s => s.Hooks = new Oci.Runtime.Hooks { Poststart = [new Hook { Path = "/bin/true" }], Poststop = [new Hook { Path = "/bin/true" }] })));
        Assert.Contains("user namespaces", StubJail.ContainerUnsupported(Plan(s =>
        {
            s.Linux!.Namespaces!.Add(new LinuxNamespace { Type = "user" });
            s.Linux.UidMappings = [new IdMapping { ContainerID = 0, HostID = 100000, Size = 65536 }];
            s.Linux.GidMappings = [new IdMapping { ContainerID = 0, HostID = 100000, Size = 65536 }];
        })));
        Assert.Contains("sysctls", StubJail.ContainerUnsupported(Plan(s => s.Linux!.Sysctl = new Dictionary<string, string> { ["net.ipv4.ip_forward"] = "1" })));
        Assert.Contains("pid namespace", StubJail.ContainerUnsupported(Plan(s => s.Linux!.Namespaces!.RemoveAll(n => n.Type == "pid"))));
        Assert.Contains("/etc/secret", StubJail.ContainerUnsupported(Plan(s => s.Linux!.MaskedPaths!.Add("/etc/secret"))));
    }

    [Fact]
    public void No_path_based_call_names_a_path_inside_the_rootfs()
    {
        var p = StubJail.CompileContainer(Plan(), ["/sys/fs/cgroup/pids/berth/c1", "/sys/fs/cgroup/memory/berth/c1", "/sys/fs/cgroup/unified/berth/c1"], lastBestEffort: true);
        int mounts = 0, resolves = 0;
        for (int i = 0; i < p.Count; i++)
        {
            var (nr, args) = p.Step(i);
            string? Path(int arg) => args[arg].Deref ? null : p.StringAt(args[arg].Value);
            switch (nr)
            {
                case Mount:
                    mounts++;
                    var target = Path(1);
                    Assert.NotNull(target);
                    // The rootfs itself (bound onto itself, a trusted bundle path) or a resolved fd; after
                    // pivot_root, "." (the old root), "/" and the kernel's /proc and /sys.
                    Assert.True(target == Rootfs || target == "/proc/self/fd/1000" || target is "." or "/" ||
                                target.StartsWith("/proc/", StringComparison.Ordinal) || target.StartsWith("/sys/", StringComparison.Ordinal),
                        $"step {i} ({p.Describe(i)}) mounts on {target}");
                    break;
                case Open or Mkdir or Mknod or Symlink or Unlink or Lchown or Chdir:
                    var path = Path(nr == Symlink ? 1 : 0);
                    Assert.False(path is not null && path.StartsWith(Rootfs + "/", StringComparison.Ordinal),
                        $"step {i} ({p.Describe(i)}) names {path} inside the rootfs");
                    break;
                case Openat2:
                    resolves++;
                    Assert.True(args[3].Value == 24, $"step {i}: open_how size");
                    break;
            }
        }
        Assert.True(mounts > 10, $"only {mounts} mounts");
        Assert.True(resolves > mounts / 2, $"only {resolves} openat2 resolutions for {mounts} mounts");
    }

    [Fact]
    public void Init_waits_on_the_fifo_then_execs_the_program_itself()
    {
        var p = StubJail.CompileContainer(Plan(s => s.Process!.Args = ["sh", "-c", "true"]), []);
        var steps = Enumerable.Range(0, p.Count).Select(i => (i, p.Step(i).Nr, What: p.Describe(i))).ToList();
        int ready = steps.FindIndex(s => s.What == "report ready");
        int wait = steps.FindIndex(s => s.What == "wait for start");
        int exec = steps.FindIndex(s => s.Nr == Execve);
        Assert.True(ready > 0 && wait > ready && exec > wait, string.Join('\n', steps));
        Assert.Equal(Read, steps[wait].Nr);
        Assert.Equal(Write, steps[ready].Nr);
        // No reaper and no fork after ready: the program is PID 1.
        Assert.DoesNotContain(steps.Skip(ready), s => s.Nr < 0);
        Assert.Contains(steps, s => s.What.StartsWith("capset", StringComparison.Ordinal));
        Assert.Contains(steps, s => s.What == "mark fds close-on-exec");
    }
}

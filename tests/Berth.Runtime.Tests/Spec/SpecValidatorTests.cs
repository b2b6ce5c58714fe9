namespace Berth.Runtime.Tests.Spec;

using Berth.Oci.Runtime;
using Berth.Runtime.Spec;
using Xunit;
using OciSpec = Berth.Oci.Runtime.Spec;

public class SpecValidatorTests
{
    private static OciSpec Valid() => DefaultSpec.Create(rootless: false);

    private static SpecException Fails(Action<OciSpec> change, string field, params string[] parts)
    {
        using var b = new TempBundle();
        var spec = Valid();
        change(spec);
        var e = Assert.Throws<SpecException>(() => SpecValidator.Validate(spec, b.Dir));
        Assert.StartsWith(field + ": ", e.Message);
        Assert.Equal(field, e.Field);
        foreach (var p in parts) Assert.Contains(p, e.Message);
        return e;
    }

    private static IReadOnlyList<string> Passes(Action<OciSpec> change)
    {
        using var b = new TempBundle();
        var spec = Valid();
        change(spec);
        return SpecValidator.Validate(spec, b.Dir);
    }

    private static void AddNs(OciSpec s, string type, string? path = null) =>
        s.Linux!.Namespaces!.Add(new LinuxNamespace { Type = type, Path = path });

    private static void RemoveNs(OciSpec s, string type) => s.Linux!.Namespaces!.RemoveAll(n => n.Type == type);

    [Fact]
    public void Full_config_is_valid()
    {
        using var b = new TempBundle();
        var spec = SpecLoader.Parse(FullConfig.Json);
        Assert.Empty(SpecValidator.Validate(spec, b.Dir));
    }

    // root

    [Fact]
    public void Root_missing() => Fails(s => s.Root = null, "root", "missing");

    [Fact]
    public void Root_path_empty() => Fails(s => s.Root!.Path = "", "root.path", "empty");

    [Fact]
    public void Rootfs_that_does_not_exist()
    {
        using var b = new TempBundle(withRootfs: false);
        var e = Assert.Throws<SpecException>(() => SpecValidator.Validate(Valid(), b.Dir));
        Assert.Equal($"root.path: rootfs {b.Rootfs} does not exist", e.Message);
    }

    [Fact]
    public void Rootfs_that_is_a_file()
    {
        using var b = new TempBundle(withRootfs: false);
        File.WriteAllText(b.Rootfs, "");
        var e = Assert.Throws<SpecException>(() => SpecValidator.Validate(Valid(), b.Dir));
        Assert.Equal($"root.path: {b.Rootfs} is not a directory", e.Message);
    }

    [Fact]
    public void Rootfs_path_is_absolute_and_symlink_free()
    {
        using var b = new TempBundle(withRootfs: false);
        var real = Directory.CreateDirectory(Path.Combine(b.Dir, "real", "fs")).FullName;
        Directory.CreateSymbolicLink(Path.Combine(b.Dir, "hop"), "real");
        Directory.CreateSymbolicLink(b.Rootfs, "hop/./fs/../fs");

        var spec = Valid();
        Assert.Equal(real, SpecValidator.RootfsPath(spec, b.Dir));
        // relative bundle path, trailing slash
        var relBundle = Path.GetRelativePath(Environment.CurrentDirectory, b.Dir) + "/";
        Assert.Equal(real, SpecValidator.RootfsPath(spec, relBundle));
        // absolute root.path is used as is
        spec.Root!.Path = Path.Combine(b.Dir, "hop", "fs");
        Assert.Equal(real, SpecValidator.RootfsPath(spec, "/nonexistent-bundle"));
    }

    [Fact]
    public void Rootfs_symlink_loop_does_not_exist()
    {
        using var b = new TempBundle(withRootfs: false);
        File.CreateSymbolicLink(b.Rootfs, "rootfs");
        var e = Assert.Throws<SpecException>(() => SpecValidator.RootfsPath(Valid(), b.Dir));
        Assert.Contains("does not exist", e.Message);
    }

    // process

    [Fact]
    public void Process_missing() => Fails(s => s.Process = null, "process", "missing");

    [Fact]
    public void Args_empty()
    {
        Fails(s => s.Process!.Args = [], "process.args", "empty");
        Fails(s => s.Process!.Args = null, "process.args", "empty");
        Fails(s => s.Process!.Args = [""], "process.args[0]", "empty");
    }

    [Fact]
    public void Args_with_nul() => Fails(s => s.Process!.Args = ["sh", "a\0b"], "process.args[1]", "\"a\\0b\"", "NUL");

    [Fact]
    public void Cwd_relative() => Fails(s => s.Process!.Cwd = "rel", "process.cwd", "\"rel\" must be an absolute path");

    [Fact]
    public void Cwd_empty() => Fails(s => s.Process!.Cwd = "", "process.cwd", "empty");

    [Fact]
    public void Env_without_equals() => Fails(s => s.Process!.Env!.Add("FOO"), "process.env[2]", "\"FOO\"");

    [Fact]
    public void Env_with_empty_name() => Fails(s => s.Process!.Env!.Insert(0, "=x"), "process.env[0]", "\"=x\"", "empty name");

    [Theory]
    [InlineData("bounding")]
    [InlineData("effective")]
    [InlineData("inheritable")]
    [InlineData("permitted")]
    [InlineData("ambient")]
    public void Unknown_capability_in_each_set(string set)
    {
        List<string> bad = ["CAP_KILL", "CAP_FOO"];
        Fails(s =>
        {
            var c = s.Process!.Capabilities!;
            switch (set)
            {
                case "bounding": c.Bounding = bad; break;
                case "effective": c.Effective = bad; break;
                case "inheritable": c.Inheritable = bad; break;
                case "permitted": c.Permitted = bad; break;
                default: c.Ambient = bad; break;
            }
        }, $"process.capabilities.{set}[1]", "unknown capability \"CAP_FOO\"");
    }

    [Fact]
    public void Capability_names_are_exact()
    {
        Fails(s => s.Process!.Capabilities!.Bounding = ["cap_kill"], "process.capabilities.bounding[0]", "\"cap_kill\"");
        Fails(s => s.Process!.Capabilities!.Bounding = ["KILL"], "process.capabilities.bounding[0]", "\"KILL\"");
        Passes(s => s.Process!.Capabilities!.Bounding = ["CAP_CHECKPOINT_RESTORE", "CAP_BPF", "CAP_PERFMON"]);
    }

    [Fact]
    public void Unknown_rlimit() =>
        Fails(s => s.Process!.Rlimits = [new Rlimit { Type = "RLIMIT_FOO", Hard = 1, Soft = 1 }],
            "process.rlimits[0].type", "unknown rlimit \"RLIMIT_FOO\"");

    [Fact]
    public void Rlimit_soft_above_hard() =>
        Fails(s => s.Process!.Rlimits = [new Rlimit { Type = "RLIMIT_CORE", Hard = 5, Soft = 10 }],
            "process.rlimits[0]", "soft limit 10 is above hard limit 5");

    [Fact]
    public void Rlimit_twice() =>
        Fails(s => s.Process!.Rlimits!.Add(new Rlimit { Type = "RLIMIT_NOFILE", Hard = 5, Soft = 5 }),
            "process.rlimits[1].type", "\"RLIMIT_NOFILE\"", "process.rlimits[0]");

    [Fact]
    public void Umask_range()
    {
        Fails(s => s.Process!.User.Umask = 512, "process.user.umask", "512", "01000", "0777");
        Passes(s => s.Process!.User.Umask = 511);
        Passes(s => s.Process!.User.Umask = 0);
    }

    [Fact]
    public void Oom_score_adj_range()
    {
        Fails(s => s.Process!.OomScoreAdj = 1001, "process.oomScoreAdj", "1001");
        Fails(s => s.Process!.OomScoreAdj = -1001, "process.oomScoreAdj", "-1001");
        Passes(s => s.Process!.OomScoreAdj = -1000);
    }

    [Fact]
    public void Io_priority()
    {
        Fails(s => s.Process!.IoPriority = new IoPriority { Class = "IOPRIO_CLASS_X" }, "process.ioPriority.class", "\"IOPRIO_CLASS_X\"");
        Fails(s => s.Process!.IoPriority = new IoPriority { Class = "IOPRIO_CLASS_BE", Priority = 8 }, "process.ioPriority.priority", "8");
    }

    [Fact]
    public void Scheduler()
    {
        Fails(s => s.Process!.Scheduler = new Scheduler { Policy = "SCHED_X" }, "process.scheduler.policy", "\"SCHED_X\"");
        Fails(s => s.Process!.Scheduler = new Scheduler { Policy = "SCHED_OTHER", Nice = 20 }, "process.scheduler.nice", "20");
        Fails(s => s.Process!.Scheduler = new Scheduler { Policy = "SCHED_OTHER", Priority = 5 }, "process.scheduler.priority", "5");
        Fails(s => s.Process!.Scheduler = new Scheduler { Policy = "SCHED_RR", Runtime = 5 }, "process.scheduler", "SCHED_DEADLINE");
        Passes(s => s.Process!.Scheduler = new Scheduler { Policy = "SCHED_FIFO", Priority = 50 });
    }

    // hostname / uts

    [Fact]
    public void Hostname_needs_uts_namespace() =>
        Fails(s => RemoveNs(s, "uts"), "hostname", "\"berth\"", "uts namespace");

    [Fact]
    public void Domainname_needs_uts_namespace() =>
        Fails(s => { s.Hostname = null; s.Domainname = "example.org"; RemoveNs(s, "uts"); }, "domainname", "\"example.org\"");

    [Fact]
    public void Joined_uts_namespace_allows_hostname() =>
        Passes(s => { RemoveNs(s, "uts"); AddNs(s, "uts", "/proc/1/ns/uts"); });

    // namespaces

    [Fact]
    public void Unknown_namespace_type() =>
        Fails(s => s.Linux!.Namespaces![2].Type = "foo", "linux.namespaces[2].type", "unknown namespace type \"foo\"");

    [Fact]
    public void Namespace_twice() => Fails(s => AddNs(s, "pid"), "linux.namespaces", "\"pid\" appears twice");

    [Fact]
    public void Namespace_path_relative() =>
        Fails(s => s.Linux!.Namespaces![1].Path = "proc/1/ns/net", "linux.namespaces[1].path", "\"proc/1/ns/net\" must be an absolute path");

    [Fact]
    public void No_linux_section_is_fine_without_hostname() => Passes(s => { s.Linux = null; s.Hostname = null; });

    [Fact]
    public void New_user_namespace_needs_both_mappings()
    {
        Fails(s => AddNs(s, "user"), "linux.uidMappings", "a user namespace needs uidMappings and gidMappings");
        Fails(s => { AddNs(s, "user"); s.Linux!.UidMappings = [new IdMapping { Size = 1 }]; },
            "linux.gidMappings", "a user namespace needs uidMappings and gidMappings");
    }

    [Fact]
    public void Mappings_without_user_namespace()
    {
        Fails(s => s.Linux!.UidMappings = [new IdMapping { Size = 1 }], "linux.uidMappings", "user namespace");
        Fails(s => s.Linux!.GidMappings = [new IdMapping { Size = 1 }], "linux.gidMappings", "user namespace");
    }

    [Fact]
    public void Joined_user_namespace_with_mappings_is_a_warning()
    {
        var warnings = Passes(s =>
        {
            AddNs(s, "user", "/proc/1/ns/user");
            s.Linux!.UidMappings = [new IdMapping { Size = 1 }];
        });
        Assert.Contains(warnings, w => w.StartsWith("linux.uidMappings:") && w.Contains("/proc/1/ns/user"));
        Assert.Empty(Passes(s => AddNs(s, "user", "/proc/1/ns/user")));
    }

    [Fact]
    public void Mapping_ranges()
    {
        static void WithMaps(OciSpec s, IdMapping m)
        {
            AddNs(s, "user");
            s.Linux!.UidMappings = [m];
            s.Linux.GidMappings = [new IdMapping { Size = 1 }];
        }
        Fails(s => WithMaps(s, new IdMapping { ContainerID = 0, HostID = 1000, Size = 0 }), "linux.uidMappings[0].size", "0");
        Fails(s => WithMaps(s, new IdMapping { ContainerID = 0, HostID = uint.MaxValue, Size = 2 }), "linux.uidMappings[0]", "4294967295", "size 2");
        Passes(s => WithMaps(s, new IdMapping { ContainerID = 0, HostID = 100000, Size = 65536 }));
        Fails(s =>
        {
            WithMaps(s, new IdMapping { Size = 1 });
            s.Linux!.UidMappings = [.. Enumerable.Range(0, 341).Select(i => new IdMapping { ContainerID = (uint)i, HostID = (uint)i, Size = 1 })];
        }, "linux.uidMappings", "341");
    }

    [Fact]
    public void Time_offsets()
    {
        var offsets = new Dictionary<string, TimeOffset> { ["monotonic"] = new() { Secs = 1 } };
        Fails(s => s.Linux!.TimeOffsets = offsets, "linux.timeOffsets", "time namespace");
        Fails(s => { AddNs(s, "time", "/proc/1/ns/time"); s.Linux!.TimeOffsets = offsets; }, "linux.timeOffsets", "/proc/1/ns/time");
        Fails(s => { AddNs(s, "time"); s.Linux!.TimeOffsets = new() { ["realtime"] = new() }; }, "linux.timeOffsets", "\"realtime\"");
        Passes(s => { AddNs(s, "time"); s.Linux!.TimeOffsets = offsets; });
    }

    // sysctl

    [Theory]
    [InlineData("kernel.msgmax")]
    [InlineData("kernel.msgmnb")]
    [InlineData("kernel.msgmni")]
    [InlineData("kernel.sem")]
    [InlineData("kernel.shmall")]
    [InlineData("kernel.shmmax")]
    [InlineData("kernel.shmmni")]
    [InlineData("kernel.shm_rmid_forced")]
    [InlineData("fs.mqueue.msg_max")]
    [InlineData("fs/mqueue/queues_max")]
    public void Ipc_sysctls_need_an_ipc_namespace(string key)
    {
        Passes(s => s.Linux!.Sysctl = new() { [key] = "1" });
        Fails(s => { s.Linux!.Sysctl = new() { [key] = "1" }; RemoveNs(s, "ipc"); }, "linux.sysctl", $"\"{key}\"", "ipc namespace");
    }

    [Theory]
    [InlineData("net.ipv4.ip_forward")]
    [InlineData("net.ipv4.conf.eth0/100.rp_filter")]
    [InlineData("net/ipv4/conf/eth0.100/rp_filter")]
    public void Net_sysctls_need_a_network_namespace(string key)
    {
        Passes(s => s.Linux!.Sysctl = new() { [key] = "1" });
        Passes(s => { s.Linux!.Sysctl = new() { [key] = "1" }; RemoveNs(s, "network"); AddNs(s, "network", "/run/netns/x"); });
        Fails(s => { s.Linux!.Sysctl = new() { [key] = "1" }; RemoveNs(s, "network"); }, "linux.sysctl", $"\"{key}\"", "network namespace");
    }

    [Fact]
    public void Net_sysctls_are_refused_in_the_hosts_network_namespace() =>
        Fails(s =>
        {
            s.Linux!.Sysctl = new() { ["net.ipv4.ip_forward"] = "1" };
            RemoveNs(s, "network");
            AddNs(s, "network", "/proc/self/ns/net");
        }, "linux.sysctl", "host's network namespace");

    [Fact]
    public void Uts_sysctls()
    {
        Fails(s => s.Linux!.Sysctl = new() { ["kernel.hostname"] = "x" }, "linux.sysctl", "\"kernel.hostname\"", "\"hostname\" field");
        Passes(s => s.Linux!.Sysctl = new() { ["kernel.domainname"] = "x" });
        Fails(s => { s.Hostname = null; RemoveNs(s, "uts"); s.Linux!.Sysctl = new() { ["kernel.domainname"] = "x" }; },
            "linux.sysctl", "\"kernel.domainname\"", "uts namespace");
    }

    [Fact]
    public void User_sysctls_need_a_user_namespace()
    {
        Fails(s => s.Linux!.Sysctl = new() { ["user.max_user_namespaces"] = "0" }, "linux.sysctl", "\"user.max_user_namespaces\"", "user namespace");
        Passes(s => { s.Linux!.Sysctl = new() { ["user.max_user_namespaces"] = "0" }; AddNs(s, "user", "/proc/1/ns/user"); });
    }

    [Theory]
    [InlineData("kernel.foo")]
    [InlineData("vm.swappiness")]
    [InlineData("kernel.pid_max")]
    [InlineData("fs.file-max")]
    public void Host_wide_sysctls_are_refused(string key) =>
        Fails(s => s.Linux!.Sysctl = new() { [key] = "1" }, "linux.sysctl", $"\"{key}\" cannot be set");

    // mounts

    [Fact]
    public void Mount_destination_empty() => Fails(s => s.Mounts![3].Destination = "", "mounts[3].destination", "empty");

    [Fact]
    public void Relative_mount_destination_is_a_warning_as_in_runc()
    {
        var warnings = Passes(s => s.Mounts![3].Destination = "rel/path");
        Assert.Equal(["mounts[3].destination: \"rel/path\" is not absolute; taken as /rel/path (deprecated by the runtime spec)"], warnings);
    }

    [Fact]
    public void Mount_without_type_must_be_a_bind()
    {
        Fails(s => s.Mounts![0].Type = null, "mounts[0].type", "\"/proc\"");
        Passes(s => s.Mounts!.Add(new Mount { Destination = "/data", Source = "/srv", Options = ["rbind"] }));
        Passes(s => s.Mounts!.Add(new Mount { Destination = "/data", Source = "data", Type = "bind" }));
    }

    [Fact]
    public void Bind_mount_needs_a_source() =>
        Fails(s => s.Mounts!.Add(new Mount { Destination = "/data", Type = "none", Options = ["bind"] }), "mounts[7].source", "\"/data\"");

    [Fact]
    public void Bind_mount_with_filesystem_data() =>
        Fails(s => s.Mounts!.Add(new Mount { Destination = "/data", Source = "/srv", Options = ["bind", "ro", "mode=755"] }),
            "mounts[7].options", "\"mode=755\"");

    [Fact]
    public void Id_mapped_mounts()
    {
        List<IdMapping> map = [new IdMapping { HostID = 100000, Size = 65536 }];
        Fails(s => s.Mounts![1].Options!.Add("idmap"), "mounts[1].options", "\"/dev\"", "bind");
        Fails(s => s.Mounts!.Add(new Mount { Destination = "/d", Source = "/s", Options = ["bind", "idmap"] }),
            "mounts[7].uidMappings", "uidMappings and gidMappings");
        Fails(s => s.Mounts!.Add(new Mount { Destination = "/d", Source = "/s", Options = ["bind"], UidMappings = map }),
            "mounts[7].gidMappings", "uidMappings and gidMappings");
        Fails(s => s.Mounts!.Add(new Mount { Destination = "/d", Source = "/s", Options = ["bind"], UidMappings = map, GidMappings = [new IdMapping()] }),
            "mounts[7].gidMappings[0].size", "0");
        Passes(s => s.Mounts!.Add(new Mount { Destination = "/d", Source = "/s", Options = ["rbind", "ridmap"], UidMappings = map, GidMappings = map }));
    }

    [Fact]
    public void Bind_source_is_relative_to_the_bundle()
    {
        Assert.Equal("/abs", SpecValidator.BindSourcePath(new Mount { Source = "/abs" }, "/b"));
        Assert.Equal("/b/data", SpecValidator.BindSourcePath(new Mount { Source = "data" }, "/b"));
        Assert.Equal("/b/x/data", SpecValidator.BindSourcePath(new Mount { Source = "./data" }, "/b/x"));
    }

    // devices, paths, propagation

    [Theory]
    [InlineData("x")]
    [InlineData("")]
    [InlineData("C")]
    public void Device_type(string type) =>
        Fails(s => s.Linux!.Devices = [new Device { Path = "/dev/x", Type = type, Major = 1, Minor = 3 }],
            "linux.devices[0].type", $"\"{type}\"");

    [Fact]
    public void Device_path_relative() =>
        Fails(s => s.Linux!.Devices = [new Device { Path = "dev/x", Type = "c", Major = 1, Minor = 3 }],
            "linux.devices[0].path", "\"dev/x\" must be an absolute path");

    [Fact]
    public void Device_numbers_and_mode()
    {
        Fails(s => s.Linux!.Devices = [new Device { Path = "/dev/x", Type = "b", Major = -1 }], "linux.devices[0]", "major -1");
        Fails(s => s.Linux!.Devices = [new Device { Path = "/dev/x", Type = "c", FileMode = 0x1FFFF }], "linux.devices[0].fileMode", "0377777");
        // podman writes the type bits too (020666 for a char device, 060660 for a block device), as runc accepts.
        Passes(s => s.Linux!.Devices = [new Device { Path = "/dev/c", Type = "c", Major = 1, Minor = 3, FileMode = 0x21B6 },
            new Device { Path = "/dev/b", Type = "b", Major = 7, Minor = 0, FileMode = 0x61B0 }]);
        Fails(s => s.Linux!.Devices = [new Device { Path = "/dev/x", Type = "c", Major = 1, Minor = 3, FileMode = 0x61B6 }], "linux.devices[0].fileMode", "060666");
        Passes(s => s.Linux!.Devices = [new Device { Path = "/dev/fifo", Type = "p" }, new Device { Path = "/dev/x", Type = "u", Major = 4, Minor = 5, FileMode = 0x1B6 }]);
    }

    [Fact]
    public void Device_cgroup_rules()
    {
        Fails(s => s.Linux!.Resources!.Devices!.Add(new DeviceCgroup { Allow = true, Type = "p" }), "linux.resources.devices[1].type", "\"p\"");
        Fails(s => s.Linux!.Resources!.Devices!.Add(new DeviceCgroup { Allow = true, Access = "rwx" }), "linux.resources.devices[1].access", "\"rwx\"");
    }

    [Fact]
    public void Masked_and_readonly_paths()
    {
        Fails(s => s.Linux!.MaskedPaths!.Add("proc/kcore"), "linux.maskedPaths[10]", "\"proc/kcore\"");
        Fails(s => s.Linux!.ReadonlyPaths![0] = "x", "linux.readonlyPaths[0]", "\"x\"");
        Fails(s => RemoveNs(s, "mount"), "linux.maskedPaths", "mount namespace");
    }

    [Fact]
    public void Rootfs_propagation()
    {
        Fails(s => s.Linux!.RootfsPropagation = "rprivat", "linux.rootfsPropagation", "\"rprivat\"");
        foreach (var p in new[] { "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable" })
            Passes(s => s.Linux!.RootfsPropagation = p);
    }

    [Fact]
    public void Personality() =>
        Fails(s => s.Linux!.Personality = new Personality { Domain = "LINUX64" }, "linux.personality.domain", "\"LINUX64\"");

    [Fact]
    public void Seccomp()
    {
        Passes(s => s.Linux!.Seccomp = new Seccomp());
        Fails(s => s.Linux!.Seccomp = new Seccomp { DefaultAction = "SCMP_ACT_NOPE" }, "linux.seccomp.defaultAction", "\"SCMP_ACT_NOPE\"");
        Fails(s => s.Linux!.Seccomp = new Seccomp { DefaultAction = "SCMP_ACT_ALLOW", Flags = ["X"] }, "linux.seccomp.flags[0]", "\"X\"");
        Fails(s => s.Linux!.Seccomp = new Seccomp
        {
            DefaultAction = "SCMP_ACT_ALLOW",
            Syscalls = [new SeccompSyscall { Names = ["mount"], Action = "SCMP_ACT_ERRNO", Args = [new SeccompArg { Index = 6, Op = "SCMP_CMP_EQ" }] }],
        }, "linux.seccomp.syscalls[0].args[0].index", "6");
        Fails(s => s.Linux!.Seccomp = new Seccomp
        {
            DefaultAction = "SCMP_ACT_ALLOW",
            Syscalls = [new SeccompSyscall { Names = ["mount"], Action = "SCMP_ACT_ERRNO", Args = [new SeccompArg { Op = "SCMP_CMP_XX" }] }],
        }, "linux.seccomp.syscalls[0].args[0].op", "\"SCMP_CMP_XX\"");
        Fails(s => s.Linux!.Seccomp = new Seccomp { DefaultAction = "SCMP_ACT_ALLOW", Syscalls = [new SeccompSyscall { Action = "SCMP_ACT_ERRNO" }] },
            "linux.seccomp.syscalls[0].names", "empty");
        Fails(s => s.Linux!.Seccomp = new Seccomp { DefaultAction = "SCMP_ACT_NOTIFY" }, "linux.seccomp.listenerPath", "listenerPath");
    }

    // hooks

    [Theory]
    [InlineData("prestart")]
    [InlineData("createRuntime")]
    [InlineData("createContainer")]
    [InlineData("startContainer")]
    [InlineData("poststart")]
    [InlineData("poststop")]
    public void Hook_path_must_be_absolute(string kind)
    {
        Fails(s =>
        {
            var h = s.Hooks = new Hooks();
            List<Hook> list = [new Hook { Path = "/bin/true" }, new Hook { Path = "bin/hook" }];
            switch (kind)
            {
                case "prestart": h.Prestart = list; break;
                case "createRuntime": h.CreateRuntime = list; break;
                case "createContainer": h.CreateContainer = list; break;
                case "startContainer": h.StartContainer = list; break;
                case "poststart": h.Poststart = list; break;
                default: h.Poststop = list; break;
            }
        }, $"hooks.{kind}[1].path", "\"bin/hook\" must be an absolute path");
    }

    [Fact]
    public void Hook_timeout_must_be_positive()
    {
        Fails(s => s.Hooks = new Hooks { Poststop = [new Hook { Path = "/h", Timeout = 0 }] }, "hooks.poststop[0].timeout", "0");
        Fails(s => s.Hooks = new Hooks { Poststop = [new Hook { Path = "/h", Env = ["X"] }] }, "hooks.poststop[0].env[0]", "\"X\"");
    }

    [Fact]
    public void Values_are_quoted_and_escaped() =>
        Fails(s => s.Process!.Cwd = "we\"ird", "process.cwd", "\"we\\\"ird\"");
}

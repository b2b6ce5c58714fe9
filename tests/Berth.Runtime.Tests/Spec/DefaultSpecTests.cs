namespace Berth.Runtime.Tests.Spec;

using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Oci;
using Berth.Runtime.Spec;
using Xunit;

public class DefaultSpecTests
{
    // `runc spec` and `runc spec --rootless` output of runc 1.1.5 (Debian 12), run as root (so the rootless
    // mappings are for uid/gid 0), compacted. runc 1.2 and later write the same minus "ambient".
    public const string RuncSpec = """
        {"ociVersion":"1.0.2-dev","process":{"terminal":true,"user":{"uid":0,"gid":0},"args":["sh"],"env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","TERM=xterm"],"cwd":"/","capabilities":{"bounding":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"effective":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"permitted":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"ambient":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}],"noNewPrivileges":true},"root":{"path":"rootfs","readonly":true},"hostname":"runc","mounts":[{"destination":"/proc","type":"proc","source":"proc"},{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},{"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]},{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]},{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]},{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]}],"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"}]},"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}],"maskedPaths":["/proc/acpi","/proc/asound","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/sys/firmware","/proc/scsi"],"readonlyPaths":["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]}}
        """;

    public const string RuncRootlessSpec = """
        {"ociVersion":"1.0.2-dev","process":{"terminal":true,"user":{"uid":0,"gid":0},"args":["sh"],"env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","TERM=xterm"],"cwd":"/","capabilities":{"bounding":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"effective":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"permitted":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"ambient":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}],"noNewPrivileges":true},"root":{"path":"rootfs","readonly":true},"hostname":"runc","mounts":[{"destination":"/proc","type":"proc","source":"proc"},{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]},{"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]},{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]},{"destination":"/sys","type":"none","source":"/sys","options":["rbind","nosuid","noexec","nodev","ro"]},{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]}],"linux":{"uidMappings":[{"containerID":0,"hostID":0,"size":1}],"gidMappings":[{"containerID":0,"hostID":0,"size":1}],"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"user"}],"maskedPaths":["/proc/acpi","/proc/asound","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/sys/firmware","/proc/scsi"],"readonlyPaths":["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]}}
        """;

    // What berth writes differs from runc only where meant to: its own version and hostname, and no
    // ambient capabilities (dropped by runc 1.2: with noNewPrivileges they only surprise non-root users).
    private static JsonNode Expected(string runc, uint uid = 0, uint gid = 0)
    {
        var doc = JsonNode.Parse(runc)!;
        doc["ociVersion"] = "1.3.0";
        doc["hostname"] = "berth";
        doc["process"]!["capabilities"]!.AsObject().Remove("ambient");
        if (doc["linux"]!["uidMappings"] is JsonArray uids) uids[0]!["hostID"] = uid;
        if (doc["linux"]!["gidMappings"] is JsonArray gids) gids[0]!["hostID"] = gid;
        return doc;
    }

    private static JsonNode Written(Oci.Runtime.Spec spec) => JsonNode.Parse(JsonSerializer.Serialize(spec, OciJson.Indented.Spec))!;

    [Fact]
    public void Default_spec_is_what_runc_spec_writes()
    {
        var written = Written(DefaultSpec.Create(rootless: false));
        Assert.True(JsonNode.DeepEquals(Expected(RuncSpec), written), written.ToJsonString());
    }

    [Fact]
    public void Rootless_spec_is_what_runc_spec_rootless_writes()
    {
        var written = Written(DefaultSpec.Create(rootless: true));
        Assert.True(JsonNode.DeepEquals(Expected(RuncRootlessSpec), written), written.ToJsonString());
    }

    [Fact]
    public void Rootless_spec_maps_root_to_the_given_ids()
    {
        var written = Written(DefaultSpec.Create(rootless: true, uid: 1000, gid: 1001));
        Assert.True(JsonNode.DeepEquals(Expected(RuncRootlessSpec, 1000, 1001), written), written.ToJsonString());
    }

    [Fact]
    public void Rootless_spec_has_a_user_namespace_no_network_namespace_and_no_cgroup_rules()
    {
        var spec = DefaultSpec.Create(rootless: true, uid: 1000, gid: 1000);
        var types = spec.Linux!.Namespaces!.Select(n => n.Type).ToArray();
        Assert.Equal(["pid", "ipc", "uts", "mount", "user"], types);
        Assert.Null(spec.Linux.Resources);
        var sys = spec.Mounts!.Single(m => m.Destination == "/sys");
        Assert.Equal("/sys", sys.Source);
        Assert.Contains("rbind", sys.Options!);
        Assert.DoesNotContain(spec.Mounts!.SelectMany(m => m.Options ?? []), o => o.StartsWith("gid=") || o.StartsWith("uid="));
    }

    [Fact]
    public void Cgroup_namespace_is_added_on_request_as_runc_does_on_cgroup2_hosts()
    {
        Assert.Equal("cgroup", DefaultSpec.Create(false, cgroupNamespace: true).Linux!.Namespaces!.Last().Type);
        var rootless = DefaultSpec.Create(true, 1000, 1000, cgroupNamespace: true).Linux!.Namespaces!.Select(n => n.Type);
        Assert.Equal(["pid", "ipc", "uts", "mount", "cgroup", "user"], rootless);
    }

    [Fact]
    public void Default_specs_load_and_validate()
    {
        using var b = new TempBundle();
        foreach (var spec in new[] { DefaultSpec.Create(false), DefaultSpec.Create(true, 1000, 1000), DefaultSpec.Create(true, 0, 0, true) })
        {
            b.WriteConfig(spec);
            var loaded = SpecLoader.Load(b.Dir);
            Assert.Empty(SpecValidator.Validate(loaded, b.Dir));
        }
    }

    [Fact]
    public void Each_call_returns_a_fresh_document()
    {
        var a = DefaultSpec.Create(false);
        a.Process!.Args!.Add("x");
        a.Process.Capabilities!.Bounding!.Clear();
        var b = DefaultSpec.Create(false);
        Assert.Equal(["sh"], b.Process!.Args!);
        Assert.Equal(3, b.Process.Capabilities!.Effective!.Count);
    }
}

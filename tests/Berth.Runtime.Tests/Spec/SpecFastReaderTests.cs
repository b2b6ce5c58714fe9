namespace Berth.Runtime.Tests.Spec;

using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Oci;
using Berth.Runtime.Spec;
using Xunit;

/// <summary>
/// The hand-written config.json reader must build exactly what the source-generated deserializer builds,
/// and decline (so the serializer's precise errors are kept) wherever the serializer would fail.
/// </summary>
public class SpecFastReaderTests
{
    private static string Write(Oci.Runtime.Spec spec) => JsonSerializer.Serialize(spec, OciJson.Default.Spec);

    private static Oci.Runtime.Spec? Slow(byte[] json)
    {
        try { return JsonSerializer.Deserialize(json, OciJson.Default.Spec); }
        catch (JsonException) { return null; }
    }

    /// <summary>The fast reader accepts <paramref name="json"/> and agrees with the serializer.</summary>
    private static Oci.Runtime.Spec Same(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        Assert.True(SpecFastReader.TryRead(bytes, out var fast), $"the fast reader declined:\n{json}");
        var slow = Slow(bytes);
        Assert.NotNull(slow);
        Assert.Equal(Write(slow), Write(fast));
        return fast;
    }

    private static void Declines(string json) =>
        Assert.False(SpecFastReader.TryRead(Encoding.UTF8.GetBytes(json), out _), $"the fast reader accepted:\n{json}");

    // Objects whose keys are data (dictionaries), not property names.
    private static readonly HashSet<string> DictionaryFields =
        new(StringComparer.OrdinalIgnoreCase) { "annotations", "sysctl", "unified", "rdma", "netDevices", "timeOffsets" };

    /// <summary>Rebuilds a document, renaming every property (not dictionary keys) and adding fields to every model object.</summary>
    private static JsonNode? Transform(JsonNode? node, Func<string, string> rename, Func<JsonObject>? extra, bool isDictionary = false)
    {
        switch (node)
        {
            case JsonObject o:
                var copy = new JsonObject();
                foreach (var (k, v) in o)
                {
                    var child = Transform(v, rename, extra, !isDictionary && DictionaryFields.Contains(k));
                    copy[isDictionary ? k : rename(k)] = child;
                }
                if (!isDictionary && extra is not null)
                    foreach (var (k, v) in extra()) copy[k] = v?.DeepClone();
                return copy;
            case JsonArray a:
                return new JsonArray(a.Select(e => Transform(e, rename, extra)).ToArray());
            default:
                return node?.DeepClone();
        }
    }

    [Fact]
    public void Full_config()
    {
        Same(FullConfig.Json);
        Same(Supplement);
    }

    // What FullConfig leaves out (a namespace's path), so that together they set every field.
    private const string Supplement = """
        {"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"network","path":"/run/netns/x"}]}}
        """;

    /// <summary>
    /// Full_config only proves the fast reader knows every field if FullConfig (with the supplement) sets every
    /// field of every model type: a field added to the model (and so to FullConfig) but not to the fast reader
    /// fails Full_config.
    /// </summary>
    [Fact]
    public void Full_config_sets_every_field_of_the_model()
    {
        var covered = new HashSet<(Type, string)>();
        var seen = new Dictionary<(Type, string), string>();
        void Check(Type type, List<JsonNode> nodes, string path)
        {
            var info = OciJson.Default.GetTypeInfo(type)!;
            if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>))
            {
                Check(type.GetGenericArguments()[0], nodes.SelectMany(n => n.AsArray()).OfType<JsonNode>().ToList(), path + "[]");
                return;
            }
            if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>))
            {
                Check(type.GetGenericArguments()[1], nodes.SelectMany(n => n.AsObject().Select(p => p.Value)).OfType<JsonNode>().ToList(), path + "{}");
                return;
            }
            if (info.Kind != System.Text.Json.Serialization.Metadata.JsonTypeInfoKind.Object) return;
            foreach (var prop in info.Properties)
            {
                var children = nodes.Where(n => n is JsonObject).Select(n => n[prop.Name]).OfType<JsonNode>().ToList();
                seen.TryAdd((type, prop.Name), $"{path}.{prop.Name}");
                if (children.Count == 0) continue;
                covered.Add((type, prop.Name));
                Check(Nullable.GetUnderlyingType(prop.PropertyType) ?? prop.PropertyType, children, $"{path}.{prop.Name}");
            }
        }
        Check(typeof(Oci.Runtime.Spec), [JsonNode.Parse(FullConfig.Json)!, JsonNode.Parse(Supplement)!], "$");
        var missing = seen.Where(kv => !covered.Contains(kv.Key)).Select(kv => kv.Value).ToList();
        Assert.True(seen.Count > 150, $"{seen.Count} fields");
        Assert.True(missing.Count == 0, "FullConfig does not set: " + string.Join(", ", missing));
    }

    [Fact]
    public void Runc_specs()
    {
        Same(DefaultSpecTests.RuncSpec);
        Same(DefaultSpecTests.RuncRootlessSpec);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Default_specs(bool rootless)
    {
        var spec = DefaultSpec.Create(rootless);
        Same(Write(spec));
        Same(JsonSerializer.Serialize(spec, OciJson.Indented.Spec));
    }

    [Fact]
    public void Unknown_fields_at_every_level_are_ignored()
    {
        var json = Transform(JsonNode.Parse(FullConfig.Json), k => k, () => new JsonObject
        {
            ["zzFuture"] = new JsonObject { ["deep"] = new JsonArray(new JsonObject { ["x"] = null }, 1.5, "s", true) },
            ["zzNull"] = null,
            ["zzNumber"] = -1e300,
            ["zzArray"] = new JsonArray(new JsonArray(), new JsonObject()),
        })!.ToJsonString();
        var fast = Same(json);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(FullConfig.Json), JsonNode.Parse(Write(fast))));
    }

    [Fact]
    public void Keys_match_case_insensitively()
    {
        var upper = Same(Transform(JsonNode.Parse(FullConfig.Json), k => k.ToUpperInvariant(), null)!.ToJsonString());
        var lower = Same(Transform(JsonNode.Parse(FullConfig.Json), k => k.ToLowerInvariant(), null)!.ToJsonString());
        var mixed = Same(Transform(JsonNode.Parse(FullConfig.Json),
            k => new string(k.Select((c, i) => i % 2 == 0 ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c)).ToArray()), null)!.ToJsonString());
        foreach (var s in new[] { upper, lower, mixed })
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(FullConfig.Json), JsonNode.Parse(Write(s))));
        // Dictionary keys keep their case.
        var spec = Same("""{"OCIVERSION":"1.0.0","Annotations":{"Key":"a","key":"b"}}""");
        Assert.Equal(2, spec.Annotations!.Count);
    }

    [Fact]
    public void Nulls_for_optional_fields()
    {
        Same("""{"ociVersion":"1.0.0","process":null,"root":null,"hostname":null,"domainname":null,"mounts":null,"hooks":null,"annotations":null,"linux":null}""");
        Same("""{"ociVersion":null}""");
        Same("""
            {"ociVersion":"1.0.0",
             "process":{"consoleSize":null,"user":null,"args":null,"commandLine":null,"env":null,"cwd":null,"capabilities":null,
                        "rlimits":null,"apparmorProfile":null,"oomScoreAdj":null,"selinuxLabel":null,"scheduler":null,"ioPriority":null,"execCPUAffinity":null},
             "root":{"path":null},
             "mounts":[{"destination":null,"type":null,"source":null,"options":null,"uidMappings":null,"gidMappings":null}],
             "hooks":{"prestart":null,"createRuntime":null,"createContainer":null,"startContainer":null,"poststart":null,"poststop":null},
             "linux":{"uidMappings":null,"gidMappings":null,"sysctl":null,"resources":null,"cgroupsPath":null,"namespaces":null,"devices":null,
                      "netDevices":null,"seccomp":null,"rootfsPropagation":null,"maskedPaths":null,"readonlyPaths":null,"mountLabel":null,
                      "personality":null,"timeOffsets":null,"intelRdt":null,"memoryPolicy":null}}
            """);
        Same("""
            {"ociVersion":"1.0.0",
             "process":{"user":{"umask":null,"additionalGids":null,"username":null},"capabilities":{"bounding":null,"effective":null,"inheritable":null,"permitted":null,"ambient":null},
                        "scheduler":{"policy":null,"nice":null,"priority":null,"flags":null,"runtime":null,"deadline":null,"period":null},
                        "ioPriority":{"class":null},"execCPUAffinity":{"initial":null,"final":null}},
             "linux":{"resources":{"devices":[{"type":null,"major":null,"minor":null,"access":null}],
                                   "memory":{"limit":null,"reservation":null,"swap":null,"kernel":null,"kernelTCP":null,"swappiness":null,
                                             "disableOOMKiller":null,"useHierarchy":null,"checkBeforeUpdate":null},
                                   "cpu":{"shares":null,"quota":null,"burst":null,"period":null,"realtimeRuntime":null,"realtimePeriod":null,"cpus":null,"mems":null,"idle":null},
                                   "pids":{"limit":null},
                                   "blockIO":{"weight":null,"leafWeight":null,"weightDevice":[{"weight":null,"leafWeight":null}],"throttleReadBpsDevice":null,
                                              "throttleWriteBpsDevice":null,"throttleReadIOPSDevice":null,"throttleWriteIOPSDevice":null},
                                   "hugepageLimits":null,"network":{"classID":null,"priorities":null},"rdma":{"m":{"hcaHandles":null,"hcaObjects":null}},"unified":null},
                      "devices":[{"fileMode":null,"uid":null,"gid":null}],"netDevices":{"e":{"name":null}},
                      "seccomp":{"defaultAction":null,"defaultErrnoRet":null,"architectures":null,"flags":null,"listenerPath":null,"listenerMetadata":null,
                                 "syscalls":[{"names":null,"action":null,"errnoRet":null,"args":null}]},
                      "personality":{"domain":null,"flags":null},"intelRdt":{"closID":null,"schemata":null,"l3CacheSchema":null,"memBwSchema":null},
                      "memoryPolicy":{"mode":null,"nodes":null,"flags":null},"namespaces":[{"type":null,"path":null}]}}
            """);
    }

    [Fact]
    public void Null_user_is_null_until_the_loader_fixes_it()
    {
        var spec = Same("""{"ociVersion":"1.0.0","process":{"user":null}}""");
        Assert.Null(spec.Process!.User);
        Assert.NotNull(SpecLoader.Parse("""{"ociVersion":"1.0.0","process":{"user":null}}""").Process!.User);
    }

    [Fact]
    public void Empty_arrays_and_objects()
    {
        var json = Transform(JsonNode.Parse(FullConfig.Json), k => k, null)!;
        void Empty(JsonNode? n)
        {
            if (n is JsonObject o)
                foreach (var k in o.Select(p => p.Key).ToList())
                {
                    if (o[k] is JsonArray) o[k] = new JsonArray();
                    else if (o[k] is JsonObject && DictionaryFields.Contains(k)) o[k] = new JsonObject();
                    else Empty(o[k]);
                }
        }
        Empty(json);
        Same(json.ToJsonString());
        Same("""{"ociVersion":"1.0.0","process":{},"root":{},"hooks":{},"linux":{"resources":{"memory":{},"cpu":{},"blockIO":{},"network":{}},"seccomp":{}}}""");
    }

    [Fact]
    public void Last_duplicate_wins()
    {
        var spec = Same("""
            {"ociVersion":"1.0.0","hostname":"a","HOSTNAME":"b","process":{"args":["a"],"cwd":"/a"},"Process":{"env":["X=1"]},
             "annotations":{"k":"1","j":"2","k":"3"},"linux":{"sysctl":{"a":"1"},"sysctl":{"b":"2"},
             "resources":{"memory":{"limit":1,"limit":2},"rdma":{"m":{"hcaHandles":1},"m":{"hcaObjects":2}}}},
             "mounts":[{"destination":"/a"}],"mounts":[{"destination":"/b"},{"destination":"/c","type":"x","TYPE":"y"}]}
            """);
        Assert.Equal("b", spec.Hostname);
        Assert.Null(spec.Process!.Args);
        Assert.Equal("3", spec.Annotations!["k"]);
        Assert.Equal(2, spec.Linux!.Resources!.Memory!.Limit);
    }

    [Fact]
    public void Extreme_numbers()
    {
        Same("""
            {"ociVersion":"1.0.0","process":{"user":{"uid":4294967295,"gid":0,"umask":4294967295,"additionalGids":[0,4294967295]},
              "rlimits":[{"type":"RLIMIT_CPU","hard":18446744073709551615,"soft":0}],"oomScoreAdj":-2147483648,
              "scheduler":{"nice":2147483647,"runtime":18446744073709551615},"ioPriority":{"priority":-2147483648}},
             "linux":{"resources":{"memory":{"limit":-9223372036854775808,"swap":9223372036854775807,"swappiness":18446744073709551615},
                                   "blockIO":{"weight":65535,"leafWeight":0},"cpu":{"shares":18446744073709551615,"quota":-9223372036854775808}},
                      "timeOffsets":{"t":{"secs":-9223372036854775808,"nanosecs":4294967295}},
                      "devices":[{"path":"/dev/x","type":"c","major":-9223372036854775808,"minor":9223372036854775807}],
                      "seccomp":{"syscalls":[{"names":["a"],"args":[{"index":4294967295,"value":18446744073709551615,"valueTwo":18446744073709551615}]}]}}}
            """);
    }

    [Fact]
    public void Comments_trailing_commas_and_escapes()
    {
        var spec = Same("""
            // a config
            {"ociVersion":"1.0.0", /* inline */ "hostname":"a\u0041\n\"é😀",
             "process":{"args":["sh",],"env":[],},"annotations":{"k\u00e9":"v",},}
            // trailing
            """);
        Assert.Equal("aA\n\"é😀", spec.Hostname);
        Assert.Equal("v", spec.Annotations!["ké"]);
    }

    // Every wrong-type input of SpecLoaderTests.Wrong_value_types_name_the_field_and_value, and more.
    [Theory]
    [InlineData("""{"ociVersion":"1.0.0","process":{"user":{"uid":"abc"}}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"user":{"uid":-1}}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"args":"sh"}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"args":["sh",1]}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"terminal":"yes"}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"rlimits":[{"type":"RLIMIT_NOFILE","hard":1.5,"soft":1}]}}""")]
    [InlineData("""{"ociVersion":"1.0.0","linux":{"sysctl":{"net.ipv4.ip_forward":1}}}""")]
    [InlineData("""{"ociVersion":"1.0.0","linux":{"namespaces":{"type":"pid"}}}""")]
    [InlineData("""{"ociVersion":"1.0.0","root":"rootfs"}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"oomScoreAdj":"x"}}""")]
    [InlineData("""{"ociVersion":"1.0.0","linux":{"resources":{"blockIO":{"weight":70000}}}}""")]
    [InlineData("""{"ociVersion":"9.0.0","process":{"args":"sh"}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"user":{"uid":4294967296}}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"user":{"uid":null}}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"terminal":null}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"rlimits":[{"hard":18446744073709551616}]}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"user":{"uid":1.0}}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"user":{"uid":1e2}}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"user":{"uid":"1"}}}""")]
    [InlineData("""{"ociVersion":"1.0.0","linux":{"resources":{"memory":{"limit":9223372036854775808}}}}""")]
    [InlineData("""{"ociVersion":1}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":[]}""")]
    [InlineData("""{"ociVersion":"1.0.0","mounts":{}}""")]
    [InlineData("""{"ociVersion":"1.0.0","annotations":[]}""")]
    [InlineData("""{"ociVersion":"1.0.0","annotations":{"a":null}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"args":[null]}}""")]
    [InlineData("""{"ociVersion":"1.0.0","mounts":[null]}""")]
    [InlineData("""{"ociVersion":"1.0.0","\u0070rocess":{}}""")]
    [InlineData("""{"ociVersion":"1.0.0","$id":"1"}""")]
    [InlineData("""{"ociVersion":"1.0.0","ſ":"x"}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"args":["sh"]}""")]
    [InlineData("""{"ociVersion":"1.0.0"} trailing""")]
    [InlineData("""{"ociVersion":"1.0.0",,}""")]
    [InlineData("""{"ociVersion":"1.0.0","process": }""")]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("null")]
    [InlineData("[]")]
    [InlineData("\"x\"")]
    public void Declines_what_it_is_not_sure_of(string json) => Declines(json);

    [Theory]
    [InlineData("""{"ociVersion":"1.0.0","\u0070rocess":{"args":["sh"]}}""")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"args":[null]}}""")]
    [InlineData("""{"ociVersion":"1.0.0","mounts":[null],"annotations":{"a":null}}""")]
    [InlineData("""{"ociVersion":"1.0.0","$id":"1","hoſtname":"x"}""")]
    public void What_it_declines_the_serializer_still_reads(string json)
    {
        var spec = SpecLoader.Parse(json);
        Assert.Equal(Write(Slow(Encoding.UTF8.GetBytes(json))!), Write(spec));
    }

    /// <summary>
    /// Replaces every value of the full config, one at a time, with values of every kind: wherever the
    /// serializer fails the fast reader declines, and wherever the fast reader accepts it agrees.
    /// </summary>
    [Fact]
    public void Agrees_with_the_serializer_on_every_field_given_every_kind_of_value()
    {
        JsonNode?[] values =
        [
            null, "s", "", true, false, 0, 1, -1, 1.5, 255, 256, 65535, 65536, 4294967295, 4294967296L,
            long.MaxValue, long.MinValue, ulong.MaxValue, JsonNode.Parse("18446744073709551616"), JsonNode.Parse("1e3"),
            new JsonArray(), new JsonArray("a"), new JsonArray(1), new JsonArray(new JsonObject()), new JsonObject(),
            new JsonObject { ["a"] = "b" }, new JsonObject { ["a"] = 1 }, new JsonObject { ["a"] = new JsonObject() },
        ];
        int accepted = 0, declined = 0, pathCount = 0;
        foreach (var text in new[] { FullConfig.Json, Supplement })
        {
            var (a, d, p) = Mutate(JsonNode.Parse(text)!, values);
            accepted += a; declined += d; pathCount += p;
        }
        Assert.True(pathCount > 200, $"{pathCount} paths");
        Assert.True(accepted > 1000, $"accepted {accepted}, declined {declined}");
    }

    private static (int accepted, int declined, int paths) Mutate(JsonNode root, JsonNode?[] values)
    {
        var paths = new List<Func<JsonNode, (JsonNode parent, object key)>>();
        void Collect(JsonNode node, List<object> at)
        {
            IEnumerable<(object key, JsonNode? child)> children = node switch
            {
                JsonObject o => o.Select(p => ((object)p.Key, p.Value)),
                JsonArray a => a.Select((c, i) => ((object)i, c)),
                _ => [],
            };
            foreach (var (key, child) in children)
            {
                var route = at.Append(key).ToList();
                paths.Add(doc =>
                {
                    var n = doc;
                    foreach (var step in route.SkipLast(1)) n = step is int i ? n[i]! : n[(string)step]!;
                    return (n, route[^1]);
                });
                if (child is not null) Collect(child, route);
            }
        }
        Collect(root, []);

        int accepted = 0, declined = 0;
        foreach (var path in paths)
            foreach (var value in values)
            {
                var doc = root.DeepClone();
                var (parent, key) = path(doc);
                if (key is int i) parent[i] = value?.DeepClone();
                else parent[(string)key] = value?.DeepClone();
                var bytes = Encoding.UTF8.GetBytes(doc.ToJsonString());
                var slow = Slow(bytes);
                if (SpecFastReader.TryRead(bytes, out var fast))
                {
                    accepted++;
                    Assert.True(slow is not null, $"the fast reader accepted what the serializer rejects:\n{doc.ToJsonString()}");
                    Assert.Equal(Write(slow!), Write(fast));
                }
                else declined++;
            }
        return (accepted, declined, paths.Count);
    }
}

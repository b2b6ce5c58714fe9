namespace Berth.Runtime.Tests.Spec;

using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Oci;
using Berth.Runtime.Spec;
using Xunit;

public class SpecLoaderTests
{
    private static SpecException LoadFails(string json)
    {
        using var b = new TempBundle().WriteConfig(json);
        var e = Assert.Throws<SpecException>(() => SpecLoader.Load(b.Dir));
        Assert.Contains(b.ConfigPath, e.Message);
        return e;
    }

    [Fact]
    public void Full_config_round_trips_every_field()
    {
        var spec = SpecLoader.Parse(FullConfig.Json);
        var written = JsonSerializer.Serialize(spec, OciJson.Default.Spec);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(FullConfig.Json), JsonNode.Parse(written)),
            $"round trip changed the document:\n{written}");
    }

    [Fact]
    public void Unknown_fields_are_ignored_at_every_level()
    {
        var doc = JsonNode.Parse(FullConfig.Json)!.AsObject();
        doc["solaris"] = new JsonObject { ["milestone"] = "x" };
        doc["vm"] = new JsonArray(1, 2, 3);
        doc["process"]!["futureField"] = new JsonObject { ["deep"] = new JsonArray(new JsonObject()) };
        doc["mounts"]![0]!["future"] = 42;
        doc["linux"]!["resources"]!["memory"]!["newKnob"] = "on";
        doc["linux"]!["namespaces"]![0]!["flags"] = null;

        using var b = new TempBundle().WriteConfig(doc.ToJsonString());
        var spec = SpecLoader.Load(b.Dir);

        var written = JsonSerializer.Serialize(spec, OciJson.Default.Spec);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(FullConfig.Json), JsonNode.Parse(written)));
    }

    [Fact]
    public void Keys_match_case_insensitively_like_go()
    {
        var spec = SpecLoader.Parse("""{"OCIVERSION":"1.0.0","Process":{"Args":["sh"],"Cwd":"/"}}""");
        Assert.Equal("1.0.0", spec.OciVersion);
        Assert.Equal(["sh"], spec.Process!.Args!);
    }

    [Theory]
    [InlineData("1.0.0")]
    [InlineData("1.0.1")]
    [InlineData("1.0.2")]
    [InlineData("1.0.2-dev")]
    [InlineData("1.1.0-rc.1")]
    [InlineData("1.1.0")]
    [InlineData("1.2.0")]
    [InlineData("1.2.1")]
    [InlineData("1.3.0")]
    [InlineData("1.3.0+build.5")]
    [InlineData("1.3.12-rc.2+meta")]
    public void Accepts_every_released_1_x_version_up_to_1_3(string version)
    {
        var spec = SpecLoader.Parse($$"""{"ociVersion":"{{version}}"}""");
        Assert.Equal(version, spec.OciVersion);
    }

    [Theory]
    [InlineData("0.6.0")]
    [InlineData("1.4.0")]
    [InlineData("2.0.0")]
    [InlineData("1.0")]
    [InlineData("1")]
    [InlineData("v1.0.0")]
    [InlineData("1.0.0.0")]
    [InlineData("1.a.0")]
    [InlineData("+1.0.0")]
    [InlineData(" 1.0.0")]
    [InlineData("1.-1.0")]
    public void Rejects_other_versions_naming_them_and_what_is_supported(string version)
    {
        var e = LoadFails($$"""{"ociVersion":"{{version}}"}""");
        Assert.Contains($"ociVersion: \"{version}\" is not supported", e.Message);
        Assert.Contains("1.0.x", e.Message);
        Assert.Contains("1.3.x", e.Message);
        Assert.Equal("ociVersion", e.Field);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"ociVersion":""}""")]
    [InlineData("""{"ociVersion":null}""")]
    public void Missing_version_is_an_error(string json)
    {
        var e = LoadFails(json);
        Assert.Contains("ociVersion: missing", e.Message);
    }

    [Fact]
    public void Missing_config_names_the_file()
    {
        using var b = new TempBundle();
        var e = Assert.Throws<SpecException>(() => SpecLoader.Load(b.Dir));
        Assert.Contains(b.ConfigPath, e.Message);
        Assert.Contains("no such file", e.Message);
    }

    [Fact]
    public void Missing_bundle_names_the_directory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "berth-no-such-bundle-" + Guid.NewGuid());
        var e = Assert.Throws<SpecException>(() => SpecLoader.Load(dir));
        Assert.Contains(dir, e.Message);
    }

    [Fact]
    public void Malformed_json_gives_line_column_and_path()
    {
        var e = LoadFails("{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": }\n");
        Assert.Contains("malformed JSON at line 3, column 14", e.Message);
        Assert.Contains("(in process)", e.Message);
        Assert.Contains("'}' is an invalid start of a value", e.Message);
        Assert.DoesNotContain("BytePositionInLine", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("{\"ociVersion\":\"1.0.0\"} trailing")]
    [InlineData("{\"ociVersion\":\"1.0.0\",,}")]
    public void Syntax_errors_are_malformed_json(string json)
    {
        var e = LoadFails(json);
        Assert.Contains("malformed JSON at line 1", e.Message);
    }

    [Fact]
    public void Null_or_non_object_document_is_an_error()
    {
        Assert.Contains("the document is null", LoadFails("null").Message);
        Assert.Contains("the document: [] is not an object", LoadFails("[]").Message);
    }

    [Theory]
    [InlineData("""{"ociVersion":"1.0.0","process":{"user":{"uid":"abc"}}}""", "process.user.uid", "\"abc\"", "an integer from 0 to 4294967295")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"user":{"uid":-1}}}""", "process.user.uid", "-1", "an integer from 0 to 4294967295")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"args":"sh"}}""", "process.args", "\"sh\"", "an array")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"args":["sh",1]}}""", "process.args[1]", "1", "a string")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"terminal":"yes"}}""", "process.terminal", "\"yes\"", "true or false")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"rlimits":[{"type":"RLIMIT_NOFILE","hard":1.5,"soft":1}]}}""", "process.rlimits[0].hard", "1.5", "an integer from 0 to 18446744073709551615")]
    [InlineData("""{"ociVersion":"1.0.0","linux":{"sysctl":{"net.ipv4.ip_forward":1}}}""", "linux.sysctl['net.ipv4.ip_forward']", "1", "a string")]
    [InlineData("""{"ociVersion":"1.0.0","linux":{"namespaces":{"type":"pid"}}}""", "linux.namespaces", "{\"type\":\"pid\"}", "an array")]
    [InlineData("""{"ociVersion":"1.0.0","root":"rootfs"}""", "root", "\"rootfs\"", "an object")]
    [InlineData("""{"ociVersion":"1.0.0","process":{"oomScoreAdj":"x"}}""", "process.oomScoreAdj", "\"x\"", "an integer from -2147483648 to 2147483647")]
    [InlineData("""{"ociVersion":"1.0.0","linux":{"resources":{"blockIO":{"weight":70000}}}}""", "linux.resources.blockIO.weight", "70000", "an integer from 0 to 65535")]
    public void Wrong_value_types_name_the_field_and_value(string json, string field, string value, string expected)
    {
        var e = LoadFails(json);
        Assert.Contains($"{field}: {value} is not {expected}", e.Message);
        Assert.Contains("(line 1, column ", e.Message);
    }

    [Fact]
    public void Version_is_checked_after_types()
    {
        // A config of an unsupported version with a type error reports the type error: it is what the JSON says first.
        var e = LoadFails("""{"ociVersion":"9.0.0","process":{"args":"sh"}}""");
        Assert.Contains("process.args", e.Message);
    }

    [Fact]
    public void Null_user_becomes_the_default_user()
    {
        var spec = SpecLoader.Parse("""{"ociVersion":"1.0.0","process":{"user":null,"args":["sh"],"cwd":"/"}}""");
        Assert.NotNull(spec.Process!.User);
        Assert.Equal(0u, spec.Process.User.Uid);
    }

    [Fact]
    public void Loads_what_runc_spec_writes()
    {
        var spec = SpecLoader.Parse(DefaultSpecTests.RuncSpec);
        Assert.Equal("1.0.2-dev", spec.OciVersion);
        Assert.Equal(7, spec.Mounts!.Count);
    }
}

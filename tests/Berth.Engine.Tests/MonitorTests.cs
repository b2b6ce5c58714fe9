using System.Text;
using System.Text.Json;
using Berth.Engine.Monitor;
using Xunit;

namespace Berth.Engine.Tests;

public sealed class LogLineTests
{
    private static string Encode(string text, bool stderr = false, long secs = 0, int nanos = 0) =>
        Encode(Encoding.UTF8.GetBytes(text), stderr, secs, nanos);

    private static string Encode(byte[] text, bool stderr = false, long secs = 0, int nanos = 0)
    {
        var buf = new byte[LogLine.MaxLength(text.Length)];
        int n = LogLine.Encode(buf, stderr, secs, nanos, text);
        return Encoding.UTF8.GetString(buf, 0, n);
    }

    [Fact]
    public void A_record_is_one_json_line_with_docker_json_file_fields()
    {
        var line = Encode("hello\n", stderr: true, secs: 1_700_000_000, nanos: 123_456_789);
        Assert.Equal("{\"log\":\"hello\\n\",\"stream\":\"stderr\",\"time\":\"2023-11-14T22:13:20.123456789Z\"}\n", line);
        Assert.Contains("\"stream\":\"stdout\"", Encode("x"));
    }

    [Theory]
    [InlineData("quote \" backslash \\ tab \t cr \r", "quote \" backslash \\ tab \t cr \r")]
    [InlineData("bell \u0007 del \u007f nul \0", "bell \u0007 del \u007f nul \0")]
    [InlineData("é ü 中 😀", "é ü 中 😀")]
    public void Text_round_trips_through_a_json_parser(string text, string expected)
    {
        var doc = JsonDocument.Parse(Encode(text));
        Assert.Equal(expected, doc.RootElement.GetProperty("log").GetString());
    }

    [Theory]
    [InlineData(new byte[] { 0x61, 0xff, 0x62 }, "a\uFFFDb")]               // not UTF-8 at all
    [InlineData(new byte[] { 0xc3 }, "\uFFFD")]                               // truncated sequence
    [InlineData(new byte[] { 0xe0, 0x80, 0x80 }, "\uFFFD\uFFFD\uFFFD")]       // overlong
    [InlineData(new byte[] { 0xed, 0xa0, 0x80 }, "\uFFFD\uFFFD\uFFFD")]       // a surrogate
    public void Invalid_utf8_becomes_replacement_characters_and_the_json_stays_valid(byte[] text, string expected)
    {
        var doc = JsonDocument.Parse(Encode(text));
        Assert.Equal(expected, doc.RootElement.GetProperty("log").GetString());
    }

    [Fact]
    public void Times_match_the_framework_for_dates_far_apart()
    {
        foreach (var t in new[] { new DateTime(1970, 1, 1), new DateTime(2000, 2, 29, 23, 59, 59), new DateTime(2026, 11, 29, 8, 42, 44), new DateTime(2100, 3, 1) })
        {
            var buf = new byte[40];
            long secs = (long)(t - DateTime.UnixEpoch).TotalSeconds;
            int n = LogLine.FormatTime(buf, secs, 5);
            Assert.Equal(t.ToString("yyyy-MM-dd'T'HH:mm:ss") + ".000000005Z", Encoding.ASCII.GetString(buf, 0, n));
        }
    }

    [Fact]
    public void The_reader_parses_what_the_writer_writes()
    {
        var rec = LogReader.Parse(Encoding.UTF8.GetBytes(Encode("a \"b\"\n", stderr: true, secs: 1, nanos: 2).TrimEnd('\n')));
        Assert.Equal(new LogRecord(true, "1970-01-01T00:00:01.000000002Z", "a \"b\"\n"), rec);
        Assert.Null(LogReader.Parse("{\"log\":"u8));
        Assert.Null(LogReader.Parse("garbage"u8));
        var two = Encoding.UTF8.GetBytes(Encode("1\n") + Encode("2\n") + "{\"log\":\"partial");
        var recs = LogReader.Records(two, out var used);
        Assert.Equal(["1\n", "2\n"], recs.Select(r => r.Text));
        Assert.Equal(two.Length - "{\"log\":\"partial".Length, used);
    }
}

public sealed class LineBufferTests
{
    private sealed class Sink : ILineSink
    {
        public List<(bool Stderr, string Text)> Lines { get; } = [];
        public void Line(bool stderr, ReadOnlySpan<byte> text) => Lines.Add((stderr, Encoding.UTF8.GetString(text)));
    }

    [Fact]
    public void Lines_are_cut_at_newlines_across_reads()
    {
        var sink = new Sink();
        var b = new LineBuffer(stderr: true);
        b.Feed("one\ntw"u8, sink);
        b.Feed("o\nthree\nfo"u8, sink);
        Assert.Equal(["one\n", "two\n", "three\n"], sink.Lines.Select(l => l.Text));
        Assert.All(sink.Lines, l => Assert.True(l.Stderr));
        b.Flush(sink);
        Assert.Equal("fo", sink.Lines[^1].Text); // the last line without a newline, at EOF
        b.Flush(sink);
        Assert.Equal(4, sink.Lines.Count);
    }

    [Fact]
    public void A_line_longer_than_16k_becomes_partial_records()
    {
        var sink = new Sink();
        var b = new LineBuffer(stderr: false);
        var data = new byte[LineBuffer.MaxLine * 2 + 10];
        data.AsSpan().Fill((byte)'x');
        data[^1] = (byte)'\n';
        b.Feed(data.AsSpan(0, 1000), sink);
        b.Feed(data.AsSpan(1000), sink);
        Assert.Equal([LineBuffer.MaxLine, LineBuffer.MaxLine, 10], sink.Lines.Select(l => l.Text.Length));
        Assert.EndsWith("\n", sink.Lines[^1].Text);
        Assert.Equal(data.Length, sink.Lines.Sum(l => l.Text.Length));
    }
}

public sealed class RestartPolicyTests
{
    [Theory]
    [InlineData("no", "no", 0)]
    [InlineData("always", "always", 0)]
    [InlineData("unless-stopped", "unless-stopped", 0)]
    [InlineData("on-failure", "on-failure", 0)]
    [InlineData("on-failure:3", "on-failure", 3)]
    public void Parses_docker_forms(string text, string name, int max)
    {
        var p = RestartPolicy.Parse(text);
        Assert.Equal((name, max), (p.Name, p.MaxRetries));
        Assert.Equal(text, p.ToString());
    }

    [Theory]
    [InlineData("sometimes")]
    [InlineData("on-failure:x")]
    [InlineData("on-failure:-1")]
    [InlineData("always:2")]
    [InlineData("")]
    public void Rejects_bad_values_naming_them(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => RestartPolicy.Parse(text));
        Assert.Contains("--restart " + text, e.Message);
    }

    [Fact]
    public void Decisions()
    {
        var onFailure2 = RestartPolicy.Parse("on-failure:2");
        Assert.True(onFailure2.ShouldRestart(3, 0, false));
        Assert.True(onFailure2.ShouldRestart(3, 1, false));
        Assert.False(onFailure2.ShouldRestart(3, 2, false));   // two restarts done
        Assert.False(onFailure2.ShouldRestart(0, 0, false));   // success
        Assert.True(RestartPolicy.Parse("on-failure").ShouldRestart(137, 1000, false)); // no limit
        Assert.True(RestartPolicy.Parse("always").ShouldRestart(0, 5, false));
        Assert.False(RestartPolicy.Parse("always").ShouldRestart(143, 0, true)); // stopped by the user
        Assert.False(RestartPolicy.No.ShouldRestart(1, 0, false));
        Assert.Equal(TimeSpan.FromMilliseconds(100), RestartPolicy.Delay(0));
        Assert.Equal(TimeSpan.FromMilliseconds(400), RestartPolicy.Delay(2));
        Assert.Equal(TimeSpan.FromMinutes(1), RestartPolicy.Delay(50));
    }
}

public sealed class LogOptionsTests
{
    [Theory]
    [InlineData("1024", 1024L)]
    [InlineData("2k", 2048L)]
    [InlineData("10m", 10L << 20)]
    [InlineData("10M", 10L << 20)]
    [InlineData("1g", 1L << 30)]
    [InlineData("512kb", 512L << 10)]
    public void Sizes(string text, long bytes) => Assert.Equal(bytes, LogOptions.ParseSize(text));

    [Theory]
    [InlineData("tiny")]
    [InlineData("")]
    [InlineData("100")]      // under 1k
    [InlineData("-5m")]
    [InlineData("99999999999999999g")]
    public void Bad_sizes_are_refused(string text) => Assert.Throws<ArgumentException>(() => LogOptions.ParseSize(text));

    [Fact]
    public void Options_apply_over_the_default()
    {
        Assert.Equal(LogOptions.Default, LogOptions.Parse([]));
        Assert.Equal(new LogOptions(10L << 20, 2), LogOptions.Default);
        Assert.Equal(new LogOptions(2048, 3), LogOptions.Parse(["max-size=2k", "max-file=3"]));
        Assert.Contains("max-file=0", Assert.Throws<ArgumentException>(() => LogOptions.Parse(["max-file=0"])).Message);
        Assert.Contains("compress", Assert.Throws<ArgumentException>(() => LogOptions.Parse(["compress=true"])).Message);
        Assert.Contains("KEY=VALUE", Assert.Throws<ArgumentException>(() => LogOptions.Parse(["max-size"])).Message);
    }
}

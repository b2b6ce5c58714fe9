using System.Text;
using System.Text.Json;

namespace Berth.Runtime.Logging;

/// <summary>
/// runc-style logging: logrus text lines (time="..." level=... msg="...") or JSON lines
/// ({"level","msg","time"}) that containerd and podman parse, to --log FILE or stderr.
/// </summary>
public static class Log
{
    public static string? FilePath { get; set; }
    public static bool Json { get; set; }
    public static bool DebugEnabled { get; set; }

    public static void Debug(string msg) { if (DebugEnabled) Write("debug", msg); }
    public static void Info(string msg) => Write("info", msg);
    public static void Warn(string msg) => Write("warning", msg);

    /// <summary>Logs an error; with --log the plain message also goes to stderr, as runc does.</summary>
    public static void Error(string msg)
    {
        Write("error", msg);
        if (FilePath is not null) Console.Error.WriteLine(msg);
    }

    private static void Write(string level, string msg)
    {
        var time = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
        string line;
        if (Json)
        {
            var sb = new StringBuilder("{\"level\":");
            sb.Append(JsonEncode(level)).Append(",\"msg\":").Append(JsonEncode(msg))
              .Append(",\"time\":").Append(JsonEncode(time)).Append('}');
            line = sb.ToString();
        }
        else
        {
            line = $"time=\"{time}\" level={level} msg={Quote(msg)}";
        }
        try
        {
            if (FilePath is null) Console.Error.WriteLine(line);
            else File.AppendAllText(FilePath, line + "\n");
        }
        catch (IOException) { Console.Error.WriteLine(line); }
        catch (UnauthorizedAccessException) { Console.Error.WriteLine(line); }
    }

    private static string JsonEncode(string s) => JsonSerializer.Serialize(s, StringJson.Default.String);

    private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n") + "\"";
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class StringJson : System.Text.Json.Serialization.JsonSerializerContext;

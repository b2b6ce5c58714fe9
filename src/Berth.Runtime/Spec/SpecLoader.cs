namespace Berth.Runtime.Spec;

using System.Text;
using System.Text.Json;
using Berth.Oci;
using Berth.Oci.Runtime;

/// <summary>
/// Reads a bundle's config.json into the OCI model. Unknown fields are ignored, as the runtime spec
/// asks; everything else that is wrong (no file, bad JSON, a value of the wrong type, an unsupported
/// ociVersion) is a <see cref="SpecException"/> naming the file, the field and the value.
/// Semantic checks are <see cref="SpecValidator"/>'s job.
/// </summary>
public static class SpecLoader
{
    public const string FileName = "config.json";

    public static Oci.Runtime.Spec Load(string bundleDir) => Load(bundleDir, out _);

    /// <summary>Loads the bundle's config; <paramref name="bytes"/> is the file as read (create keeps it in the state).</summary>
    public static Oci.Runtime.Spec Load(string bundleDir, out byte[] bytes)
    {
        if (!Directory.Exists(bundleDir))
            throw new SpecException($"bundle {bundleDir}: no such directory");
        var path = Path.Combine(bundleDir, FileName);
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { throw new SpecException($"{path}: no such file (a bundle needs a config.json; `berth-runtime spec` writes a default one)"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SpecException($"{path}: cannot read: {e.Message}", inner: e);
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses config.json content; <paramref name="source"/> names it in error messages.</summary>
    public static Oci.Runtime.Spec Parse(ReadOnlySpan<byte> json, string source = FileName)
    {
        // The hand-written reader builds the same model without the serializer's first-use metadata cost
        // (~3 ms of a container start); on anything it is unsure of, the serializer reads the document and
        // its errors become the messages below.
        if (!SpecFastReader.TryRead(json, out var spec))
        {
            try { spec = JsonSerializer.Deserialize(json, OciJson.Default.Spec)!; }
            catch (JsonException e) { throw Describe(e, json, source); }
            if (spec is null) throw new SpecException($"{source}: the document is null; expected a JSON object");
        }

        if (string.IsNullOrEmpty(spec.OciVersion))
            throw new SpecException($"{source}: ociVersion: missing (berth supports {SpecVersion.Supported})", "ociVersion");
        if (!SpecVersion.IsSupported(spec.OciVersion))
            throw new SpecException(
                $"{source}: ociVersion: \"{spec.OciVersion}\" is not supported (berth supports {SpecVersion.Supported})", "ociVersion");

        // Go's decoder leaves a struct alone on `null`; do the same for the one object the model never makes nullable.
        if (spec.Process is { } p && p.User is null) p.User = new();
        return spec;
    }

    public static Oci.Runtime.Spec Parse(string json, string source = FileName) => Parse(Encoding.UTF8.GetBytes(json), source);

    private static SpecException Describe(JsonException e, ReadOnlySpan<byte> json, string source)
    {
        long line = (e.LineNumber ?? 0) + 1, column = (e.BytePositionInLine ?? 0) + 1;
        var field = FieldName(e.Path);
        const string convert = "The JSON value could not be converted to ";
        if (e.InnerException is not null && e.InnerException.GetType().Name == "JsonReaderException" || !e.Message.StartsWith(convert, StringComparison.Ordinal))
        {
            var reason = Reason(e.InnerException?.GetType().Name == "JsonReaderException" ? e.InnerException.Message : e.Message);
            var where = field.Length == 0 ? "" : $" (in {field})";
            return new SpecException($"{source}: malformed JSON at line {line}, column {column}{where}: {reason}", field, e);
        }

        var typeName = e.Message[convert.Length..];
        var end = typeName.IndexOf(". Path:", StringComparison.Ordinal);
        if (end >= 0) typeName = typeName[..end];
        var value = RawValueAt(json, e.Path);
        var what = value is null ? "the value" : value;
        var subject = field.Length == 0 ? "the document" : field;
        return new SpecException($"{source}: {subject}: {what} is not {Friendly(typeName)} (line {line}, column {column})", field, e);
    }

    // "$.process.args[0]" -> "process.args[0]"
    private static string FieldName(string? jsonPath)
    {
        if (string.IsNullOrEmpty(jsonPath) || jsonPath == "$") return "";
        return jsonPath.StartsWith("$.", StringComparison.Ordinal) ? jsonPath[2..] : jsonPath.TrimStart('$');
    }

    // Drops System.Text.Json's own " Path: ... | LineNumber: ..." tail: we say where in our own words.
    private static string Reason(string message)
    {
        foreach (var marker in new[] { " Path: ", " LineNumber: " })
        {
            var i = message.IndexOf(marker, StringComparison.Ordinal);
            if (i >= 0) message = message[..i];
        }
        return message.Trim();
    }

    private static string Friendly(string clrType)
    {
        if (clrType.StartsWith("System.Nullable`1[", StringComparison.Ordinal)) clrType = clrType[18..^1];
        return clrType switch
        {
            "System.String" => "a string",
            "System.Boolean" => "true or false",
            "System.Byte" => "an integer from 0 to 255",
            "System.UInt16" => "an integer from 0 to 65535",
            "System.UInt32" => "an integer from 0 to 4294967295",
            "System.UInt64" => "an integer from 0 to 18446744073709551615",
            "System.Int32" => "an integer from -2147483648 to 2147483647",
            "System.Int64" => "a 64-bit integer",
            _ when clrType.StartsWith("System.Collections.Generic.List`1", StringComparison.Ordinal) => "an array",
            _ when clrType.StartsWith("System.Collections.Generic.Dictionary`2", StringComparison.Ordinal) => "an object",
            _ => "an object",
        };
    }

    /// <summary>The raw JSON text at a System.Text.Json error path, shortened; null when it cannot be found.</summary>
    private static string? RawValueAt(ReadOnlySpan<byte> json, string? path)
    {
        if (path is null) return null;
        try
        {
            using var doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions
            {
                CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true,
            });
            var node = doc.RootElement;
            foreach (var segment in PathSegments(path))
            {
                if (segment is int index)
                {
                    if (node.ValueKind != JsonValueKind.Array || index >= node.GetArrayLength()) return null;
                    node = node[index];
                }
                else
                {
                    if (node.ValueKind != JsonValueKind.Object) return null;
                    var name = (string)segment;
                    JsonElement? found = null;
                    foreach (var prop in node.EnumerateObject())
                        if (string.Equals(prop.Name, name, StringComparison.OrdinalIgnoreCase)) found = prop.Value;
                    if (found is null) return null;
                    node = found.Value;
                }
            }
            var raw = node.GetRawText();
            return raw.Length > 60 ? raw[..57] + "..." : raw;
        }
        catch (JsonException) { return null; }
    }

    // "$.a.b[2]['c.d']" -> "a", "b", 2, "c.d"
    private static IEnumerable<object> PathSegments(string path)
    {
        int i = path.StartsWith('$') ? 1 : 0;
        while (i < path.Length)
        {
            if (path[i] == '.')
            {
                int start = ++i;
                while (i < path.Length && path[i] != '.' && path[i] != '[') i++;
                yield return path[start..i];
            }
            else if (path[i] == '[' && i + 1 < path.Length && path[i + 1] == '\'')
            {
                int close = path.IndexOf("']", i + 2, StringComparison.Ordinal);
                if (close < 0) yield break;
                yield return path[(i + 2)..close];
                i = close + 2;
            }
            else if (path[i] == '[')
            {
                int close = path.IndexOf(']', i);
                if (close < 0 || !int.TryParse(path.AsSpan(i + 1, close - i - 1), out var n)) yield break;
                yield return n;
                i = close + 1;
            }
            else yield break;
        }
    }
}

using System.Text.Json;
using Berth.Images.Model;
using Berth.Linux.Files;

namespace Berth.Images.Store;

/// <summary>
/// Image names and records in one JSON file, <c>ROOT/images.json</c> (see ADR 0006). Readers read
/// the file as it is (renames are atomic, so it is never torn); every change is a read-modify-write
/// under an exclusive flock of <c>ROOT/images.lock</c>, so concurrent writers serialise and none
/// loses another's change.
/// </summary>
public sealed class MetadataStore(string root)
{
    private readonly string _file = Path.Combine(root, "images.json");
    private readonly string _lock = Path.Combine(root, "images.lock");

    public ImageDatabase Read()
    {
        if (!File.Exists(_file)) return new ImageDatabase();
        var bytes = File.ReadAllBytes(_file);
        try
        {
            return JsonSerializer.Deserialize(bytes, ImagesJson.Default.ImageDatabase) ?? new ImageDatabase();
        }
        catch (JsonException e)
        {
            throw new ImageFormatException($"{_file}: the image database is corrupt ({e.Message}); restore it or remove it and load the images again");
        }
    }

    /// <summary>Runs <paramref name="change"/> on the current database and stores the result, all under the lock.</summary>
    public T Update<T>(Func<ImageDatabase, T> change)
    {
        using var l = FileLock.Exclusive(_lock);
        var db = Read();
        var result = change(db);
        AtomicFile.Write(_file, JsonSerializer.SerializeToUtf8Bytes(db, ImagesJson.Indented.ImageDatabase));
        return result;
    }
}

using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Seccomp;
using Berth.Runtime.Seccomp;

namespace Berth.Engine.Sandbox;

/// <summary>
/// Compiled sandbox filters kept on disk between `sandbox run` processes (building the built-in
/// profile from the syscall tables and compiling it cost ~0.9 ms of a ~8 ms run). One file per set
/// of inputs under /run/berth/sandbox/cache (root-only, 0700), named by a hash of a key that holds
/// everything the filter depends on: this binary (device, inode, size, mtime), the kernel, the
/// options that shape the profile (net, user notification, violation mode) and a custom profile
/// file's identity. The file repeats the whole key, and it is trusted only when owned by root and
/// not writable by anyone else; anything unreadable or different is ignored and compiled anew.
/// </summary>
public static class FilterCache
{
    private const string Dir = "/run/berth/sandbox/cache";
    private const uint Magic = 0x31435342; // "BSC1"

    public sealed record Entry(SeccompProgram Program, HashSet<string> ProfileErrno);

    /// <summary>The cache key for these inputs, or null when one cannot be made (then nothing is cached).</summary>
    public static string? Key(bool net, bool notify, ViolationMode mode, string? customProfile)
    {
        try
        {
            string exe = Identity("/proc/self/exe");
            string custom = customProfile is null ? "-" : customProfile + "@" + Identity(customProfile);
            return $"v1|{exe}|{SeccompProfiles.RunningKernel()}|{(int)RuntimeInformation.ProcessArchitecture}|{net}|{notify}|{(int)mode}|{custom}";
        }
        catch (LinuxException) { return null; }
    }

    public static Entry? Load(string key)
    {
        if (Fd.ReadTrusted(PathOf(key), owner: 0, max: 1 << 20) is not { } data) return null;
        try { return Parse(data, key); }
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or DecoderFallbackException) { return null; }
    }

    public static void Store(string key, Entry entry)
    {
        try
        {
            Directory.CreateDirectory(Dir, (UnixFileMode)0b111_000_000);
            var path = PathOf(key);
            var tmp = path + ".tmp" + Environment.ProcessId;
            File.WriteAllBytes(tmp, Serialize(key, entry));
            File.SetUnixFileMode(tmp, (UnixFileMode)0b110_000_000);
            File.Move(tmp, path, overwrite: true);
            // Entries of earlier binaries are never read again: keep the newest 64.
            var files = new DirectoryInfo(Dir).GetFiles("seccomp-*");
            if (files.Length > 64)
                foreach (var old in files.OrderByDescending(f => f.LastWriteTimeUtc).Skip(64)) old.Delete();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static string PathOf(string key)
    {
        ulong h = 14695981039346656037UL; // FNV-1a 64 (no OpenSSL load for a file name)
        foreach (var b in Encoding.UTF8.GetBytes(key)) { h ^= b; h *= 1099511628211UL; }
        return Path.Combine(Dir, $"seccomp-{h:x16}");
    }

    /// <summary>device, inode, size, mtime and ctime of what <paramref name="path"/> names (following /proc/self/exe).</summary>
    private static string Identity(string path)
    {
        var st = StatX.Of(path, follow: true);
        return $"{st.Dev}:{st.Ino}:{st.Size}:{st.MtimeSec}.{st.MtimeNsec}:{st.CtimeSec}.{st.CtimeNsec}";
    }

    private static byte[] Serialize(string key, Entry e)
    {
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms, Encoding.UTF8);
        w.Write(Magic);
        w.Write(key);
        w.Write(e.Program.Flags);
        w.Write(e.Program.ListenerPath ?? "");
        w.Write(e.Program.ListenerMetadata ?? "");
        WriteList(w, e.Program.SkippedSyscalls);
        WriteList(w, e.Program.SkippedArchitectures);
        WriteList(w, [.. e.ProfileErrno]);
        w.Write(e.Program.Filter.Length);
        w.Write(MemoryMarshal.AsBytes(e.Program.Filter.AsSpan()));
        w.Flush();
        return ms.ToArray();
    }

    private static Entry? Parse(byte[] data, string key)
    {
        var r = new BinaryReader(new MemoryStream(data), Encoding.UTF8);
        if (r.ReadUInt32() != Magic || r.ReadString() != key) return null;
        uint flags = r.ReadUInt32();
        string listener = r.ReadString(), metadata = r.ReadString();
        var skipped = ReadList(r);
        var skippedArches = ReadList(r);
        var errno = ReadList(r).ToHashSet(StringComparer.Ordinal);
        int count = r.ReadInt32();
        if (count <= 0 || count > Bpf.MaxInstructions) return null;
        var bytes = r.ReadBytes(count * 8);
        if (bytes.Length != count * 8) return null;
        var filter = new SockFilter[count];
        for (int i = 0; i < count; i++)
            filter[i] = new SockFilter(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i * 8)), bytes[i * 8 + 2], bytes[i * 8 + 3],
                BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i * 8 + 4)));
        var program = new SeccompProgram(filter, flags, listener.Length > 0 ? listener : null, metadata.Length > 0 ? metadata : null, skipped, skippedArches);
        return new Entry(program, errno);
    }

    private static void WriteList(BinaryWriter w, IReadOnlyList<string> items)
    {
        w.Write(items.Count);
        foreach (var s in items) w.Write(s);
    }

    private static List<string> ReadList(BinaryReader r)
    {
        int n = r.ReadInt32();
        if (n < 0 || n > 100_000) throw new ArgumentException("bad list");
        var list = new List<string>(n);
        for (int i = 0; i < n; i++) list.Add(r.ReadString());
        return list;
    }
}

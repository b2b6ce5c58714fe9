using System.Globalization;
using System.Text;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Runtime.Lifecycle;

namespace Berth.Engine.Sandbox;

/// <summary>
/// A sandbox pool slot's compiled job (docs/adr/0018): the jail stub's program for the last run's
/// options, kept in the pool's directory as `jail-I` next to the slot's state. A run whose
/// <see cref="Key"/> is the same, in a slot whose template jail is the one the program was made
/// for, starts it as it is: no spec, no seccomp profile, no init plan, no compile (about 0.5 ms of
/// a pooled run). The key is everything the program depends on: the options that make the plan,
/// the slot (its id, directory and cgroup), the host's system directories (the template's mounts),
/// the kernel, seccomp's user notification, and berth's own binary. A file that is missing,
/// unreadable or for another key is a miss; the run then plans and compiles, and writes it anew.
/// Only root can write the pool's directory, as for the slot's state; a file not owned by root, or writable
/// by group or others, is not read (the stub runs its steps as root until it drops everything).
/// </summary>
internal static class JailCache
{
    private const string Magic = "berth-jail-cache 2";

    /// <summary>A compiled job and what the run needs of its plan: the cgroup limits it applied, the profile's own errno answers.</summary>
    public sealed record Entry(string Key, string Limits, string[] ProfileErrno, StubJail.CompiledJob Job);

    /// <summary>Null when the options are not cached (a custom --seccomp file, which may change under the same path; an --image root).</summary>
    public static string? Key(SandboxOptions o, SandboxSlot slot, IReadOnlyList<string> cgroupDirs, bool notify)
    {
        if (o.Seccomp is not null || o.Image is not null) return null;
        var sb = new StringBuilder(Magic).Append('\n');
        // berth's own binary: another build may compile another program.
        Stat(sb, "/proc/self/exe", follow: true);
        sb.Append("kernel ").Append(Berth.Runtime.Seccomp.SeccompProfiles.RunningKernel()?.ToString() ?? "-").Append('\n');
        sb.Append("notify ").Append(notify ? '1' : '0').Append('\n');
        // The stub gives the program the CPUs of the thread that compiled it (StubJail.BerthCpus).
        sb.Append("cpus ").Append(StubJail.BerthCpus() is { } cpus ? Convert.ToHexStringLower(cpus) : "-").Append('\n');
        Str(sb, "slot", slot.Id);
        Str(sb, "dir", slot.Dir);
        foreach (var d in cgroupDirs) Str(sb, "cgroup", d);
        // The host's system directories are the template's mounts (a symlink is made as one): a change is another key.
        foreach (var d in SandboxSpec.SystemDirs) Stat(sb, d);
        foreach (var a in o.Command) Str(sb, "arg", a);
        foreach (var r in o.Dirs) Str(sb, "dir-rule", $"{r.Source}\0{r.Destination}\0{(r.Writable ? 1 : 0)}");
        sb.Append(CultureInfo.InvariantCulture,
            $"limits {o.Time:R} {o.ExtraTime:R} {o.WallTime:R} {o.Memory} {o.Processes} {o.FsizeKb} {o.OpenFiles} {o.Stack} {o.BoxSize}\n");
        sb.Append(CultureInfo.InvariantCulture, $"net {(o.Net ? 1 : 0)} violation {(int)o.OnViolation}\n");
        Str(sb, "netns", o.NetNsPath ?? "");
        return sb.ToString();
    }

    private static void Str(StringBuilder sb, string what, string value) =>
        sb.Append(what).Append(' ').Append(value.Length.ToString(CultureInfo.InvariantCulture)).Append(':').Append(value).Append('\n');

    private static void Stat(StringBuilder sb, string path, bool follow = false)
    {
        sb.Append("stat ").Append(path).Append(' ');
        if (StatX.TryAt(Consts.AT_FDCWD, path, out var st, out _, follow))
            sb.Append(CultureInfo.InvariantCulture, $"{st.Mode} {st.Dev} {st.Ino} {st.Size} {st.MtimeSec}.{st.MtimeNsec} {st.CtimeSec}.{st.CtimeNsec}");
        else sb.Append('-');
        sb.Append('\n');
    }

    /// <summary>The entry in <paramref name="path"/> when it is for <paramref name="key"/>; null otherwise (missing, unreadable, another key).</summary>
    public static Entry? Load(string path, string key) => Load(path, key, owner: 0);

    /// <summary>As <see cref="Load(string, string)"/>, trusting files of <paramref name="owner"/> (tests, as their own user).</summary>
    internal static Entry? Load(string path, string key, uint owner)
    {
        // What the stub runs as root before it drops everything: only a file its owner wrote and no one else may (as FilterCache's).
        if (Fd.ReadTrusted(path, owner, 1 << 20) is not { Length: > 0 } bytes) return null;
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes, writable: false), Encoding.UTF8);
            if (r.ReadString() != Magic || r.ReadString() != key) return null;
            var limits = r.ReadString();
            var errno = ReadStrings(r);
            var steps = ReadStrings(r);
            var templateKey = r.ReadString();
            int cgroups = r.ReadInt32();
            bool freshIpc = r.ReadBoolean();
            var name = r.ReadString();
            int length = r.ReadInt32();
            if (length <= 0 || length > bytes.Length) return null;
            var image = r.ReadBytes(length);
            int goLength = r.ReadInt32();
            if (image.Length != length || goLength <= 0 || goLength > 4096) return null;
            var go = r.ReadBytes(goLength);
            if (go.Length != goLength || r.BaseStream.Position != bytes.Length) return null;
            return new Entry(key, limits, errno, new StubJail.CompiledJob(image, steps, templateKey, cgroups, freshIpc, name, go));
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or FormatException) { return null; }
    }

    /// <summary>Writes <paramref name="e"/> to <paramref name="path"/> (aside, then renamed into place); a failure leaves no file and is not an error (a cache).</summary>
    public static void Store(string path, Entry e)
    {
        var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(e.Key);
            w.Write(e.Limits);
            WriteStrings(w, e.ProfileErrno);
            WriteStrings(w, e.Job.Steps);
            w.Write(e.Job.TemplateKey);
            w.Write(e.Job.CgroupCount);
            w.Write(e.Job.FreshIpc);
            w.Write(e.Job.Name);
            w.Write(e.Job.Image.Length);
            w.Write(e.Job.Image);
            w.Write(e.Job.Go.Length);
            w.Write(e.Job.Go);
        }
        var tmp = $"{path}.{Environment.ProcessId}";
        try
        {
            int fd = Fd.Open(tmp, Consts.O_WRONLY | Consts.O_CREAT | Consts.O_TRUNC | Consts.O_NOFOLLOW | Consts.O_CLOEXEC, 0x180 /* 0600 */);
            try { Fd.WriteAll(fd, ms.GetBuffer().AsSpan(0, (int)ms.Length)); }
            finally { Fd.Close(fd); }
            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception x) when (x is LinuxException or IOException or UnauthorizedAccessException)
        {
            try { File.Delete(tmp); } catch (Exception y) when (y is IOException or UnauthorizedAccessException) { }
        }
    }

    private static string[] ReadStrings(BinaryReader r)
    {
        int n = r.ReadInt32();
        if (n < 0 || n > 1 << 20) throw new FormatException("bad count");
        var a = new string[n];
        for (int i = 0; i < n; i++) a[i] = r.ReadString();
        return a;
    }

    private static void WriteStrings(BinaryWriter w, IReadOnlyCollection<string> items)
    {
        w.Write(items.Count);
        foreach (var s in items) w.Write(s);
    }
}

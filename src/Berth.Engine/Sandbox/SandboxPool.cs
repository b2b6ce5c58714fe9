using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Berth.Engine.Containers;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Runtime.Lifecycle;

namespace Berth.Engine.Sandbox;

/// <summary>
/// A pool of jails that separate `berth sandbox run --pool NAME` processes share, one run per slot
/// at a time (docs/adr/0018): what a batch worker keeps between its jobs (the slot's tmpfs and root
/// skeleton, its cgroup reset for reuse, a template jail whose namespaces and mounts the job joins)
/// outlives the run that made it, so the next run only copies its box, joins and runs.
///
/// On disk: /run/berth/sandbox/pools/NAME/ holds `size` (the number of slots) and one state file per
/// slot, `slot-I`. A run takes the first slot it can lock (flock, LOCK_NB; starting at its pid modulo
/// the size) and reads what the last run left: the tmpfs's size, the cgroup's limits and counter
/// baselines, the template's pid, start time and key. It marks the slot busy ('B'), runs the job
/// through the same <see cref="SandboxJob"/> as a batch slot (every process killed, the cgroup verified
/// empty and reset, the box removed, /tmp and /dev/shm emptied, the mounts checked), and writes the
/// state back ready ('R'). A run that finds a busy slot (its last holder died mid-run), or a state it
/// cannot read, first destroys all of that slot (template killed, cgroup emptied and removed, tmpfs
/// unmounted). An XX verdict also destroys the slot: the next run builds it afresh. With every slot
/// locked, the run uses a fresh jail of its own (as without a pool).
///
/// Like isolate's `--init` / `--cleanup`: `berth sandbox pool init NAME --slots N` declares the pool
/// (slots are built by their first run) and `berth sandbox pool rm NAME` waits for runs in flight and
/// removes everything. A template's PID 1 (unprivileged, no capabilities, blocked on a pipe of its
/// own) is the one process a pool keeps between runs.
/// </summary>
public static class SandboxPool
{
    public static string PoolsRoot => Path.Combine(SandboxRunner.Root, "pools");
    private const int LockEx = 2, LockNb = 4;
    public const int MaxSlots = 256;

    public static string DirOf(string name) => Path.Combine(PoolsRoot, CheckName(name));

    /// <summary>Letters, digits and '-', 1 to 32: the name is in the slots' ids (cgroups, run dirs).</summary>
    public static string CheckName(string name)
    {
        if (name.Length is 0 or > 32 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '-') || name[0] == '-')
            throw new EngineError($"sandbox pool {name}: a name is letters, digits and '-', at most 32");
        return name;
    }

    public static string SlotId(string name, int index) => $"sandbox-pool-{name}-{index}";

    /// <summary>Declares pool NAME with <paramref name="slots"/> slots; again with the same size it does nothing.</summary>
    public static void Init(string name, int slots)
    {
        var dir = DirOf(name);
        if (slots is < 1 or > MaxSlots) throw new EngineError($"--slots {slots}: 1 to {MaxSlots}");
        Directory.CreateDirectory(PoolsRoot);
        // The slots' ids are the name's: whatever a removal that died midway left of them goes first.
        FinishRemovals(name);
        if (Size(name) is { } have)
        {
            if (have == slots) return;
            throw new EngineError($"sandbox pool {name} exists with {have} slots; `berth sandbox pool rm {name}` first");
        }
        // Made aside and renamed into place: a run never sees a pool without all of its slot files.
        var tmp = Path.Combine(PoolsRoot, $".{name}.{Environment.ProcessId}");
        if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        Directory.CreateDirectory(tmp);
        try
        {
            for (int i = 0; i < slots; i++) File.WriteAllText(Path.Combine(tmp, $"slot-{i}"), "R\n");
            File.WriteAllText(Path.Combine(tmp, "size"), slots.ToString(CultureInfo.InvariantCulture) + "\n");
            Directory.Move(tmp, dir);
        }
        catch (IOException) when (Size(name) == slots) { Directory.Delete(tmp, recursive: true); } // another init won the race
        catch
        {
            try { Directory.Delete(tmp, recursive: true); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>The pool's number of slots, or null when there is no such pool.</summary>
    public static int? Size(string name)
    {
        int fd;
        try { fd = Fd.Open(Path.Combine(DirOf(name), "size"), Consts.O_RDONLY | Consts.O_CLOEXEC); }
        catch (LinuxException e) when (e.Errno is Consts.ENOENT or Consts.ENOTDIR) { return null; }
        string text;
        try { text = Read(fd); }
        finally { Fd.Close(fd); }
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n is < 1 or > MaxSlots)
            throw new EngineError($"sandbox pool {name}: a bad size file");
        return n;
    }

    /// <summary>A free slot of pool NAME, locked and restored; null when every slot is in use.</summary>
    public static Lease? TryAcquire(string name)
    {
        int n = Size(name) ?? throw new EngineError($"no sandbox pool {name} (make it with `berth sandbox pool init {name}`)");
        var dir = DirOf(name);
        int start = Environment.ProcessId % n;
        for (int k = 0; k < n; k++)
        {
            int i = (start + k) % n;
            var path = Path.Combine(dir, $"slot-{i}");
            int fd;
            try { fd = Fd.Open(path, Consts.O_RDWR | Consts.O_CLOEXEC); }
            catch (LinuxException e) when (e.Errno is Consts.ENOENT or Consts.ENOTDIR) { return null; } // being removed
            if (LibC.flock(fd, LockEx | LockNb) == 0)
            {
                // `pool rm` renames the pool away before it takes each slot's lock: a slot locked after that
                // is no longer the pool's (its path names another file, or none), and is left alone.
                if (StatX.TryAt(fd, "", out var held, out _) && StatX.TryAt(-100, path, out var named, out _)
                    && held.Ino == named.Ino && held.Dev == named.Dev)
                    return Lease.Open(name, i, fd);
                Fd.Close(fd);
                return null;
            }
            Fd.Close(fd);
        }
        return null;
    }

    /// <summary>Waits for the runs in flight, destroys every slot (template, cgroup, tmpfs, run dir) and removes the pool.</summary>
    /// <remarks>
    /// The pool's directory is first renamed aside (".NAME.rm-PID"), so no new run finds it; then each
    /// slot's lock is taken (a run in flight finishes first) and the slot destroyed; then the directory
    /// goes. An earlier `rm` of NAME that died midway is finished too (and by <see cref="Init"/>).
    /// </remarks>
    public static void Remove(string name)
    {
        var dir = DirOf(name);
        bool had = Directory.Exists(dir);
        if (had) Directory.Move(dir, Path.Combine(PoolsRoot, $".{name}.rm-{Environment.ProcessId}"));
        int finished = FinishRemovals(name);
        if (!had && finished == 0) throw new EngineError($"no sandbox pool {name}");
    }

    /// <summary>Destroys every slot of every renamed-aside pool NAME and removes it; returns how many there were.</summary>
    private static int FinishRemovals(string name)
    {
        if (!Directory.Exists(PoolsRoot)) return 0;
        var errors = new List<string>();
        int count = 0;
        foreach (var tomb in Directory.GetDirectories(PoolsRoot, $".{name}.rm-*"))
        {
            count++;
            var slots = Directory.GetFiles(tomb, "slot-*")
                .Select(f => int.TryParse(Path.GetFileName(f)[5..], NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : -1)
                .Where(i => i >= 0).Order();
            bool ok = true;
            foreach (var i in slots)
            {
                int fd = Fd.Open(Path.Combine(tomb, $"slot-{i}"), Consts.O_RDWR | Consts.O_CLOEXEC);
                while (LibC.flock(fd, LockEx) != 0 && Marshal.GetLastPInvokeError() == Consts.EINTR) { }
                using var lease = Lease.Open(name, i, fd);
                if (lease.Destroy() is { } err) { errors.Add(err); ok = false; }
            }
            if (ok) Directory.Delete(tomb, recursive: true);
        }
        if (errors.Count > 0) throw new EngineError($"sandbox pool {name}: {string.Join("; ", errors)}");
        return count;
    }

    /// <summary>One line per slot: index, id, state (empty, ready, busy, in use), the template's pid.</summary>
    public static List<string> List(string name)
    {
        int n = Size(name) ?? throw new EngineError($"no sandbox pool {name}");
        var lines = new List<string>();
        for (int i = 0; i < n; i++)
        {
            var path = Path.Combine(DirOf(name), $"slot-{i}");
            int fd = Fd.Open(path, Consts.O_RDONLY | Consts.O_CLOEXEC);
            try
            {
                bool locked = LibC.flock(fd, 1 /* LOCK_SH */ | LockNb) != 0;
                var st = State.Parse(Read(fd));
                var what = locked ? "in-use" : st is null ? "unreadable" : st.Busy ? "busy" : st.BoxSize is null && st.Template is null ? "empty" : "ready";
                lines.Add($"{i} {SlotId(name, i)} {what} {(st?.Template is { } t ? t.Pid.ToString(CultureInfo.InvariantCulture) : "-")}");
            }
            finally { Fd.Close(fd); }
        }
        return lines;
    }

    /// <summary>A slot's state file (a few KiB; 64 KiB at most is read: a larger one is not a state this code wrote).</summary>
    private static unsafe string Read(int fd)
    {
        byte* small = stackalloc byte[8192];
        long n = LibC.pread(fd, small, 8192, 0);
        if (n < 0) throw LinuxException.Last("read", "sandbox pool slot");
        if (n < 8192) return Encoding.UTF8.GetString(small, (int)n);
        var buf = new byte[64 << 10];
        fixed (byte* p = buf)
        {
            n = LibC.pread(fd, p, buf.Length, 0);
            if (n < 0) throw LinuxException.Last("read", "sandbox pool slot");
            return Encoding.UTF8.GetString(buf, 0, (int)n);
        }
    }

    /// <summary>A slot's state file: what one run leaves the next.</summary>
    internal sealed record State(bool Busy, long? BoxSize, SandboxCgroup.Saved? Cgroup, TemplateState? Template, BoxImage? Kept = null)
    {
        public static readonly State Empty = new(false, null, null, null);

        public string Format()
        {
            var sb = new StringBuilder(Busy ? "B\n" : "R\n");
            if (BoxSize is { } b) sb.Append("box ").Append(b.ToString(CultureInfo.InvariantCulture)).Append('\n');
            if (Cgroup is { } c)
            {
                sb.Append(CultureInfo.InvariantCulture, $"cgroup {c.Applied ?? "-"} {(c.DevicesApplied ? 1 : 0)} {c.MemBase} {c.OomBase}\n");
                if (c.Layout is { } layout) sb.Append("layout ").Append(layout).Append('\n');
            }
            if (Template is { } t)
                sb.Append(CultureInfo.InvariantCulture, $"template {t.Pid} {t.StartTime} {string.Join(',', t.ScrubPaths)}\n")
                  .Append("key ").Append(Escape(t.Key)).Append('\n');
            // The box the last job left, verified to be the copy of DIR it got (BoxImage.Verify).
            if (Kept?.Format() is { } kept) sb.Append(kept);
            return sb.ToString();
        }

        /// <summary>Null when the text is not a state this code wrote.</summary>
        public static State? Parse(string text)
        {
            var lines = text.Split('\n');
            if (lines[0] is not ("R" or "B")) return null;
            long? box = null;
            SandboxCgroup.Saved? cg = null;
            (int Pid, ulong Start, string[] Paths)? tpl = null;
            string? key = null, layout = null, keep = null;
            var entries = new List<string>();
            foreach (var line in lines.Skip(1))
            {
                if (line.Length == 0) continue;
                int sp = line.IndexOf(' ');
                if (sp < 0) return null;
                var (k, v) = (line[..sp], line[(sp + 1)..]);
                var f = v.Split(' ');
                switch (k)
                {
                    case "box" when long.TryParse(v, CultureInfo.InvariantCulture, out var size): box = size; break;
                    case "cgroup" when f.Length == 4 && ulong.TryParse(f[2], CultureInfo.InvariantCulture, out var mem)
                                       && ulong.TryParse(f[3], CultureInfo.InvariantCulture, out var oom):
                        cg = new SandboxCgroup.Saved(f[0] == "-" ? null : f[0], f[1] == "1", mem, oom);
                        break;
                    case "template" when f.Length == 3 && int.TryParse(f[0], CultureInfo.InvariantCulture, out var pid) && pid > 0
                                         && ulong.TryParse(f[1], CultureInfo.InvariantCulture, out var start):
                        tpl = (pid, start, f[2].Length == 0 ? [] : f[2].Split(','));
                        break;
                    case "key": key = Unescape(v); break;
                    case "layout": layout = v; break;
                    case "keep": keep = v; break;
                    case "entry": entries.Add(v); break;
                    default: return null;
                }
            }
            if (tpl is not null && key is null) return null;
            if (cg is not null && layout is not null) cg = cg with { Layout = layout };
            BoxImage? kept = null;
            if (keep is not null && (kept = BoxImage.Parse(keep, entries)) is null) return null;
            return new State(lines[0] == "B", box, cg, tpl is { } t ? new TemplateState(t.Pid, t.Start, t.Paths, key!) : null, kept);
        }

        private static string Escape(string s) => s.Replace("\\", "\\\\").Replace("\n", "\\n");

        private static string Unescape(string s)
        {
            var sb = new StringBuilder(s.Length);
            for (int i = 0; i < s.Length; i++)
            {
                if (s[i] == '\\' && i + 1 < s.Length) { sb.Append(s[++i] == 'n' ? '\n' : s[i]); continue; }
                sb.Append(s[i]);
            }
            return sb.ToString();
        }
    }

    internal sealed record TemplateState(int Pid, ulong StartTime, string[] ScrubPaths, string Key);

    /// <summary>A locked slot: <see cref="Slot"/> for one job, then <see cref="Release"/> (or Dispose: destroyed).</summary>
    public sealed class Lease : IDisposable
    {
        private int _fd;
        private bool _done;
        public string Pool { get; }
        public int Index { get; }
        public SandboxSlot Slot { get; private set; }

        private Lease(string pool, int index, int fd, SandboxSlot slot) => (Pool, Index, _fd, Slot) = (pool, index, fd, slot);

        internal static Lease Open(string pool, int index, int fd)
        {
            var id = SlotId(pool, index);
            State? st;
            try { st = State.Parse(Read(fd)); }
            catch (LinuxException) { st = null; }
            var lease = new Lease(pool, index, fd, Restore(id, st ?? State.Empty, out bool whole));
            // A busy slot (its run died mid-job), a state this code cannot read, or parts gone: all of it goes.
            if (st is null || st.Busy || !whole)
            {
                lease.Destroy();
                lease.Slot = Restore(id, State.Empty, out _);
                lease.Write(State.Empty with { Busy = true });
            }
            else lease.MarkBusy(); // the rest of the state is what was read: only its first byte changes
            lease.Slot.JailCachePath = Path.Combine(DirOf(pool), $"jail-{index}");
            lease.Slot.Changed = () => lease.Write(Describe(lease.Slot) with { Busy = true });
            return lease;
        }

        /// <summary>The slot as the state says, with whatever of it still exists; whole is false when something the state names is gone.</summary>
        private static SandboxSlot Restore(string id, State st, out bool whole)
        {
            whole = true;
            SandboxCgroup? cg = null;
            if (st.Cgroup is { } saved && (cg = SandboxCgroup.Open(id, saved)) is null) whole = false;
            StubJail.Template? tpl = null;
            if (st.Template is { } t && (tpl = StubJail.Template.Attach(t.Key, t.Pid, t.StartTime, t.ScrubPaths)) is null) whole = false;
            var slot = SandboxSlot.Restore(id, st.BoxSize, cg, tpl);
            // A kept box only on its tmpfs (checked below, and against the box itself by the job's Prepare).
            if (st.BoxSize is not null) slot.KeptBox = st.Kept;
            // The tmpfs must still be mounted on the slot's directory (another device than its parent's).
            if (st.BoxSize is not null
                && !(StatX.TryAt(-100, slot.Dir, out var a, out _) && StatX.TryAt(-100, SandboxRunner.RunsRoot, out var b, out _) && a.Dev != b.Dev))
                whole = false;
            return slot;
        }

        private static State Describe(SandboxSlot slot) => new(false, slot.MountedBoxSize, slot.Cgroup?.Save(),
            slot.Template is { } t ? new TemplateState(t.InitPid, t.StartTime, t.ScrubPaths, t.Key) : null, slot.KeptBox);

        /// <summary>After the job: the slot is kept for the next run, or destroyed when the verdict is XX.</summary>
        public void Release(Verdict v)
        {
            if (_done) return;
            if (v.Status == "XX") Destroy();
            else Write(Describe(Slot));
            Close();
        }

        /// <summary>Everything of the slot goes: template killed, cgroup emptied and removed, tmpfs unmounted, run dir removed. Returns an error, or null.</summary>
        internal string? Destroy()
        {
            string? error = null;
            Slot.Changed = null;
            try { Slot.Dispose(); }
            catch (Exception e) when (e is IOException or Berth.Linux.Cgroups.CgroupException or UnauthorizedAccessException or LinuxException)
            {
                error = $"slot {Index}: {e.Message}";
            }
            // Unmounted even when the state did not say it was mounted.
            Berth.Linux.Mounts.Mount.TryUnmount(Slot.Dir, Consts.MNT_DETACH);
            try { if (Directory.Exists(Slot.Dir)) Directory.Delete(Slot.Dir); }
            catch (IOException e) { error ??= $"slot {Index}: {e.Message}"; }
            Write(State.Empty);
            return error;
        }

        /// <summary>The state's first byte ('R' -> 'B'), in place.</summary>
        private unsafe void MarkBusy()
        {
            byte b = (byte)'B';
            if (LibC.pwrite(_fd, &b, 1, 0) != 1) throw LinuxException.Last("write", $"sandbox pool {Pool} slot {Index}");
        }

        private unsafe void Write(State st)
        {
            var bytes = Encoding.UTF8.GetBytes(st.Format());
            fixed (byte* p = bytes)
            {
                if (LibC.pwrite(_fd, p, bytes.Length, 0) != bytes.Length || LibC.ftruncate(_fd, bytes.Length) != 0)
                    throw LinuxException.Last("write", $"sandbox pool {Pool} slot {Index}");
            }
        }

        private void Close()
        {
            _done = true;
            Fd.Close(_fd); // the lock goes with it
            _fd = -1;
        }

        /// <summary>Not released (an exception in the job): the slot is destroyed, so no run gets it half-clean.</summary>
        public void Dispose()
        {
            if (_done) return;
            try { Destroy(); }
            finally { Close(); }
        }
    }
}

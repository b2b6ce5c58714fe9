using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Seccomp;

namespace Berth.Engine.Sandbox;

/// <summary>
/// The audit source without user notification: seccomp's kernel audit records (type=1326, written
/// for LOG, ERRNO and KILL actions because the filter carries FILTER_FLAG_LOG) read back from
/// /dev/kmsg. Best effort: the kernel rate-limits them, they carry no arguments, and they are told
/// apart from other jails' only by the sandbox uid and the run's time window.
/// </summary>
public sealed partial class KernelAudit : IDisposable
{
    private int _fd = -1;
    private int _started;

    /// <summary>
    /// The /dev/kmsg fd of the process's last finished audit, kept for the next one (a batch worker runs
    /// job after job): opening /dev/kmsg walks the whole printk ring (~3% of a batch's CPU measured);
    /// the seek to its end is what starts a new window.
    /// </summary>
    private static int s_spare = -1;

    /// <summary>Opens /dev/kmsg positioned at its end (records from now on); silently nothing where it cannot.</summary>
    public void Start()
    {
        // Once per job, from whichever thread comes first (a sandbox job's box-copy helper may open it
        // beside the copy; the job joins that thread before the jail is spawned).
        if (Interlocked.Exchange(ref _started, 1) == 1) return;
        _fd = Interlocked.Exchange(ref s_spare, -1);
        if (_fd < 0)
        {
            try { _fd = Fd.Open("/dev/kmsg", Consts.O_RDONLY | Consts.O_NONBLOCK | Consts.O_CLOEXEC); }
            catch (LinuxException) { return; }
        }
        if (LibC.lseek(_fd, 0, LibC.SEEK_END) < 0) { Fd.Close(_fd); _fd = -1; }
    }

    [GeneratedRegex(@"audit: type=1326 .*? uid=(\d+) .*?pid=(\d+) comm=""([^""]*)"".*? arch=([0-9a-f]+) syscall=(\d+) .*?ip=0x([0-9a-f]+) code=0x([0-9a-f]+)")]
    private static partial Regex Record();

    /// <summary>
    /// The seccomp records for <paramref name="uid"/> since <see cref="Start"/>, less the ERRNO records of
    /// <paramref name="profileErrno"/>: the profile's own answers (clone3's ENOSYS, met by berth's PID 1
    /// posix_spawn on every run), not violations.
    /// </summary>
    public List<Violation> Collect(uint uid, IReadOnlySet<string> profileErrno)
    {
        var result = new List<Violation>();
        if (_fd < 0) return result;
        var buf = new byte[8192];
        while (true)
        {
            int n;
            try { n = Fd.Read(_fd, buf); }
            catch (LinuxException e) when (e.Errno == 32 /* EPIPE: overwritten records */) { continue; }
            catch (LinuxException) { break; } // EAGAIN: no more
            if (n <= 0) break;
            var line = Encoding.UTF8.GetString(buf, 0, n);
            var m = Record().Match(line);
            if (!m.Success || m.Groups[1].Value != uid.ToString(CultureInfo.InvariantCulture)) continue;
            uint arch = uint.Parse(m.Groups[4].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            int nr = int.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture);
            uint code = uint.Parse(m.Groups[7].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var a = SyscallTable.ArchOf(arch, nr);
            if ((code & 0xffff0000) == SeccompAbi.RET_ERRNO && a is { } own && SyscallTable.Name(own, nr) is { } ownName
                && profileErrno.Contains(ownName)) continue;
            string action = (code & 0xffff0000) switch
            {
                SeccompAbi.RET_LOG => "allow",
                SeccompAbi.RET_ERRNO => "deny",
                SeccompAbi.RET_KILL_PROCESS or SeccompAbi.RET_KILL_THREAD => "kill",
                _ => $"0x{code:x}",
            };
            result.Add(new Violation(DateTime.UtcNow, int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), m.Groups[3].Value,
                (a is { } x ? SyscallTable.Name(x, nr) : null) ?? $"syscall_{nr}", nr,
                a is { } y ? SandboxProfile.ScmpArch(y)["SCMP_ARCH_".Length..].ToLowerInvariant() : $"0x{arch:x8}",
                [], ulong.Parse(m.Groups[6].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture), action, false)
            { Source = "kernel-audit" });
        }
        return result;
    }

    public void Dispose()
    {
        if (_fd >= 0 && Interlocked.CompareExchange(ref s_spare, _fd, -1) != -1) Fd.Close(_fd);
        _fd = -1;
    }
}

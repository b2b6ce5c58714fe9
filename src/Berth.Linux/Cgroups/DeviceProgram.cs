using System.Runtime.InteropServices;
using System.Text;
using Berth.Linux.Files;
using Berth.Linux.Interop;

namespace Berth.Linux.Cgroups;

/// <summary>
/// Loads a device filter (<see cref="DeviceFilter"/>) with bpf(2) and attaches it to a cgroup v2
/// directory as BPF_CGROUP_DEVICE. Attached with BPF_F_ALLOW_MULTI (so a nested runtime can add
/// its own below); programs that were attached before are detached after the new one is in, so
/// there is no moment without a filter.
/// </summary>
public static unsafe class DeviceProgram
{
    private const int BPF_PROG_LOAD = 5, BPF_PROG_ATTACH = 8, BPF_PROG_DETACH = 9,
        BPF_PROG_GET_FD_BY_ID = 13, BPF_PROG_QUERY = 16;
    private const int BPF_PROG_TYPE_CGROUP_DEVICE = 15, BPF_CGROUP_DEVICE = 6, BPF_F_ALLOW_MULTI = 2;
    private const int AttrSize = 120;

    private static long SysBpf => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 280 : 321;

    /// <summary>Replaces the device programs on <paramref name="cgroupDir"/> with one enforcing <paramref name="rules"/>.</summary>
    public static void Attach(string cgroupDir, IReadOnlyList<DeviceRule> rules)
    {
        var insns = DeviceFilter.Encode(DeviceFilter.Generate(rules));
        int dirFd = Fd.TryOpen(cgroupDir, Consts.O_RDONLY | Consts.O_DIRECTORY);
        if (dirFd < 0) throw Error("open", cgroupDir);
        int progFd = -1;
        try
        {
            var old = Query(dirFd, cgroupDir);
            progFd = Load(insns, cgroupDir);
            var attr = stackalloc byte[AttrSize];
            new Span<byte>(attr, AttrSize).Clear();
            *(uint*)(attr + 0) = (uint)dirFd;
            *(uint*)(attr + 4) = (uint)progFd;
            *(uint*)(attr + 8) = BPF_CGROUP_DEVICE;
            *(uint*)(attr + 12) = BPF_F_ALLOW_MULTI;
            if (Bpf(BPF_PROG_ATTACH, attr) < 0) throw Error("bpf(BPF_PROG_ATTACH) device filter to", cgroupDir);
            foreach (var id in old) Detach(dirFd, id, cgroupDir);
        }
        finally
        {
            Fd.Close(progFd);
            Fd.Close(dirFd);
        }
    }

    /// <summary>Ids of the device programs attached directly to <paramref name="cgroupDir"/> (inspection, leak checks).</summary>
    public static IReadOnlyList<uint> AttachedIds(string cgroupDir)
    {
        int dirFd = Fd.TryOpen(cgroupDir, Consts.O_RDONLY | Consts.O_DIRECTORY);
        if (dirFd < 0) throw Error("open", cgroupDir);
        try { return Query(dirFd, cgroupDir); }
        finally { Fd.Close(dirFd); }
    }

    private static int Load(byte[] insns, string cgroupDir)
    {
        var license = "Apache-2.0\0"u8.ToArray();
        var attr = stackalloc byte[AttrSize];
        fixed (byte* pInsns = insns, pLicense = license)
        {
            for (int attempt = 0; attempt < 2; attempt++)
            {
                // Second attempt only to fetch the verifier's log for the error message.
                var log = attempt == 0 ? [] : new byte[64 * 1024];
                fixed (byte* pLog = log)
                {
                    new Span<byte>(attr, AttrSize).Clear();
                    *(uint*)(attr + 0) = BPF_PROG_TYPE_CGROUP_DEVICE;
                    *(uint*)(attr + 4) = (uint)(insns.Length / 8);
                    *(ulong*)(attr + 8) = (ulong)pInsns;
                    *(ulong*)(attr + 16) = (ulong)pLicense;
                    if (log.Length > 0)
                    {
                        *(uint*)(attr + 24) = 1;
                        *(uint*)(attr + 28) = (uint)log.Length;
                        *(ulong*)(attr + 32) = (ulong)pLog;
                    }
                    "berth_devices"u8.CopyTo(new Span<byte>(attr + 48, 16));
                    long fd = Bpf(BPF_PROG_LOAD, attr);
                    if (fd >= 0) return (int)fd;
                    int errno = Marshal.GetLastPInvokeError();
                    if (attempt == 1 || errno is Consts.EPERM or Consts.ENOSYS)
                    {
                        int len = Array.IndexOf(log, (byte)0);
                        var verifier = len > 0 ? ": " + Encoding.UTF8.GetString(log, 0, len).Trim() : "";
                        throw new CgroupException(
                            $"cgroup: bpf(BPF_PROG_LOAD) device filter for {cgroupDir}: {LinuxException.Describe(errno)}{verifier}", errno: errno);
                    }
                }
            }
        }
        throw new InvalidOperationException("unreachable");
    }

    /// <summary>Ids of the device programs attached to the cgroup itself (not inherited).</summary>
    private static List<uint> Query(int dirFd, string cgroupDir)
    {
        var ids = new uint[64];
        var attr = stackalloc byte[AttrSize];
        new Span<byte>(attr, AttrSize).Clear();
        fixed (uint* pIds = ids)
        {
            *(uint*)(attr + 0) = (uint)dirFd;
            *(uint*)(attr + 4) = BPF_CGROUP_DEVICE;
            *(ulong*)(attr + 16) = (ulong)pIds;
            *(uint*)(attr + 24) = (uint)ids.Length;
            if (Bpf(BPF_PROG_QUERY, attr) < 0) throw Error("bpf(BPF_PROG_QUERY) device filters of", cgroupDir);
        }
        uint count = *(uint*)(attr + 24);
        return ids.Take((int)Math.Min(count, (uint)ids.Length)).ToList();
    }

    private static void Detach(int dirFd, uint id, string cgroupDir)
    {
        var attr = stackalloc byte[AttrSize];
        new Span<byte>(attr, AttrSize).Clear();
        *(uint*)(attr + 0) = id;
        long fd = Bpf(BPF_PROG_GET_FD_BY_ID, attr);
        if (fd < 0)
        {
            if (Marshal.GetLastPInvokeError() == Consts.ENOENT) return; // already gone
            throw Error($"bpf(BPF_PROG_GET_FD_BY_ID) {id} on", cgroupDir);
        }
        try
        {
            new Span<byte>(attr, AttrSize).Clear();
            *(uint*)(attr + 0) = (uint)dirFd;
            *(uint*)(attr + 4) = (uint)fd;
            *(uint*)(attr + 8) = BPF_CGROUP_DEVICE;
            if (Bpf(BPF_PROG_DETACH, attr) < 0 && Marshal.GetLastPInvokeError() != Consts.ENOENT)
                throw Error("bpf(BPF_PROG_DETACH) old device filter from", cgroupDir);
        }
        finally { Fd.Close((int)fd); }
    }

    private static long Bpf(int cmd, byte* attr) => LibC.syscall(SysBpf, cmd, (long)attr, AttrSize, 0, 0, 0);

    private static CgroupException Error(string what, string subject)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new CgroupException($"cgroup: {what} {subject}: {LinuxException.Describe(errno)}", errno: errno);
    }
}

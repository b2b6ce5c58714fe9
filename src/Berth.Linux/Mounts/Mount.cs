using Berth.Linux.Interop;

namespace Berth.Linux.Mounts;

/// <summary>mount(2), umount2(2) and pivot_root(2), throwing errors that name the target.</summary>
public static unsafe class Mount
{
    public static void Apply(string? source, string target, string? fstype, ulong flags, string? data)
    {
        int rc = TryApply(source, target, fstype, flags, data);
        if (rc != 0)
        {
            var what = fstype is null or "" ? (source ?? "") : $"{fstype} {source}";
            throw new LinuxException("mount", $"{what} on {target} (flags 0x{flags:x}{(string.IsNullOrEmpty(data) ? "" : ", data " + data)})", rc);
        }
    }

    /// <summary>Returns 0 or the errno.</summary>
    public static int TryApply(string? source, string target, string? fstype, ulong flags, string? data)
    {
        fixed (byte* s = source is null ? null : CString.Of(source))
        fixed (byte* t = CString.Of(target))
        fixed (byte* f = fstype is null ? null : CString.Of(fstype))
        fixed (byte* d = data is null ? null : CString.Of(data))
        {
            return LibC.mount(s, t, f, flags, d) == 0 ? 0 : System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        }
    }

    public static void Unmount(string target, int flags)
    {
        fixed (byte* t = CString.Of(target))
            if (LibC.umount2(t, flags) != 0) throw LinuxException.Last("umount", target);
    }

    /// <summary>umount2; returns 0 or the errno.</summary>
    public static int TryUnmount(string target, int flags)
    {
        fixed (byte* t = CString.Of(target))
            return LibC.umount2(t, flags) == 0 ? 0 : System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
    }

    public static void PivotRoot(string newRoot, string putOld)
    {
        fixed (byte* n = CString.Of(newRoot))
        fixed (byte* o = CString.Of(putOld))
            if (LibC.syscall(Syscalls.PivotRoot, (long)n, (long)o, 0, 0, 0, 0) != 0)
                throw LinuxException.Last("pivot_root", newRoot);
    }

    public static void Chdir(string path)
    {
        fixed (byte* p = CString.Of(path))
            if (LibC.chdir(p) != 0) throw LinuxException.Last("chdir", path);
    }

    public static void Chroot(string path)
    {
        fixed (byte* p = CString.Of(path))
            if (LibC.chroot(p) != 0) throw LinuxException.Last("chroot", path);
    }
}

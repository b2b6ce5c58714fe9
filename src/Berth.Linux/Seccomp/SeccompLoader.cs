using System.Runtime.InteropServices;
using Berth.Linux.Interop;

namespace Berth.Linux.Seccomp;

/// <summary>
/// Installs a compiled filter with seccomp(2). Meant for the forked, single-threaded init child
/// right before execve: no allocation on the success path, no threads. The caller has already set
/// no_new_privs (PR_SET_NO_NEW_PRIVS) or holds CAP_SYS_ADMIN; the kernel answers EACCES otherwise.
/// </summary>
public static unsafe class SeccompLoader
{
    [StructLayout(LayoutKind.Sequential)]
    private struct SockFprog
    {
        public ushort Len;
        public SockFilter* Filter;
    }

    /// <summary>Flags every kernel with seccomp filters must honour when asked; the others are optional.</summary>
    private const uint RequiredFlags = SeccompAbi.FILTER_FLAG_TSYNC | SeccompAbi.FILTER_FLAG_NEW_LISTENER
        | SeccompAbi.FILTER_FLAG_TSYNC_ESRCH;

    /// <summary>
    /// Loads <paramref name="program"/>. Returns the notification fd when
    /// <see cref="SeccompAbi.FILTER_FLAG_NEW_LISTENER"/> is in <paramref name="flags"/>, else -1.
    /// Throws <see cref="LinuxException"/> when the kernel refuses the filter.
    /// </summary>
    public static int Load(ReadOnlySpan<SockFilter> program, uint flags)
    {
        int errno = TryLoad(program, flags, out int notifyFd);
        if (errno != 0)
            throw new LinuxException("seccomp(SECCOMP_SET_MODE_FILTER)",
                $"filter of {program.Length} instructions, flags 0x{flags:x}", errno);
        return notifyFd;
    }

    /// <summary>
    /// The non-throwing form for the init child: returns 0 or an errno. Optional flags the kernel
    /// does not know (LOG before 4.14, SPEC_ALLOW before 4.17, WAIT_KILLABLE_RECV before 5.19) make
    /// seccomp fail with EINVAL; the filter is then loaded once more without them, as crun does.
    /// </summary>
    public static int TryLoad(ReadOnlySpan<SockFilter> program, uint flags, out int notifyFd)
    {
        notifyFd = -1;
        if (program.IsEmpty || program.Length > Bpf.MaxInstructions) return Consts.EINVAL;
        fixed (SockFilter* p = program)
        {
            var prog = new SockFprog { Len = (ushort)program.Length, Filter = p };
            long rc = LibC.syscall(Syscalls.Seccomp, SeccompAbi.SET_MODE_FILTER, flags, (long)&prog, 0, 0, 0);
            if (rc < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                uint required = flags & RequiredFlags;
                if (errno != Consts.EINVAL || required == flags) return errno;
                rc = LibC.syscall(Syscalls.Seccomp, SeccompAbi.SET_MODE_FILTER, required, (long)&prog, 0, 0, 0);
                if (rc < 0) return Marshal.GetLastPInvokeError();
            }
            if ((flags & SeccompAbi.FILTER_FLAG_NEW_LISTENER) != 0) notifyFd = (int)rc;
            return 0;
        }
    }
}

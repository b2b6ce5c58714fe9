using System.Runtime.InteropServices;

namespace Berth.Linux.Interop;

/// <summary>
/// Raw libc entry points. Thin on purpose: no policy, no exceptions. Callers check the
/// return value and read errno with <see cref="Marshal.GetLastPInvokeError"/>.
/// The published binary binds these at link time (DirectPInvoke), so nothing is resolved
/// lazily between fork and execve.
/// </summary>
public static unsafe partial class LibC
{
    private const string Lib = "libc";

    [LibraryImport(Lib, SetLastError = true)] public static partial int fork();
    [LibraryImport(Lib, SetLastError = true)] public static partial void* mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);
    [LibraryImport(Lib, SetLastError = true)] public static partial int munmap(void* addr, nuint length);
    [LibraryImport(Lib, SetLastError = true)] public static partial int mprotect(void* addr, nuint length, int prot);
    /// <summary>glibc's sigaction (it adds SA_RESTORER and its restorer); act and oldact are its 152-byte struct on x86_64.</summary>
    [LibraryImport(Lib, SetLastError = true)] public static partial int sigaction(int signum, byte* act, byte* oldact);
    [LibraryImport(Lib, SetLastError = true)] public static partial int fanotify_init(uint flags, uint eventFlags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int fanotify_mark(int fd, uint flags, ulong mask, int dirFd, byte* path);
    // pthreads return the error number instead of setting errno.
    [LibraryImport(Lib)] public static partial int pthread_attr_init(byte* attr);
    [LibraryImport(Lib)] public static partial int pthread_attr_setstacksize(byte* attr, nuint size);
    [LibraryImport(Lib)] public static partial int pthread_attr_destroy(byte* attr);
    [LibraryImport(Lib)] public static partial int pthread_create(nuint* thread, byte* attr, delegate* unmanaged<nint, nint> start, nint arg);
    [LibraryImport(Lib)] public static partial int pthread_setaffinity_np(nuint thread, nuint cpusetsize, byte* cpuset);
    [LibraryImport(Lib)] public static partial int sched_getcpu();
    [LibraryImport(Lib, SetLastError = true)] public static partial int sched_getaffinity(int pid, nuint cpusetsize, byte* mask);
    [LibraryImport(Lib)] public static partial int pthread_join(nuint thread, void** result);
    [LibraryImport(Lib, EntryPoint = "_exit")] public static partial void _exit(int status);
    [LibraryImport(Lib, SetLastError = true)] public static partial int execve(byte* path, byte** argv, byte** envp);
    /// <summary>Returns an errno (not -1/errno): POSIX spawn reports errors as its return value.</summary>
    [LibraryImport(Lib)] public static partial int posix_spawn(int* pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);
    [LibraryImport(Lib)] public static partial int posix_spawn_file_actions_init(void* fileActions);
    [LibraryImport(Lib)] public static partial int posix_spawn_file_actions_adddup2(void* fileActions, int fd, int newfd);
    [LibraryImport(Lib)] public static partial int posix_spawn_file_actions_destroy(void* fileActions);
    [LibraryImport(Lib, SetLastError = true)] public static partial int execveat(int dirfd, byte* path, byte** argv, byte** envp, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int waitpid(int pid, int* status, int options);
    [LibraryImport(Lib, SetLastError = true)] public static partial int kill(int pid, int sig);
    [LibraryImport(Lib)] public static partial int getpid();
    [LibraryImport(Lib)] public static partial int getppid();
    [LibraryImport(Lib)] public static partial uint geteuid();
    [LibraryImport(Lib)] public static partial uint getegid();
    [LibraryImport(Lib, SetLastError = true)] public static partial int setsid();
    [LibraryImport(Lib, SetLastError = true)] public static partial int unshare(int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int setns(int fd, int nstype);
    [LibraryImport(Lib, SetLastError = true)] public static partial long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);
    [LibraryImport(Lib, SetLastError = true)] public static partial int prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);

    [LibraryImport(Lib, SetLastError = true)] public static partial int mount(byte* source, byte* target, byte* fstype, ulong flags, byte* data);
    [LibraryImport(Lib, SetLastError = true)] public static partial int umount2(byte* target, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int chdir(byte* path);
    [LibraryImport(Lib, SetLastError = true)] public static partial int fchdir(int fd);
    [LibraryImport(Lib, SetLastError = true)] public static partial int chroot(byte* path);
    [LibraryImport(Lib, SetLastError = true)] public static partial int mkdirat(int dirfd, byte* path, uint mode);
    [LibraryImport(Lib, SetLastError = true)] public static partial int mknodat(int dirfd, byte* path, uint mode, ulong dev);
    [LibraryImport(Lib, SetLastError = true)] public static partial int symlinkat(byte* target, int dirfd, byte* linkpath);
    [LibraryImport(Lib, SetLastError = true)] public static partial int unlinkat(int dirfd, byte* path, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int fstatfs(int fd, void* buf);
    [LibraryImport(Lib, SetLastError = true)] public static partial int mkfifo(byte* path, uint mode);
    [LibraryImport(Lib, SetLastError = true)] public static partial int fchownat(int dirfd, byte* path, uint uid, uint gid, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int fchmod(int fd, uint mode);
    [LibraryImport(Lib, SetLastError = true)] public static partial int fchown(int fd, uint uid, uint gid);
    [LibraryImport(Lib, SetLastError = true)] public static partial long readlink(byte* path, byte* buf, nint size);
    [LibraryImport(Lib, SetLastError = true)] public static partial int access(byte* path, int mode);
    [LibraryImport(Lib)] public static partial uint umask(uint mask);

    [LibraryImport(Lib, SetLastError = true)] public static partial int open(byte* path, int flags, uint mode);
    [LibraryImport(Lib, SetLastError = true)] public static partial int openat(int dirfd, byte* path, int flags, uint mode);
    [LibraryImport(Lib, SetLastError = true)] public static partial int close(int fd);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint read(int fd, byte* buf, nint count);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint write(int fd, byte* buf, nint count);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint pread(int fd, byte* buf, nint count, long offset);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint pwrite(int fd, byte* buf, nint count, long offset);
    [LibraryImport(Lib, SetLastError = true)] public static partial int pipe2(int* fds, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int socketpair(int domain, int type, int protocol, int* sv);
    [LibraryImport(Lib, SetLastError = true)] public static partial int socket(int domain, int type, int protocol);
    [LibraryImport(Lib, SetLastError = true)] public static partial int connect(int fd, byte* addr, int addrlen);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint sendmsg(int fd, void* msg, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint recvmsg(int fd, void* msg, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int dup3(int oldfd, int newfd, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int fcntl(int fd, int cmd, int arg);
    [LibraryImport(Lib, SetLastError = true)] public static partial int ioctl(int fd, ulong request, void* arg);
    [LibraryImport(Lib, SetLastError = true)] public static partial int poll(void* fds, ulong nfds, int timeout);
    [LibraryImport(Lib, SetLastError = true)] public static partial int flock(int fd, int operation);
    [LibraryImport(Lib, SetLastError = true)] public static partial int fsync(int fd);
    [LibraryImport(Lib, SetLastError = true)] public static partial int isatty(int fd);

    [LibraryImport(Lib, SetLastError = true)] public static partial int sethostname(byte* name, nint len);
    [LibraryImport(Lib, SetLastError = true)] public static partial int setdomainname(byte* name, nint len);
    [LibraryImport(Lib, SetLastError = true)] public static partial int prlimit64(int pid, int resource, void* newLimit, void* oldLimit);
    [LibraryImport(Lib, SetLastError = true)] public static partial int setresuid(uint r, uint e, uint s);
    [LibraryImport(Lib, SetLastError = true)] public static partial int setresgid(uint r, uint e, uint s);
    [LibraryImport(Lib, SetLastError = true)] public static partial int setgroups(nint size, uint* list);
    [LibraryImport(Lib, SetLastError = true)] public static partial int capget(void* header, void* data);
    [LibraryImport(Lib, SetLastError = true)] public static partial int capset(void* header, void* data);
    [LibraryImport(Lib, SetLastError = true)] public static partial int sigprocmask(int how, ulong* set, ulong* old);
    [LibraryImport(Lib, SetLastError = true)] public static partial int sigtimedwait(ulong* set, void* info, long* timeout);
    [LibraryImport(Lib, SetLastError = true)] public static partial int statvfs(byte* path, ulong* buf);
    [LibraryImport(Lib, SetLastError = true)] public static partial int fstatat(int dirfd, byte* path, void* buf, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int statx(int dirfd, byte* path, int flags, uint mask, byte* buf);
    [LibraryImport(Lib, SetLastError = true)] public static partial int tcgetattr(int fd, byte* termios);
    [LibraryImport(Lib, SetLastError = true)] public static partial int tcsetattr(int fd, int action, byte* termios);
    [LibraryImport(Lib)] public static partial void cfmakeraw(byte* termios);
    [LibraryImport(Lib, SetLastError = true)] public static partial int grantpt(int fd);
    [LibraryImport(Lib, SetLastError = true)] public static partial int unlockpt(int fd);
    [LibraryImport(Lib, SetLastError = true)] public static partial int memfd_create(byte* name, uint flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint sendfile(int outFd, int inFd, long* offset, nint count);
}

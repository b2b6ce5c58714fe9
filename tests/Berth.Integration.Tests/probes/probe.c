/*
 * Seccomp probe for the differential test (tests/Berth.Integration.Tests/SeccompTests.cs).
 * Static, no libc wrappers for the probed calls: each probe makes one raw syscall() in a forked
 * child and reports one line on stdout:
 *     NAME: ok | NAME: errno N | NAME: signal N
 *
 *     probe all            every probe, in order
 *     probe NAME...        the named probes
 *     probe list           the names
 *
 * Build: gcc -static -O2 -o probe probe.c (x86_64).
 *
 * Meant for a container: it refuses to run unless PROBE_IN_CONTAINER=1 is set, and every probe
 * is harmless where the syscall succeeds (mount targets a path that does not exist, chmod and
 * fchmodat2 touch one file in /dev/shm, personality/unshare happen in a throwaway child).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define SYS_fchmodat2_ 452
#define X32_BIT 0x40000000L
#define AF_VSOCK_ 40
#define NETLINK_AUDIT_ 9

typedef long (*probe_fn)(void);

/* A child made by a probe (clone, clone3) exits at once; the parent reaps it. */
static long reap(long pid)
{
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, __WALL);
    return pid;
}

static long p_getpid(void) { return syscall(SYS_getpid); }
static long p_getppid(void) { return syscall(SYS_getppid); }
static long p_unshare_user(void) { return syscall(SYS_unshare, CLONE_NEWUSER); }
static long p_unshare_none(void) { return syscall(SYS_unshare, 0); }
/* The target does not exist: where the call gets through, the kernel says ENOENT (or EPERM). */
static long p_mount(void) { return syscall(SYS_mount, "tmpfs", "/nonexistent-probe-target", "tmpfs", 0L, NULL); }
static long p_keyctl(void) { return syscall(SYS_keyctl, 0L /* GET_KEYRING_ID */, -3L /* session */, 0L); }
static long p_personality_0(void) { return syscall(SYS_personality, 0UL); }
static long p_personality_ffffffff(void) { return syscall(SYS_personality, 0xffffffffUL); }
static long p_personality_8(void) { return syscall(SYS_personality, 0x8UL); }
static long p_personality_20008(void) { return syscall(SYS_personality, 0x20008UL); }
/* 8 in the low half, 1 in the high half: a filter must compare all 64 bits on x86_64. */
static long p_personality_100000008(void) { return syscall(SYS_personality, 0x100000008UL); }
static long p_clone_newuser(void) { return reap(syscall(SYS_clone, (long)(CLONE_NEWUSER | SIGCHLD), 0L, 0L, 0L, 0L)); }
static long p_clone_plain(void) { return reap(syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L)); }
static long p_clone3_newuser(void)
{
    uint64_t args[11] = {0};
    args[0] = CLONE_NEWUSER;   /* flags */
    args[4] = SIGCHLD;         /* exit_signal */
    return reap(syscall(SYS_clone3, args, 88L));
}
static long sock(long domain, long type, long proto)
{
    long fd = syscall(SYS_socket, domain, type, proto);
    if (fd >= 0) close((int)fd);
    return fd;
}
static long p_socket_vsock(void) { return sock(AF_VSOCK_, 1 /* SOCK_STREAM */, 0); }
static long p_socket_inet(void) { return sock(2 /* AF_INET */, 1, 0); }
static long p_socket_unix(void) { return sock(1 /* AF_UNIX */, 1, 0); }
static long p_socket_netlink_audit(void) { return sock(16 /* AF_NETLINK */, 3 /* SOCK_RAW */, NETLINK_AUDIT_); }
static long p_ptrace_traceme(void) { return syscall(SYS_ptrace, 0L /* PTRACE_TRACEME */, 0L, 0L, 0L); }
static long p_bpf(void)
{
    char attr[128] = {0};
    return syscall(SYS_bpf, 0L /* BPF_MAP_CREATE */, attr, (long)sizeof attr);
}
static long p_io_uring_setup(void)
{
    char params[120] = {0};
    long fd = syscall(SYS_io_uring_setup, 1L, params);
    if (fd >= 0) close((int)fd);
    return fd;
}
static long p_chmod(void)
{
    const char *path = "/dev/shm/probe-chmod";
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
    return syscall(SYS_chmod, path, 0600L);
}
static long p_fchmodat2(void) { return syscall(SYS_fchmodat2_, (long)AT_FDCWD, "/dev/shm/probe-chmod", 0600L, 0L); }
static long p_syslog_size(void) { return syscall(SYS_syslog, 10L /* SIZE_BUFFER */, NULL, 0L); }
static long p_getpriority_process(void) { return syscall(SYS_getpriority, 0L /* PRIO_PROCESS */, 0L); }
static long p_getpriority_pgrp(void) { return syscall(SYS_getpriority, 1L /* PRIO_PGRP */, 0L); }
static long p_userfaultfd(void)
{
    long fd = syscall(SYS_userfaultfd, 0L);
    if (fd >= 0) close((int)fd);
    return fd;
}
static long p_perf_event_open(void) { return syscall(SYS_perf_event_open, NULL, 0L, -1L, -1L, 0L); }
static long p_nr_1000(void) { return syscall(1000L); }
/* getpid through the i386 entry (int 0x80, nr 20): seccomp_data.arch is AUDIT_ARCH_I386. */
static long p_i386_getpid(void)
{
    long ret = 20;
    __asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
    if (ret < 0 && ret > -4096) { errno = (int)-ret; return -1; }
    return ret;
}
/* getpid with the x32 bit: arch is x86_64, nr has bit 30 set. */
static long p_x32_getpid(void) { return syscall(X32_BIT | SYS_getpid); }

static const struct { const char *name; probe_fn fn; } probes[] = {
    {"getpid", p_getpid},
    {"getppid", p_getppid},
    {"unshare_user", p_unshare_user},
    {"unshare_none", p_unshare_none},
    {"mount", p_mount},
    {"keyctl", p_keyctl},
    {"personality_0", p_personality_0},
    {"personality_ffffffff", p_personality_ffffffff},
    {"personality_8", p_personality_8},
    {"personality_20008", p_personality_20008},
    {"personality_100000008", p_personality_100000008},
    {"clone_plain", p_clone_plain},
    {"clone_newuser", p_clone_newuser},
    {"clone3_newuser", p_clone3_newuser},
    {"socket_vsock", p_socket_vsock},
    {"socket_inet", p_socket_inet},
    {"socket_unix", p_socket_unix},
    {"socket_netlink_audit", p_socket_netlink_audit},
    {"ptrace_traceme", p_ptrace_traceme},
    {"bpf", p_bpf},
    {"io_uring_setup", p_io_uring_setup},
    {"chmod", p_chmod},
    {"fchmodat2", p_fchmodat2},
    {"syslog_size", p_syslog_size},
    {"getpriority_process", p_getpriority_process},
    {"getpriority_pgrp", p_getpriority_pgrp},
    {"userfaultfd", p_userfaultfd},
    {"perf_event_open", p_perf_event_open},
    {"nr_1000", p_nr_1000},
    {"i386_getpid", p_i386_getpid},
    {"x32_getpid", p_x32_getpid},
};
#define NPROBES (sizeof probes / sizeof probes[0])

static void say(const char *line)
{
    size_t n = strlen(line);
    while (n > 0) {
        ssize_t w = write(1, line, n);
        if (w <= 0) return;
        line += w;
        n -= (size_t)w;
    }
}

static int run(const char *name)
{
    char line[128];
    for (size_t i = 0; i < NPROBES; i++) {
        if (strcmp(probes[i].name, name) != 0) continue;
        pid_t pid = fork();
        if (pid < 0) {
            snprintf(line, sizeof line, "%s: fork failed errno %d\n", name, errno);
            say(line);
            return 1;
        }
        if (pid == 0) {
            errno = 0;
            long r = probes[i].fn();
            if (r < 0) snprintf(line, sizeof line, "%s: errno %d\n", name, errno);
            else snprintf(line, sizeof line, "%s: ok\n", name);
            say(line);
            _exit(0);
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        if (WIFSIGNALED(status)) {
            snprintf(line, sizeof line, "%s: signal %d\n", name, WTERMSIG(status));
            say(line);
        } else if (WEXITSTATUS(status) != 0) {
            snprintf(line, sizeof line, "%s: exit %d\n", name, WEXITSTATUS(status));
            say(line);
        }
        return 0;
    }
    snprintf(line, sizeof line, "%s: unknown probe\n", name);
    say(line);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) { say("usage: probe all | list | NAME...\n"); return 2; }
    int rc = 0;
    const char *guard = getenv("PROBE_IN_CONTAINER");
    if (guard == NULL || strcmp(guard, "1") != 0) {
        say("probe: set PROBE_IN_CONTAINER=1; this is meant to run inside a test container\n");
        return 2;
    }
    if (strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < NPROBES; i++) { say(probes[i].name); say("\n"); }
        return 0;
    }
    if (strcmp(argv[1], "all") == 0) {
        for (size_t i = 0; i < NPROBES; i++) rc |= run(probes[i].name);
        return rc;
    }
    for (int a = 1; a < argc; a++) rc |= run(argv[a]);
    return rc;
}

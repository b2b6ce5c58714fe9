// Hostile programs for `berth sandbox run` (SandboxSecurityTests): `hostile MODE [ARGS]`.
// Each mode does one bad thing; when the jail lets the program go on (log or deny mode, or a
// contained attack), it prints what it saw, one "key=value" line, and exits 0.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(const char *what, long rc) {
    printf("%s rc=%ld errno=%s\n", what, rc, rc < 0 ? strerrorname_np(errno) : "0");
    return 0;
}

static void *spin(void *arg) { (void)arg; usleep(20000); return NULL; }

static void *racer(void *arg) {
    (void)arg;
    for (int i = 0; i < 50; i++) syscall(SYS_keyctl, 0, -3, 0, 0, 0);
    return NULL;
}

// Reads FILE whole and says whether NEEDLE occurs in it (-1: unreadable).
static int contains(const char *file, const char *needle) {
    int fd = open(file, O_RDONLY);
    if (fd < 0) return -1;
    static char buf[1 << 20];
    ssize_t n, total = 0;
    while ((n = read(fd, buf + total, sizeof buf - 1 - total)) > 0 && total < (ssize_t)sizeof buf - 1) total += n;
    close(fd);
    buf[total] = 0;
    return strstr(buf, needle) != NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "forkbomb")) { for (;;) fork(); }
    if (!strcmp(m, "membomb")) {
        for (;;) { char *p = malloc(1 << 20); if (p) memset(p, 1, 1 << 20); }
    }
    if (!strcmp(m, "diskfill")) {
        static char block[65536];
        int fd = open("/box/fill", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        for (;;) if (write(fd, block, sizeof block) < 0) return report("diskfill", -1);
    }
    if (!strcmp(m, "output")) { for (;;) fputs("all work and no play makes jack a dull boy\n", stdout); }
    if (!strcmp(m, "busy")) { for (volatile unsigned long i = 0;; i++) {} }
    if (!strcmp(m, "sleeper")) { sleep(100); return 0; }
    if (!strcmp(m, "threads")) {
        pthread_t t[16];
        int made = 0;
        for (int i = 0; i < 16; i++) if (pthread_create(&t[i], NULL, spin, NULL) == 0) made++;
        for (int i = 0; i < made; i++) pthread_join(t[i], NULL);
        printf("threads=%d\n", made);
        return 0;
    }
    if (!strcmp(m, "ptrace")) return report("ptrace", ptrace(PTRACE_TRACEME, 0, 0, 0));
    if (!strcmp(m, "mount")) return report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(m, "unshare")) return report("unshare", unshare(CLONE_NEWUSER));
    if (!strcmp(m, "clone")) return report("clone", syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    if (!strcmp(m, "setns")) {
        int fd = open("/proc/self/ns/uts", O_RDONLY);
        return report("setns", setns(fd, 0));
    }
    if (!strcmp(m, "keyctl")) return report("keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3, 0, 0, 0));
    if (!strcmp(m, "bpf")) {
        union bpf_attr a;
        memset(&a, 0, sizeof a);
        a.map_type = BPF_MAP_TYPE_ARRAY; a.key_size = 4; a.value_size = 4; a.max_entries = 1;
        return report("bpf", syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a));
    }
    if (!strcmp(m, "perf")) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof a);
        a.type = PERF_TYPE_SOFTWARE; a.size = sizeof a; a.config = PERF_COUNT_SW_CPU_CLOCK;
        return report("perf_event_open", syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
    }
    if (!strcmp(m, "io_uring")) {
        char params[120];
        memset(params, 0, sizeof params);
        return report("io_uring_setup", syscall(SYS_io_uring_setup, 4, params));
    }
    if (!strcmp(m, "socket")) return report("socket", socket(AF_INET, SOCK_STREAM, 0));
    if (!strcmp(m, "unix")) return report("unix", socket(AF_UNIX, SOCK_STREAM, 0));
    if (!strcmp(m, "procsys")) {
        // What the jail shows of the host. The marker (a host process's name) comes on stdin, so it is in no argv here.
        char marker[64] = "";
        if (!fgets(marker, sizeof marker, stdin)) return 1;
        marker[strcspn(marker, "\n")] = 0;
        int pids = 0, leaked = 0;
        DIR *d = opendir("/proc");
        struct dirent *e;
        char path[300];
        while (d && (e = readdir(d)))
        {
            if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
            pids++;
            snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
            if (contains(path, marker) == 1) leaked++;
        }
        const char *global[] = {"/proc/sched_debug", "/proc/timer_list", "/proc/kallsyms", "/proc/keys",
                                "/proc/kcore", "/sys/kernel/debug/sched/debug", NULL};
        for (int i = 0; global[i]; i++) if (contains(global[i], marker) == 1) leaked++;
        printf("pids=%d leaked=%d kallsyms=%d hostname=%d\n", pids, leaked, contains("/proc/kallsyms", " T "),
               contains("/proc/sys/kernel/hostname", "sandbox"));
        return 0;
    }
    if (!strcmp(m, "kill")) {
        // A host pid (argv[2]): not in the jail's pid namespace, so kill must fail.
        return report("kill", kill(atoi(argv[2]), SIGKILL));
    }
    if (!strcmp(m, "write")) {
        const char *targets[] = {"/usr/x", "/etc/passwd", "/x", "/proc/sys/kernel/hostname", "/sys/kernel/x", "/dev/x", NULL};
        for (int i = 0; targets[i]; i++) {
            int fd = open(targets[i], O_WRONLY | O_CREAT, 0644);
            printf("%s=%s\n", targets[i], fd < 0 ? strerrorname_np(errno) : "written");
        }
        int fd = open("/box/ok", O_WRONLY | O_CREAT, 0644);
        printf("/box/ok=%s\n", fd < 0 ? strerrorname_np(errno) : "written");
        return 0;
    }
    if (!strcmp(m, "orphans")) {
        for (int i = 0; i < 3; i++) if (fork() == 0) { setsid(); sleep(100); _exit(0); }
        printf("parent-exits\n");
        return 0;
    }
    if (!strcmp(m, "flood")) {
        // N forbidden calls in a row (run with --on-violation deny or log).
        int n = argc > 2 ? atoi(argv[2]) : 1000, failed = 0;
        for (int i = 0; i < n; i++) if (syscall(SYS_ptrace, PTRACE_PEEKUSER, 1, 0, 0) < 0) failed++;
        printf("calls=%d failed=%d\n", n, failed);
        return 0;
    }
    if (!strcmp(m, "racers")) {
        // Eight threads make forbidden calls at once: every one must be answered, none left waiting.
        pthread_t t[8];
        for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, racer, NULL);
        for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
        printf("racers done\n");
        return 0;
    }
    if (!strcmp(m, "euid")) { printf("euid=%d uid=%d\n", (int)geteuid(), (int)getuid()); return 0; }
    if (!strcmp(m, "exec")) { execv(argv[2], argv + 2); return report("exec", -1); }
    fprintf(stderr, "hostile: unknown mode %s\n", m);
    return 2;
}

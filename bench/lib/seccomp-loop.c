/*
 * Per-syscall cost, for bench/seccomp-overhead (compiled by it with gcc -static). Static; runs in the benchmark's container.
 *
 *     seccomp-loop ITERATIONS OP...
 *
 * For each OP, a tight loop of ITERATIONS raw syscall() calls (after a warmup of
 * ITERATIONS/20), timed with CLOCK_MONOTONIC; prints "OP NS_PER_CALL errno=E", E being the
 * last call's errno (0: it succeeded), so the script can tell the filter was on. OPs:
 *   getppid          allowed without looking at arguments (the kernel's seccomp action cache
 *                    can skip the filter: this is the seccomp entry cost)
 *   personality      personality(0xffffffff): allowed by an argument check, so the filter runs
 *                    on every call
 *   bpf              bpf(-1, NULL, 0): refused by podman's profile (EPERM), so the filter runs
 *                    to a deny; unconfined the kernel says EINVAL at once
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long op_getppid(void) { return syscall(SYS_getppid); }
static long op_personality(void) { return syscall(SYS_personality, 0xffffffffUL); }
static long op_bpf(void) { return syscall(SYS_bpf, -1L, NULL, 0L); }

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: seccomp-loop ITERATIONS OP...\n"); return 2; }
    long n = atol(argv[1]);
    if (n <= 0) { fprintf(stderr, "seccomp-loop: bad iteration count %s\n", argv[1]); return 2; }
    for (int a = 2; a < argc; a++) {
        long (*fn)(void) = NULL;
        if (strcmp(argv[a], "getppid") == 0) fn = op_getppid;
        else if (strcmp(argv[a], "personality") == 0) fn = op_personality;
        else if (strcmp(argv[a], "bpf") == 0) fn = op_bpf;
        else { fprintf(stderr, "seccomp-loop: unknown op %s\n", argv[a]); return 2; }
        for (long i = 0; i < n / 20; i++) fn();
        double t0 = now_ns();
        for (long i = 0; i < n; i++) fn();
        double t1 = now_ns();
        errno = 0;
        int err = fn() < 0 ? errno : 0;
        printf("%s %.2f errno=%d\n", argv[a], (t1 - t0) / (double)n, err);
        fflush(stdout);
    }
    return 0;
}

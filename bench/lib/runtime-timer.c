/*
 * A timing stand-in for an OCI runtime, for bench/client-latency's share pass (compiled by it
 * with gcc -DREAL=... -DLOG=...). The client (podman/conmon, containerd's shim) calls this in
 * place of the runtime; it forks, execs REAL with the same arguments (argv[0] = REAL, so
 * berth-runtime keeps its name), waits, and appends one line to LOG:
 *
 *     START_REALTIME_NS WALL_NS EXIT_STATUS ARG1 ARG2 ...
 *
 * WALL_NS is CLOCK_MONOTONIC from just before fork to just after waitpid: the runtime's own wall
 * time for that call (exec, work, exit), without this wrapper's start-up. START_REALTIME_NS
 * (CLOCK_REALTIME, like `date +%s%N`) lets the script tell which calls fell inside a command. stdin, stdout, stderr
 * and every other fd pass through untouched (console sockets, pid files, sync pipes); the line
 * is written with one write(2) on an O_APPEND fd, so concurrent calls do not interleave.
 * The container process the runtime leaves behind is re-parented to the client's subreaper
 * (conmon, the shim) exactly as without the wrapper: the wrapper is not a subreaper.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef REAL
#error "compile with -DREAL='\"/path/to/runtime\"'"
#endif
#ifndef LOG
#error "compile with -DLOG='\"/path/to/log\"'"
#endif

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    (void)argc;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    long long t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) { perror("runtime-timer: fork"); return 127; }
    if (pid == 0) {
        argv[0] = (char *)REAL;
        execv(REAL, argv);
        perror("runtime-timer: exec " REAL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    long long t1 = now_ns();

    char line[8192];
    int n = snprintf(line, sizeof line, "%lld %lld %d",
                     (long long)rt.tv_sec * 1000000000LL + rt.tv_nsec, t1 - t0,
                     WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    for (int i = 1; argv[i] && n < (int)sizeof line - 2; i++)
        n += snprintf(line + n, sizeof line - n, " %s", argv[i]);
    if (n > (int)sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    int fd = open(LOG, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) { (void)!write(fd, line, n); close(fd); }

    if (WIFSIGNALED(status)) { signal(WTERMSIG(status), SIG_DFL); raise(WTERMSIG(status)); }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

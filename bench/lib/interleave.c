// Interleaved A/B timing: runs two (or more) commands alternately, N times each, with an untimed
// PREP command before every timed run, and prints each command's median, quartiles and failures,
// and the ratio of the first two medians. Hyperfine times one command's runs in a block, so whatever
// a run leaves the machine to finish lands on its own next run; here it lands on the neighbour, and
// the order within each round alternates.
//
//   cc -O2 -o /tmp/interleave bench/lib/interleave.c
//   /tmp/interleave N PREP... -- CMD... ::: PREP... -- CMD...
//
// The first "--" of each side ends PREP: a CMD that needs "--" itself goes in a wrapper script.
// stdout and stderr of PREP and CMD go to /dev/null. Example (docs/benchmarks.md, session 5), with
// reset.sh the reset of bench/runtime-startup (RUNTIME --root R delete --force ID; rmdir ID's cgroups):
//   /tmp/interleave 300 ./reset.sh $B root-b b -- $B --root root-b run --bundle bundle b
//                   ::: ./reset.sh /usr/bin/crun root-c c -- /usr/bin/crun --root root-c run --bundle bundle c
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

// Runs argv to completion; returns its wait status, or -1 when it could not be started.
static int run(char **argv)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int status;
    waitpid(pid, &status, 0);
    return status;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum { MAX = 8 };

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s N PREP... -- CMD... [::: PREP... -- CMD...]...\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]), k = 0;
    char **prep[MAX] = {0}, **cmd[MAX] = {0};
    prep[0] = argv + 2;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--") && !cmd[k]) { argv[i] = NULL; cmd[k] = argv + i + 1; }
        else if (!strcmp(argv[i], ":::")) {
            argv[i] = NULL;
            if (++k == MAX) { fprintf(stderr, "at most %d commands\n", MAX); return 2; }
            prep[k] = argv + i + 1;
        }
    }
    k++;
    for (int j = 0; j < k; j++)
        if (!cmd[j] || !cmd[j][0] || !prep[j][0]) { fprintf(stderr, "side %d: PREP -- CMD expected\n", j); return 2; }
    double *times[MAX];
    int failed[MAX] = {0};
    for (int j = 0; j < k; j++) times[j] = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++)
        for (int jj = 0; jj < k; jj++) {
            int j = (i % 2) ? k - 1 - jj : jj;
            run(prep[j]);
            double start = now_ms();
            int status = run(cmd[j]);
            times[j][i] = now_ms() - start;
            if (status != 0) failed[j]++;
        }
    for (int j = 0; j < k; j++) {
        qsort(times[j], n, sizeof(double), by_value);
        printf("%d: median %.2f ms  p25 %.2f p75 %.2f  failed %d/%d  (%s)\n", j, times[j][n / 2], times[j][n / 4],
               times[j][3 * n / 4], failed[j], n, cmd[j][0]);
    }
    if (k > 1) printf("ratio 0/1: %.3f\n", times[0][n / 2] / times[1][n / 2]);
    return 0;
}

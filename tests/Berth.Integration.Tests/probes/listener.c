/*
 * Seccomp user-notification agent for SeccompTests: listens on a unix socket (the spec's
 * linux.seccomp.listenerPath), takes one connection from the runtime, receives the notify fd
 * (SCM_RIGHTS) with the container process state JSON (read up to the end of the object, not to
 * EOF: crun keeps the connection open), writes that JSON to STATE_FILE, then
 * answers COUNT notifications with -ERRNO, and exits.
 *
 *     listener SOCKET_PATH STATE_FILE ERRNO COUNT
 *
 * POLLHUP on the notify fd is not taken as the end: with crun 1.8.1 it shows while the container
 * still runs (and crun keeps a copy of the fd, so a gone listener would hang the container).
 *
 * Prints "listening" when the socket is bound, "notified NR" per notification.
 * Build: gcc -static -O2 -o listener listener.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* True when buf holds one whole JSON object (braces balance outside strings). */
static int complete_json(const char *buf, size_t len)
{
    int depth = 0, in_str = 0, esc = 0, seen = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];
        if (in_str) {
            if (esc) esc = 0;
            else if (ch == '\\') esc = 1;
            else if (ch == '"') in_str = 0;
        } else if (ch == '"') in_str = 1;
        else if (ch == '{') { depth++; seen = 1; }
        else if (ch == '}') depth--;
    }
    return seen && depth == 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) { fprintf(stderr, "usage: listener SOCKET_PATH STATE_FILE ERRNO COUNT\n"); return 2; }
    int count = atoi(argv[4]);
    setvbuf(stdout, NULL, _IONBF, 0);
    int answer = atoi(argv[3]);

    int srv = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
    unlink(argv[1]);
    if (bind(srv, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(srv, 1) < 0) { perror("bind/listen"); return 1; }
    printf("listening\n");

    int conn = accept(srv, NULL, NULL);
    if (conn < 0) { perror("accept"); return 1; }
    static char state[65536];
    size_t len = 0;
    int notify = -1;
    for (;;) {
        char ctl[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { state + len, sizeof state - 1 - len };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
        ssize_t n = recvmsg(conn, &msg, 0);
        if (n < 0) { if (errno == EINTR) continue; perror("recvmsg"); return 1; }
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(&notify, CMSG_DATA(c), sizeof(int));
        if (n == 0 || len + (size_t)n >= sizeof state - 1) break;
        len += (size_t)n;
        /* The runtime may keep the connection open (crun does): stop at the end of the JSON. */
        if (notify >= 0 && complete_json(state, len)) break;
    }
    state[len] = 0;
    close(conn);
    close(srv);
    FILE *f = fopen(argv[2], "w");
    if (!f) { perror("state file"); return 1; }
    fputs(state, f);
    fclose(f);
    if (notify < 0) { fprintf(stderr, "listener: no fd came with the state\n"); return 1; }
    printf("got fd\n");

    struct seccomp_notif_sizes sizes;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) { perror("GET_NOTIF_SIZES"); return 1; }
    struct seccomp_notif *req = calloc(1, sizes.seccomp_notif);
    struct seccomp_notif_resp *resp = calloc(1, sizes.seccomp_notif_resp);
    time_t deadline = time(NULL) + 30;
    while (count > 0) {
        struct pollfd p = { .fd = notify, .events = POLLIN };
        if (time(NULL) > deadline || poll(&p, 1, 30000) <= 0) { fprintf(stderr, "listener: timed out waiting for notifications\n"); return 1; }
        if (!(p.revents & POLLIN)) { usleep(1000); continue; }
        memset(req, 0, sizes.seccomp_notif);
        if (ioctl(notify, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
            if (errno == EINTR || errno == ENOENT) continue;
            perror("NOTIF_RECV");
            return 1;
        }
        memset(resp, 0, sizes.seccomp_notif_resp);
        resp->id = req->id;
        resp->error = -answer;
        printf("notified %d\n", req->data.nr);
        count--;
        if (ioctl(notify, SECCOMP_IOCTL_NOTIF_SEND, resp) < 0 && errno != ENOENT) { perror("NOTIF_SEND"); return 1; }
    }
    printf("done\n");
    return 0;
}

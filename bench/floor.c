/* The physical floor (bench/floor.py compiles and runs this): the CPU cost of one small
 * write(2) to a loopback TCP socket whose peer, another process on another core, drains it.
 *
 *     floor COUNT FRAMES FRAME_BYTES WRITER_CORE DRAIN_CORE
 *
 * Prints one line: "<writes> <cpu_ns> <wall_ns>", the writer's own CPU time
 * (CLOCK_PROCESS_CPUTIME_ID) over COUNT writes of FRAMES frames of FRAME_BYTES each.
 * A core of -1 means "not pinned". TCP_NODELAY is set, as the servers under test do.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pin(int core) {
    if (core < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    sched_setaffinity(0, sizeof set, &set); /* best effort: unpinned is still a figure */
}

static long long nanos(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The peer: read everything until the writer closes, as fast as it can. */
static void drain(int listener, int core) {
    pin(core);
    int peer = accept(listener, NULL, NULL);
    if (peer < 0) _exit(1);
    static char buffer[1 << 20];
    while (read(peer, buffer, sizeof buffer) > 0) {
    }
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s COUNT FRAMES FRAME_BYTES WRITER_CORE DRAIN_CORE\n", argv[0]);
        return 2;
    }
    long count = atol(argv[1]);
    int frames = atoi(argv[2]), frame_bytes = atoi(argv[3]);
    int writer_core = atoi(argv[4]), drain_core = atoi(argv[5]);
    size_t size = (size_t)frames * (size_t)frame_bytes;
    char *message = malloc(size);
    if (message == NULL) return 1;
    memset(message, 'x', size);

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 1) ||
        getsockname(listener, (struct sockaddr *)&address, &length)) {
        perror("listen");
        return 1;
    }
    pid_t child = fork();
    if (child == 0) drain(listener, drain_core);
    close(listener);
    pin(writer_core);
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(sock, (struct sockaddr *)&address, sizeof address)) {
        perror("connect");
        kill(child, SIGKILL);
        return 1;
    }
    /* a few writes first, so that the measured ones find the connection warm */
    for (int i = 0; i < 1000; i++) {
        if (write(sock, message, size) < 0) return 1;
    }
    long long cpu0 = nanos(CLOCK_PROCESS_CPUTIME_ID), wall0 = nanos(CLOCK_MONOTONIC);
    for (long i = 0; i < count; i++) {
        if (write(sock, message, size) != (ssize_t)size) {
            perror("write");
            return 1;
        }
    }
    long long cpu = nanos(CLOCK_PROCESS_CPUTIME_ID) - cpu0, wall = nanos(CLOCK_MONOTONIC) - wall0;
    close(sock);
    waitpid(child, NULL, 0);
    printf("%ld %lld %lld\n", count, cpu, wall);
    return 0;
}

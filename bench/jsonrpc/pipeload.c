/* pipeload: a pipelining JSON-RPC load generator for bench/jsonrpc/run.
 *
 *   pipeload HOST PORT CONNECTIONS PIPELINE SECONDS METHOD
 *
 * Each connection keeps PIPELINE calls in flight: it sends
 * {"jsonrpc":"2.0","method":METHOD,"params":[1],"id":N} lines (PIPELINE of them in one
 * write when it starts, then one more per answer read, written together after each read),
 * and counts the answer lines; an answer holding "error" counts as an error. With
 * PIPELINE 1 each connection waits for every answer before the next call. One thread, poll().
 * Prints one JSON object: calls, errors, seconds, calls_per_s. */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC    1024
#define OUT_MAX (1 << 20)
#define IN_MAX  (1 << 16)

struct client {
    int fd;
    char *out;
    size_t out_len;
    size_t out_off;
    char in[IN_MAX];
    size_t in_len;
    uint64_t id;
};

static const char *method;
static long answered, errors;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Queue n calls on c's output. */
static void queue_calls(struct client *c, long n)
{
    for (long i = 0; i < n; i++) {
        if (c->out_len + 256 > OUT_MAX)
            break;
        c->id++;
        c->out_len += (size_t)snprintf(c->out + c->out_len, OUT_MAX - c->out_len,
                                       "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"params\":[1],"
                                       "\"id\":%llu}\n",
                                       method, (unsigned long long)c->id);
    }
}

static int flush_out(struct client *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            return -1;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return 0;
}

/* Read what is there; count answer lines; returns how many were completed, -1 on EOF. */
static long read_answers(struct client *c)
{
    ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
    if (n == 0)
        return -1;
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    c->in_len += (size_t)n;
    long lines = 0;
    size_t start = 0;
    for (size_t i = 0; i < c->in_len; i++) {
        if (c->in[i] != '\n')
            continue;
        if (memmem(c->in + start, i - start, "\"error\"", 7))
            errors++;
        lines++;
        start = i + 1;
    }
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
    return lines;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: pipeload HOST PORT CONNECTIONS PIPELINE SECONDS METHOD\n");
        return 2;
    }
    const char *host = argv[1];
    int port = (int)strtol(argv[2], NULL, 10);
    int nc = (int)strtol(argv[3], NULL, 10);
    long depth = strtol(argv[4], NULL, 10);
    double seconds = strtod(argv[5], NULL);
    method = argv[6];
    if (nc < 1 || nc > MAXC || depth < 1 || depth > 4096 || seconds <= 0) {
        fprintf(stderr, "pipeload: bad arguments\n");
        return 2;
    }
    static struct client cl[MAXC];
    static struct pollfd pfd[MAXC];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    for (int i = 0; i < nc; i++) {
        cl[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(cl[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(cl[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            perror("connect");
            return 1;
        }
        cl[i].out = malloc(OUT_MAX);
        if (!cl[i].out)
            return 1;
        queue_calls(&cl[i], depth);
        pfd[i].fd = cl[i].fd;
    }
    int64_t t0 = now_us();
    int64_t end = t0 + (int64_t)(seconds * 1e6);
    while (now_us() < end) {
        for (int i = 0; i < nc; i++)
            pfd[i].events = POLLIN | (cl[i].out_len > cl[i].out_off ? POLLOUT : 0);
        int r = poll(pfd, (nfds_t)nc, 100);
        if (r < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        for (int i = 0; r > 0 && i < nc; i++) {
            struct client *c = &cl[i];
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                long got = read_answers(c);
                if (got < 0) {
                    fprintf(stderr, "pipeload: connection %d closed by the server\n", i);
                    return 1;
                }
                answered += got;
                queue_calls(c, got);
            }
            if (c->out_len > c->out_off && flush_out(c) < 0) {
                perror("write");
                return 1;
            }
        }
    }
    double secs = (double)(now_us() - t0) / 1e6;
    printf("{\"calls\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"calls_per_s\":%.1f}\n", answered,
           errors, secs, (double)answered / secs);
    return 0;
}

/* rpcload: a JSON-RPC load generator for bench/txn/run.
 *
 *   rpcload HOST PORT CONNECTIONS SECONDS METHOD SCALE
 *
 * Each connection sends {"jsonrpc":"2.0","method":METHOD,"params":{"aid","tid","bid","delta"},
 * "id":N} lines with pgbench's tpcb-like random choices (SCALE branches, 10 tellers and
 * 100000 accounts per branch), waits for each answer, and counts results and errors.
 * Prints one JSON object: calls, errors, tps, latency percentiles in microseconds. */
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

#define MAXC 256
#define HIST 200000 /* latency histogram, 10 us buckets up to 2 s */

struct client {
    int fd;
    char out[512];
    size_t out_len;
    char in[65536];
    size_t in_len;
    int64_t sent_at;
    uint64_t id;
};

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void prepare(struct client *c, const char *method, long scale)
{
    long bid = 1 + (long)(rnd() % (uint64_t)scale);
    long tid = 1 + (long)(rnd() % (uint64_t)(scale * 10));
    long aid = 1 + (long)(rnd() % (uint64_t)(scale * 100000));
    long delta = -5000 + (long)(rnd() % 10001);
    c->id++;
    c->out_len = (size_t)snprintf(c->out, sizeof(c->out),
                                  "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"params\":{\"aid\":%ld,"
                                  "\"tid\":%ld,\"bid\":%ld,\"delta\":%ld},\"id\":%llu}\n",
                                  method, aid, tid, bid, delta, (unsigned long long)c->id);
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: rpcload HOST PORT CONNECTIONS SECONDS METHOD SCALE\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    int nconn = atoi(argv[3]);
    double seconds = atof(argv[4]);
    const char *method = argv[5];
    long scale = atol(argv[6]);
    if (nconn < 1 || nconn > MAXC || scale < 1)
        return 2;
    static struct client cl[MAXC];
    static uint32_t hist[HIST];
    struct pollfd pfd[MAXC];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    for (int i = 0; i < nconn; i++) {
        cl[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(cl[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(cl[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            perror("connect");
            return 1;
        }
        pfd[i].fd = cl[i].fd;
        pfd[i].events = POLLIN;
    }
    uint64_t calls = 0, errors = 0;
    int64_t start = now_us();
    int64_t end = start + (int64_t)(seconds * 1e6);
    for (int i = 0; i < nconn; i++) {
        prepare(&cl[i], method, scale);
        cl[i].sent_at = now_us();
        if (write(cl[i].fd, cl[i].out, cl[i].out_len) != (ssize_t)cl[i].out_len)
            return 1;
    }
    int active = nconn;
    while (active > 0) {
        int n = poll(pfd, (nfds_t)nconn, 1000);
        if (n < 0 && errno != EINTR)
            return 1;
        for (int i = 0; i < nconn; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            struct client *c = &cl[i];
            ssize_t r = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len - 1);
            if (r <= 0) {
                fprintf(stderr, "connection %d closed\n", i);
                pfd[i].fd = -1;
                active--;
                errors++;
                continue;
            }
            c->in_len += (size_t)r;
            c->in[c->in_len] = '\0';
            char *nl;
            while ((nl = memchr(c->in, '\n', c->in_len)) != NULL) {
                *nl = '\0';
                int64_t t = now_us();
                int64_t lat = (t - c->sent_at) / 10;
                hist[lat < HIST ? lat : HIST - 1]++;
                if (strstr(c->in, "\"result\""))
                    calls++;
                else {
                    errors++;
                    if (errors < 5)
                        fprintf(stderr, "error answer: %s\n", c->in);
                }
                size_t used = (size_t)(nl - c->in) + 1;
                memmove(c->in, nl + 1, c->in_len - used);
                c->in_len -= used;
                if (t >= end) {
                    pfd[i].fd = -1;
                    active--;
                    break;
                }
                prepare(c, method, scale);
                c->sent_at = t;
                if (write(c->fd, c->out, c->out_len) != (ssize_t)c->out_len)
                    return 1;
            }
        }
    }
    double elapsed = (double)(now_us() - start) / 1e6;
    uint64_t total = calls + errors;
    double pct[3] = {0.50, 0.90, 0.99};
    long pv[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        uint64_t want = (uint64_t)(pct[k] * (double)total), acc = 0;
        for (long b = 0; b < HIST; b++) {
            acc += hist[b];
            if (acc > want) {
                pv[k] = b * 10;
                break;
            }
        }
    }
    printf("{\"calls\": %llu, \"errors\": %llu, \"seconds\": %.2f, \"tps\": %.1f, "
           "\"p50_us\": %ld, \"p90_us\": %ld, \"p99_us\": %ld}\n",
           (unsigned long long)calls, (unsigned long long)errors, elapsed, (double)calls / elapsed,
           pv[0], pv[1], pv[2]);
    return 0;
}

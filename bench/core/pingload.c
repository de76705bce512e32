/* pingload: a load generator for the line-protocol test application (tests/apps/lineapp.c).
 *
 * One thread, one epoll. N connections each send "PING\n" and wait for "PONG\n" before the
 * next request (closed loop, one request in flight per connection). With -n every request
 * uses a new connection (connect, PING, PONG, close). The run lasts -d seconds after -W
 * seconds of warm-up, then prints one JSON object on stdout.
 *
 * Correctness under reloads: a connection that has already completed a request and that
 * the server closes before sending any byte of the next answer (EOF or reset, including a
 * send that fails with EPIPE/ECONNRESET) was closed while idle: the request was not
 * processed, so it is sent again on a new connection and counted in idle_close_retries,
 * not as an error. Everything else is an error, counted by kind: connect_refused,
 * connect_other, reset and eof (on a connection that never completed a request),
 * short_answer (closed after part of an answer), bad_answer (any other answer; "ERR busy"
 * is counted as busy), timeout (no answer within -t milliseconds).
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o bench/core/.build/pingload bench/core/pingload.c
 * Only loopback addresses are accepted. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char REQUEST[] = "PING\n";
static const char ANSWER[] = "PONG\n";
#define REQUEST_LEN (sizeof(REQUEST) - 1)
#define ANSWER_LEN  (sizeof(ANSWER) - 1)

/* Log-linear latency histogram in microseconds: exact below 64, then 32 buckets per power
 * of two (at most about 3 % wide). */
#define HIST_BUCKETS 2048

static unsigned hist_index(uint64_t v)
{
    if (v < 64)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - 5u;
    unsigned idx = (shift + 1u) * 32u + (unsigned)((v >> shift) - 32u);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* The value reported for a bucket: the middle of its range. */
static uint64_t hist_value(unsigned idx)
{
    if (idx < 64)
        return idx;
    unsigned shift = idx / 32u - 1u;
    uint64_t sub = idx % 32u + 32u;
    uint64_t lo = sub << shift;
    uint64_t hi = ((sub + 1) << shift) - 1;
    return lo + (hi - lo) / 2;
}

struct hist {
    uint64_t count;
    uint64_t sum;
    uint64_t max;
    uint32_t b[HIST_BUCKETS];
};

static void hist_add(struct hist *h, uint64_t v)
{
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
    h->b[hist_index(v)]++;
}

static uint64_t hist_pct(const struct hist *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(p * (double)h->count);
    if ((double)rank < p * (double)h->count)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hist_value(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

enum err_kind {
    E_CONNECT_REFUSED,
    E_CONNECT_OTHER,
    E_RESET,
    E_EOF,
    E_SHORT_ANSWER,
    E_BAD_ANSWER,
    E_BUSY,
    E_TIMEOUT,
    E_COUNT
};

static const char *const err_names[E_COUNT] = {
    "connect_refused", "connect_other", "reset", "eof",
    "short_answer",    "bad_answer",    "busy",  "timeout",
};

enum conn_state { C_CONNECTING, C_SENDING, C_WAITING };

struct conn {
    int fd;
    enum conn_state state;
    bool reused;       /* this socket completed at least one request */
    size_t sent;       /* bytes of the request written */
    size_t got;        /* bytes of the answer read */
    char ans[64];      /* the answer so far */
    int64_t req_start; /* when the current request began (kept across a retry) */
    int64_t io_start;  /* when this socket began its current step (for the timeout) */
    uint32_t cur_events;
};

struct opts {
    char host[64];
    int port;
    int conns;
    double duration;
    double warmup;
    int timeout_ms;
    bool new_conn;
    int max_error_log;
};

struct second {
    uint64_t requests;
    uint64_t errors;
    uint64_t retries;
    struct hist *h;
};

struct state {
    struct opts o;
    int epfd;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct conn *c;
    int64_t t0;     /* start of the run (warm-up included) */
    int64_t t_meas; /* start of the measured part */
    int64_t t_end;
    bool measuring;
    uint64_t requests;
    uint64_t errors[E_COUNT];
    uint64_t retries;
    uint64_t connects;
    uint64_t warmup_requests;
    struct hist total;
    struct second *sec;
    int n_sec;
    char **err_log;
    int n_err_log;
};

static volatile sig_atomic_t g_stop;

static void on_sigint(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct second *cur_second(struct state *s, int64_t t)
{
    if (!s->measuring)
        return NULL;
    int i = (int)((t - s->t_meas) / 1000000);
    if (i < 0)
        i = 0;
    if (i >= s->n_sec)
        i = s->n_sec - 1;
    return &s->sec[i];
}

static void log_error(struct state *s, int64_t t, const char *what, struct conn *c, int e)
{
    if (s->n_err_log >= s->o.max_error_log)
        return;
    const char *ename = e ? strerrorname_np(e) : "none";
    char buf[256];
    snprintf(buf, sizeof(buf), "t=%.6f %s (%s, errno %s, %zu answer bytes)",
             (double)(t - s->t0) / 1e6, what, c->reused ? "reused conn" : "new conn",
             ename ? ename : "?", c->got);
    s->err_log[s->n_err_log++] = strdup(buf);
}

static void count_error(struct state *s, struct conn *c, enum err_kind k, int e, int64_t t)
{
    if (!s->measuring)
        return;
    s->errors[k]++;
    struct second *sec = cur_second(s, t);
    sec->errors++;
    log_error(s, t, err_names[k], c, e);
}

static void watch(struct state *s, struct conn *c, uint32_t events)
{
    if (c->cur_events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        perror("epoll_ctl MOD");
        exit(2);
    }
    c->cur_events = events;
}

static void close_conn(struct state *s, struct conn *c)
{
    (void)s;
    if (c->fd >= 0)
        close(c->fd); /* also removes it from epoll */
    c->fd = -1;
}

static void start_send(struct state *s, struct conn *c, int64_t t);

/* Open a new socket for c and start connecting. The request start time is kept. */
static void open_conn(struct state *s, struct conn *c, int64_t t)
{
    c->fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        perror("socket");
        exit(2);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->reused = false;
    c->sent = 0;
    c->got = 0;
    c->io_start = t;
    s->connects++;
    int rc = connect(c->fd, (struct sockaddr *)&s->addr, s->addrlen);
    c->cur_events = EPOLLOUT;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        perror("epoll_ctl ADD");
        exit(2);
    }
    if (rc == 0) {
        start_send(s, c, t);
        return;
    }
    if (errno == EINPROGRESS) {
        c->state = C_CONNECTING;
        return;
    }
    /* Immediate failure (refused on loopback is reported at once). */
    int e = errno;
    count_error(s, c, e == ECONNREFUSED ? E_CONNECT_REFUSED : E_CONNECT_OTHER, e, t);
    close_conn(s, c);
    c->state = C_CONNECTING;
    c->io_start = -1; /* reopened by the main loop */
}

/* A request finished (answered or failed): start the next one. */
static void next_request(struct state *s, struct conn *c, int64_t t)
{
    c->req_start = t;
    if (s->o.new_conn || c->fd < 0) {
        if (c->fd >= 0)
            close_conn(s, c);
        open_conn(s, c, t);
        return;
    }
    start_send(s, c, t);
}

/* The connection failed; e is errno or 0 for EOF. Retry or count an error. */
static void conn_failed(struct state *s, struct conn *c, int e, int64_t t)
{
    bool idle_close =
        c->reused && c->got == 0 && !s->o.new_conn && (e == 0 || e == ECONNRESET || e == EPIPE);
    if (idle_close) {
        /* Closed between requests: the request was not processed. Send it again on a new
         * connection; its latency keeps counting from the first attempt. */
        if (s->measuring) {
            s->retries++;
            cur_second(s, t)->retries++;
        }
        close_conn(s, c);
        open_conn(s, c, t);
        return;
    }
    enum err_kind k;
    if (c->got > 0)
        k = E_SHORT_ANSWER;
    else if (e == 0)
        k = E_EOF;
    else
        k = E_RESET;
    count_error(s, c, k, e, t);
    close_conn(s, c);
    next_request(s, c, t);
}

static void start_send(struct state *s, struct conn *c, int64_t t)
{
    c->state = C_SENDING;
    c->sent = 0;
    c->got = 0;
    c->io_start = t;
    while (c->sent < REQUEST_LEN) {
        ssize_t n = send(c->fd, REQUEST + c->sent, REQUEST_LEN - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            watch(s, c, EPOLLOUT);
            return;
        }
        conn_failed(s, c, n < 0 ? errno : 0, t);
        return;
    }
    c->state = C_WAITING;
    watch(s, c, EPOLLIN | EPOLLRDHUP);
}

static void answered(struct state *s, struct conn *c, int64_t t)
{
    if (s->measuring) {
        uint64_t lat = (uint64_t)(t - c->req_start);
        s->requests++;
        hist_add(&s->total, lat);
        struct second *sec = cur_second(s, t);
        sec->requests++;
        hist_add(sec->h, lat);
    } else {
        s->warmup_requests++;
    }
    c->reused = true;
    next_request(s, c, t);
}

static void on_readable(struct state *s, struct conn *c, int64_t t)
{
    for (;;) {
        char buf[256];
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n > 0) {
            size_t room = sizeof(c->ans) - c->got;
            size_t take = (size_t)n < room ? (size_t)n : room;
            memcpy(c->ans + c->got, buf, take);
            c->got += take;
            if (c->got <= ANSWER_LEN && memcmp(c->ans, ANSWER, c->got) == 0) {
                if (c->got == ANSWER_LEN) {
                    answered(s, c, t);
                    return;
                }
                continue; /* a correct prefix: wait for the rest */
            }
            /* A wrong answer (or bytes beyond the answer): read its whole line first. */
            if (!memchr(c->ans, '\n', c->got) && c->got < sizeof(c->ans))
                continue;
            bool busy = c->got >= 8 && memcmp(c->ans, "ERR busy", 8) == 0;
            count_error(s, c, busy ? E_BUSY : E_BAD_ANSWER, 0, t);
            close_conn(s, c);
            next_request(s, c, t);
            return;
        }
        if (n == 0) {
            conn_failed(s, c, 0, t);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        conn_failed(s, c, errno, t);
        return;
    }
}

static void on_event(struct state *s, struct conn *c, uint32_t ev, int64_t t)
{
    if (c->fd < 0)
        return;
    switch (c->state) {
    case C_CONNECTING: {
        int e = 0;
        socklen_t len = sizeof(e);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
            e = errno;
        if (e == 0 && !(ev & (EPOLLERR | EPOLLHUP))) {
            start_send(s, c, t);
            return;
        }
        if (e == 0)
            e = ECONNRESET;
        count_error(s, c, e == ECONNREFUSED ? E_CONNECT_REFUSED : E_CONNECT_OTHER, e, t);
        close_conn(s, c);
        c->io_start = -1; /* reopened by the main loop, after a short pause */
        return;
    }
    case C_SENDING:
        start_send(s, c, t);
        return;
    case C_WAITING:
        on_readable(s, c, t);
        return;
    }
}

/* Timeouts, and sockets waiting to be reopened after a failed connect. */
static void scan(struct state *s, int64_t t)
{
    int64_t limit = (int64_t)s->o.timeout_ms * 1000;
    for (int i = 0; i < s->o.conns; i++) {
        struct conn *c = &s->c[i];
        if (c->fd < 0) {
            /* A failed connect: try again (at most every scan interval). */
            c->req_start = t;
            open_conn(s, c, t);
            continue;
        }
        if (t - c->io_start >= limit) {
            count_error(s, c, E_TIMEOUT, 0, t);
            close_conn(s, c);
            next_request(s, c, t);
        }
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: pingload -p PORT [-h 127.0.0.1] [-c CONNS] [-d SECONDS] [-W WARMUP_SECONDS]\n"
            "                [-t TIMEOUT_MS] [-n] [-e MAX_ERROR_LINES]\n"
            "  -n  a new connection for every request\n");
    exit(2);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void report(struct state *s, int64_t t_stop)
{
    double secs = (double)(t_stop - s->t_meas) / 1e6;
    uint64_t errors = 0;
    for (int k = 0; k < E_COUNT; k++)
        errors += s->errors[k];
    int in_flight = 0;
    for (int i = 0; i < s->o.conns; i++)
        in_flight += s->c[i].fd >= 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    int n_sec = (int)((t_stop - s->t_meas + 999999) / 1000000);
    if (n_sec > s->n_sec)
        n_sec = s->n_sec;
    FILE *f = stdout;
    fprintf(f, "{\n  \"mode\": \"%s\",\n", s->o.new_conn ? "new_connection" : "persistent");
    fprintf(f, "  \"host\": \"%s\", \"port\": %d, \"connections\": %d,\n", s->o.host, s->o.port,
            s->o.conns);
    fprintf(f, "  \"duration_s\": %.3f, \"warmup_s\": %.3f, \"timeout_ms\": %d,\n", secs,
            s->o.warmup, s->o.timeout_ms);
    fprintf(f, "  \"start_monotonic_s\": %.6f, \"measure_monotonic_s\": %.6f,\n",
            (double)s->t0 / 1e6, (double)s->t_meas / 1e6);
    fprintf(f, "  \"interrupted\": %s,\n", g_stop ? "true" : "false");
    fprintf(f, "  \"requests\": %" PRIu64 ", \"warmup_requests\": %" PRIu64 ",\n", s->requests,
            s->warmup_requests);
    fprintf(f, "  \"rps\": %.1f,\n", secs > 0 ? (double)s->requests / secs : 0.0);
    fprintf(f, "  \"errors\": %" PRIu64 ",\n  \"error_counts\": {", errors);
    for (int k = 0; k < E_COUNT; k++)
        fprintf(f, "%s\"%s\": %" PRIu64, k ? ", " : "", err_names[k], s->errors[k]);
    fprintf(f, "},\n");
    fprintf(f,
            "  \"idle_close_retries\": %" PRIu64 ", \"connects\": %" PRIu64
            ", \"in_flight_at_end\": %d,\n",
            s->retries, s->connects, in_flight);
    fprintf(f, "  \"client_cpu_s\": %.3f,\n", cpu);
    fprintf(f,
            "  \"latency_us\": {\"mean\": %.1f, \"p50\": %" PRIu64 ", \"p90\": %" PRIu64
            ", \"p99\": %" PRIu64 ", \"p999\": %" PRIu64 ", \"max\": %" PRIu64 "},\n",
            s->total.count ? (double)s->total.sum / (double)s->total.count : 0.0,
            hist_pct(&s->total, 0.50), hist_pct(&s->total, 0.90), hist_pct(&s->total, 0.99),
            hist_pct(&s->total, 0.999), s->total.max);
    const char *keys[] = {"requests", "errors", "idle_close_retries", "p99_us", "max_us"};
    fprintf(f, "  \"per_second\": {");
    for (int k = 0; k < 5; k++) {
        fprintf(f, "%s\n    \"%s\": [", k ? "," : "", keys[k]);
        for (int i = 0; i < n_sec; i++) {
            struct second *sec = &s->sec[i];
            uint64_t v = k == 0   ? sec->requests
                         : k == 1 ? sec->errors
                         : k == 2 ? sec->retries
                         : k == 3 ? hist_pct(sec->h, 0.99)
                                  : sec->h->max;
            fprintf(f, "%s%" PRIu64, i ? ", " : "", v);
        }
        fprintf(f, "]");
    }
    fprintf(f, "\n  },\n  \"first_errors\": [");
    for (int i = 0; i < s->n_err_log; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        json_str(f, s->err_log[i]);
    }
    fprintf(f, "%s]\n}\n", s->n_err_log ? "\n  " : "");
}

static bool loopback_only(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

int main(int argc, char **argv)
{
    static struct state st;
    struct state *s = &st;
    s->o = (struct opts){.port = 0,
                         .conns = 64,
                         .duration = 10.0,
                         .warmup = 1.0,
                         .timeout_ms = 5000,
                         .new_conn = false,
                         .max_error_log = 20};
    snprintf(s->o.host, sizeof(s->o.host), "127.0.0.1");
    int opt;
    while ((opt = getopt(argc, argv, "h:p:c:d:W:t:ne:")) != -1) {
        switch (opt) {
        case 'h':
            snprintf(s->o.host, sizeof(s->o.host), "%s", optarg);
            break;
        case 'p':
            s->o.port = (int)strtol(optarg, NULL, 10);
            break;
        case 'c':
            s->o.conns = (int)strtol(optarg, NULL, 10);
            break;
        case 'd':
            s->o.duration = strtod(optarg, NULL);
            break;
        case 'W':
            s->o.warmup = strtod(optarg, NULL);
            break;
        case 't':
            s->o.timeout_ms = (int)strtol(optarg, NULL, 10);
            break;
        case 'n':
            s->o.new_conn = true;
            break;
        case 'e':
            s->o.max_error_log = (int)strtol(optarg, NULL, 10);
            break;
        default:
            usage();
        }
    }
    if (s->o.port <= 0 || s->o.port > 65535 || s->o.conns < 1 || s->o.conns > 100000 ||
        s->o.duration <= 0 || s->o.warmup < 0 || s->o.timeout_ms < 1 || s->o.max_error_log < 0)
        usage();
    if (!loopback_only(s->o.host)) {
        fprintf(stderr, "pingload: %s is not a loopback address\n", s->o.host);
        return 2;
    }
    if (strchr(s->o.host, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&s->addr;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)s->o.port);
        inet_pton(AF_INET6, s->o.host, &a->sin6_addr);
        s->addrlen = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&s->addr;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)s->o.port);
        inet_pton(AF_INET, s->o.host, &a->sin_addr);
        s->addrlen = sizeof(*a);
    }

    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);

    s->n_sec = (int)s->o.duration + 2;
    s->sec = calloc((size_t)s->n_sec, sizeof(*s->sec));
    s->err_log = calloc((size_t)s->o.max_error_log + 1, sizeof(char *));
    s->c = calloc((size_t)s->o.conns, sizeof(*s->c));
    if (!s->sec || !s->err_log || !s->c) {
        fprintf(stderr, "pingload: out of memory\n");
        return 2;
    }
    for (int i = 0; i < s->n_sec; i++) {
        s->sec[i].h = calloc(1, sizeof(struct hist));
        if (!s->sec[i].h) {
            fprintf(stderr, "pingload: out of memory\n");
            return 2;
        }
    }
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        perror("epoll_create1");
        return 2;
    }

    s->t0 = now_us();
    s->t_meas = s->t0 + (int64_t)(s->o.warmup * 1e6);
    s->t_end = s->t_meas + (int64_t)(s->o.duration * 1e6);
    s->measuring = s->o.warmup <= 0;
    for (int i = 0; i < s->o.conns; i++) {
        s->c[i].fd = -1;
        s->c[i].req_start = s->t0;
        open_conn(s, &s->c[i], s->t0);
    }

    enum { MAX_EV = 512 };
    struct epoll_event evs[MAX_EV];
    int64_t next_scan = s->t0 + 100000;
    int64_t t = s->t0;
    while (!g_stop) {
        t = now_us();
        if (!s->measuring && t >= s->t_meas) {
            /* Requests in flight across the boundary count with their full latency. */
            s->measuring = true;
        }
        if (t >= s->t_end)
            break;
        int64_t wait_us = next_scan - t;
        if (s->t_end - t < wait_us)
            wait_us = s->t_end - t;
        if (!s->measuring && s->t_meas - t < wait_us)
            wait_us = s->t_meas - t;
        int timeout = wait_us <= 0 ? 0 : (int)((wait_us + 999) / 1000);
        int n = epoll_wait(s->epfd, evs, MAX_EV, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("epoll_wait");
            return 2;
        }
        t = now_us();
        if (!s->measuring && t >= s->t_meas)
            s->measuring = true;
        if (t >= s->t_end)
            break;
        for (int i = 0; i < n; i++)
            on_event(s, evs[i].data.ptr, evs[i].events, t);
        if (t >= next_scan) {
            scan(s, t);
            next_scan = t + 100000;
        }
    }
    if (!s->measuring)
        s->t_meas = t;
    report(s, t < s->t_end ? t : s->t_end);
    return 0;
}

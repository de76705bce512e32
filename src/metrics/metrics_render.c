#include "fdt_config.h"

#include "metrics/metrics.h"
#include "util/util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The output and its first error (later appends are skipped). */
struct out {
    struct fdt_buf *b;
    int rc;
};

static void put(struct out *o, const char *fmt, ...) FDT_PRINTF(2, 3);
static void put(struct out *o, const char *fmt, ...)
{
    if (o->rc < 0)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        /* GCOVR_EXCL_START: unreachable: every line is fixed text and numbers, the longest
         * (a HELP and TYPE pair) under 300 bytes */
        o->rc = FDT_ELIMIT;
        return;
        /* GCOVR_EXCL_STOP */
    }
    int rc = fdt__buf_append(o->b, line, (size_t)n);
    if (rc < 0)
        o->rc = rc;
}

static void head(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t get(const _Atomic uint64_t *v)
{
    return atomic_load_explicit((_Atomic uint64_t *)v, memory_order_relaxed);
}

static void counter(struct out *o, const char *name, const char *help, uint64_t v)
{
    head(o, name, "counter", help);
    put(o, "%s %" PRIu64 "\n", name, v);
}

static void gauge(struct out *o, const char *name, const char *help, double v)
{
    head(o, name, "gauge", help);
    put(o, "%s %.17g\n", name, v);
}

static const char *const proto_names[FDT_MPROTO_N] = {"http", "jsonrpc", "raw", "metrics"};

/* The classes a protocol's requests fall in. */
struct proto_classes {
    int n;
    enum fdt_metric_class c[FDT_MCLASS_N];
};

static const struct proto_classes classes_of[FDT_MPROTO_N] = {
    {5, {FDT_MCLASS_1XX, 1, 2, 3, FDT_MCLASS_5XX}},
    {2, {FDT_MCLASS_OK, FDT_MCLASS_ERROR}},
    {1, {FDT_MCLASS_OTHER}},
    {5, {FDT_MCLASS_1XX, 1, 2, 3, FDT_MCLASS_5XX}},
};

static const char *class_name(enum fdt_metric_class c)
{
    static const char *const names[FDT_MCLASS_N] = {"1xx", "2xx", "3xx",   "4xx",
                                                    "5xx", "ok",  "error", "other"};
    return (unsigned)c < FDT_MCLASS_N ? names[c] : "other";
}

static void requests(struct out *o, const struct fdt_counters *c)
{
    head(o, "fdt_requests_total", "counter",
         "Requests answered, by protocol and class (HTTP status class; JSON-RPC ok or error; "
         "raw: each data callback that consumed bytes).");
    for (int p = 0; p < FDT_MPROTO_N; p++) {
        uint64_t other = get(&c->requests[p][FDT_MCLASS_OTHER]);
        for (int i = 0; i < classes_of[p].n; i++) {
            enum fdt_metric_class k = classes_of[p].c[i];
            uint64_t v = get(&c->requests[p][k]);
            /* HTTP requests outside the five classes (none are expected) count as 5xx:
             * every request is in exactly one series, so the series add up to _count. */
            if ((p == FDT_MPROTO_HTTP || p == FDT_MPROTO_METRICS) && k == FDT_MCLASS_5XX)
                v += other;
            put(o, "fdt_requests_total{protocol=\"%s\",class=\"%s\"} %" PRIu64 "\n", proto_names[p],
                class_name(k), v);
        }
    }
}

static void durations(struct out *o, const struct fdt_counters *c)
{
    static const int64_t bounds[FDT_METRIC_BUCKETS] = FDT_METRIC_BUCKET_BOUNDS_US;
    head(o, "fdt_request_duration_seconds", "histogram",
         "Time from a request's first byte to its answer queued, by protocol.");
    for (int p = 0; p < FDT_MPROTO_N; p++) {
        uint64_t cum = 0;
        for (int b = 0; b <= FDT_METRIC_BUCKETS; b++) {
            cum += get(&c->duration_bucket[p][b]);
            if (b < FDT_METRIC_BUCKETS)
                put(o,
                    "fdt_request_duration_seconds_bucket{protocol=\"%s\",le=\"%g\"} %" PRIu64 "\n",
                    proto_names[p], (double)bounds[b] / 1e6, cum);
            else
                put(o,
                    "fdt_request_duration_seconds_bucket{protocol=\"%s\",le=\"+Inf\"} %" PRIu64
                    "\n",
                    proto_names[p], cum);
        }
        put(o, "fdt_request_duration_seconds_sum{protocol=\"%s\"} %.6f\n", proto_names[p],
            (double)get(&c->duration_us[p]) / 1e6);
        put(o, "fdt_request_duration_seconds_count{protocol=\"%s\"} %" PRIu64 "\n", proto_names[p],
            cum);
    }
}

static const char *state_name(int32_t s)
{
    switch (s) {
    case FDT_WORKER_STARTING:
        return "starting";
    case FDT_WORKER_READY:
        return "ready";
    case FDT_WORKER_DRAINING:
        return "draining";
    default:
        return NULL;
    }
}

/* Per-worker gauges and the sums of the live workers' gauges. */
static void workers(struct out *o, const struct fdt_scoreboard *sb, int64_t now)
{
    struct fdt_scoreboard *m = (struct fdt_scoreboard *)sb; /* atomics are only read */
    int64_t conns = 0, txn_open = 0, in_doubt = 0, oldest_ms = 0;
    int n_state[3] = {0, 0, 0};
    head(o, "fdt_worker_busy_threads", "gauge",
         "Application threads of a worker running a request or a connection's work now.");
    for (int i = 0; i < FDT_MAX_SLOTS; i++) {
        struct fdt_slot *s = &m->slots[i];
        int32_t st = atomic_load(&s->state);
        const char *name = state_name(st);
        int32_t pid = atomic_load(&s->pid);
        if (!name || pid <= 0)
            continue;
        n_state[st - FDT_WORKER_STARTING]++;
        int busy = 0;
        for (unsigned t = 0; t < s->threads && t < FDT_MAX_THREADS; t++)
            busy += atomic_load_explicit(&s->busy_since[t], memory_order_relaxed) != 0;
        put(o,
            "fdt_worker_busy_threads{generation=\"%u\",worker=\"%u\",pid=\"%d\",state=\"%s\"} "
            "%d\n",
            s->generation, s->index, (int)pid, name, busy);
        conns += atomic_load(&s->conns_open);
        txn_open += atomic_load(&s->txn_open);
        int64_t d = atomic_load(&s->txn_in_doubt);
        int64_t age = atomic_load(&s->txn_in_doubt_oldest_ms);
        if (d > in_doubt)
            in_doubt = d;
        if (age > oldest_ms)
            oldest_ms = age;
    }
    head(o, "fdt_worker_threads", "gauge", "Application threads of a worker.");
    for (int i = 0; i < FDT_MAX_SLOTS; i++) {
        struct fdt_slot *s = &m->slots[i];
        int32_t pid = atomic_load(&s->pid);
        if (state_name(atomic_load(&s->state)) && pid > 0)
            put(o, "fdt_worker_threads{generation=\"%u\",worker=\"%u\",pid=\"%d\"} %u\n",
                s->generation, s->index, (int)pid, s->threads);
    }
    head(o, "fdt_worker_resident_bytes", "gauge",
         "A worker's resident memory at its last check (only with max_worker_memory).");
    for (int i = 0; i < FDT_MAX_SLOTS; i++) {
        struct fdt_slot *s = &m->slots[i];
        int32_t pid = atomic_load(&s->pid);
        int64_t rss = atomic_load(&s->rss_bytes);
        if (state_name(atomic_load(&s->state)) && pid > 0 && rss > 0)
            put(o, "fdt_worker_resident_bytes{generation=\"%u\",worker=\"%u\",pid=\"%d\"} %lld\n",
                s->generation, s->index, (int)pid, (long long)rss);
    }
    head(o, "fdt_workers", "gauge", "Worker processes, by state.");
    static const char *const states[3] = {"starting", "ready", "draining"};
    for (int i = 0; i < 3; i++)
        put(o, "fdt_workers{state=\"%s\"} %d\n", states[i], n_state[i]);
    gauge(o, "fdt_connections_open", "Client connections open in all workers.", (double)conns);
    gauge(o, "fdt_transactions_open", "Transactions open in all workers.", (double)txn_open);
    gauge(o, "fdt_transactions_in_doubt",
          "Prepared (in-doubt) transactions found by the latest recovery pass of a worker "
          "(the largest count any live worker saw: they all look at the same databases).",
          (double)in_doubt);
    gauge(o, "fdt_transactions_in_doubt_oldest_seconds",
          "Age of the oldest in-doubt transaction at that pass (0: none).",
          (double)oldest_ms / 1000.0);
    (void)now;
}

int fdt__metrics_render(const struct fdt_scoreboard *sb, struct fdt_buf *b)
{
    struct out o = {.b = b, .rc = 0};
    struct fdt_counters c;
    uint64_t reqs = 0;
    fdt__scoreboard_sum(sb, &c, &reqs);
    struct fdt_master_stats *ms = (struct fdt_master_stats *)&sb->master;

    gauge(&o, "fdt_up", "1 while a generation of workers serves, 0 while starting or stopping.",
          atomic_load(&ms->serving) ? 1 : 0);
    gauge(&o, "fdt_start_time_seconds", "When the master started (Unix time).",
          (double)atomic_load(&ms->started_wall_ms) / 1000.0);
    gauge(&o, "fdt_generation", "The serving generation's number (0: none).",
          (double)atomic_load(&ms->active_generation));
    counter(&o, "fdt_generations_started_total",
            "Generations of workers started (the first, and one per reload).",
            (uint64_t)atomic_load(&ms->generations_started));
    head(&o, "fdt_reloads_total", "counter",
         "Reloads, by result (ok, or refused: the old "
         "generation kept serving).");
    put(&o, "fdt_reloads_total{result=\"ok\"} %" PRIu64 "\n",
        (uint64_t)atomic_load(&ms->reloads_ok));
    put(&o, "fdt_reloads_total{result=\"refused\"} %" PRIu64 "\n",
        (uint64_t)atomic_load(&ms->reloads_failed));
    head(&o, "fdt_worker_restarts_total", "counter",
         "Workers replaced, by cause: crash (died while serving), timeout (killed by the "
         "supervisor), max_requests and max_memory (recycled gracefully).");
    static const char *const causes[FDT_RESTART_N] = {"crash", "timeout", "max_requests",
                                                      "max_memory"};
    for (int i = 0; i < FDT_RESTART_N; i++)
        put(&o, "fdt_worker_restarts_total{cause=\"%s\"} %" PRIu64 "\n", causes[i],
            (uint64_t)atomic_load(&ms->restarts[i]));
    workers(&o, sb, fdt__now_ms());
    requests(&o, &c);
    durations(&o, &c);
    counter(&o, "fdt_received_bytes_total", "Bytes read from clients.", get(&c.bytes_in));
    counter(&o, "fdt_sent_bytes_total", "Bytes sent to clients.", get(&c.bytes_out));
    counter(&o, "fdt_connections_accepted_total", "Client connections accepted.", get(&c.accepted));
    counter(&o, "fdt_connections_refused_total",
            "Client connections turned away (max_connections, out of file descriptors).",
            get(&c.refused));
    head(&o, "fdt_transactions_total", "counter",
         "Transactions ended, by outcome (unknown: a failure in phase two; recovery ends it).");
    put(&o, "fdt_transactions_total{outcome=\"committed\"} %" PRIu64 "\n", get(&c.txn_committed));
    put(&o, "fdt_transactions_total{outcome=\"rolled_back\"} %" PRIu64 "\n",
        get(&c.txn_rolled_back));
    put(&o, "fdt_transactions_total{outcome=\"unknown\"} %" PRIu64 "\n", get(&c.txn_unknown));
    counter(&o, "fdt_transaction_conflicts_total",
            "Transactions rolled back by a conflict (serialization failure, deadlock); the view "
            "or method then runs again while attempts are left.",
            get(&c.txn_conflicts));
    counter(&o, "fdt_resource_sessions_opened_total",
            "Database sessions opened by the workers' resources.", get(&c.resource_sessions));
    counter(&o, "fdt_resource_errors_total",
            "Database sessions that could not be opened, or were found dead in the pool.",
            get(&c.resource_errors));
    counter(&o, "fdt_tls_handshakes_total", "TLS handshakes completed.", get(&c.tls_handshakes));
    counter(&o, "fdt_tls_handshake_errors_total", "TLS handshakes that failed.",
            get(&c.tls_handshake_errors));
    (void)reqs;
    return o.rc;
}

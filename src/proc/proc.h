/* What the master and its workers share: the scoreboard (shared memory, one slot per
 * worker, written only by that worker, read by the master and, for accept balancing, by
 * the other workers of its generation) and the channel
 * (a socketpair carrying small messages). */
#ifndef FDT_SRC_PROC_H
#define FDT_SRC_PROC_H

#include "config/config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define FDT_MAX_SLOTS (4 * FDT_MAX_WORKERS)

enum fdt_worker_state {
    FDT_WORKER_FREE = 0,
    FDT_WORKER_STARTING = 1,
    FDT_WORKER_READY = 2,
    FDT_WORKER_DRAINING = 3,
};

/* Counters of metrics (docs/operations.md, "Metrics"): a worker's own live in its slot and
 * only ever grow while it lives; when it has exited the master folds them into the
 * scoreboard's `retired` set (fdt__scoreboard_fold), so a sum over every slot plus
 * `retired` never goes backwards. Written by the worker's threads (relaxed atomics). */
enum fdt_metric_proto {
    FDT_MPROTO_HTTP = 0,
    FDT_MPROTO_JSONRPC = 1,
    FDT_MPROTO_RAW = 2,
    FDT_MPROTO_METRICS = 3, /* scrapes of a metrics listener */
    FDT_MPROTO_N = 4,
};

/* Outcome class of a request: HTTP status classes, or a JSON-RPC answer with or without an
 * error member; a raw protocol's data callbacks are all "other". */
enum fdt_metric_class {
    FDT_MCLASS_1XX = 0, /* ... to FDT_MCLASS_5XX = 4, by status / 100 - 1 */
    FDT_MCLASS_5XX = 4,
    FDT_MCLASS_OK = 5,
    FDT_MCLASS_ERROR = 6,
    FDT_MCLASS_OTHER = 7,
    FDT_MCLASS_N = 8,
};

/* Upper bounds of the request duration histogram's buckets, in microseconds; the last
 * counter of each histogram holds what is above the largest (+Inf). */
#define FDT_METRIC_BUCKETS 14
#define FDT_METRIC_BUCKET_BOUNDS_US                                                                \
    {                                                                                              \
        500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,      \
            5000000, 10000000                                                                      \
    }

/* Why a worker was replaced (fdt_worker_restarts_total{cause}). */
enum fdt_restart_cause {
    FDT_RESTART_CRASH = 0,        /* died while serving */
    FDT_RESTART_TIMEOUT = 1,      /* killed: silent event loop or a thread stuck */
    FDT_RESTART_MAX_REQUESTS = 2, /* recycled: [server] max_requests */
    FDT_RESTART_MAX_MEMORY = 3,   /* recycled: [server] max_worker_memory */
    FDT_RESTART_N = 4,
};

struct fdt_counters {
    _Atomic uint64_t requests[FDT_MPROTO_N][FDT_MCLASS_N];
    /* Not cumulative here: bucket i counts durations in (bound[i-1], bound[i]]. */
    _Atomic uint64_t duration_bucket[FDT_MPROTO_N][FDT_METRIC_BUCKETS + 1];
    _Atomic uint64_t duration_us[FDT_MPROTO_N];
    _Atomic uint64_t bytes_in;  /* read from clients */
    _Atomic uint64_t bytes_out; /* taken by the clients' sockets */
    _Atomic uint64_t accepted;
    _Atomic uint64_t refused; /* turned away: max_connections, out of descriptors */
    _Atomic uint64_t txn_committed;
    _Atomic uint64_t txn_rolled_back;
    _Atomic uint64_t txn_conflicts;     /* rolled back by a conflict (then run again if allowed) */
    _Atomic uint64_t txn_unknown;       /* outcome unknown after a failure in phase two */
    _Atomic uint64_t resource_sessions; /* database sessions opened */
    _Atomic uint64_t resource_errors;   /* sessions that failed to open or were dropped broken */
    _Atomic uint64_t tls_handshakes;    /* completed TLS handshakes (the TLS code counts) */
    _Atomic uint64_t tls_handshake_errors;
};

/* Count one request of protocol p in class cls that took duration_us. Thread: any. */
void fdt__counters_request(struct fdt_counters *c, enum fdt_metric_proto p,
                           enum fdt_metric_class cls, int64_t duration_us);
/* The class of an HTTP status (FDT_MCLASS_OTHER outside 100 to 599). */
enum fdt_metric_class fdt__metric_http_class(int status);

struct fdt_slot {
    _Atomic int32_t state;
    _Atomic int32_t pid;
    uint32_t generation;
    uint32_t index;
    uint32_t threads;
    _Atomic int64_t started_ms;   /* monotonic */
    _Atomic int64_t heartbeat_ms; /* monotonic; the worker's event loop */
    _Atomic uint64_t accepted;
    _Atomic uint64_t requests;
    _Atomic int64_t conns_open;
    /* Connections this worker took from listeners shared with its siblings (not reuseport),
     * for accept balancing (worker_loop.c): it starts at the least of its ready siblings'
     * (a replacement does not take every new connection until it catches up). */
    _Atomic uint64_t accept_share;
    _Atomic int32_t accept_held;     /* 1 while it leaves the shared listeners to its siblings */
    _Atomic uint64_t listen_wakeups; /* listener readiness events seen */
    _Atomic uint64_t accept_eagain;  /* wakeups that found nothing to accept */
    _Atomic uint64_t refused_busy;
    _Atomic int64_t txn_open;
    _Atomic int64_t txn_in_doubt;           /* from this worker's last recovery pass */
    _Atomic int64_t txn_in_doubt_oldest_ms; /* age of the oldest of them */
    _Atomic int64_t rss_bytes;              /* at the last memory check (0: never checked) */
    struct fdt_counters counters;
    /* 0 when idle, else the monotonic ms at which the thread entered application code;
     * negated while it waits for its client (fdt__conn_client_wait_begin): busy, not stuck. */
    _Atomic int64_t busy_since[FDT_MAX_THREADS];
};

/* What the master knows and the metrics show, kept here so that a worker serving a
 * metrics listener renders the same figures as the master (written by the master only). */
struct fdt_master_stats {
    _Atomic int32_t master_pid;
    _Atomic int32_t serving;            /* a generation is active and the server not stopping */
    _Atomic uint32_t active_generation; /* its id, 0: none */
    _Atomic uint64_t generations_started;
    _Atomic uint64_t reloads_ok;
    _Atomic uint64_t reloads_failed;
    _Atomic uint64_t restarts[FDT_RESTART_N];
    _Atomic int64_t started_wall_ms;
    /* Odd while the master folds a slot into `retired` (a reader retries). */
    _Atomic uint64_t fold_seq;
};

struct fdt_scoreboard {
    /* The generation of each slot in use (0: free), written with the slot's claim and
     * release: a worker finds its siblings by reading this page, not one page of every slot
     * (in a new worker each such read was a page fault). */
    _Atomic uint32_t slot_generation[FDT_MAX_SLOTS];
    struct fdt_slot slots[FDT_MAX_SLOTS];
    struct fdt_counters retired; /* the counters of workers that have exited */
    _Atomic uint64_t retired_requests;
    struct fdt_master_stats master;
};

/* Map the scoreboard (shared, anonymous) before the first fork. */
struct fdt_scoreboard *fdt__scoreboard_new(void);
void fdt__scoreboard_free(struct fdt_scoreboard *sb);
/* Reset a slot for a new worker. Returns the slot index or -1 when full. */
int fdt__scoreboard_claim(struct fdt_scoreboard *sb, unsigned generation, unsigned index,
                          unsigned threads);
void fdt__scoreboard_release(struct fdt_scoreboard *sb, int slot);
/* Add the counters of an exited worker's slot to sb->retired and zero them, so that sums
 * stay monotonic (thread: the master, before fdt__scoreboard_release). */
void fdt__scoreboard_fold(struct fdt_scoreboard *sb, int slot);
/* A consistent sum of every slot's counters and the retired ones into *out (plain values
 * stored in atomics; out is the caller's), with the sum of the slots' request counts in
 * *requests. Thread: any process that maps sb. */
void fdt__scoreboard_sum(const struct fdt_scoreboard *sb, struct fdt_counters *out,
                         uint64_t *requests);

/* Channel messages. */
enum fdt_msg_type {
    FDT_MSG_READY = 1,    /* worker -> master: serving */
    FDT_MSG_FAILED = 2,   /* worker -> master: start failed, text = reason */
    FDT_MSG_DRAINING = 3, /* worker -> master: listeners closed, accepts no more */
    /* worker -> master -> worker, with a descriptor: an idle connection of listener `text`
     * that a retiring worker hands to a worker of the serving generation (promise 4 for
     * protocols that cannot tell their clients to close; conn's fdt_proto.handoff). */
    FDT_MSG_CONN = 4,
    FDT_MSG_RECYCLE = 5, /* worker -> master: replace me (arg: FDT_RESTART_MAX_*) */
};

struct fdt_msg {
    uint32_t type;
    uint32_t arg;
    char text[500];
};

/* Create a SOCK_SEQPACKET pair; fds[0] for the master, fds[1] for the worker. */
int fdt__channel_pair(int fds[2]);
/* Send one message (blocking, short). Returns 0 or -errno. */
int fdt__channel_send(int fd, uint32_t type, uint32_t arg, const char *text);
/* Send one message carrying the descriptor pass_fd (not sent when negative); flags are
 * added to sendmsg's (MSG_DONTWAIT: fail with -EAGAIN instead of waiting). The sender
 * keeps its own copy. Returns 0 or -errno. */
int fdt__channel_send_fd(int fd, uint32_t type, uint32_t arg, const char *text, int pass_fd,
                         int flags);
/* Receive one message. Returns 1, 0 on EOF, FDT_EAGAIN, or -errno. A descriptor that came
 * with it is closed. */
int fdt__channel_recv(int fd, struct fdt_msg *m);
/* The same, giving a descriptor that came with the message in *passed (close-on-exec; -1
 * when none came). */
int fdt__channel_recv_fd(int fd, struct fdt_msg *m, int *passed);

#endif

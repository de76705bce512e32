/* Connections inside a worker: the object, its buffers, and how the event-loop thread
 * (timers, frees connections) and the application threads (which accept, wait on the
 * connections' epoll set, read, run the protocol and write) share them.
 *
 * Invariants:
 *  - A connection is "running" on at most one application thread at a time: the thread
 *    that takes an event for it claims it (fdt__conn_claim); a thread that takes an event
 *    for a connection already running only records the event.
 *  - Events that arrive while it runs are recorded in `pending` and handled before the
 *    runner lets go.
 *  - How it sits in epoll: a TLS connection is armed once per run (EPOLLONESHOT: OpenSSL
 *    may hold input epoll cannot see). A plain one stays registered edge-triggered
 *    (EPOLLET, for input, output and hang-up): every arrival after an event was taken is
 *    reported again, so a runner that last found the socket empty (`drained`: a read that
 *    returned EAGAIN, or a short one when the event did not already carry the client's
 *    FIN or reset, which never comes twice) and wants
 *    the same events need not touch epoll between requests (one system call less per
 *    request); otherwise it is modified, which reports what is already there.
 *  - Only the loop thread frees a connection, after its last reference is dropped.
 *  - A connection accepted on an application thread is run there at once, before it is in
 *    epoll (in_epoll false, running true): its first re-arm adds it. */
#ifndef FDT_SRC_CONN_H
#define FDT_SRC_CONN_H

#include "proc/proc.h"
#include "tls/tls.h"
#include "txn/txn.h"
#include "util/buf.h"

#include <errno.h>
#include <fdt/app.h>
#include <fdt/conn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct fdt_conn_loop;

/* Kinds of things registered in the worker's epoll (first member of each). */
enum fdt_poll_kind {
    FDT_POLL_LISTENER = 1,
    FDT_POLL_CONN = 2,
    FDT_POLL_SIGNAL = 3,
    FDT_POLL_WAKE = 4,
    FDT_POLL_QUEUE = 5,
    FDT_POLL_MASTER = 6, /* the worker's channel to its master */
};

/* Pseudo-events beyond the epoll bits. */
#define FDT_EV_OPEN        (1u << 28)
#define FDT_EV_CLOSE       (1u << 29)
#define FDT_EV_DRAIN       (1u << 30)
#define FDT_EV_TIMEOUT     (1u << 27)
#define FDT_EV_TXN_TIMEOUT (1u << 26)

/* A protocol drives a connection: raw (the application's own), http, jsonrpc. The
 * protocol modules fill it; conn only calls it (conn is below the protocols). */
struct fdt_proto {
    const char *name;
    /* The protocol's state shared by all connections of the listeners it serves (the
     * application, limits, logs), owned by whoever made the protocol; callbacks reach it
     * as c->proto->ctx. Read-only once connections exist. */
    const void *ctx;
    /* Called once on an application thread before any data. Nonzero closes. */
    int (*open)(struct fdt_conn *c);
    /* Bytes arrived; return bytes consumed or negative to close. */
    long (*data)(struct fdt_conn *c, const char *buf, size_t len);
    /* The input buffer is full and nothing was consumed. */
    void (*overflow)(struct fdt_conn *c);
    /* The connection is gone. */
    void (*close)(struct fdt_conn *c);
    /* The deadline set with fdt__conn_set_deadline() passed (e.g. a client too slow to send
     * its headers): answer if the protocol has an answer; the connection is closed after.
     * May be NULL. */
    void (*timeout)(struct fdt_conn *c);
    /* The connection's active transaction was rolled back after transaction_timeout:
     * tell the client if the protocol can. May be NULL. */
    void (*txn_expired)(struct fdt_conn *c);
    /* True when the protocol is between requests: nothing of the next one has arrived, no
     * answer is being made, so a draining worker may close the connection now. Called by
     * the thread running the connection, after the protocol consumed what it could. May
     * be NULL: then the connection is idle when no input is left unconsumed (the rule for
     * protocols that leave a partial request in the input buffer). */
    bool (*idle)(struct fdt_conn *c);
    /* True: a worker retiring for a successor (a reload: loop->retiring) never closes an idle
     * connection of this protocol (promise 4):
     * the protocol tells the client with its next answer (HTTP: Connection: close) and
     * closes an idle one itself once the idle time it advertised has run out (HTTP:
     * Keep-Alive: timeout=N), bounded by graceful_timeout. False: closed between requests
     * (proto->idle). */
    bool drain_keeps_idle;
    /* True: between requests a connection of this protocol holds no state of its own (no
     * greeting at open, nothing kept from one request to the next), so a worker retiring
     * for a successor (a reload) hands an idle one, with no transaction and nothing attached
     * by the application (fdt_conn_set_data), to a worker of the serving generation instead
     * of closing it (loop->handoff): the client sees nothing happen (promise 4 for protocols
     * that cannot tell their clients to close, such as JSON-RPC). */
    bool handoff;
    /* True when the protocol counts requests itself with fdt__conn_request_done();
     * otherwise every data callback that consumes bytes counts as one request. */
    bool counts_requests;
    /* Reply to a connection refused at max_connections (may be NULL). */
    const char *busy_reply;
    /* Plain-text reply to a client that spoke this protocol in clear to a TLS listener (may
     * be NULL: the connection is just closed). */
    const char *plain_on_tls_reply;
    /* The protocol label of its requests in the metrics. */
    enum fdt_metric_proto metric_proto;
};

/* What connections need from the loop that owns them (libuv hands its loop to handles the
 * same way): the worker embeds one and fills it before the first connection; conn never
 * sees the worker. The loop outlives its connections. */
struct fdt_conn_loop {
    int epfd;          /* the epoll set the application threads wait on */
    size_t max_input;  /* [server] max_input */
    size_t max_output; /* [server] max_output: one connection's output buffer */
    /* Output backpressure (fdt__conn_write_wait). A waiting writer gives up when its client
     * took no byte for this long (0: FDT_CONN_SEND_TIMEOUT_MS); the worker sets it to
     * [server] idle_timeout. */
    int64_t send_timeout_ms;
    /* Bytes all the loop's connections may hold in their output buffers before waiting
     * writers wait (0: FDT_CONN_BUDGET_FACTOR * max_output). */
    size_t out_budget;
    _Atomic size_t out_queued;      /* bytes in the connections' output buffers now */
    int64_t transaction_timeout_ms; /* an active transaction idle this long: rolled back */
    _Atomic uint64_t *requests;     /* counters published to the master's scoreboard */
    _Atomic int64_t *conns_open;
    struct fdt_counters *counters;     /* the worker's metrics (NULL: none) */
    const struct fdt_txn_env *txn_env; /* what the connections' transactions need */
    _Atomic bool draining;             /* stop accepting; close connections between requests */
    _Atomic bool retiring;             /* draining for a successor (reload): see drain_keeps_idle */
    _Atomic uint64_t next_id;          /* the last connection id given (any thread) */
    /* Hand c to an application thread (any thread). */
    void (*enqueue)(struct fdt_conn_loop *loop, struct fdt_conn *c);
    /* Pass c's descriptor to a worker of the serving generation (proto->handoff), which
     * serves the connection from now on; the caller then closes its own copy. Called by the
     * thread tearing c down. Returns 0, or a negative code: then c is just closed. May be
     * NULL (nothing to hand to). */
    int (*handoff)(struct fdt_conn_loop *loop, struct fdt_conn *c);
    _Atomic uint64_t handed_off; /* connections handed off so far */
    /* c's last reference is gone: free it once no thread can hold an event naming it
     * (any thread; the loop thread frees). */
    void (*release)(struct fdt_conn_loop *loop, struct fdt_conn *c);
};

struct fdt_conn {
    int kind; /* FDT_POLL_CONN */
    int fd;
    uint64_t id;
    struct fdt_conn_loop *loop;
    const struct fdt_proto *proto;
    const char *listener_name;

    pthread_mutex_t lock;
    /* Guarded by lock. */
    uint32_t pending;
    bool running;
    bool armed;
    bool drained;     /* the last read found the socket empty (edge-triggered: see above) */
    uint32_t ev_mask; /* the events it is registered in epoll with */
    bool in_epoll; /* registered in loop->epfd (a connection run at once after accept is not yet) */
    bool closing;  /* close after the output is flushed */
    bool dead;     /* close now */
    bool closed;   /* torn down: fd closed, proto->close called */
    bool lingering;     /* output sent and shut down; reading and dropping input until EOF */
    bool corked;        /* writes are collected in out, not sent (fdt__conn_cork) */
    struct fdt_buf out; /* its bytes count in loop->out_queued */
    uint64_t out_sent;  /* bytes the socket has taken so far */

    /* TLS (NULL: none): every call into it is made under lock. */
    struct fdt_tls *tls;
    bool tls_ready; /* handshake done; guarded by lock */

    /* Owned by the running thread. */
    struct fdt_buf in;
    bool opened;
    bool eof;
    bool served;  /* the protocol has consumed a request */
    bool linger;  /* close by lingering (fdt__conn_linger) */
    bool handoff; /* closing: hand the descriptor to a successor first (proto->handoff) */
    /* The socket's addresses, read once for all the requests of the connection
     * (fdt__conn_addresses). */
    bool addrs_known;
    struct sockaddr_storage local_addr, peer_addr;

    _Atomic int refs;
    _Atomic int64_t last_active_ms;
    _Atomic int64_t deadline_ms; /* 0: none; see fdt__conn_set_deadline */
    _Atomic int64_t txn_idle_ms; /* 0, or since when an active transaction waits for the client */
    void *app_data;
    void *proto_data;
    struct fdt_txn_holder th; /* the connection's transaction (th.txn), or none */

    struct fdt_conn *job_next;            /* run queue link */
    struct fdt_conn *reg_prev, *reg_next; /* registry (loop thread only) */
    struct fdt_conn *free_next;
};

/* Defaults of struct fdt_conn_loop's backpressure settings. */
#define FDT_CONN_SEND_TIMEOUT_MS 60000
#define FDT_CONN_BUDGET_FACTOR   8

/* Create a connection for an accepted fd (any thread). Takes the fd. NULL on ENOMEM. */
struct fdt_conn *fdt__conn_new(struct fdt_conn_loop *loop, int fd, const struct fdt_proto *proto,
                               const char *listener_name);
/* Create a connection for a descriptor handed over by a retiring worker (loop->handoff):
 * like fdt__conn_new, for a connection whose client already made requests. */
struct fdt_conn *fdt__conn_adopt(struct fdt_conn_loop *loop, int fd, const struct fdt_proto *proto,
                                 const char *listener_name);
/* Make c speak TLS with the settings of ctx (which must outlive c): the handshake runs on
 * the application thread that first runs c, before proto->open, and must end within the
 * listener's handshake_timeout. Before c is registered. Returns 0 or FDT_ENOMEM. */
int fdt__conn_tls_start(struct fdt_conn *c, const struct fdt_tls_ctx *ctx);
/* Free (loop thread, refs == 0). */
void fdt__conn_destroy(struct fdt_conn *c);
/* Record epoll events (an application thread that took them from epoll). Returns true when
 * the caller now runs the connection (fdt__conn_run), false when another thread runs it
 * (and will handle the events) or it is closed. */
bool fdt__conn_claim(struct fdt_conn *c, uint32_t events);
/* Run the connection's pending work (application thread). */
void fdt__conn_run(struct fdt_conn *c);
/* The socket's local and peer addresses (getsockname/getpeername on the first call, kept
 * for the connection's later requests). Returns 0, or -errno (the peer is gone, say).
 * Inline: fdt_python.so uses it and sees only libfdt's public symbols.
 * Thread: the one running the connection. */
static inline int fdt__conn_addresses(struct fdt_conn *c, const struct sockaddr_storage **local,
                                      const struct sockaddr_storage **peer)
{
    if (!c->addrs_known) {
        socklen_t llen = sizeof(c->local_addr), plen = sizeof(c->peer_addr);
        if (getsockname(c->fd, (struct sockaddr *)&c->local_addr, &llen) < 0 ||
            getpeername(c->fd, (struct sockaddr *)&c->peer_addr, &plen) < 0)
            return -errno;
        c->addrs_known = true;
    }
    *local = &c->local_addr;
    *peer = &c->peer_addr;
    return 0;
}
/* Arm (monotonic ms, from fdt__now_ms) or clear (0) the protocol's deadline. The loop thread
 * checks deadlines every 250 ms and runs proto->timeout on an application thread. Thread:
 * the one running the connection. */
void fdt__conn_set_deadline(struct fdt_conn *c, int64_t deadline_ms);
/* Close lingering when the connection closes (the protocol refused a request whose rest
 * may still be coming): the output is sent, the sending side shut down, and input read and
 * dropped until the client closes or LINGER_MS pass, so that the client is not reset before
 * it has read the answer (nginx's lingering_close). Thread: the one running it. */
void fdt__conn_linger(struct fdt_conn *c);
#define FDT_CONN_LINGER_MS 2000
/* fdt_conn_write() with backpressure, for protocols whose writer may wait (the thread
 * running a view or a method). What the socket does not take at once is buffered, but
 * never more than max_output for the connection nor, while the loop's out_budget is spent,
 * more than fits in it: then the caller waits (poll on the socket, no lock held) until the
 * client has taken the connection's buffer down to half of max_output (or the budget has
 * room), sending as it goes. Returns 0 once every byte is sent or buffered; FDT_ECLOSED
 * when the connection is closed, closing or dies meanwhile, or the client took no byte for
 * send_timeout_ms (the connection is then closed); FDT_ENOMEM. Blocks only the caller:
 * other connections go on on other threads. Thread: any but the loop thread. */
int fdt__conn_write_wait(struct fdt_conn *c, const void *buf, size_t len);
/* The calling application thread's word in the scoreboard saying since when it runs
 * application code (0: idle), which the master compares with worker_timeout. Set once by
 * each application thread. A thread waiting for its client (fdt__conn_write_wait, a view
 * reading a request body as it comes) is not stuck: the wait has its own bound
 * (send_timeout_ms, the read timeouts), so it brackets the wait with
 * fdt__conn_client_wait_begin(), which negates the word (busy, but waiting for a client:
 * never "stuck") and returns what it held, and fdt__conn_client_wait_end(that value), which
 * starts the count again from now. */
void fdt__conn_thread_busy(_Atomic int64_t *busy);
/* A function the calling application thread wants called, with arg, each time it is about
 * to block: on its client (fdt__conn_client_wait_begin) or on a database (the transaction
 * holder's before_wait). The worker gives up its turn to poll there (worker_gate.c). Set
 * once by each application thread; NULL: nothing. */
void fdt__conn_thread_on_block(void (*fn)(void *), void *arg);
int64_t fdt__conn_client_wait_begin(void);
void fdt__conn_client_wait_end(int64_t was);
/* Read up to len bytes the client sent into buf (peek: leave them in the socket, to be read
 * again), waiting for some until deadline_ms (monotonic ms; 0: do not wait). For a protocol
 * whose request handler reads the rest of a request itself (an HTTP body streamed to the
 * view): only the thread running the connection may call it, since the connection is not
 * armed in epoll then and nobody else reads. Returns the bytes read (> 0), 0 at EOF,
 * FDT_EAGAIN (nothing yet and deadline_ms 0), FDT_ETIMEDOUT, or FDT_ECLOSED (the socket
 * failed, or the connection is closing). Input read counts as activity (idle_timeout).
 * Thread: the one running the connection. */
long fdt__conn_read_wait(struct fdt_conn *c, void *buf, size_t len, bool peek, int64_t deadline_ms);
/* Send len bytes of the file fd from offset with sendfile(2) (over TLS: read in blocks and
 * written through the session), after the output already
 * buffered, waiting for a slow client as fdt__conn_write_wait does (the same send
 * timeout). The file is the caller's (not closed). Returns 0 once every byte went to the
 * socket; FDT_ECLOSED (the connection closed, or the client took nothing for the send
 * timeout); FDT_EPROTO (the file ended before len bytes) or -errno of sendfile: the
 * connection is then dead, the response cut. Thread: the one running the connection. */
int fdt__conn_sendfile_wait(struct fdt_conn *c, int fd, int64_t offset, size_t len);
/* Coalescing the answers to pipelined requests (one send for a batch, as Redis does). While
 * corked, what is written is collected in the output buffer instead of being sent: it goes
 * out at fdt__conn_uncork, at fdt__conn_flush, once FDT_CONN_CORK_MAX bytes are collected,
 * and whenever a writer must wait for the client (backpressure and max_output are as
 * always), and before a transaction of the connection waits on a resource
 * (fdt_txn_holder.before_wait). A protocol corks while it answers requests it has already
 * read and uncorks when none is left, so an answer never waits for a request that has not
 * arrived. Thread: the one running the connection (writes from other threads meanwhile are
 * collected too, and sent with the rest). */
#define FDT_CONN_CORK_MAX 16384
void fdt__conn_cork(struct fdt_conn *c);
void fdt__conn_uncork(struct fdt_conn *c);
/* Send what is collected now (staying corked). */
void fdt__conn_flush(struct fdt_conn *c);
/* Count one request served (protocols with counts_requests). */
void fdt__conn_request_done(struct fdt_conn *c);
/* The same, for the metrics too: its outcome class and how long it took (from its first
 * byte to its answer queued). Thread: the one running c. */
void fdt__conn_request_end(struct fdt_conn *c, enum fdt_metric_class cls, int64_t duration_us);
/* Raw-protocol vtable wrapping the application's callbacks (p->ctx = app, which must
 * outlive the connections). */
void fdt__proto_raw_init(struct fdt_proto *p, const struct fdt_app *app);

#endif

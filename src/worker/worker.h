/* A worker process: loads the application, runs one event-loop thread (the process's main
 * thread: signals, timers, freeing) and `threads` application threads that wait on the
 * connections' epoll set themselves (leader/follower: whichever thread is free takes the
 * next ready connection, with no hand-off between threads), read, run the protocol and
 * write. The listeners are in that set too: the thread that takes a listener's event
 * accepts and runs the new connection itself (worker_accept.c). The loop thread reaches
 * the application threads through the run queue (timeouts, drain), whose eventfd sits in
 * the same epoll set. */
#ifndef FDT_SRC_WORKER_H
#define FDT_SRC_WORKER_H

#include "config/config.h"
#include "conn/conn.h"
#include "listen/listen.h"
#include "proc/proc.h"
#include "txn/txn.h"

#include <fdt/app.h>
#include <pthread.h>
#include <stdbool.h>

/* Everything a freshly forked worker needs from the master. */
struct fdt_worker_args {
    const struct fdt_cfg *cfg;
    struct fdt_scoreboard *sb;
    int slot;
    int channel_fd;
    unsigned generation;
    unsigned index;
    struct fdt_listener *listeners; /* this generation's listeners, fds open */
    int n_listeners;
    pid_t master_pid;
};

struct fdt_worker_listener {
    int kind; /* FDT_POLL_LISTENER */
    int fd;
    const char *name;
    struct fdt_proto proto;
    struct fdt__jsonrpc_server *rpc; /* a jsonrpc listener's protocol state, or NULL */
    const struct fdt_tls_ctx *tls;   /* TLS settings (the generation's, from the master), or NULL */
    bool registered;
    /* An application thread took the listener's event while another thread held
     * accept_lock: the holder acts on it (worker_accept.c, accept_unlock). */
    _Atomic bool again;
    bool reuseport;   /* a socket of this worker's own */
    int defer_accept; /* [listen] defer_accept, seconds */
    bool tcp;         /* AF_INET or AF_INET6 (TCP options apply), not a unix socket */
};

struct fdt_run_queue {
    pthread_mutex_t lock;
    struct fdt_conn *head, *tail;
    bool stop;
    int efd;  /* eventfd in conn_epfd: readable while the queue has work (or stop) */
    int kind; /* FDT_POLL_QUEUE */
};

/* The pollers' gate (worker_gate.c): which application threads may wait on the
 * connections' epoll set now. */
struct fdt_poll_gate {
    int tokens;       /* [server] pollers, fewer than the threads; 0: no gate */
    unsigned threads; /* application threads */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* parked threads wait here for a token */
    int active;          /* tokens held; guarded by lock */
    bool stop;           /* the threads are stopping: nobody parks; guarded by lock */
    _Atomic int parked;
    _Atomic bool *holds;      /* per thread: it holds a token */
    _Atomic bool loop_asleep; /* the loop thread does not watch: wake it (wakefd) to */
    /* Wide open: most requests block (a database), every thread polls (see worker_gate.c). */
    _Atomic bool wide;
    _Atomic uint64_t blocks; /* times an application thread was about to block */
    /* Loop thread only: the last look at the mix of requests and blocks; the requests
     * counted at the last watch, and until when the loop watches on without being woken. */
    int64_t mix_ms;
    uint64_t mix_requests, mix_blocks;
    uint64_t watch_requests;
    int64_t watch_until_ms;
};

struct fdt_worker {
    const struct fdt_cfg *cfg;
    struct fdt_slot *slot;
    int channel_fd;
    struct fdt_worker_info info;
    const struct fdt_app *app;
    void *dl;

    int epfd; /* the loop thread's: signals, wake-ups, the master's channel */
    /* What the connections see of the worker: loop.epfd holds the connections, the
     * listeners and the run queue (the application threads wait on it), loop.draining says
     * the worker drains. */
    struct fdt_conn_loop loop;
    struct fdt_txn_env txn_env;
    struct fdt__http_server *http;     /* the HTTP listeners' shared state, or NULL */
    struct fdt__http_server *metrics;  /* the metrics listeners' (no application), or NULL */
    struct fdt_scoreboard *sb;         /* the whole scoreboard, for the metrics listeners */
    struct fdt_txn_recovery *recovery; /* the recovery thread, or NULL */
    int sigfd;
    int wakefd; /* eventfd: the loop has connections to free */
    int sig_kind;
    int wake_kind;
    int chan_kind; /* FDT_POLL_MASTER: channel_fd in epfd (connections handed over) */

    struct fdt_worker_listener listeners[FDT_CFG_MAX_LISTENERS];
    int n_listeners;

    struct fdt_run_queue rq;
    struct fdt_poll_gate gate;
    pthread_t *threads;
    int n_threads_started;

    /* Every connection not yet freed (accepted on any thread, freed by the loop thread),
     * guarded by registry_lock (taken before a connection's lock, never inside it). */
    pthread_mutex_t registry_lock;
    struct fdt_conn *registry;
    int64_t n_conns;

    /* Loop thread only. */
    int64_t drain_deadline_ms;

    /* Accepting (worker_accept.c), on an application thread or the loop thread: everything
     * from here to recycle_after, and the listeners' fd and registered, are guarded by
     * accept_lock. */
    pthread_mutex_t accept_lock;
    int64_t accept_logged_ms; /* rate limits of repeated warnings */
    /* Out of descriptors: a descriptor kept in reserve to turn queued connections away
     * (-1 when it could not be taken back), until when accepting is paused (0: not), and
     * how many connections were turned away since the last warning. */
    int reserve_fd;
    int64_t accept_paused_until_ms;
    unsigned long long refused_no_fd;
    /* Accept balancing between the workers of a generation sharing a listener (see
     * worker_loop.c): the loop's time of the current batch of events, the slots of the
     * siblings (refreshed every scan), the end of the current balance pause (0: not paused)
     * and the siblings' accept shares summed when it began (progress: someone accepts). */
    int64_t now_ms;
    int siblings[FDT_MAX_SLOTS];
    int n_siblings;
    int64_t siblings_ms;
    int64_t balance_until_ms;
    int64_t balance_since_ms;
    uint64_t balance_mark;

    /* Loop thread only. */
    pid_t master_pid; /* the master that forked this worker (a SIGTERM after it died says so) */
    int64_t last_scan_ms;
    /* Recycling: requests after which this worker asks to be replaced (0: never, else
     * max_requests plus its jitter), when memory was last checked, and when it asked. */
    uint64_t recycle_after;
    int64_t memory_checked_ms;
    int64_t recycle_asked_ms; /* when it last asked for a successor; 0: never */

    pthread_mutex_t free_lock;
    struct fdt_conn *free_list; /* guarded by free_lock */
    int n_free;                 /* guarded by free_lock */

    /* Freeing a connection waits until no application thread can still hold an epoll
     * event naming it. Each thread's word is (windows closed << 1) | holding: the holding
     * bit is set from just before epoll_wait until the event it returned is claimed; a
     * batch in limbo (its connections already out of epoll) is freed once every thread is
     * either not holding, or holding in a window opened after the batch's snapshot. */
    _Atomic uint64_t *quiescent; /* one per application thread */
    struct fdt_conn *limbo;      /* loop thread only: waiting for every thread */
    uint64_t *limbo_snap;
};

/* Run a worker in a freshly forked child. Never returns. */
__attribute__((noreturn)) void fdt__worker_main(const struct fdt_worker_args *args);

/* Queue a connection for an application thread (any thread). */
void fdt__worker_enqueue(struct fdt_worker *w, struct fdt_conn *c);
/* Fill w->loop, the interface through which connections reach the worker. */
void fdt__worker_loop_init(struct fdt_worker *w);

/* Accepting (worker_accept.c). */
/* Start this worker's accept share at the least of its ready siblings', set the listeners'
 * TCP options and put them into loop.epfd (once the threads run, before the worker says it
 * is ready). Returns 0, or -1 with the reason. */
int fdt__worker_accept_start(struct fdt_worker *w, char *reason, size_t len);
/* An application thread took listener l's event: accept what is queued. Returns the first
 * new connection, running, for the caller to run (fdt__conn_run) now, or NULL. */
struct fdt_conn *fdt__worker_accept(struct fdt_worker *w, struct fdt_worker_listener *l);
/* A sibling's SIGWINCH (loop thread): accept, or end a balance pause. */
void fdt__worker_hand_on(struct fdt_worker *w, pid_t from);
/* The loop's epoll_wait timeout cut to the end of an accept pause; the pauses' ends, and
 * with scan the list of siblings (loop thread). */
int fdt__worker_accept_timeout(struct fdt_worker *w, int64_t now, int timeout);
void fdt__worker_accept_tick(struct fdt_worker *w, int64_t now, bool scan);
/* Drain: take the listeners out of epoll, accept what is queued, close them. Returns the
 * connections taken from the queues (loop thread). */
int fdt__worker_accept_stop(struct fdt_worker *w);
/* Serve a descriptor handed over by a retiring worker as a connection of listener l. */
void fdt__worker_adopt(struct fdt_worker *w, struct fdt_worker_listener *l, int fd);
/* The registry of connections (any thread). */
void fdt__worker_registry_add(struct fdt_worker *w, struct fdt_conn *c);
void fdt__worker_registry_remove(struct fdt_worker *w, struct fdt_conn *c);
/* Make every application thread finish its current work and exit (any thread). */
void fdt__worker_stop_threads(struct fdt_worker *w);
/* The pollers' gate (worker_gate.c). Set up with the threads' count (-1: out of memory). */
int fdt__gate_init(struct fdt_poll_gate *g, int pollers, unsigned threads);
/* Application thread `index`, before it polls: wait for a token unless it holds one. */
void fdt__gate_enter(struct fdt_worker *w, unsigned index);
/* It starts running a connection (its busy_since word is set). */
void fdt__gate_running(struct fdt_worker *w);
/* Thread `index` gives its token up (any thread): a parked one polls in its place. */
void fdt__gate_release(struct fdt_poll_gate *g, unsigned index);
/* Thread `index` is about to block (its client, a database): counts it, and gives up. */
void fdt__gate_block(struct fdt_poll_gate *g, unsigned index);
/* The threads stop: nobody parks any more. */
void fdt__gate_stop(struct fdt_poll_gate *g);
/* Loop thread, before it sleeps: take tokens from threads that ran one connection for
 * GATE_WATCH_MS while others are parked; returns the timeout to sleep (timeout, or less
 * while it must watch). fdt__gate_awake when it wakes. */
int fdt__gate_watch(struct fdt_worker *w, int64_t now, int timeout);
void fdt__gate_awake(struct fdt_poll_gate *g);
/* How long a thread holding a poller's token runs one connection before another polls. */
#define GATE_WATCH_MS 2
/* How long the loop watches on after the last request it saw served while threads are
 * parked, instead of sleeping and being woken (a write and a context switch) by the next
 * connection that starts running: under a stream of short connections that wake-up came
 * with nearly every connection. */
#define GATE_LINGER_MS 100
/* How often the loop looks at the mix of requests and blocks, and the fewest requests in
 * such a period to change the gate's mode on. */
#define GATE_MIX_MS  250
#define GATE_MIX_MIN 32
/* How often an idle application thread wakes up to say it holds no event. */
#define QUIESCENT_INTERVAL_MS 200
/* Closed connections waiting to be freed before the loop thread is woken for them. */
#define FREE_WAKE_BATCH 64
/* Load the application ([app] module, or fdt_python.so for [app] wsgi) and check its
 * descriptor. */
int fdt__app_load(const struct fdt_cfg *cfg, void **dl, const struct fdt_app **app,
                  struct fdt_error *err);

#endif

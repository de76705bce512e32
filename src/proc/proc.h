/* What the master and its workers share: the scoreboard (shared memory, one slot per
 * worker, written only by that worker and read by the master) and the channel
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
    _Atomic uint64_t listen_wakeups; /* listener readiness events seen */
    _Atomic uint64_t accept_eagain;  /* wakeups that found nothing to accept */
    _Atomic uint64_t refused_busy;
    _Atomic int64_t txn_open;
    _Atomic int64_t txn_in_doubt;           /* from this worker's last recovery pass */
    _Atomic int64_t txn_in_doubt_oldest_ms; /* age of the oldest of them */
    /* 0 when idle, else the monotonic ms at which the thread entered application code. */
    _Atomic int64_t busy_since[FDT_MAX_THREADS];
};

struct fdt_scoreboard {
    struct fdt_slot slots[FDT_MAX_SLOTS];
};

/* Map the scoreboard (shared, anonymous) before the first fork. */
struct fdt_scoreboard *fdt__scoreboard_new(void);
void fdt__scoreboard_free(struct fdt_scoreboard *sb);
/* Reset a slot for a new worker. Returns the slot index or -1 when full. */
int fdt__scoreboard_claim(struct fdt_scoreboard *sb, unsigned generation, unsigned index,
                          unsigned threads);
void fdt__scoreboard_release(struct fdt_scoreboard *sb, int slot);

/* Channel messages. */
enum fdt_msg_type {
    FDT_MSG_READY = 1,    /* worker -> master: serving */
    FDT_MSG_FAILED = 2,   /* worker -> master: start failed, text = reason */
    FDT_MSG_DRAINING = 3, /* worker -> master: listeners closed, accepts no more */
    /* worker -> master -> worker, with a descriptor: an idle connection of listener `text`
     * that a retiring worker hands to a worker of the serving generation (promise 4 for
     * protocols that cannot tell their clients to close; conn's fdt_proto.handoff). */
    FDT_MSG_CONN = 4,
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

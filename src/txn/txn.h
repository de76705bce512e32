/* Internal side of transactions: the worker's resources and the connection hook. */
#ifndef FDT_SRC_TXN_H
#define FDT_SRC_TXN_H

#include "config/config.h"
#include "proc/proc.h"
#include "txn/rm.h"

#include <fdt/txn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* A configured resource in this process, with its pool of idle sessions. */
struct fdt_resource {
    struct fdt_resource_cfg cfg;
    const struct fdt_rm_driver *drv;
    pthread_mutex_t lock;
    void *idle[64]; /* guarded by lock */
    int n_idle;
    bool log_ready; /* the fdt_txn_log table exists */
};

/* What every transaction of a process needs to know about it (set up by the worker). */
struct fdt_txn_env {
    const char *node;              /* [server] node: the first part of every GID */
    const struct fdt_cfg *cfg;     /* the resources (their names go into GIDs) */
    _Atomic int64_t *open;         /* open transactions, published to the scoreboard */
    struct fdt_counters *counters; /* outcomes, for the metrics (NULL: not counted) */
};

/* Count database sessions opened and failed in c from now on (the worker's scoreboard slot;
 * NULL: stop). Thread: main, before other threads use resources. */
void fdt__txn_set_counters(struct fdt_counters *c);

/* Where a transaction lives: its owner (a connection) embeds a holder, so that txn never
 * reads its owner. A holder has at most one transaction at a time. */
struct fdt_txn_holder {
    struct fdt_txn *txn; /* the open transaction, or NULL */
    const struct fdt_txn_env *env;
    uint64_t id; /* the owner's id, for log lines ("conn=ID") */
    /* Called (may be NULL) on the thread running the transaction before it waits on a
     * resource (a statement, a commit, a vote...): the owner sends what it holds back (a
     * connection: the answers it collects for a pipelined batch), so that they do not wait
     * behind a database. */
    void (*before_wait)(struct fdt_txn_holder *h);
};

/* fdt_txn_begin, fdt_txn_run and the disconnect rule on a holder (the public functions
 * that take a connection pass its holder). lazy: a root transaction (xid NULL) is named
 * only when its first branch is enlisted or its xid is asked for (fdt_txn_xid), so that
 * one that never touches a resource costs no random bytes; fdt__txn_run's are lazy,
 * fdt_txn_begin's are named at once (a getrandom failure is then its error). */
int fdt__txn_begin(struct fdt_txn_holder *h, const struct fdt_xid *xid, bool lazy,
                   struct fdt_error *err);
int fdt__txn_run(struct fdt_txn_holder *h, fdt_txn_fn fn, void *arg, int max_attempts,
                 int *attempts, struct fdt_error *err);
/* The owner (h, with a transaction open) is gone: roll back before the vote, keep prepared
 * after it. */
void fdt__txn_holder_closed(struct fdt_txn_holder *h);

/* Set up the resources of cfg in this process (no connection is made yet). */
int fdt__txn_init(const struct fdt_cfg *cfg, struct fdt_error *err);
void fdt__txn_shutdown(void);
struct fdt_resource *fdt__resource_find(const char *name);
/* Take a session (reconnecting a dead one) / give it back. */
int fdt__resource_acquire(struct fdt_resource *r, void **session, struct fdt_error *err);
void fdt__resource_release(struct fdt_resource *r, void *session, bool healthy);

/* The node's PostgreSQL log resource: the one marked log = yes, else the first
 * PostgreSQL resource; NULL without one. It holds vote records, and the decision of a root
 * transaction that has no SQLite branch (with one, SQLite holds it: the logging last
 * resource). */
struct fdt_resource *fdt__txn_log_resource(void);
int fdt__txn_resource_count(void);
struct fdt_resource *fdt__txn_resource_at(int i);

struct fdt_recover_result {
    int in_doubt;  /* voted branches left for their coordinator */
    double oldest; /* age of the oldest of them, seconds */
    bool scanned;  /* this pass held the node's recovery lock */
};

/* One recovery pass over the node's prepared transactions older than grace seconds, then
 * over those of nodes whose alive lock it can take (dead: takeover, txn_recover.c). res is
 * about the node's own. */
int fdt__txn_recover_once(const char *node, double grace, struct fdt_recover_result *res,
                          struct fdt_error *err);
/* Start / stop the worker's recovery thread (holds the node's alive lock; scans at start,
 * then every interval, none when it is 0); it publishes the in-doubt count and the oldest
 * age (ms) through the two pointers. *out gets the thread (owned by the caller until
 * stop), or NULL when no resource can prepare. Returns 0 or a negative code. */
struct fdt_txn_recovery;
int fdt__txn_recovery_start(const struct fdt_cfg *cfg, _Atomic int64_t *in_doubt,
                            _Atomic int64_t *oldest_ms, struct fdt_txn_recovery **out);
/* Stop and free (NULL: no-op). */
void fdt__txn_recovery_stop(struct fdt_txn_recovery *rec);

/* Commit or roll back every prepared branch of xid prepared by node (this one, or a peer
 * whose coordinator reconnected here), and record the outcome with comment. Only a
 * transaction whose vote (or commit decision) is recorded may be committed; one with no
 * record is fenced with an abort record before it is rolled back (as recovery does). found
 * gets the number of branches resolved (0: nothing was prepared; the log then tells
 * whether it was already so). FDT_ETXNSTATE: it went the other way, or may not be
 * committed; FDT_ENOENT: unknown; FDT_EAGAIN: a decision raced with it. */
int fdt__txn_resolve(const char *node, const struct fdt_xid *xid, bool commit, const char *comment,
                     int *found, struct fdt_error *err);

struct fdt_gid;
typedef void (*fdt__txn_list_fn)(const char *gid, const struct fdt_gid *g, double age,
                                 const char *role, const char *outcome, void *arg);
/* Every prepared branch of node (NULL: of every node), with its log record. */
int fdt__txn_list(const char *node, fdt__txn_list_fn fn, void *arg, struct fdt_error *err);

/* True when a conflict (serialization failure, deadlock, busy) doomed t: running the
 * whole transaction again may succeed. */
bool fdt__txn_conflicted(const struct fdt_txn *t);

/* Create the node's PostgreSQL log table (fdt__txn_log_resource) if it does not exist yet,
 * serialized across processes and hosts; the recovery thread calls it when it starts, so
 * a client's first two-phase commit does not. Returns 0 (also without such a resource) or
 * a negative code with err. */
int fdt__txn_logs_prepare(struct fdt_error *err);
/* Make sure the log table exists in r (a SQLite resource: in the caller's session s; a
 * PostgreSQL one: on a session of its own, see fdt__txn_logs_prepare). */
int fdt__txn_log_ensure(struct fdt_resource *r, void *s, struct fdt_error *err);

#endif

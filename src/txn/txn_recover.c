#include "fdt_config.h"

#define FDT_LOG_MODULE "recovery"
#include "txn/txn.h"
#include "txn/txn_gid.h"
#include "util/util.h"

#include <fdt/log.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Recovery of in-doubt branches: of this node, and of dead nodes (takeover).
 *
 * For each prepared GID of a node (older than recovery_grace, so that transactions in
 * flight are left alone) the logs decide:
 *   - a root decision "commit", or an outcome "committed" -> COMMIT PREPARED;
 *   - an outcome "rolled back"                           -> ROLLBACK PREPARED;
 *   - a participant's vote ("voted")                     -> left alone: the client's
 *     coordinator resolves it (txn.commit_prepared, fdtctl, fdtserver txn);
 *   - no record at all (presumed abort)                  -> first abort records are
 *     inserted where a decision could be written, which fences the coordinator (its own
 *     decision insert then fails on the unique key), then ROLLBACK PREPARED.
 * The record then says who resolved the transaction (its comment).
 *
 * Takeover. Every worker holds its node's "alive" lock shared, on a session of the log
 * resource owned by its recovery thread, for as long as it lives. After its own pass, a
 * recovery pass looks at the other nodes named by prepared GIDs: when it can take a node's
 * alive lock exclusively, PostgreSQL itself proves that no process of that node has a
 * session (it is dead, or cut off long enough for the server to drop its sessions), and
 * the pass resolves that node's GIDs exactly as the node's own recovery would, then lets
 * the lock go. The fencing above keeps this safe even against a coordinator that comes
 * back in the middle. A decision a dead node wrote into its own SQLite resource (the
 * logging last resource) cannot be read from here: with a SQLite resource configured,
 * a takeover resolves only what the shared PostgreSQL log decides.
 *
 * Lock keys, all PostgreSQL advisory locks:
 *   - "fdt-recovery:<node>": pg_try_advisory_lock(hashtext(name)) on a session of each
 *     preparing resource, held for one pass over <node>'s GIDs in that resource: one
 *     recoverer per node and resource at a time, the node itself or a peer taking over.
 *   - alive lock of <node>: (ALIVE_CLASS, hashtext('fdt-alive:<node>')) in the database of
 *     the log resource (fdt__txn_log_resource). Shared: held by every live worker of the
 *     node. Exclusive (pg_try_advisory_lock): a peer's proof that the node is gone, held
 *     for its takeover pass. Every host of a cluster must therefore use the same database
 *     as its log resource.
 *   - (1717859444, 1), transaction level: the creation of fdt_txn_log (txn_resource.c).
 * hashtext() is 32 bits: two node names may share an alive key. Each node then looks alive
 * while the other one is; a takeover can come late, never wrongly. */

#define ALIVE_CLASS 1717859377 /* 0x66647431, "fdt1" */
#define ALIVE_EVERY 5.0        /* seconds: how often the alive session is checked at most */
#define MAX_PEERS   16         /* other nodes looked at per pass (more: next pass) */

struct pass {
    const char *node; /* whose GIDs */
    const char *by;   /* the node running the pass: node itself, or a peer taking over */
    bool takeover;
    struct fdt_resource *r; /* the resource being scanned */
    void *s;
    void *sessions[FDT_CFG_MAX_RESOURCES]; /* one per resource, for the logs; NULL if down */
    bool have_sessions;
    int where; /* the resource whose log holds the record lookup() found, or -1 */
    int committed, rolled_back, left;
    double oldest; /* age in seconds of the oldest branch left in doubt */
};

/* "SELECT fn(ALIVE_CLASS, hashtext('fdt-alive:<node>'))". Node names are [A-Za-z0-9_-]
 * (checked when configured, or by fdt__gid_parse): nothing to quote. */
static void alive_sql(char *out, size_t size, const char *fn, const char *node)
{
    snprintf(out, size, "SELECT %s(%d, hashtext('fdt-alive:%s'))", fn, ALIVE_CLASS, node);
}

/* Who resolved a transaction, for the comment of its log record. */
static void who(const struct pass *p, const char *what, char *out, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (p->takeover)
        snprintf(out, size, "%s by node %s at %s (takeover: node %s had no live session)", what,
                 p->by, when, p->node);
    else
        snprintf(out, size, "%s by node %s at %s (recovery)", what, p->by, when);
}

/* The record of key in any resource's log (a root decision lives in SQLite when SQLite took
 * part, else in the PostgreSQL log resource; votes in the latter). p->where gets the index
 * of the resource that holds it. */
static bool lookup(struct pass *p, const char *key, char *role, char *outcome, size_t size)
{
    char sql[400];
    snprintf(sql, sizeof(sql), "SELECT role || ' ' || outcome FROM fdt_txn_log WHERE gid = '%s'",
             key);
    role[0] = outcome[0] = '\0';
    p->where = -1;
    bool all_read = true;
    for (int i = 0; i < fdt__txn_resource_count(); i++) {
        struct fdt_resource *r = fdt__txn_resource_at(i);
        char out[128] = "";
        struct fdt_error e = {0};
        if (!p->sessions[i]) {
            all_read = false;
            continue;
        }
        if (fdt__txn_log_ensure(r, p->sessions[i], &e) < 0 ||
            r->drv->query_text(p->sessions[i], sql, out, sizeof(out), &e) < 0) {
            all_read = false;
            continue;
        }
        char *sp = strchr(out, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        fdt__strlcpy(role, out, size);
        fdt__strlcpy(outcome, sp + 1, size);
        p->where = i;
        return true;
    }
    return all_read;
}

/* Presumed abort, made safe: an abort record in every place a decision for key could be
 * written (each SQLite resource and the PostgreSQL log resource). A coordinator that
 * comes later fails on the unique key; one that came first makes our insert fail. */
static bool fence_with(struct pass *p, const char *key, const char *comment)
{
    struct fdt_resource *L = fdt__txn_log_resource();
    char sql[800];
    snprintf(sql, sizeof(sql),
             "INSERT INTO fdt_txn_log (gid, role, outcome, created, comment) VALUES ('%s', "
             "'recovery', 'rolled back', %lld, '%s')",
             key, (long long)fdt__wall_ms(), comment);
    for (int i = 0; i < fdt__txn_resource_count(); i++) {
        struct fdt_resource *r = fdt__txn_resource_at(i);
        if (r->drv->can_prepare && r != L)
            continue;
        struct fdt_error e = {0};
        if (!p->sessions[i] || fdt__txn_log_ensure(r, p->sessions[i], &e) < 0 ||
            r->drv->exec(p->sessions[i], sql, NULL, &e) < 0)
            return false;
    }
    return true;
}

static bool fence(struct pass *p, const char *key)
{
    char comment[300];
    who(p, "presumed abort (no decision): rolled back", comment, sizeof(comment));
    return fence_with(p, key, comment);
}

/* After COMMIT PREPARED on a root decision: mark it committed, saying who did it (the first
 * branch committed does; the record is left for fdtserver txn list to show). */
static void record_commit(struct pass *p, const char *key)
{
    /* GCOVR_EXCL_START: unreachable: only a decision lookup() found is recorded, and it
     * sets where to a resource whose session it read */
    if (p->where < 0 || !p->sessions[p->where])
        return;
    /* GCOVR_EXCL_STOP */
    char comment[300];
    who(p, "committed", comment, sizeof(comment));
    char sql[800];
    snprintf(sql, sizeof(sql),
             "UPDATE fdt_txn_log SET outcome = 'committed', comment = '%s' WHERE gid = '%s' AND "
             "outcome = 'commit'",
             comment, key);
    struct fdt_error e = {0};
    struct fdt_resource *r = fdt__txn_resource_at(p->where);
    if (r->drv->exec(p->sessions[p->where], sql, NULL, &e) < 0)
        fdt_log(FDT_LOG_WARN, "recording who committed %s: %s", key, e.msg);
}

static bool any_sqlite(void)
{
    for (int i = 0; i < fdt__txn_resource_count(); i++) {
        if (!fdt__txn_resource_at(i)->drv->can_prepare)
            return true;
    }
    return false;
}

static void left_in_doubt(struct pass *p, double age)
{
    p->left++;
    if (age > p->oldest)
        p->oldest = age;
}

static void one(const char *gid, double age, void *arg)
{
    struct pass *p = arg;
    struct fdt_gid g;
    char key[FDT_GID_MAX + 1];
    if (fdt__gid_parse(gid, &g) < 0 || strcmp(g.node, p->node) != 0 ||
        fdt__gid_format(key, sizeof(key), g.node, "_", &g.xid) < 0)
        return; /* not the node of this pass: never touched */
    if (!p->have_sessions) {
        /* Sessions on every log, taken only when there is something to decide. */
        p->have_sessions = true;
        for (int j = 0; j < fdt__txn_resource_count(); j++) {
            struct fdt_error e = {0};
            if (fdt__resource_acquire(fdt__txn_resource_at(j), &p->sessions[j], &e) < 0)
                p->sessions[j] = NULL;
        }
    }
    char role[32];
    char outcome[32];
    if (!lookup(p, key, role, outcome, sizeof(role))) {
        p->left++; /* a log could not be read: decide nothing */
        return;
    }
    bool commit;
    if (strcmp(outcome, "commit") == 0 || strcmp(outcome, "committed") == 0) {
        commit = true;
    } else if (strcmp(outcome, "rolled back") == 0) {
        commit = false;
    } else if (strcmp(outcome, "voted") == 0) {
        left_in_doubt(p, age);
        return;
    } else {
        if (p->takeover && any_sqlite()) {
            /* The dead node's decision may be in its own SQLite file, out of our reach. */
            fdt_log(FDT_LOG_WARN,
                    "%s: no decision in the shared log, and node %s may have written it in its "
                    "own sqlite resource: left in doubt (resolve with fdtserver txn)",
                    gid, p->node);
            left_in_doubt(p, age);
            return;
        }
        if (!fence(p, key)) {
            fdt_log(FDT_LOG_INFO, "%s: a decision raced with recovery: next pass", gid);
            p->left++;
            return;
        }
        commit = false;
    }
    struct fdt_error e = {0};
    int rc = commit ? p->r->drv->commit_prepared(p->s, gid, &e)
                    : p->r->drv->rollback_prepared(p->s, gid, &e);
    if (rc < 0) {
        fdt_log(FDT_LOG_WARN, "%s %s: %s", commit ? "commit" : "rollback", gid, e.msg);
        return;
    }
    if (commit && strcmp(outcome, "commit") == 0)
        record_commit(p, key);
    fdt_log(FDT_LOG_INFO, "%s %s%s%s", commit ? "committed" : "rolled back", gid,
            p->takeover ? " for dead node " : "", p->takeover ? p->node : "");
    if (commit)
        p->committed++;
    else
        p->rolled_back++;
}

/* One pass over node's prepared GIDs, run by node by (the same node, or a peer that holds
 * node's alive lock exclusively: takeover). */
static int recover_node(const char *node, const char *by, bool takeover, double grace,
                        struct fdt_recover_result *res, struct fdt_error *err)
{
    res->in_doubt = 0;
    res->oldest = 0;
    res->scanned = false;
    char prefix[FDT_GID_MAX + 1];
    /* GCOVR_EXCL_START: unreachable: node is [server] node (checked when configured) or
     * the node of a GID fdt__gid_parse accepted, so a valid name of at most
     * FDT_CFG_NAME_MAX bytes */
    if (fdt__gid_node_prefix(prefix, sizeof(prefix), node) < 0)
        return fdt_error_set(err, FDT_EINVAL, "bad node name %s", node);
    /* GCOVR_EXCL_STOP */
    char lockname[128];
    snprintf(lockname, sizeof(lockname), "fdt-recovery:%s", node);
    int n = fdt__txn_resource_count();
    int rc = 0;
    for (int i = 0; i < n; i++) {
        struct fdt_resource *r = fdt__txn_resource_at(i);
        if (!r->drv->can_prepare)
            continue;
        struct pass p = {.node = node, .by = by, .takeover = takeover, .r = r};
        if (fdt__resource_acquire(r, &p.s, err) < 0) {
            rc = err->code;
            continue;
        }
        int got = r->drv->try_lock(p.s, lockname, err);
        if (got == 1) {
            if (r->drv->recover(p.s, prefix, grace, one, &p, err) < 0)
                rc = err->code;
            res->scanned = true;
            res->in_doubt += p.left;
            if (p.oldest > res->oldest)
                res->oldest = p.oldest;
            for (int j = 0; j < n; j++)
                fdt__resource_release(fdt__txn_resource_at(j), p.sessions[j], true);
            if (p.committed || p.rolled_back || p.left)
                fdt_log(FDT_LOG_INFO,
                        "[resource.%s] %s%s%d committed, %d rolled back, %d left in doubt",
                        r->cfg.name, takeover ? node : "",
                        takeover ? " (dead node, taken over): " : "", p.committed, p.rolled_back,
                        p.left);
            r->drv->unlock(p.s, lockname);
        }
        fdt__resource_release(r, p.s, true);
    }
    return rc;
}

struct peers {
    const char *me;
    int n;
    char node[MAX_PEERS][64];
};

static void collect_peer(const char *gid, double age, void *arg)
{
    (void)age;
    struct peers *ps = arg;
    struct fdt_gid g;
    if (fdt__gid_parse(gid, &g) < 0 || strcmp(g.node, ps->me) == 0)
        return;
    for (int i = 0; i < ps->n; i++) {
        if (strcmp(ps->node[i], g.node) == 0)
            return;
    }
    if (ps->n < MAX_PEERS)
        fdt__strlcpy(ps->node[ps->n++], g.node, sizeof(ps->node[0]));
}

/* Take over the nodes, other than me, that have prepared GIDs older than grace and whose
 * alive lock can be taken exclusively. */
static int takeover(const char *me, double grace, struct fdt_error *err)
{
    struct fdt_resource *L = fdt__txn_log_resource();
    if (!L)
        return 0; /* GCOVR_EXCL_LINE: unreachable: only the recovery thread takes over, and it runs
                     only with a log resource (fdt__txn_recovery_start) */
    struct peers ps = {.me = me};
    int rc = 0;
    for (int i = 0; i < fdt__txn_resource_count(); i++) {
        struct fdt_resource *r = fdt__txn_resource_at(i);
        void *s = NULL;
        if (!r->drv->can_prepare)
            continue;
        if (fdt__resource_acquire(r, &s, err) < 0) {
            rc = err->code;
            continue;
        }
        if (r->drv->recover(s, FDT_GID_PREFIX, grace, collect_peer, &ps, err) < 0)
            rc = err->code;
        fdt__resource_release(r, s, true);
    }
    for (int i = 0; i < ps.n; i++) {
        void *ls = NULL;
        if (fdt__resource_acquire(L, &ls, err) < 0)
            return err->code;
        char sql[200];
        char got[8] = "";
        alive_sql(sql, sizeof(sql), "pg_try_advisory_lock", ps.node[i]);
        if (L->drv->query_text(ls, sql, got, sizeof(got), err) < 0) {
            rc = err->code;
            fdt__resource_release(L, ls, false);
            continue;
        }
        if (strcmp(got, "t") != 0) {
            /* A process of it holds the lock (or a peer is taking it over right now). */
            fdt_log(FDT_LOG_DEBUG, "node %s is alive: its transactions are left to it", ps.node[i]);
            fdt__resource_release(L, ls, true);
            continue;
        }
        fdt_log(FDT_LOG_DEBUG, "node %s has no live session: resolving its transactions",
                ps.node[i]);
        struct fdt_recover_result res;
        if (recover_node(ps.node[i], me, true, grace, &res, err) < 0)
            rc = err->code;
        struct fdt_error e = {0};
        alive_sql(sql, sizeof(sql), "pg_advisory_unlock", ps.node[i]);
        bool released =
            L->drv->query_text(ls, sql, got, sizeof(got), &e) == 0 && strcmp(got, "t") == 0;
        /* A session that may still hold the lock never goes back to the pool. */
        fdt__resource_release(L, ls, released);
    }
    return rc;
}

int fdt__txn_recover_once(const char *node, double grace, struct fdt_recover_result *res,
                          struct fdt_error *err)
{
    int rc = recover_node(node, node, false, grace, res, err);
    struct fdt_error terr = {0};
    if (takeover(node, grace, &terr) < 0 && rc == 0)
        rc = fdt_error_set(err, terr.code, "takeover: %s", terr.msg);
    return rc;
}

/* The recovery thread of a worker, owned by the worker (fdt__txn_recovery_start/stop). */
struct fdt_txn_recovery {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop; /* guarded by lock */
    char node[FDT_CFG_NAME_MAX];
    double interval; /* between passes; 0: no passes (the alive lock is still held) */
    double grace;
    double warn_age;
    _Atomic int64_t *in_doubt;
    _Atomic int64_t *oldest_ms;
    void *alive;     /* recovery thread only: the session holding the alive lock, or NULL */
    bool alive_lost; /* recovery thread only: the last attempt to hold it failed (logged) */
};

/* Hold the node's alive lock shared on a session of its own, taking it again when that
 * session died. Until it is held, peers may take this node over (safe: recovery fences;
 * but the node's in-doubt transactions are resolved by someone else). */
static void alive_keep(struct fdt_txn_recovery *rec)
{
    struct fdt_resource *L = fdt__txn_log_resource();
    if (!L)
        return;
    char out[8] = "";
    struct fdt_error e = {0};
    if (rec->alive) {
        if (L->drv->query_text(rec->alive, "SELECT 1", out, sizeof(out), &e) == 0)
            return;
        L->drv->close(rec->alive);
        rec->alive = NULL;
    }
    void *s = NULL;
    char sql[200];
    alive_sql(sql, sizeof(sql), "pg_try_advisory_lock_shared", rec->node);
    if (L->drv->open(&L->cfg, &s, &e) == 0 &&
        L->drv->query_text(s, sql, out, sizeof(out), &e) == 0 && strcmp(out, "t") != 0)
        fdt__strlcpy(e.msg, "a peer holds it: it is taking over this node", sizeof(e.msg));
    if (s && strcmp(out, "t") == 0) {
        rec->alive = s;
        if (rec->alive_lost)
            fdt_log(FDT_LOG_INFO, "node %s's alive lock is held again", rec->node);
        rec->alive_lost = false;
        return;
    }
    if (s)
        L->drv->close(s);
    if (!rec->alive_lost)
        fdt_log(FDT_LOG_WARN,
                "[resource.%s] cannot hold node %s's alive lock: %s (until it is held, another "
                "host may resolve this node's in-doubt transactions)",
                L->cfg.name, rec->node, e.msg);
    rec->alive_lost = true;
}

static void publish(struct fdt_txn_recovery *rec, const struct fdt_recover_result *res)
{
    if (!res->scanned || !rec->in_doubt)
        return;
    atomic_store(rec->in_doubt, res->in_doubt);
    atomic_store(rec->oldest_ms, (int64_t)(res->oldest * 1000.0));
    if (res->in_doubt > 0 && res->oldest > rec->warn_age)
        fdt_log(FDT_LOG_WARN,
                "%d transaction%s in doubt, the oldest prepared %.0fs ago "
                "(in_doubt_warn_age %.0fs): resolve with fdtctl txn list / commit / "
                "rollback",
                res->in_doubt, res->in_doubt == 1 ? "" : "s", res->oldest, rec->warn_age);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *recovery_main(void *arg)
{
    struct fdt_txn_recovery *rec = arg;
    pthread_setname_np(pthread_self(), "fdt-recovery");
    struct fdt_error lerr = {0};
    if (fdt__txn_logs_prepare(&lerr) < 0)
        fdt_log(FDT_LOG_WARN, "decision log: %s (created on first use instead)", lerr.msg);
    /* Wake up every tick to check the alive session; a pass every interval. */
    double tick = rec->interval > 0 && rec->interval < ALIVE_EVERY ? rec->interval : ALIVE_EVERY;
    double next_pass = 0;
    pthread_mutex_lock(&rec->lock);
    while (!rec->stop) {
        pthread_mutex_unlock(&rec->lock);
        alive_keep(rec);
        if (rec->interval > 0 && mono_s() >= next_pass) {
            struct fdt_error err = {0};
            struct fdt_recover_result res;
            if (fdt__txn_recover_once(rec->node, rec->grace, &res, &err) < 0)
                fdt_log(FDT_LOG_WARN, "recovery pass: %s", err.msg);
            publish(rec, &res);
            next_pass = mono_s() + rec->interval;
        }
        pthread_mutex_lock(&rec->lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double when = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + tick;
        ts.tv_sec = (time_t)when;
        ts.tv_nsec = (long)((when - (double)ts.tv_sec) * 1e9);
        while (!rec->stop && pthread_cond_timedwait(&rec->cond, &rec->lock, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&rec->lock);
    if (rec->alive)
        fdt__txn_log_resource()->drv->close(rec->alive); /* gives the alive lock back */
    rec->alive = NULL;
    return NULL;
}

int fdt__txn_recovery_start(const struct fdt_cfg *cfg, _Atomic int64_t *in_doubt,
                            _Atomic int64_t *oldest_ms, struct fdt_txn_recovery **out)
{
    *out = NULL;
    /* Also with recovery_interval 0: the thread then only holds the alive lock. */
    if (!fdt__txn_log_resource())
        return 0;
    struct fdt_txn_recovery *rec = calloc(1, sizeof(*rec));
    if (!rec)
        return FDT_ENOMEM;
    pthread_mutex_init(&rec->lock, NULL);
    pthread_cond_init(&rec->cond, NULL);
    rec->in_doubt = in_doubt;
    rec->oldest_ms = oldest_ms;
    rec->warn_age = cfg->in_doubt_warn_age;
    fdt__strlcpy(rec->node, cfg->node, sizeof(rec->node));
    rec->interval = cfg->recovery_interval > 0 ? cfg->recovery_interval : 0;
    rec->grace = cfg->recovery_grace;
    int rc = pthread_create(&rec->thread, NULL, recovery_main, rec);
    if (rc != 0) {
        free(rec);
        return -rc;
    }
    *out = rec;
    return 0;
}

void fdt__txn_recovery_stop(struct fdt_txn_recovery *rec)
{
    if (!rec)
        return;
    pthread_mutex_lock(&rec->lock);
    rec->stop = true;
    pthread_cond_broadcast(&rec->cond);
    pthread_mutex_unlock(&rec->lock);
    pthread_join(rec->thread, NULL);
    pthread_mutex_destroy(&rec->lock);
    pthread_cond_destroy(&rec->cond);
    free(rec);
}

/* Resolution from any connection or host (txn.commit_prepared / txn.rollback_prepared). */
/* Whether resource j (a preparing one, with a session in p) holds node's branch of xid
 * prepared; gid gets the branch's GID. */
static bool prepared_in(struct pass *p, int j, const char *node, const struct fdt_xid *xid,
                        char gid[FDT_GID_MAX + 1])
{
    struct fdt_resource *r = fdt__txn_resource_at(j);
    if (!r->drv->can_prepare || !p->sessions[j] ||
        fdt__gid_format(gid, FDT_GID_MAX + 1, node, r->cfg.name, xid) < 0)
        return false;
    char sql[400];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_prepared_xacts WHERE gid = '%s'", gid);
    char n[16] = "0";
    struct fdt_error e = {0};
    return r->drv->query_text(p->sessions[j], sql, n, sizeof(n), &e) == 0 && strcmp(n, "1") == 0;
}

/* Whether any preparing resource holds a prepared branch of node's xid. */
static bool prepared_anywhere(struct pass *p, const char *node, const struct fdt_xid *xid)
{
    char gid[FDT_GID_MAX + 1];
    for (int j = 0; j < fdt__txn_resource_count(); j++) {
        if (prepared_in(p, j, node, xid, gid))
            return true;
    }
    return false;
}

int fdt__txn_resolve(const char *node, const struct fdt_xid *xid, bool commit, const char *comment,
                     int *found, struct fdt_error *err)
{
    *found = 0;
    char key[FDT_GID_MAX + 1];
    if (fdt__gid_format(key, sizeof(key), node, "_", xid) < 0)
        return fdt_error_set(err, FDT_EINVAL, "bad xid");
    /* What the logs say first: a committed transaction is never rolled back. */
    struct pass p = {.node = node};
    for (int j = 0; j < fdt__txn_resource_count(); j++) {
        struct fdt_error e = {0};
        if (fdt__resource_acquire(fdt__txn_resource_at(j), &p.sessions[j], &e) < 0)
            p.sessions[j] = NULL;
    }
    char role[32];
    char outcome[32];
    int rc = 0;
    if (!lookup(&p, key, role, outcome, sizeof(role))) {
        rc = fdt_error_set(err, FDT_EDB, "a transaction log cannot be read: nothing was done");
        goto out;
    }
    if (!role[0] && commit) {
        /* No vote and no decision recorded: not a branch waiting for its coordinator (a
         * client's vote is recorded before it is answered), but a root transaction whose
         * own commit may still be deciding, or one that failed before its vote was
         * recorded. Recovery resolves those; committing here could split it. */
        if (!prepared_anywhere(&p, node, xid))
            rc = fdt_error_set(err, FDT_ENOENT, "no such transaction");
        else
            rc = fdt_error_set(err, FDT_ETXNSTATE,
                               "no vote or decision is recorded for this transaction: it is "
                               "not waiting for a coordinator (recovery resolves it)");
        goto out;
    }
    if (!role[0] && prepared_anywhere(&p, node, xid)) {
        /* Roll back with no record: fence first, as recovery does, so that a root
         * transaction deciding right now fails on the record instead of committing a
         * transaction we roll back. */
        if (!fence_with(&p, key, comment)) {
            rc = fdt_error_set(err, FDT_EAGAIN, "a decision raced with the rollback: try again");
            goto out;
        }
        fdt__strlcpy(role, "recovery", sizeof(role));
        fdt__strlcpy(outcome, "rolled back", sizeof(outcome));
    }
    if (!commit && (strcmp(outcome, "committed") == 0 || strcmp(outcome, "commit") == 0)) {
        rc = fdt_error_set(err, FDT_ETXNSTATE,
                           "the transaction was committed: it cannot be "
                           "rolled back");
        goto out;
    }
    if (commit && strcmp(outcome, "rolled back") == 0) {
        rc = fdt_error_set(err, FDT_ETXNSTATE, "the transaction was rolled back");
        goto out;
    }
    for (int j = 0; j < fdt__txn_resource_count(); j++) {
        struct fdt_resource *r = fdt__txn_resource_at(j);
        char gid[FDT_GID_MAX + 1];
        if (!prepared_in(&p, j, node, xid, gid))
            continue;
        struct fdt_error e = {0};
        int x = commit ? r->drv->commit_prepared(p.sessions[j], gid, &e)
                       : r->drv->rollback_prepared(p.sessions[j], gid, &e);
        if (x < 0) {
            rc = fdt_error_set(err, x, "%s %s: %s", commit ? "commit" : "rollback", gid, e.msg);
            goto out;
        }
        (*found)++;
    }
    if (*found > 0 || role[0]) {
        /* Record the outcome where the record is (or was to be). */
        char sql[700];
        snprintf(sql, sizeof(sql),
                 "UPDATE fdt_txn_log SET outcome = '%s', comment = '%s' WHERE gid = '%s'",
                 commit ? "committed" : "rolled back", comment, key);
        for (int j = 0; j < fdt__txn_resource_count(); j++) {
            struct fdt_error e = {0};
            if (p.sessions[j])
                fdt__txn_resource_at(j)->drv->exec(p.sessions[j], sql, NULL, &e);
        }
    }
    if (*found == 0 && !role[0])
        rc = fdt_error_set(err, FDT_ENOENT, "no such transaction");
out:
    for (int j = 0; j < fdt__txn_resource_count(); j++)
        fdt__resource_release(fdt__txn_resource_at(j), p.sessions[j], true);
    return rc;
}

struct list_pass {
    struct pass p;
    fdt__txn_list_fn fn;
    void *arg;
};

static void list_one(const char *gid, double age, void *arg)
{
    struct list_pass *lp = arg;
    struct fdt_gid g;
    char key[FDT_GID_MAX + 1];
    if (fdt__gid_parse(gid, &g) < 0 || (lp->p.node && strcmp(g.node, lp->p.node) != 0) ||
        fdt__gid_format(key, sizeof(key), g.node, "_", &g.xid) < 0)
        return;
    char role[32];
    char outcome[32];
    lookup(&lp->p, key, role, outcome, sizeof(role));
    lp->fn(gid, &g, age, role, outcome, lp->arg);
}

int fdt__txn_list(const char *node, fdt__txn_list_fn fn, void *arg, struct fdt_error *err)
{
    char prefix[FDT_GID_MAX + 1] = FDT_GID_PREFIX;
    /* GCOVR_EXCL_START: unreachable: the one caller (txn.recover) lists every node, node
     * NULL */
    if (node && fdt__gid_node_prefix(prefix, sizeof(prefix), node) < 0)
        return fdt_error_set(err, FDT_EINVAL, "bad node name %s", node);
    /* GCOVR_EXCL_STOP */
    struct list_pass lp = {.p = {.node = node}, .fn = fn, .arg = arg};
    for (int j = 0; j < fdt__txn_resource_count(); j++) {
        struct fdt_error e = {0};
        if (fdt__resource_acquire(fdt__txn_resource_at(j), &lp.p.sessions[j], &e) < 0)
            lp.p.sessions[j] = NULL;
    }
    int rc = 0;
    for (int j = 0; j < fdt__txn_resource_count(); j++) {
        struct fdt_resource *r = fdt__txn_resource_at(j);
        if (!r->drv->can_prepare || !lp.p.sessions[j])
            continue;
        if (r->drv->recover(lp.p.sessions[j], prefix, 0.0, list_one, &lp, err) < 0)
            rc = err->code;
    }
    for (int j = 0; j < fdt__txn_resource_count(); j++)
        fdt__resource_release(fdt__txn_resource_at(j), lp.p.sessions[j], true);
    return rc;
}

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

/* Recovery of in-doubt branches of this node.
 *
 * For each prepared GID of the node (older than recovery_grace, so that transactions in
 * flight are left alone) the node's log resource decides:
 *   - a root decision "commit", or an outcome "committed" -> COMMIT PREPARED;
 *   - an outcome "rolled back"                           -> ROLLBACK PREPARED;
 *   - a participant's vote ("voted")                     -> left alone: the client's
 *     coordinator resolves it (txn.commit_prepared, fdtctl, fdtserver txn);
 *   - no record at all (presumed abort)                  -> first abort records are
 *     inserted where a decision could be written, which fences the coordinator (its own
 *     decision insert then fails on the unique key), then ROLLBACK PREPARED.
 * One recoverer per node at a time: a PostgreSQL advisory lock per resource. */

struct pass {
    const char *node;
    struct fdt_resource *r; /* the resource being scanned */
    void *s;
    void *sessions[FDT_CFG_MAX_RESOURCES]; /* one per resource, for the logs; NULL if down */
    bool have_sessions;
    int committed, rolled_back, left;
    double oldest; /* age in seconds of the oldest branch left in doubt */
};

/* The record of key in any resource's log (a root decision lives in SQLite when SQLite took
 * part, else in the PostgreSQL log resource; votes in the latter). */
static bool lookup(struct pass *p, const char *key, char *role, char *outcome, size_t size)
{
    char sql[400];
    snprintf(sql, sizeof(sql), "SELECT role || ' ' || outcome FROM fdt_txn_log WHERE gid = '%s'",
             key);
    role[0] = outcome[0] = '\0';
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
        return true;
    }
    return all_read;
}

/* Presumed abort, made safe: an abort record in every place a decision for key could be
 * written (each SQLite resource and the PostgreSQL log resource). A coordinator that
 * comes later fails on the unique key; one that came first makes our insert fail. */
static bool fence(struct pass *p, const char *key)
{
    struct fdt_resource *L = fdt__txn_log_resource();
    char sql[500];
    snprintf(sql, sizeof(sql),
             "INSERT INTO fdt_txn_log (gid, role, outcome, created, comment) VALUES ('%s', "
             "'recovery', 'rolled back', %lld, 'presumed abort: no decision')",
             key, (long long)fdt__wall_ms());
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

static void one(const char *gid, double age, void *arg)
{
    struct pass *p = arg;
    struct fdt_gid g;
    char key[FDT_GID_MAX + 1];
    if (fdt__gid_parse(gid, &g) < 0 || strcmp(g.node, p->node) != 0 ||
        fdt__gid_format(key, sizeof(key), g.node, "_", &g.xid) < 0)
        return; /* not ours: never touched */
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
        p->left++;
        if (age > p->oldest)
            p->oldest = age;
        return;
    } else {
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
    fdt_log(FDT_LOG_INFO, "%s %s", commit ? "committed" : "rolled back", gid);
    if (commit)
        p->committed++;
    else
        p->rolled_back++;
}

int fdt__txn_recover_once(const char *node, double grace, struct fdt_recover_result *res,
                          struct fdt_error *err)
{
    res->in_doubt = 0;
    res->oldest = 0;
    res->scanned = false;
    char prefix[FDT_GID_MAX + 1];
    if (fdt__gid_node_prefix(prefix, sizeof(prefix), node) < 0)
        return fdt_error_set(err, FDT_EINVAL, "bad node name %s", node);
    char lockname[128];
    snprintf(lockname, sizeof(lockname), "fdt-recovery:%s", node);
    int n = fdt__txn_resource_count();
    int rc = 0;
    for (int i = 0; i < n; i++) {
        struct fdt_resource *r = fdt__txn_resource_at(i);
        if (!r->drv->can_prepare)
            continue;
        struct pass p = {.node = node, .r = r};
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
                        "[resource.%s] %d committed, %d rolled back, %d left in doubt", r->cfg.name,
                        p.committed, p.rolled_back, p.left);
            r->drv->unlock(p.s, lockname);
        }
        fdt__resource_release(r, p.s, true);
    }
    return rc;
}

/* The recovery thread of a worker, owned by the worker (fdt__txn_recovery_start/stop). */
struct fdt_txn_recovery {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop; /* guarded by lock */
    char node[FDT_CFG_NAME_MAX];
    double interval;
    double grace;
    double warn_age;
    _Atomic int64_t *in_doubt;
    _Atomic int64_t *oldest_ms;
};

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

static void *recovery_main(void *arg)
{
    struct fdt_txn_recovery *rec = arg;
    pthread_setname_np(pthread_self(), "fdt-recovery");
    struct fdt_error lerr = {0};
    if (fdt__txn_logs_prepare(&lerr) < 0)
        fdt_log(FDT_LOG_WARN, "decision log: %s (created on first use instead)", lerr.msg);
    pthread_mutex_lock(&rec->lock);
    while (!rec->stop) {
        pthread_mutex_unlock(&rec->lock);
        struct fdt_error err = {0};
        struct fdt_recover_result res;
        if (fdt__txn_recover_once(rec->node, rec->grace, &res, &err) < 0)
            fdt_log(FDT_LOG_WARN, "recovery pass: %s", err.msg);
        publish(rec, &res);
        pthread_mutex_lock(&rec->lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double when = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + rec->interval;
        ts.tv_sec = (time_t)when;
        ts.tv_nsec = (long)((when - (double)ts.tv_sec) * 1e9);
        while (!rec->stop && pthread_cond_timedwait(&rec->cond, &rec->lock, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&rec->lock);
    return NULL;
}

int fdt__txn_recovery_start(const struct fdt_cfg *cfg, _Atomic int64_t *in_doubt,
                            _Atomic int64_t *oldest_ms, struct fdt_txn_recovery **out)
{
    *out = NULL;
    bool any = false;
    for (int i = 0; i < fdt__txn_resource_count(); i++)
        any |= fdt__txn_resource_at(i)->drv->can_prepare;
    if (!any || cfg->recovery_interval <= 0)
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
    rec->interval = cfg->recovery_interval;
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
    lookup(&p, key, role, outcome, sizeof(role));
    int rc = 0;
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
        if (!r->drv->can_prepare || !p.sessions[j])
            continue;
        char gid[FDT_GID_MAX + 1];
        if (fdt__gid_format(gid, sizeof(gid), node, r->cfg.name, xid) < 0)
            continue;
        char sql[400];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_prepared_xacts WHERE gid = '%s'", gid);
        char n[16] = "0";
        struct fdt_error e = {0};
        if (r->drv->query_text(p.sessions[j], sql, n, sizeof(n), &e) < 0 || strcmp(n, "1") != 0)
            continue;
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
    if (fdt__gid_parse(gid, &g) < 0 || strcmp(g.node, lp->p.node) != 0 ||
        fdt__gid_format(key, sizeof(key), g.node, "_", &g.xid) < 0)
        return;
    char role[32];
    char outcome[32];
    lookup(&lp->p, key, role, outcome, sizeof(role));
    lp->fn(gid, &g, age, role, outcome, lp->arg);
}

int fdt__txn_list(const char *node, fdt__txn_list_fn fn, void *arg, struct fdt_error *err)
{
    char prefix[FDT_GID_MAX + 1];
    if (fdt__gid_node_prefix(prefix, sizeof(prefix), node) < 0)
        return fdt_error_set(err, FDT_EINVAL, "bad node name %s", node);
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

#include "fdt_config.h"

#define FDT_LOG_MODULE "txn"
#include "txn/txn.h"
#include "txn/txn_fault.h"
#include "txn/txn_gid.h"
#include "util/util.h"

#include <fdt/log.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Format id of the XIDs fdtserver makes for its own root transactions ("fdt1"). */
#define ROOT_FORMAT_ID 0x66647431

struct branch {
    struct fdt_resource *r;
    void *session;
    bool prepared;
    bool begun; /* BEGIN sent (alone, or with the branch's first statement) */
    char gid[FDT_GID_MAX + 1];
};

#define SAVEPOINTS_MAX 16

struct savepoint {
    char name[64];
    uint32_t begun; /* branches (bit i: b[i]) begun when it was taken */
    bool doomed;    /* the doom state then */
    bool retryable;
    char doom_reason[256];
};

struct fdt_txn {
    /* The header, cleared at begin; the large arrays below it are filled as they are used
     * (b[i] when branch i is enlisted, sp[i] when savepoint i is taken). */
    struct fdt_txn_holder *home;
    enum fdt_txn_state state;
    bool doomed;
    bool retryable; /* a conflict made it fail: running it again may succeed */
    /* xid and log_key are set. A root transaction fdtserver names itself is named lazily
     * (name_root): at its first branch, or when its xid is asked for, so that a call that
     * touches no resource costs no getrandom(2). */
    bool named;
    int nb;
    int nsp;
    struct fdt_xid xid;
    char doom_reason[256];
    char log_key[FDT_GID_MAX + 1]; /* GID of the decision / vote record */
    struct branch b[FDT_CFG_MAX_RESOURCES];
    struct savepoint sp[SAVEPOINTS_MAX];
};

/* Tell the holder's owner that the thread is about to wait on a resource (see
 * fdt_txn_holder.before_wait). */
static void before_wait(struct fdt_txn *t)
{
    struct fdt_txn_holder *h = t->home;
    if (h->before_wait)
        h->before_wait(h);
}

/* Name a root transaction: 16 random bytes from getrandom(2), as unpredictable as ever,
 * drawn only once the name is needed. Its GIDs always fit (node and resource names are at
 * most 63 bytes: 5 + 63 + 1 + 63 + 1 + 10 + 1 + 22 + 1 < FDT_GID_MAX). Returns 0 or
 * FDT_ERANDOM. */
static int name_root(struct fdt_txn *t, struct fdt_error *err)
{
    if (t->named)
        return 0;
    t->xid.format_id = ROOT_FORMAT_ID;
    t->xid.gtrid_len = 16;
    if (getrandom(t->xid.gtrid, 16, 0) != 16)
        return fdt_error_set(err, FDT_ERANDOM, "getrandom failed");
    if (fdt__gid_format(t->log_key, sizeof(t->log_key), t->home->env->node, "_", &t->xid) < 0)
        return fdt_error_set(err, FDT_EINVAL, "bad node name");
    t->named = true;
    return 0;
}

/* The decision / vote record's key for log lines ("(unnamed)" before the name exists: the
 * transaction then has no branch). */
static const char *key_of(const struct fdt_txn *t)
{
    return t->named ? t->log_key : "(unnamed root transaction)";
}

enum fdt_txn_state fdt_txn_state(const struct fdt_txn *t)
{
    return t->state;
}

int fdt__txn_begin(struct fdt_txn_holder *h, const struct fdt_xid *xid, bool lazy,
                   struct fdt_error *err)
{
    if (h->txn)
        return fdt_error_set(err, FDT_ETXNSTATE,
                             "a transaction is already open on this "
                             "connection");
    /* Only the header is cleared: b[] and sp[] (most of the 9 KB) are filled as used. */
    struct fdt_txn *t = malloc(sizeof(*t));
    if (!t)
        return fdt_error_set(err, FDT_ENOMEM, "out of memory");
    memset(t, 0, offsetof(struct fdt_txn, doom_reason) + 1);
    t->home = h;
    t->state = FDT_TXN_ACTIVE;
    const struct fdt_txn_env *env = h->env;
    if (xid) {
        t->xid = *xid;
        /* The longest GID this transaction can produce must fit: checked here, at begin. */
        int rc = fdt__gid_format(t->log_key, sizeof(t->log_key), env->node, "_", &t->xid);
        for (int i = 0; rc == 0 && i < env->cfg->n_resources; i++) {
            char tmp[FDT_GID_MAX + 1];
            rc = fdt__gid_format(tmp, sizeof(tmp), env->node, env->cfg->resources[i].name, &t->xid);
        }
        if (rc < 0) {
            free(t);
            return fdt_error_set(err, rc == FDT_ELIMIT ? FDT_ELIMIT : FDT_EINVAL,
                                 rc == FDT_ELIMIT ? "xid too long: its GID would exceed %d bytes"
                                                  : "bad xid (gtrid must be 1 to %d bytes)",
                                 rc == FDT_ELIMIT ? FDT_GID_MAX : FDT_XID_PART_MAX);
        }
        t->named = true;
    } else if (!lazy) {
        int rc = name_root(t, err);
        if (rc < 0) {
            free(t);
            return rc;
        }
    }
    h->txn = t;
    if (env->open)
        atomic_fetch_add(env->open, 1);
    return 0;
}

static void end(struct fdt_txn *t, enum fdt_txn_state state, bool healthy)
{
    for (int i = 0; i < t->nb; i++) {
        fdt__resource_release(t->b[i].r, t->b[i].session, healthy);
        t->b[i].session = NULL;
    }
    t->state = state;
    struct fdt_txn_holder *h = t->home;
    struct fdt_counters *c = h->env->counters;
    if (c) {
        if (state == FDT_TXN_COMMITTED)
            atomic_fetch_add_explicit(&c->txn_committed, 1, memory_order_relaxed);
        else if (state == FDT_TXN_ROLLED_BACK)
            atomic_fetch_add_explicit(&c->txn_rolled_back, 1, memory_order_relaxed);
        else if (state == FDT_TXN_UNKNOWN)
            atomic_fetch_add_explicit(&c->txn_unknown, 1, memory_order_relaxed);
        if (state == FDT_TXN_ROLLED_BACK && t->retryable)
            atomic_fetch_add_explicit(&c->txn_conflicts, 1, memory_order_relaxed);
    }
    if (h->txn == t) {
        h->txn = NULL;
        if (h->env->open)
            atomic_fetch_sub(h->env->open, 1);
    }
    free(t);
}

/* A branch's first round trip failed. When the session is dead (a pooled session whose
 * server restarted or dropped it: 57P01 and friends on the BEGIN), nothing can have
 * happened in it, so the branch takes a fresh session and the round trip may run once
 * more. Returns true when the caller should try again. */
static bool renew_dead_session(struct branch *b, struct fdt_error *err)
{
    if (b->r->drv->alive(b->session))
        return false;
    fdt_log(FDT_LOG_INFO, "%s: a pooled session was dead (%s): trying a fresh one", b->r->cfg.name,
            err && err->msg[0] ? err->msg : "closed");
    /* A new connection, not another pooled one: after a server restart the rest of the
     * pool is as dead as this one was (each is found out, and renewed, on its turn). If
     * none can be opened, the dead session stays and the first error is reported. */
    void *fresh = NULL;
    struct fdt_error e = {0};
    if (b->r->drv->open(&b->r->cfg, &fresh, &e) < 0)
        return false;
    fdt__resource_release(b->r, b->session, false);
    b->session = fresh;
    return true;
}

static struct branch *branch_for(struct fdt_txn *t, const char *resource, bool begin_now,
                                 struct fdt_error *err)
{
    if (t->state != FDT_TXN_ACTIVE) {
        fdt_error_set(err, FDT_ETXNSTATE, "the transaction is no longer active");
        return NULL;
    }
    if (t->doomed) {
        fdt_error_set(err, FDT_ETXNSTATE, "the transaction is doomed: %s", t->doom_reason);
        return NULL;
    }
    /* Every statement comes through here: the thread is about to wait on a database. */
    before_wait(t);
    for (int i = 0; i < t->nb; i++) {
        if (strcmp(t->b[i].r->cfg.name, resource) == 0)
            return &t->b[i];
    }
    struct fdt_resource *r = fdt__resource_find(resource);
    if (!r) {
        fdt_error_set(err, FDT_ENOENT, "no resource named %s", resource);
        return NULL;
    }
    if (name_root(t, err) < 0)
        return NULL; /* its first branch needs its GID */
    struct branch *b = &t->b[t->nb];
    memset(b, 0, sizeof(*b));
    b->r = r;
    if (fdt__resource_acquire(r, &b->session, err) < 0)
        return NULL;
    if (begin_now) {
        int rc = r->drv->begin(b->session, err);
        if (rc < 0 && renew_dead_session(b, err))
            rc = r->drv->begin(b->session, err);
        if (rc < 0) {
            fdt__resource_release(r, b->session, false);
            b->session = NULL;
            return NULL;
        }
        b->begun = true;
    }
    fdt__gid_format(b->gid, sizeof(b->gid), t->home->env->node, r->cfg.name, &t->xid);
    t->nb++;
    return b;
}

void *fdt_txn_join(struct fdt_txn *t, const char *resource, struct fdt_error *err)
{
    struct branch *b = branch_for(t, resource, true, err);
    if (b && !b->begun) {
        if (b->r->drv->begin(b->session, err) < 0)
            return NULL;
        b->begun = true;
    }
    return b ? b->r->drv->handle(b->session) : NULL;
}

/* The application's statements on a branch (rm.h, app_sql). */
static int app_exec(struct branch *b, const char *sql, long *rows, struct fdt_error *err)
{
    b->r->drv->app_sql(b->session, true);
    int rc = b->r->drv->exec(b->session, sql, rows, err);
    b->r->drv->app_sql(b->session, false);
    return rc;
}

int fdt_txn_exec(struct fdt_txn *t, const char *resource, const char *sql, long *rows,
                 struct fdt_error *err)
{
    struct branch *b = branch_for(t, resource, false, err);
    if (!b)
        return err ? err->code : FDT_ETXNSTATE;
    int rc;
    if (!b->begun && !b->r->drv->begin_sql) {
        rc = b->r->drv->begin(b->session, err);
        if (rc == 0) {
            b->begun = true;
            rc = app_exec(b, sql, rows, err);
        }
    } else if (b->begun) {
        rc = app_exec(b, sql, rows, err);
    } else {
        /* BEGIN travels with the branch's first statement: one round trip less. */
        size_t n = strlen(b->r->drv->begin_sql) + strlen(sql) + 3;
        char small[1024];
        char *both = n <= sizeof(small) ? small : malloc(n);
        if (!both)
            return fdt_error_set(err, FDT_ENOMEM, "out of memory");
        snprintf(both, n, "%s; %s", b->r->drv->begin_sql, sql);
        rc = app_exec(b, both, rows, err);
        if (rc < 0 && renew_dead_session(b, err))
            rc = app_exec(b, both, rows, err);
        b->begun = true;
        if (both != small)
            free(both);
    }
    if (rc < 0) {
        t->doomed = true;
        t->retryable |= rc == FDT_ERETRY;
        fdt__strlcpy(t->doom_reason, err ? err->msg : "statement failed", sizeof(t->doom_reason));
    }
    return rc;
}

int fdt_txn_query(struct fdt_txn *t, const char *resource, const char *sql,
                  const struct fdt_sql_param *params, int n, struct fdt_sql_rows **rows,
                  struct fdt_error *err)
{
    if (rows)
        *rows = NULL;
    if (n < 0 || (n > 0 && !params) || !sql)
        return fdt_error_set(err, FDT_EINVAL, "bad query arguments");
    struct branch *b = branch_for(t, resource, false, err);
    if (!b)
        return err ? err->code : FDT_ETXNSTATE;
    struct fdt_error local = {0};
    if (!err)
        err = &local;
    int rc = 0;
    bool first = !b->begun;
    if (first && !b->r->drv->begin_query)
        rc = b->r->drv->begin(b->session, err);
    struct fdt_sql_rows *out = NULL;
    if (rc == 0) {
        out = fdt__sql_rows_new();
        /* A new branch: BEGIN travels with its first statement where the driver can. */
        int (*fn)(void *, const char *, const struct fdt_sql_param *, int, struct fdt_sql_rows *,
                  struct fdt_error *) =
            first && b->r->drv->begin_query ? b->r->drv->begin_query : b->r->drv->query;
        b->r->drv->app_sql(b->session, true);
        rc = out ? fn(b->session, sql, params, n, out, err)
                 : fdt_error_set(err, FDT_ENOMEM, "out of memory");
        b->r->drv->app_sql(b->session, false);
        if (rc < 0 && out && first && b->r->drv->begin_query && renew_dead_session(b, err)) {
            fdt_sql_rows_free(out);
            out = fdt__sql_rows_new();
            b->r->drv->app_sql(b->session, true);
            rc = out ? fn(b->session, sql, params, n, out, err)
                     : fdt_error_set(err, FDT_ENOMEM, "out of memory");
            b->r->drv->app_sql(b->session, false);
        }
    }
    b->begun = true;
    if (rc < 0) {
        fdt_sql_rows_free(out);
        t->doomed = true;
        t->retryable |= rc == FDT_ERETRY;
        fdt__strlcpy(t->doom_reason, err->msg, sizeof(t->doom_reason));
        return rc;
    }
    if (rows)
        *rows = out;
    else
        fdt_sql_rows_free(out);
    return 0;
}

/* Roll back every branch: active ones in their session, prepared ones by GID. */
/* Roll back every branch. A branch that was not prepared is rolled back by its database
 * anyway when its session goes, so its failure is only logged; a prepared one that failed
 * stays prepared (for recovery): the first such failure goes to err. Returns 0 or its
 * code. */
static int rollback_all(struct fdt_txn *t, struct fdt_error *err)
{
    int first = 0;
    for (int i = 0; i < t->nb; i++) {
        struct branch *b = &t->b[i];
        struct fdt_error e = {0};
        int rc = b->prepared ? b->r->drv->rollback_prepared(b->session, b->gid, &e)
                             : b->r->drv->rollback(b->session, &e);
        if (rc < 0) {
            fdt_log(FDT_LOG_WARN, "rollback of %s: %s", b->gid, e.msg);
            if (first == 0 && b->prepared)
                first = fdt_error_set(err, rc,
                                      "rollback of %s: %s (it stays prepared; recovery rolls "
                                      "it back)",
                                      b->gid, e.msg);
        }
    }
    return first;
}

/* Write a log record (decision or vote) in r's session s. */
static int log_write(struct fdt_resource *r, void *s, const char *key, const char *role,
                     const char *outcome, struct fdt_error *err)
{
    if (fdt__txn_log_ensure(r, s, err) < 0)
        return err->code;
    char sql[600];
    snprintf(sql, sizeof(sql),
             "INSERT INTO fdt_txn_log (gid, role, outcome, created) VALUES ('%s', '%s', '%s', "
             "%lld)",
             key, role, outcome, (long long)fdt__wall_ms());
    /* key, role and outcome are ours (base64url GIDs and fixed words): nothing to escape. */
    return r->drv->exec(s, sql, NULL, err);
}

static int log_record(struct fdt_txn *t, const char *role, const char *outcome,
                      struct fdt_error *err);

static int fail_rolled_back(struct fdt_txn *t, struct fdt_error *err, const char *why)
{
    char msg[sizeof(err->msg)];
    snprintf(msg, sizeof(msg), "rolled back: %s", why);
    int code = t->retryable ? FDT_ERETRY : FDT_ETXNSTATE;
    rollback_all(t, NULL);
    end(t, FDT_TXN_ROLLED_BACK, false);
    return fdt_error_set(err, code, "%s", msg);
}

/* Branches with work (begun, and not rolled back whole to a savepoint): how many, and the
 * index of the last one. */
static int live_branches(const struct fdt_txn *t, int *last)
{
    int live = 0;
    for (int i = 0; i < t->nb; i++) {
        if (t->b[i].begun) {
            live++;
            *last = i;
        }
    }
    return live;
}

/* The branch that cannot prepare (SQLite: the logging last resource) in *llr, or -1.
 * Returns -1 when two branches cannot prepare: they cannot commit atomically together. */
static int last_resource(const struct fdt_txn *t, int *llr)
{
    *llr = -1;
    for (int i = 0; i < t->nb; i++) {
        if (!t->b[i].begun || t->b[i].r->drv->can_prepare)
            continue;
        if (*llr >= 0)
            return -1;
        *llr = i;
    }
    return 0;
}

/* Phase one: prepare every live branch but the last resource (llr, -1: none). On a
 * failure everything is rolled back and the transaction ends. */
static int prepare_all(struct fdt_txn *t, int llr, struct fdt_error *err)
{
    struct fdt_error e = {0};
    for (int i = 0; i < t->nb; i++) {
        struct branch *b = &t->b[i];
        if (i == llr || !b->begun)
            continue;
        if (b->r->drv->prepare(b->session, b->gid, &e) < 0) {
            t->retryable |= e.code == FDT_ERETRY;
            char why[300];
            snprintf(why, sizeof(why), "prepare %s: %s", b->r->cfg.name, e.msg);
            return fail_rolled_back(t, err, why);
        }
        b->prepared = true;
        FDT_FAULT_POINT("after_prepare");
    }
    return 0;
}

/* The decision: the commit record in L's session ls, and with a last resource its commit,
 * which is then the decision point. A failure whose outcome is known rolls everything
 * back; one that left the outcome unknown (the connection died while committing) is for
 * recovery, which reads the log and finishes the prepared branches either way. */
static int decide(struct fdt_txn *t, struct fdt_resource *L, void *ls, int llr,
                  struct fdt_error *err)
{
    struct fdt_error e = {0};
    int rc = log_write(L, ls, t->log_key, "root", "commit", &e);
    if (rc == 0 && llr >= 0)
        rc = L->drv->commit(ls, &e);
    if (rc == 0)
        return 0;
    bool known = L->drv->alive(ls);
    if (llr < 0)
        fdt__resource_release(L, ls, known);
    if (known) {
        char why[300];
        snprintf(why, sizeof(why), "decision: %s", e.msg);
        return fail_rolled_back(t, err, why);
    }
    fdt_log(FDT_LOG_ERROR, "decision of %s: outcome unknown: %s", t->log_key, e.msg);
    /* A last resource's session is closed by end() (not healthy), like every branch's. */
    end(t, FDT_TXN_UNKNOWN, false);
    return fdt_error_set(err, FDT_EOUTCOME, "outcome unknown: %s", e.msg);
}

/* Phase two after the decision: commit the prepared branches, then forget the decision.
 * A failure here is for recovery to finish. */
static void finish_prepared(struct fdt_txn *t, struct fdt_resource *L, void *ls)
{
    struct fdt_error e = {0};
    bool all = true;
    for (int i = 0; i < t->nb; i++) {
        struct branch *b = &t->b[i];
        if (!b->prepared)
            continue;
        if (b->r->drv->commit_prepared(b->session, b->gid, &e) < 0) {
            fdt_log(FDT_LOG_WARN, "commit prepared %s: %s (recovery will finish it)", b->gid,
                    e.msg);
            all = false;
        }
    }
    if (all) {
        char sql[300];
        snprintf(sql, sizeof(sql), "DELETE FROM fdt_txn_log WHERE gid = '%s'", t->log_key);
        if (L->drv->exec(ls, sql, NULL, &e) < 0)
            fdt_log(FDT_LOG_WARN, "forgetting decision %s: %s", t->log_key, e.msg);
    }
}

/* Two-phase commit of a root transaction. The decision goes to the node's log resource
 * (fdt__txn_log_resource): inside its own branch when that branch cannot prepare (SQLite
 * as the logging last resource), else in a local transaction of its own after every
 * branch is prepared. The decision row's key is unique: a recoverer that fenced this
 * transaction with an abort row first makes the decision fail, so both never disagree. */
static int commit_two_phase(struct fdt_txn *t, struct fdt_error *err)
{
    int llr;
    if (last_resource(t, &llr) < 0)
        return fail_rolled_back(t, err,
                                "two resources that cannot prepare (sqlite) cannot commit "
                                "atomically together");
    struct fdt_resource *L = llr >= 0 ? t->b[llr].r : fdt__txn_log_resource();
    /* GCOVR_EXCL_START: unreachable: without a last resource every live branch can prepare,
     * so the node has a log resource */
    if (!L)
        return fail_rolled_back(t, err, "no resource can hold the decision record");
    /* GCOVR_EXCL_STOP */
    int rc = prepare_all(t, llr, err);
    if (rc < 0)
        return rc;
    FDT_FAULT_POINT("before_decision");
    void *ls = NULL;
    struct fdt_error e = {0};
    if (llr >= 0) {
        ls = t->b[llr].session;
    } else if (fdt__resource_acquire(L, &ls, &e) < 0) {
        char why[300];
        snprintf(why, sizeof(why), "decision record: %s", e.msg);
        return fail_rolled_back(t, err, why);
    }
    FDT_FAULT_POINT("before_decision_write"); /* the decision's session is held */
    rc = decide(t, L, ls, llr, err);
    if (rc < 0)
        return rc;
    FDT_FAULT_POINT("after_decision");
    finish_prepared(t, L, ls);
    if (llr < 0)
        fdt__resource_release(L, ls, true);
    end(t, FDT_TXN_COMMITTED, true);
    return 0;
}

const struct fdt_xid *fdt_txn_xid(const struct fdt_txn *t)
{
    /* Asked for: a root transaction gets its name now (it is the owner's object; the const
     * is the public signature's). Should getrandom fail, the transaction is doomed, so that
     * the all-zero name it shows can never be prepared or committed. */
    struct fdt_txn *m = (struct fdt_txn *)t;
    struct fdt_error e = {0};
    if (!m->named && name_root(m, &e) < 0)
        fdt_txn_doom(m, e.msg);
    return &t->xid;
}

int fdt_txn_prepared_count(const struct fdt_txn *t)
{
    int n = 0;
    for (int i = 0; i < t->nb; i++)
        n += t->b[i].prepared;
    return n;
}

int fdt_txn_commit(struct fdt_txn *t, struct fdt_error *err)
{
    if (t->state != FDT_TXN_ACTIVE)
        return fdt_error_set(err, FDT_ETXNSTATE, "commit: the transaction is not active");
    if (t->doomed)
        return fail_rolled_back(t, err, t->doom_reason);
    int only = -1;
    int live = live_branches(t, &only);
    if (live == 0) {
        end(t, FDT_TXN_COMMITTED, true);
        return 0;
    }
    before_wait(t);
    if (live > 1)
        return commit_two_phase(t, err);
    struct fdt_error e = {0};
    struct branch *b = &t->b[only];
    if (b->r->drv->commit(b->session, &e) < 0) {
        t->retryable |= e.code == FDT_ERETRY;
        return fail_rolled_back(t, err, e.msg);
    }
    end(t, FDT_TXN_COMMITTED, true);
    return 0;
}

int fdt_txn_vote(struct fdt_txn *t, struct fdt_error *err)
{
    if (t->state != FDT_TXN_ACTIVE)
        return fdt_error_set(err, FDT_ETXNSTATE, "vote: the transaction is not active");
    if (t->doomed)
        return fail_rolled_back(t, err, t->doom_reason);
    struct fdt_error e = {0};
    if (t->nb > 0)
        before_wait(t);
    for (int i = 0; i < t->nb; i++) {
        if (t->b[i].begun && !t->b[i].r->drv->can_prepare)
            return fdt_error_set(err, FDT_ETXNSTATE,
                                 "vote: resource %s cannot prepare (sqlite); nothing was done: "
                                 "commit in one phase (txn.finish) or roll back (txn.abort)",
                                 t->b[i].r->cfg.name);
    }
    int rc = prepare_all(t, -1, err);
    if (rc < 0)
        return rc;
    if (fdt_txn_prepared_count(t) > 0) {
        /* The vote record is the cut-off of the disconnect rule: once it is durable the
         * branches stay prepared whatever happens to the connection. */
        FDT_FAULT_POINT("before_vote_record");
        if (log_record(t, "participant", "voted", &e) < 0) {
            char why[300];
            snprintf(why, sizeof(why), "vote record: %s", e.msg);
            return fail_rolled_back(t, err, why);
        }
        FDT_FAULT_POINT("after_vote_record");
    }
    t->state = FDT_TXN_PREPARED;
    return 0;
}

/* Write (INSERT) or update (UPDATE) t's record in the log resource, on a session of its
 * own, committed at once. */
static int log_record(struct fdt_txn *t, const char *role, const char *outcome,
                      struct fdt_error *err)
{
    struct fdt_resource *L = fdt__txn_log_resource();
    void *s = NULL;
    /* GCOVR_EXCL_START: unreachable: only a vote that prepared a branch writes the record,
     * and a resource that can prepare makes a log resource */
    if (!L)
        return fdt_error_set(err, FDT_ETXNSTATE, "no PostgreSQL resource for the vote record");
    /* GCOVR_EXCL_STOP */
    if (fdt__resource_acquire(L, &s, err) < 0)
        return err->code;
    int rc = log_write(L, s, t->log_key, role, outcome, err);
    fdt__resource_release(L, s, rc == 0 || L->drv->alive(s));
    return rc;
}

static int set_outcome(struct fdt_txn *t, const char *outcome)
{
    /* Only a vote that prepared a branch wrote a record (fdt_txn_vote): with none prepared
     * (no branch, or none begun) there is nothing to update, and no log session to take. */
    if (fdt_txn_prepared_count(t) == 0)
        return 0;
    struct fdt_resource *L = fdt__txn_log_resource();
    void *s = NULL;
    struct fdt_error e = {0};
    if (!L)
        return FDT_ENOENT; /* GCOVR_EXCL_LINE: unreachable: a branch was prepared, and its
                              vote record was written to this resource */
    if (fdt__resource_acquire(L, &s, &e) < 0) {
        fdt_log(FDT_LOG_WARN, "recording outcome of %s: %s", t->log_key, e.msg);
        return e.code;
    }
    char sql[400];
    snprintf(sql, sizeof(sql), "UPDATE fdt_txn_log SET outcome = '%s' WHERE gid = '%s'", outcome,
             t->log_key);
    int rc = L->drv->exec(s, sql, NULL, &e);
    if (rc < 0)
        fdt_log(FDT_LOG_WARN, "recording outcome of %s: %s", t->log_key, e.msg);
    fdt__resource_release(L, s, rc == 0);
    return rc;
}

int fdt_txn_finish(struct fdt_txn *t, struct fdt_error *err)
{
    if (t->state == FDT_TXN_ACTIVE)
        return fdt_error_set(err, FDT_ETXNSTATE, "finish: vote first");
    /* GCOVR_EXCL_START: unreachable: a transaction is freed as it ends, so a live one is
     * active or prepared */
    if (t->state != FDT_TXN_PREPARED)
        return fdt_error_set(err, FDT_ETXNSTATE, "finish: the transaction is not prepared");
    /* GCOVR_EXCL_STOP */
    if (t->nb > 0)
        before_wait(t);
    struct fdt_error e = {0};
    bool all = true;
    for (int i = 0; i < t->nb; i++) {
        struct branch *b = &t->b[i];
        if (!b->prepared)
            continue;
        if (b->r->drv->commit_prepared(b->session, b->gid, &e) < 0) {
            fdt_log(FDT_LOG_WARN, "commit prepared %s: %s", b->gid, e.msg);
            all = false;
        }
    }
    if (!all) {
        end(t, FDT_TXN_UNKNOWN, false);
        return fdt_error_set(err, FDT_EOUTCOME, "outcome unknown: %s", e.msg);
    }
    set_outcome(t, "committed");
    end(t, FDT_TXN_COMMITTED, true);
    return 0;
}

int fdt_txn_abort(struct fdt_txn *t, struct fdt_error *err)
{
    bool prepared = t->state == FDT_TXN_PREPARED;
    if (t->nb > 0)
        before_wait(t);
    int rc = rollback_all(t, err);
    if (prepared)
        set_outcome(t, "rolled back");
    end(t, FDT_TXN_ROLLED_BACK, true);
    return rc;
}

static bool savepoint_name_ok(const char *name)
{
    if (!name || !*name || strlen(name) > 63)
        return false;
    for (const char *p = name; *p; p++) {
        bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_';
        if (!alpha && (p == name || *p < '0' || *p > '9'))
            return false;
    }
    return true;
}

/* Run "VERB name" in every branch begun (and, for bits, in the set). */
static int branches_exec(struct fdt_txn *t, const char *verb, const char *name, uint32_t only,
                         struct fdt_error *err)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "%s %s", verb, name);
    if (only != 0)
        before_wait(t);
    for (int i = 0; i < t->nb; i++) {
        if (!t->b[i].begun || !(only & (1u << i)))
            continue;
        int rc = t->b[i].r->drv->exec(t->b[i].session, sql, NULL, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int find_savepoint(struct fdt_txn *t, const char *name, struct fdt_error *err)
{
    if (t->state != FDT_TXN_ACTIVE)
        return fdt_error_set(err, FDT_ETXNSTATE, "savepoint: the transaction is not active");
    if (!savepoint_name_ok(name))
        return fdt_error_set(err, FDT_EINVAL, "bad savepoint name");
    for (int i = t->nsp - 1; i >= 0; i--) {
        if (strcmp(t->sp[i].name, name) == 0)
            return i;
    }
    return fdt_error_set(err, FDT_ENOENT, "no savepoint %s", name);
}

int fdt_txn_savepoint(struct fdt_txn *t, const char *name, struct fdt_error *err)
{
    if (t->state != FDT_TXN_ACTIVE)
        return fdt_error_set(err, FDT_ETXNSTATE, "savepoint: the transaction is not active");
    if (t->doomed)
        return fdt_error_set(err, FDT_ETXNSTATE, "the transaction is doomed: %s", t->doom_reason);
    if (!savepoint_name_ok(name))
        return fdt_error_set(err, FDT_EINVAL, "bad savepoint name");
    if (t->nsp == SAVEPOINTS_MAX)
        return fdt_error_set(err, FDT_ELIMIT, "more than %d savepoints", SAVEPOINTS_MAX);
    struct savepoint *sp = &t->sp[t->nsp];
    memset(sp, 0, sizeof(*sp));
    fdt__strlcpy(sp->name, name, sizeof(sp->name));
    for (int i = 0; i < t->nb; i++) {
        if (t->b[i].begun)
            sp->begun |= 1u << i;
    }
    int rc = branches_exec(t, "SAVEPOINT", name, sp->begun, err);
    if (rc < 0) {
        t->doomed = true;
        t->retryable |= rc == FDT_ERETRY;
        fdt__strlcpy(t->doom_reason, err ? err->msg : "savepoint failed", sizeof(t->doom_reason));
        return rc;
    }
    t->nsp++;
    return 0;
}

int fdt_txn_rollback_to(struct fdt_txn *t, const char *name, struct fdt_error *err)
{
    int i = find_savepoint(t, name, err);
    if (i < 0)
        return i;
    struct savepoint *sp = &t->sp[i];
    int rc = branches_exec(t, "ROLLBACK TO SAVEPOINT", name, sp->begun, err);
    /* Branches begun since: roll their local transaction back whole; they begin again. */
    for (int b = 0; rc == 0 && b < t->nb; b++) {
        if (!t->b[b].begun || (sp->begun & (1u << b)))
            continue;
        rc = t->b[b].r->drv->rollback(t->b[b].session, err);
        t->b[b].begun = false;
    }
    if (rc < 0) {
        t->doomed = true;
        t->retryable |= rc == FDT_ERETRY;
        fdt__strlcpy(t->doom_reason, err ? err->msg : "rollback to savepoint failed",
                     sizeof(t->doom_reason));
        return rc;
    }
    t->nsp = i + 1;
    t->doomed = sp->doomed;
    t->retryable = sp->retryable;
    fdt__strlcpy(t->doom_reason, sp->doom_reason, sizeof(t->doom_reason));
    return 0;
}

int fdt_txn_release(struct fdt_txn *t, const char *name, struct fdt_error *err)
{
    int i = find_savepoint(t, name, err);
    if (i < 0)
        return i;
    int rc = t->doomed ? 0 : branches_exec(t, "RELEASE SAVEPOINT", name, t->sp[i].begun, err);
    if (rc < 0) {
        t->doomed = true;
        fdt__strlcpy(t->doom_reason, err ? err->msg : "release failed", sizeof(t->doom_reason));
        return rc;
    }
    t->nsp = i;
    return 0;
}

bool fdt__txn_conflicted(const struct fdt_txn *t)
{
    return t->doomed && t->retryable;
}

void fdt_txn_doom(struct fdt_txn *t, const char *reason)
{
    if (t->doomed)
        return;
    t->doomed = true;
    fdt__strlcpy(t->doom_reason, reason ? reason : "doomed", sizeof(t->doom_reason));
}

int fdt__txn_run(struct fdt_txn_holder *h, fdt_txn_fn fn, void *arg, int max_attempts,
                 int *attempts, struct fdt_error *err)
{
    int rc = 0;
    struct fdt_error local = {0};
    if (!err)
        err = &local;
    for (int a = 1;; a++) {
        if (attempts)
            *attempts = a;
        rc = fdt__txn_begin(h, NULL, true, err);
        if (rc < 0)
            return rc;
        struct fdt_txn *t = h->txn;
        rc = fn(t, arg, err);
        if (rc == 0) {
            rc = fdt_txn_commit(t, err); /* ends t either way */
        } else {
            if (rc == FDT_ERETRY)
                t->retryable = true;
            bool retry = t->retryable;
            fdt_txn_abort(t, NULL);
            if (retry)
                rc = FDT_ERETRY;
        }
        if (rc != FDT_ERETRY || a >= max_attempts)
            return rc;
        fdt_log(FDT_LOG_DEBUG, "conn=%llu attempt %d: %s: retrying", (unsigned long long)h->id, a,
                err->msg);
        /* A short pause that grows, with jitter, so that the conflicting transactions do not
         * meet again at once. */
        unsigned r = 0;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
            r = 0;
        struct timespec ts = {0, (long)(1 + r % (unsigned)(2 * a)) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void fdt__txn_holder_closed(struct fdt_txn_holder *h)
{
    struct fdt_txn *t = h->txn; /* not NULL: the caller checks */
    if (t->state == FDT_TXN_PREPARED) {
        /* After the vote: the branches stay prepared, for a higher level to resolve. */
        int n = fdt_txn_prepared_count(t);
        if (n > 0)
            fdt_log(FDT_LOG_WARN,
                    "conn=%llu closed after the vote: %s stays prepared (in doubt) in %d "
                    "resource%s",
                    (unsigned long long)h->id, key_of(t), n, n == 1 ? "" : "s");
        else
            fdt_log(FDT_LOG_INFO,
                    "conn=%llu closed after the vote of %s, which had no work: nothing is "
                    "prepared",
                    (unsigned long long)h->id, key_of(t));
        end(t, FDT_TXN_PREPARED, true);
        return;
    }
    fdt_log(FDT_LOG_INFO, "conn=%llu closed before the vote: rolling back %s",
            (unsigned long long)h->id, key_of(t));
    rollback_all(t, NULL);
    end(t, FDT_TXN_ROLLED_BACK, true);
}

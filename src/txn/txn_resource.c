#include "fdt_config.h"

#define FDT_LOG_MODULE "txn"
#include "txn/txn.h"
#include "txn/txn_fault.h"
#include "util/util.h"

#include <fdt/log.h>
#include <stdio.h>
#include <string.h>

/* The resources of this process (set once at worker start, before any thread; read-only
 * afterwards but for each resource's own locked pool). Process-wide by necessity: the
 * public API names a resource by its string alone (fdt_txn_query(t, "ledger", ...),
 * fdt_resource_exec("ledger", ...)) with no context to find a table in, as getenv does. */
static struct fdt_resource g_resources[FDT_CFG_MAX_RESOURCES];
static int g_n_resources;

int fdt__txn_init(const struct fdt_cfg *cfg, struct fdt_error *err)
{
    g_n_resources = 0;
    for (int i = 0; i < cfg->n_resources; i++) {
        struct fdt_resource *r = &g_resources[i];
        memset(r, 0, sizeof(*r));
        r->cfg = cfg->resources[i];
        r->drv = fdt__rm_driver_find(r->cfg.driver);
        if (!r->drv)
            return fdt_error_set(err, FDT_ECONFIG,
                                 "[resource.%s] driver %s is not available (its module could "
                                 "not be loaded: see the line before)",
                                 r->cfg.name, r->cfg.driver);
        pthread_mutex_init(&r->lock, NULL);
        g_n_resources = i + 1;
    }
    return 0;
}

void fdt__txn_shutdown(void)
{
    for (int i = 0; i < g_n_resources; i++) {
        struct fdt_resource *r = &g_resources[i];
        pthread_mutex_lock(&r->lock);
        for (int j = 0; j < r->n_idle; j++)
            r->drv->close(r->idle[j]);
        r->n_idle = 0;
        pthread_mutex_unlock(&r->lock);
    }
}

struct fdt_resource *fdt__resource_find(const char *name)
{
    for (int i = 0; i < g_n_resources; i++) {
        if (strcmp(g_resources[i].cfg.name, name) == 0)
            return &g_resources[i];
    }
    return NULL;
}

/* Where sessions opened and failed are counted (the worker's scoreboard slot), or NULL. Set
 * once by the worker's main thread before any transaction runs. */
static struct fdt_counters *g_counters;

void fdt__txn_set_counters(struct fdt_counters *c)
{
    g_counters = c;
}

static void count(_Atomic uint64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

int fdt__resource_acquire(struct fdt_resource *r, void **session, struct fdt_error *err)
{
    for (;;) {
        void *s = NULL;
        pthread_mutex_lock(&r->lock);
        if (r->n_idle > 0)
            s = r->idle[--r->n_idle];
        pthread_mutex_unlock(&r->lock);
        if (!s) {
            int rc = r->drv->open(&r->cfg, session, err);
            if (g_counters)
                count(rc < 0 ? &g_counters->resource_errors : &g_counters->resource_sessions);
            return rc;
        }
        if (r->drv->alive(s)) {
            *session = s;
            return 0;
        }
        /* The server went away since: drop it and try the next (or a new one). */
        if (g_counters)
            count(&g_counters->resource_errors);
        r->drv->close(s);
    }
}

void fdt__resource_release(struct fdt_resource *r, void *session, bool healthy)
{
    if (!session)
        return;
    if (healthy && r->drv->alive(session)) {
        pthread_mutex_lock(&r->lock);
        if (r->n_idle < (int)FDT_ARRAY_LEN(r->idle)) {
            r->idle[r->n_idle++] = session;
            session = NULL;
        }
        pthread_mutex_unlock(&r->lock);
    }
    if (session)
        r->drv->close(session);
}

#define LOG_TABLE_SQL                                                                              \
    "CREATE TABLE IF NOT EXISTS fdt_txn_log ("                                                     \
    " gid TEXT PRIMARY KEY,"                                                                       \
    " role TEXT NOT NULL,"                                                                         \
    " outcome TEXT NOT NULL,"                                                                      \
    " created BIGINT NOT NULL,"                                                                    \
    " comment TEXT)"

/* PostgreSQL: CREATE TABLE IF NOT EXISTS is not safe under concurrency (two sessions that
 * both find no table both try to create it, and one fails with 23505 on pg_type). Create
 * it in a transaction of its own, on a session of its own, under a transaction-level
 * advisory lock that every fdtserver process takes for it, so creations are serialized
 * and never run inside a client's transaction. */
static int create_log_locked(struct fdt_resource *r, struct fdt_error *err)
{
    void *s = NULL;
    int rc = fdt__resource_acquire(r, &s, err);
    if (rc < 0)
        return rc;
    rc = r->drv->begin(s, err);
    if (rc == 0)
        rc = r->drv->exec(s, "SELECT pg_advisory_xact_lock(1717859444, 1)", NULL, err);
    if (rc == 0)
        rc = r->drv->exec(s, LOG_TABLE_SQL, NULL, err);
    if (rc == 0)
        rc = r->drv->commit(s, err);
    else
        r->drv->rollback(s, NULL);
    fdt__resource_release(r, s, rc == 0 || r->drv->alive(s));
    return rc;
}

int fdt__txn_log_ensure(struct fdt_resource *r, void *s, struct fdt_error *err)
{
    if (__atomic_load_n(&r->log_ready, __ATOMIC_ACQUIRE))
        return 0;
    /* SQLite serializes every write under its database lock, which the caller's session
     * holds or takes: creating the table there cannot race. */
    int rc =
        r->drv->can_prepare ? create_log_locked(r, err) : r->drv->exec(s, LOG_TABLE_SQL, NULL, err);
    if (rc == 0)
        __atomic_store_n(&r->log_ready, true, __ATOMIC_RELEASE);
    return rc;
}

int fdt__txn_logs_prepare(struct fdt_error *err)
{
    struct fdt_resource *L = fdt__txn_log_resource();
    if (!L || __atomic_load_n(&L->log_ready, __ATOMIC_ACQUIRE))
        return 0;
    int rc = create_log_locked(L, err);
    if (rc == 0)
        __atomic_store_n(&L->log_ready, true, __ATOMIC_RELEASE);
    return rc;
}

struct fdt_resource *fdt__txn_log_resource(void)
{
    for (int i = 0; i < g_n_resources; i++) {
        if (g_resources[i].cfg.log && g_resources[i].drv->can_prepare)
            return &g_resources[i];
    }
    for (int i = 0; i < g_n_resources; i++) {
        if (g_resources[i].drv->can_prepare)
            return &g_resources[i];
    }
    return NULL;
}

int fdt__txn_resource_count(void)
{
    return g_n_resources;
}

struct fdt_resource *fdt__txn_resource_at(int i)
{
    return i >= 0 && i < g_n_resources ? &g_resources[i] : NULL;
}

#if FDT_FAULT_POINTS
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void fdt__txn_fault(const char *name)
{
    const char *path = getenv("FDT_FAULT_FILE");
    if (!path)
        return;
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char want[64] = "";
    if (!fgets(want, sizeof(want), f))
        want[0] = '\0';
    fclose(f);
    want[strcspn(want, "\r\n")] = '\0';
    /* "NAME" kills the worker there; "NAME sleep MS" pauses it, so that a test can act on
     * the databases at that exact step (end a session, say). */
    long ms = 0;
    char *sp = strchr(want, ' ');
    if (sp && strncmp(sp, " sleep ", 7) == 0 && fdt__parse_long(sp + 7, 1, 60000, &ms) == 0)
        *sp = '\0';
    if (strcmp(want, name) != 0 || unlink(path) != 0)
        return;
    if (ms > 0) {
        fdt_log(FDT_LOG_WARN, "fault point %s: sleeping %ld ms", name, ms);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return;
    }
    /* GCOVR_EXCL_START: not countable: the process dies of SIGKILL here, before gcov writes
     * its counters (tests/unit/test_txn_mock.c test_fault_points checks that it does) */
    fdt_log(FDT_LOG_WARN, "fault point %s: killing this worker", name);
    raise(SIGKILL);
    /* GCOVR_EXCL_STOP */
}
#endif

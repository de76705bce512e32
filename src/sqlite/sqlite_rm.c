#include "fdt_config.h"

#define FDT_LOG_MODULE "sqlite"

#include "sqlite/sqlite.h"
#include "txn/rm.h"

#include <errno.h>
#include <fcntl.h>
#include <fdt/log.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* SQLite takes part in one phase only (the logging last resource): it cannot prepare.
 *
 * A session is one database connection and a small cache of prepared statements for
 * fdt_txn_query(), keyed by the SQL text (replaced round robin when full).
 *
 * With group commit ([resource.NAME] group_commit = yes), a session's transactions do not
 * run on its own connection but on its group's: one writer connection per resource and
 * process, whose write transaction (a batch) holds the work of many requests, each in a
 * savepoint of its own. See "Group commit" below. */

#define CACHE_SIZE       32
#define SP_NAME          "fdt__gc" /* group commit's savepoint: see "Group commit" */
#define QUERY_PARAMS_MAX 32

struct group;

struct lite {
    sqlite3 *db;
    struct {
        char *sql;
        sqlite3_stmt *st;
        bool app; /* prepared under authorize()'s rule for application SQL */
    } cache[CACHE_SIZE];
    unsigned next;
    struct group *g; /* group commit: the resource's writer, or NULL */
    bool turn;       /* this session holds g's writer: its statements run there */
    bool app;        /* the application's SQL is being prepared: see authorize() */
};

/* libfdt's helpers, handed to fdt_rm_driver_v1() when the module is loaded. */
static const struct fdt_rm_host *host;

/* Copy src into out (size > 0), cut short if it does not fit. */
static void copy_text(char *out, const char *src, size_t size)
{
    size_t n = strnlen(src, size - 1);
    memcpy(out, src, n);
    out[n] = '\0';
}

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(sqlite3 *db, int rc, struct fdt_error *err, const char *what)
{
    int code = FDT_EDB;
    int primary = rc & 0xff;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        code = FDT_ERETRY;
    return fdt_error_set(err, code, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static int db_exec(sqlite3 *db, const char *sql, long *rows, struct fdt_error *err)
{
    long n = 0;
    const char *tail = sql;
    while (tail && *tail) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, tail, -1, &st, &tail);
        if (rc != SQLITE_OK)
            return fail(db, rc, err, "statement failed");
        if (!st)
            break; /* only white space or a comment left */
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            n++;
        if (rc != SQLITE_DONE) {
            sqlite3_finalize(st);
            return fail(db, rc, err, "statement failed");
        }
        if (sqlite3_stmt_readonly(st) == 0)
            n += sqlite3_changes(db);
        sqlite3_finalize(st);
    }
    if (rows)
        *rows = n;
    return 0;
}

static int db_query_text(sqlite3 *db, const char *sql, char *out, size_t size,
                         struct fdt_error *err)
{
    out[0] = '\0';
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(db, rc, err, "query failed");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        copy_text(out, v ? (const char *)v : "", size);
    } else if (rc != SQLITE_DONE) {
        sqlite3_finalize(st);
        return fail(db, rc, err, "query failed");
    }
    sqlite3_finalize(st);
    return 0;
}

/* Waiting for another writer: SQLite's own busy handler sleeps in growing steps up to
 * 100 ms, so a waiter often sleeps long after the lock came free, and under load a few
 * unlucky transactions wait seconds (a long tail). Poll in steady 1 ms steps instead, for
 * at most BUSY_TIMEOUT_MS of wall time per wait. */
#define BUSY_TIMEOUT_MS 5000

static _Thread_local int64_t t_busy_since_ms;

static int busy_wait(void *arg, int count)
{
    (void)arg;
    int64_t now = now_ms();
    if (count == 0)
        t_busy_since_ms = now;
    if (now - t_busy_since_ms >= BUSY_TIMEOUT_MS)
        return 0;
    struct timespec ts = {0, 1000L * 1000L};
    nanosleep(&ts, NULL);
    return 1;
}

/* Said once per process (a pool opens many sessions): a C-level once flag, not state. */
static atomic_bool warned_readable;

/* A new database is created readable by its owner only: it holds what the application
 * keeps (token hashes, bank accounts); SQLite gives its -wal and -shm files the
 * database's mode. An existing one that others may read is only warned about. */
static void create_private(const struct fdt_resource_cfg *cfg)
{
    int fd = open(cfg->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        close(fd);
        return;
    }
    struct stat st;
    if (errno == EEXIST && stat(cfg->path, &st) == 0 && (st.st_mode & S_IROTH) &&
        !atomic_exchange(&warned_readable, true))
        fdt_log(FDT_LOG_WARN,
                "[resource.%s] %s is readable by other users (mode %03o): chmod o-r it", cfg->name,
                cfg->path, (unsigned)(st.st_mode & 0777));
}

/* SQLite's authorizer, consulted as each statement is prepared: while a session runs the
 * application's SQL of a transaction (rm.h, app_sql), statements that would begin or end
 * the transaction are refused before they run, and so is any use of group commit's own
 * savepoint. With group commit, the transaction is a batch shared with other requests: one
 * COMMIT there would end their work too. The application's own savepoints nest inside
 * (the transaction began with BEGIN: releasing one never commits). */
static int authorize(void *arg, int action, const char *a, const char *b, const char *c,
                     const char *d)
{
    (void)a;
    (void)c;
    (void)d;
    const struct lite *l = arg;
    if (l->app && (action == SQLITE_TRANSACTION ||
                   (action == SQLITE_SAVEPOINT && b && strcasecmp(b, SP_NAME) == 0)))
        return SQLITE_DENY;
    return SQLITE_OK;
}

/* A new connection to cfg's file, set up: WAL, synchronous=FULL, the busy handler, the
 * authorizer. */
static int lite_connect(const struct fdt_resource_cfg *cfg, struct lite **out,
                        struct fdt_error *err)
{
    create_private(cfg);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        cfg->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        fdt_error_set(err, FDT_EDOWN, "[resource.%s] open %s: %s", cfg->name, cfg->path,
                      db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return FDT_EDOWN;
    }
    /* WAL: readers never block the writer; synchronous=FULL keeps commits durable. The
     * first switch to WAL needs the file to itself: two sessions opening a new file at
     * once, or another process reading it, retry here, for 5 s at most. The busy handler
     * is set after it: it would wait up to BUSY_TIMEOUT_MS in each of the 250 attempts
     * (a worker thread stuck for 20 minutes while another process reads the file). */
    char mode[16] = "";
    for (int i = 0; i < 250; i++) {
        struct fdt_error e = {0};
        if (db_query_text(db, "PRAGMA journal_mode=WAL", mode, sizeof(mode), &e) == 0)
            break;
        if (e.code != FDT_ERETRY) {
            *err = e;
            sqlite3_close(db);
            return FDT_EDOWN;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    sqlite3_busy_handler(db, busy_wait, NULL);
    if (strcmp(mode, "wal") != 0 ||
        db_exec(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", NULL, err) < 0) {
        if (strcmp(mode, "wal") != 0)
            fdt_error_set(err, FDT_EDOWN, "[resource.%s] cannot switch %s to WAL mode", cfg->name,
                          cfg->path);
        sqlite3_close(db);
        return FDT_EDOWN;
    }
    struct lite *l = calloc(1, sizeof(*l));
    if (!l) {
        sqlite3_close(db);
        return fdt_error_set(err, FDT_ENOMEM, "out of memory");
    }
    l->db = db;
    sqlite3_set_authorizer(db, authorize, l);
    *out = l;
    return 0;
}

static void lite_free(struct lite *l)
{
    for (int i = 0; i < CACHE_SIZE; i++) {
        sqlite3_finalize(l->cache[i].st);
        free(l->cache[i].sql);
    }
    sqlite3_close(l->db);
    free(l);
}

/* ---- Group commit ---------------------------------------------------------------------
 *
 * SQLite has one writer per database file, and with synchronous=FULL each COMMIT waits
 * for an fsync. Committing every request on its own bounds a worker to one request per
 * fsync. A group instead keeps one writer connection per resource and process; the
 * requests of the process take turns on it, each inside a savepoint of the writer's open
 * write transaction (the batch):
 *
 *   begin     wait for the turn (the writer is free); the first request of a batch runs
 *             BEGIN IMMEDIATE (the file's write lock, shared with other processes through
 *             SQLite's busy handler); then SAVEPOINT.
 *   commit    RELEASE the savepoint: the request's work joins the batch. Then hand the
 *             turn on, or, when nobody waits for it (or the batch is full or old), COMMIT
 *             the batch: one fsync for every member. Every member returns only once the
 *             COMMIT is durable, with its outcome.
 *   rollback  ROLLBACK TO and RELEASE the savepoint: only this request's work is undone;
 *             the batch goes on.
 *
 * Requests run one at a time on the writer (savepoints nest, so two cannot be open side by
 * side), which is what SQLite's single writer allows anyway; the batch's fsync is shared.
 * A request sees the released work of the batch before it (serializable: the order of
 * turns), and nothing of it is answered before it is durable. If SQLite ends the batch's
 * transaction itself (an I/O error, a full disk, ON CONFLICT ROLLBACK), or the COMMIT
 * fails, every member of the batch fails: none was answered yet.
 *
 * The registry of groups is process-wide: the driver vtable has no per-resource context.
 * A group lives as long as the process. */

/* One batch's outcome, read by its members. It has a lock of its own, so that the members
 * waking up when it ends do not queue on the group's lock, which the turn's hand-over needs.
 * refs: the members still to read the outcome, plus one while it is the group's current
 * batch; the last one frees it. */
struct batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Guarded by mu. */
    int refs;
    bool done;
    int rc;
    char msg[200];
};

struct group {
    struct group *next; /* in groups; set once */
    char name[FDT_CFG_NAME_MAX];
    char path[FDT_CFG_PATH_MAX];
    int max;
    int64_t window_us;
    pthread_mutex_t mu;
    pthread_cond_t turn_cv; /* the writer came free */
    /* Guarded by mu. */
    bool taken;  /* a request holds the writer (its turn) */
    int waiting; /* requests waiting for their turn */
    bool open;   /* the writer is inside BEGIN IMMEDIATE */
    int members; /* released requests in the current batch */
    int undone;  /* requests of the current batch rolled back alone */
    int64_t started_us;
    struct batch *cur;
    /* Used only by the thread whose turn it is. */
    struct lite *w;
};

static pthread_mutex_t groups_mu = PTHREAD_MUTEX_INITIALIZER;
static struct group *groups; /* guarded by groups_mu; never freed */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int lite_connect(const struct fdt_resource_cfg *cfg, struct lite **out,
                        struct fdt_error *err);
static void lite_free(struct lite *l);

/* The group of cfg's resource in this process, made on first use. */
static int group_get(const struct fdt_resource_cfg *cfg, struct group **out, struct fdt_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&groups_mu);
    struct group *g = groups;
    while (g && (strcmp(g->name, cfg->name) != 0 || strcmp(g->path, cfg->path) != 0))
        g = g->next;
    if (g)
        goto out;
    g = calloc(1, sizeof(*g));
    if (!g) {
        rc = fdt_error_set(err, FDT_ENOMEM, "out of memory");
        goto out;
    }
    rc = lite_connect(cfg, &g->w, err);
    /* Each request's savepoint keeps the pages it changes in a sub-journal. By default that
     * is a 64 KiB chunk of memory, allocated and freed for every request, and the free
     * makes glibc give the arena's top back to the kernel (madvise, and a TLB shoot-down on
     * every CPU): 15-25 % of a worker's CPU under load. temp_store = MEMORY keeps the
     * writer's sub-journals in memory in 1 KiB chunks instead (and its temporary tables). */
    if (rc == 0 && db_exec(g->w->db, "PRAGMA temp_store = MEMORY", NULL, err) < 0) {
        /* GCOVR_EXCL_START: unreachable: a setting of the connection just opened, which
         * touches no file and takes no lock (only SQLite's own allocations could fail) */
        lite_free(g->w);
        rc = err ? err->code : FDT_EDB;
        /* GCOVR_EXCL_STOP */
    }
    if (rc < 0) {
        free(g);
        g = NULL;
        goto out;
    }
    copy_text(g->name, cfg->name, sizeof(g->name));
    copy_text(g->path, cfg->path, sizeof(g->path));
    g->max = cfg->group_commit_max > 0 ? cfg->group_commit_max : 1;
    g->window_us = (int64_t)(cfg->group_commit_window * 1e6);
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->turn_cv, &ca);
    pthread_condattr_destroy(&ca);
    g->next = groups;
    groups = g;
out:
    pthread_mutex_unlock(&groups_mu);
    *out = g;
    return rc;
}

/* The connection a session's statements go to: the group's writer during its turn. NULL
 * (with err set) when the batch's transaction is gone: a statement now would commit on its
 * own, outside the batch. */
static struct lite *target(void *s, struct fdt_error *err)
{
    struct lite *l = s;
    if (!l->turn)
        return l;
    if (sqlite3_get_autocommit(l->g->w->db)) {
        fdt_error_set(err, FDT_ERETRY, "[resource.%s] the batch's transaction was rolled back",
                      l->g->name);
        return NULL;
    }
    return l->g->w;
}

static struct batch *batch_new(void)
{
    struct batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->refs = 1; /* the group's, while it is current */
    return b;
}

static void batch_unref_locked(struct batch *b)
{
    if (--b->refs > 0) {
        pthread_mutex_unlock(&b->mu);
        return;
    }
    pthread_mutex_unlock(&b->mu);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* Detach the group's current batch (g->mu held): the writer is outside any batch again. */
static struct batch *batch_detach_locked(struct group *g)
{
    struct batch *b = g->cur;
    g->cur = NULL;
    g->open = false;
    g->members = 0;
    g->undone = 0;
    return b;
}

/* Give a detached batch its outcome, wake its members, drop the group's reference. */
static void batch_end(struct batch *b, int rc, const char *msg)
{
    pthread_mutex_lock(&b->mu);
    b->done = true;
    b->rc = rc;
    copy_text(b->msg, msg, sizeof(b->msg));
    pthread_cond_broadcast(&b->cv);
    batch_unref_locked(b);
}

/* The turn's holder is done with the writer: commit the batch when nobody waits for the
 * turn (or the batch is full or old), then free the writer. Called with g->mu held;
 * returns with it released. The COMMIT runs without g->mu, the turn keeping everyone else
 * off the writer meanwhile. */
static void hand_on(struct group *g)
{
    if (g->open &&
        (g->waiting == 0 || g->members >= g->max || now_us() - g->started_us >= g->window_us)) {
        int n = g->members;
        int undone = g->undone;
        struct batch *b = batch_detach_locked(g);
        pthread_mutex_unlock(&g->mu);
        struct fdt_error e = {0};
        sqlite3 *db = g->w->db;
        /* A batch with no member (every request rolled back) only frees the write lock. */
        int rc = db_exec(db, n > 0 ? "COMMIT" : "ROLLBACK", NULL, &e);
        if (rc < 0) {
            fdt_log(FDT_LOG_ERROR, "[resource.%s] commit of a batch of %d: %s", g->name, n, e.msg);
            struct fdt_error e2 = {0};
            if (!sqlite3_get_autocommit(db) && db_exec(db, "ROLLBACK", NULL, &e2) < 0)
                fdt_log(FDT_LOG_ERROR, "[resource.%s] rollback of a batch: %s", g->name, e2.msg);
        } else if (n > 0 || undone > 0) {
            fdt_log(FDT_LOG_DEBUG, "[resource.%s] batch of %d committed (%d rolled back alone)",
                    g->name, n, undone);
        }
        char msg[sizeof(e.msg) + 32];
        snprintf(msg, sizeof(msg), "batch commit: %s", e.msg);
        batch_end(b, n > 0 ? rc : 0, msg);
        pthread_mutex_lock(&g->mu);
    }
    g->taken = false;
    bool wake = g->waiting > 0;
    pthread_mutex_unlock(&g->mu);
    if (wake)
        pthread_cond_signal(&g->turn_cv);
}

static int group_finish(struct lite *l, bool keep, struct fdt_error *err);

int fdt__sqlite_group_waiting(void *session)
{
    struct lite *l = session;
    if (!l->g)
        return 0;
    pthread_mutex_lock(&l->g->mu);
    int n = l->g->waiting;
    pthread_mutex_unlock(&l->g->mu);
    return n;
}

static int group_begin(struct lite *l, struct fdt_error *err)
{
    struct group *g = l->g;
    if (l->turn)
        return fdt_error_set(err, FDT_ETXNSTATE, "a transaction is already open on this session");
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += BUSY_TIMEOUT_MS / 1000;
    pthread_mutex_lock(&g->mu);
    g->waiting++;
    int wrc = 0;
    while (g->taken && wrc != ETIMEDOUT)
        wrc = pthread_cond_timedwait(&g->turn_cv, &g->mu, &deadline);
    g->waiting--;
    if (g->taken) {
        pthread_mutex_unlock(&g->mu);
        return fdt_error_set(err, FDT_ERETRY, "[resource.%s] waited %d ms for the writer", g->name,
                             BUSY_TIMEOUT_MS);
    }
    g->taken = true;
    bool open = g->open;
    pthread_mutex_unlock(&g->mu);
    l->turn = true;
    int rc = 0;
    if (!open) {
        struct batch *b = batch_new();
        if (!b)
            rc = fdt_error_set(err, FDT_ENOMEM, "out of memory");
        else
            rc = db_exec(g->w->db, "BEGIN IMMEDIATE", NULL, err);
        pthread_mutex_lock(&g->mu);
        if (rc < 0) {
            l->turn = false;
            hand_on(g);
            if (b) {
                pthread_mutex_lock(&b->mu);
                batch_unref_locked(b);
            }
            return rc;
        }
        g->open = true;
        g->members = 0;
        g->undone = 0;
        g->started_us = now_us();
        g->cur = b;
        pthread_mutex_unlock(&g->mu);
    }
    rc = db_exec(g->w->db, "SAVEPOINT " SP_NAME, NULL, err);
    if (rc < 0) {
        struct fdt_error e = {0};
        group_finish(l, false, &e);
    }
    return rc;
}

/* The end of a turn: keep (commit) or undo (rollback) the request's savepoint, hand the
 * writer on, and for a kept one wait for its batch's outcome, which is returned. */
static int group_finish(struct lite *l, bool keep, struct fdt_error *err)
{
    struct group *g = l->g;
    sqlite3 *db = g->w->db;
    int rc = 0;
    char why[256] = "";
    if (sqlite3_get_autocommit(db)) {
        rc = fdt_error_set(err, FDT_ERETRY, "[resource.%s] the batch's transaction was rolled back",
                           g->name);
        snprintf(why, sizeof(why), "%s", err ? err->msg : "rolled back");
    } else {
        if (keep)
            rc = db_exec(db, "RELEASE " SP_NAME, NULL, err);
        if (!keep || rc < 0) {
            struct fdt_error e = {0};
            if (db_exec(db, "ROLLBACK TO " SP_NAME "; RELEASE " SP_NAME, NULL, &e) < 0) {
                /* The savepoint cannot be undone alone: the whole batch must go. */
                fdt_log(FDT_LOG_ERROR, "[resource.%s] undoing a request: %s", g->name, e.msg);
                snprintf(why, sizeof(why), "undoing another request failed: %s", e.msg);
                struct fdt_error e2 = {0};
                if (!sqlite3_get_autocommit(db))
                    db_exec(db, "ROLLBACK", NULL, &e2);
            }
        }
        if (sqlite3_get_autocommit(db) && !why[0])
            snprintf(why, sizeof(why), "its transaction ended (%s)", sqlite3_errmsg(db));
    }
    struct batch *mine = NULL;
    struct batch *failed = NULL;
    pthread_mutex_lock(&g->mu);
    if (why[0] && g->open) {
        failed = batch_detach_locked(g);
    } else if (keep && rc == 0) {
        mine = g->cur;
        pthread_mutex_lock(&mine->mu);
        mine->refs++;
        pthread_mutex_unlock(&mine->mu);
        g->members++;
    } else {
        g->undone++;
    }
    l->turn = false;
    hand_on(g);
    if (failed) {
        char msg[300];
        snprintf(msg, sizeof(msg), "rolled back with its batch: %s", why);
        batch_end(failed, FDT_ERETRY, msg);
        /* This request's work went with it, whatever its own statement said. */
        if (rc == 0 && keep)
            rc = fdt_error_set(err, FDT_ERETRY, "%s", msg);
    }
    if (mine) {
        pthread_mutex_lock(&mine->mu);
        while (!mine->done)
            pthread_cond_wait(&mine->cv, &mine->mu);
        rc = mine->rc;
        if (rc < 0)
            fdt_error_set(err, rc, "%s", mine->msg);
        batch_unref_locked(mine);
    }
    return rc;
}

static int lite_open(const struct fdt_resource_cfg *cfg, void **session, struct fdt_error *err)
{
    struct lite *l = NULL;
    int rc = lite_connect(cfg, &l, err);
    if (rc == 0 && cfg->group_commit) {
        rc = group_get(cfg, &l->g, err);
        if (rc < 0)
            lite_free(l);
    }
    if (rc == 0)
        *session = l;
    return rc;
}

static void lite_close(void *s)
{
    struct lite *l = s;
    if (l->turn) {
        struct fdt_error e = {0};
        group_finish(l, false, &e);
    }
    lite_free(l);
}

static bool lite_alive(void *s)
{
    return s != NULL;
}

/* rc, or for the application's statement that authorize() refused, why. */
static int app_refused(struct lite *l, int rc, struct fdt_error *err)
{
    if (rc == 0 || !l->app || sqlite3_errcode(l->db) != SQLITE_AUTH)
        return rc;
    return fdt_error_set(err, FDT_EINVAL,
                         "a transaction's own SQL may not begin or end it (BEGIN, COMMIT, "
                         "ROLLBACK, END) nor touch the savepoint " SP_NAME
                         " of group commit: fdtserver ends the transaction");
}

static int lite_exec(void *s, const char *sql, long *rows, struct fdt_error *err)
{
    struct lite *l = target(s, err);
    return l ? app_refused(l, db_exec(l->db, sql, rows, err), err) : err->code;
}

static int lite_query_text(void *s, const char *sql, char *out, size_t size, struct fdt_error *err)
{
    struct lite *l = target(s, err);
    return l ? db_query_text(l->db, sql, out, size, err) : err->code;
}

/* The cached statement for sql, prepared on first use. */
static sqlite3_stmt *statement(struct lite *l, const char *sql, struct fdt_error *err)
{
    for (int i = 0; i < CACHE_SIZE; i++) {
        if (l->cache[i].sql && l->cache[i].app == l->app && strcmp(l->cache[i].sql, sql) == 0)
            return l->cache[i].st;
    }
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, &tail);
    if (rc == SQLITE_OK && st && tail && tail[strspn(tail, " \t\r\n;")] != '\0') {
        sqlite3_finalize(st);
        fdt_error_set(err, FDT_EINVAL, "one statement only (as on PostgreSQL)");
        return NULL;
    }
    if (rc != SQLITE_OK || !st) {
        sqlite3_finalize(st);
        if (rc == SQLITE_OK)
            fdt_error_set(err, FDT_EINVAL, "empty statement");
        else
            fail(l->db, rc, err, "statement failed");
        return NULL;
    }
    char *copy = strdup(sql);
    if (!copy) {
        sqlite3_finalize(st);
        fdt_error_set(err, FDT_ENOMEM, "out of memory");
        return NULL;
    }
    unsigned i = l->next++ % CACHE_SIZE;
    sqlite3_finalize(l->cache[i].st);
    free(l->cache[i].sql);
    l->cache[i].sql = copy;
    l->cache[i].st = st;
    l->cache[i].app = l->app;
    return st;
}

static int lite_query(void *s, const char *sql, const struct fdt_sql_param *params, int n,
                      struct fdt_sql_rows *out, struct fdt_error *err)
{
    struct lite *l = target(s, err);
    if (!l)
        return err->code;
    if (n > QUERY_PARAMS_MAX)
        return fdt_error_set(err, FDT_EINVAL, "more than %d parameters", QUERY_PARAMS_MAX);
    sqlite3_stmt *st = statement(l, sql, err);
    if (!st)
        return app_refused(l, err->code, err);
    int rc = SQLITE_OK;
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        char name[16];
        snprintf(name, sizeof(name), "$%d", i + 1);
        int idx = sqlite3_bind_parameter_index(st, name);
        if (idx == 0)
            continue; /* not used by this statement */
        if (params[i].type == FDT_SQL_INT)
            rc = sqlite3_bind_int64(st, idx, params[i].i);
        else if (params[i].type == FDT_SQL_TEXT && params[i].s)
            rc = sqlite3_bind_text(st, idx, params[i].s, -1, SQLITE_STATIC);
        else
            rc = sqlite3_bind_null(st, idx);
    }
    if (rc != SQLITE_OK) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return fail(l->db, rc, err, "binding parameters");
    }
    int cols = sqlite3_column_count(st);
    int ret = host->rows_cols(out, cols);
    if (cols > QUERY_PARAMS_MAX)
        ret = fdt_error_set(err, FDT_EINVAL, "more than %d result columns", QUERY_PARAMS_MAX);
    const char *vals[QUERY_PARAMS_MAX];
    size_t lens[QUERY_PARAMS_MAX];
    while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < cols; c++) {
            vals[c] = (const char *)sqlite3_column_text(st, c);
            lens[c] = (size_t)sqlite3_column_bytes(st, c);
        }
        if (host->rows_add(out, vals, lens) < 0)
            ret = fdt_error_set(err, FDT_ENOMEM, "out of memory");
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = fail(l->db, rc, err, "statement failed");
    if (ret == 0 && !sqlite3_stmt_readonly(st))
        host->rows_set_changes(out, sqlite3_changes(l->db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

static int lite_begin(void *s, struct fdt_error *err)
{
    struct lite *l = s;
    if (l->g)
        return group_begin(l, err);
    /* IMMEDIATE takes the write lock at once, so a conflict shows up here (busy, retried)
     * and not as a deadlock between two readers that both want to write. */
    return lite_exec(s, "BEGIN IMMEDIATE", NULL, err);
}

static int lite_rollback(void *s, struct fdt_error *err)
{
    struct lite *l = s;
    if (l->g)
        return l->turn ? group_finish(l, false, err) : 0;
    if (sqlite3_get_autocommit(l->db))
        return 0;
    return lite_exec(s, "ROLLBACK", NULL, err);
}

static int lite_prepare(void *s, const char *gid, struct fdt_error *err)
{
    (void)s;
    (void)gid;
    return fdt_error_set(err, FDT_ETXNSTATE,
                         "sqlite cannot prepare (two-phase commit): it can only take part as "
                         "the last resource, committed in one phase");
}

static int lite_commit(void *s, struct fdt_error *err)
{
    struct lite *l = s;
    if (l->g)
        return l->turn ? group_finish(l, true, err) : 0;
    return lite_exec(s, "COMMIT", NULL, err);
}

static int lite_no_prepared(void *s, const char *gid, struct fdt_error *err)
{
    (void)s;
    return fdt_error_set(err, FDT_ENOENT, "sqlite has no prepared transaction %s", gid);
}

static int lite_recover(void *s, const char *prefix, double min_age,
                        void (*fn)(const char *gid, double age, void *arg), void *arg,
                        struct fdt_error *err)
{
    (void)s;
    (void)prefix;
    (void)min_age;
    (void)fn;
    (void)arg;
    (void)err;
    return 0; /* nothing is ever prepared in SQLite */
}

static int lite_try_lock(void *s, const char *name, struct fdt_error *err)
{
    (void)s;
    (void)name;
    (void)err;
    return 1; /* nothing to recover in SQLite, so nothing to share */
}

static void lite_unlock(void *s, const char *name)
{
    (void)s;
    (void)name;
}

static bool lite_retryable(const struct fdt_error *err)
{
    return err && err->code == FDT_ERETRY;
}

static void *lite_handle(void *s)
{
    struct lite *l = s;
    return l->turn ? l->g->w->db : l->db;
}

static void lite_app_sql(void *s, bool on)
{
    struct lite *l = s;
    l->app = on;
    if (l->turn)
        l->g->w->app = on; /* the writer is this thread's for the whole turn */
}

static const struct fdt_rm_driver driver = {
    .abi_version = FDT_RM_ABI_VERSION,
    .name = "sqlite",
    .can_prepare = false,
    .open = lite_open,
    .close = lite_close,
    .alive = lite_alive,
    .exec = lite_exec,
    .query_text = lite_query_text,
    .begin = lite_begin,
    .begin_sql = NULL, /* in process: no round trip to save */
    .rollback = lite_rollback,
    .prepare = lite_prepare,
    .commit = lite_commit,
    .commit_prepared = lite_no_prepared,
    .rollback_prepared = lite_no_prepared,
    .recover = lite_recover,
    .try_lock = lite_try_lock,
    .unlock = lite_unlock,
    .retryable = lite_retryable,
    .handle = lite_handle,
    .query = lite_query,
    .app_sql = lite_app_sql,
};

const struct fdt_rm_driver *fdt_rm_driver_v1(const struct fdt_rm_host *h)
{
    if (!h || h->abi_version != FDT_RM_ABI_VERSION || h->size < sizeof(*h))
        return NULL;
    host = h;
    return &driver;
}

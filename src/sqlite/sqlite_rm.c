#include "fdt_config.h"

#define FDT_LOG_MODULE "sqlite"

#include "txn/rm.h"

#include <errno.h>
#include <fcntl.h>
#include <fdt/log.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* SQLite takes part in one phase only (the logging last resource): it cannot prepare.
 *
 * A session is one database connection and a small cache of prepared statements for
 * fdt_txn_query(), keyed by the SQL text (replaced round robin when full). */

#define CACHE_SIZE       32
#define QUERY_PARAMS_MAX 32

struct lite {
    sqlite3 *db;
    struct {
        char *sql;
        sqlite3_stmt *st;
    } cache[CACHE_SIZE];
    unsigned next;
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

static int lite_open(const struct fdt_resource_cfg *cfg, void **session, struct fdt_error *err)
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
    sqlite3_busy_handler(db, busy_wait, NULL);
    /* WAL: readers never block the writer; synchronous=FULL keeps commits durable. The
     * first switch to WAL needs the file to itself and the busy handler does not cover it:
     * two sessions opening a new file at once retry here. */
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
    *session = l;
    return 0;
}

static void lite_close(void *s)
{
    struct lite *l = s;
    for (int i = 0; i < CACHE_SIZE; i++) {
        sqlite3_finalize(l->cache[i].st);
        free(l->cache[i].sql);
    }
    sqlite3_close(l->db);
    free(l);
}

static bool lite_alive(void *s)
{
    return s != NULL;
}

static int lite_exec(void *s, const char *sql, long *rows, struct fdt_error *err)
{
    return db_exec(((struct lite *)s)->db, sql, rows, err);
}

static int lite_query_text(void *s, const char *sql, char *out, size_t size, struct fdt_error *err)
{
    return db_query_text(((struct lite *)s)->db, sql, out, size, err);
}

/* The cached statement for sql, prepared on first use. */
static sqlite3_stmt *statement(struct lite *l, const char *sql, struct fdt_error *err)
{
    for (int i = 0; i < CACHE_SIZE; i++) {
        if (l->cache[i].sql && strcmp(l->cache[i].sql, sql) == 0)
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
    return st;
}

static int lite_query(void *s, const char *sql, const struct fdt_sql_param *params, int n,
                      struct fdt_sql_rows *out, struct fdt_error *err)
{
    struct lite *l = s;
    if (n > QUERY_PARAMS_MAX)
        return fdt_error_set(err, FDT_EINVAL, "more than %d parameters", QUERY_PARAMS_MAX);
    sqlite3_stmt *st = statement(l, sql, err);
    if (!st)
        return err->code;
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
    /* IMMEDIATE takes the write lock at once, so a conflict shows up here (busy, retried)
     * and not as a deadlock between two readers that both want to write. */
    return lite_exec(s, "BEGIN IMMEDIATE", NULL, err);
}

static int lite_rollback(void *s, struct fdt_error *err)
{
    if (sqlite3_get_autocommit(((struct lite *)s)->db))
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
    return ((struct lite *)s)->db;
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
    .begin_sql = "BEGIN IMMEDIATE",
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
};

const struct fdt_rm_driver *fdt_rm_driver_v1(const struct fdt_rm_host *h)
{
    if (!h || h->abi_version != FDT_RM_ABI_VERSION || h->size < sizeof(*h))
        return NULL;
    host = h;
    return &driver;
}

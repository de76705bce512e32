#include "fdt_config.h"

#include "txn/rm.h"
#include "util/util.h"

#include <sqlite3.h>
#include <string.h>
#include <time.h>

/* SQLite takes part in one phase only (the logging last resource): it cannot prepare. */

static int fail(sqlite3 *db, int rc, struct fdt_error *err, const char *what)
{
    int code = FDT_EDB;
    int primary = rc & 0xff;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        code = FDT_ERETRY;
    return fdt_error_set(err, code, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static int lite_exec(void *s, const char *sql, long *rows, struct fdt_error *err)
{
    sqlite3 *db = s;
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

static int lite_query_text(void *s, const char *sql, char *out, size_t size, struct fdt_error *err)
{
    sqlite3 *db = s;
    out[0] = '\0';
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(db, rc, err, "query failed");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        fdt__strlcpy(out, v ? (const char *)v : "", size);
    } else if (rc != SQLITE_DONE) {
        sqlite3_finalize(st);
        return fail(db, rc, err, "query failed");
    }
    sqlite3_finalize(st);
    return 0;
}

static int lite_open(const struct fdt_resource_cfg *cfg, void **session, struct fdt_error *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        cfg->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        fdt_error_set(err, FDT_EDOWN, "[resource.%s] open %s: %s", cfg->name, cfg->path,
                      db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return FDT_EDOWN;
    }
    sqlite3_busy_timeout(db, 5000);
    /* WAL: readers never block the writer; synchronous=FULL keeps commits durable. The
     * first switch to WAL needs the file to itself and the busy handler does not cover it:
     * two sessions opening a new file at once retry here. */
    char mode[16] = "";
    for (int i = 0; i < 250; i++) {
        struct fdt_error e = {0};
        if (lite_query_text(db, "PRAGMA journal_mode=WAL", mode, sizeof(mode), &e) == 0)
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
        lite_exec(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", NULL, err) < 0) {
        if (strcmp(mode, "wal") != 0)
            fdt_error_set(err, FDT_EDOWN, "[resource.%s] cannot switch %s to WAL mode", cfg->name,
                          cfg->path);
        sqlite3_close(db);
        return FDT_EDOWN;
    }
    *session = db;
    return 0;
}

static void lite_close(void *s)
{
    sqlite3_close(s);
}

static bool lite_alive(void *s)
{
    return s != NULL;
}

static int lite_begin(void *s, struct fdt_error *err)
{
    /* IMMEDIATE takes the write lock at once, so a conflict shows up here (busy, retried)
     * and not as a deadlock between two readers that both want to write. */
    return lite_exec(s, "BEGIN IMMEDIATE", NULL, err);
}

static int lite_rollback(void *s, struct fdt_error *err)
{
    if (sqlite3_get_autocommit(s))
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
    return s;
}

const struct fdt_rm_driver fdt__rm_sqlite = {
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
};

const struct fdt_rm_driver *fdt__rm_driver_find(const char *name)
{
    if (strcmp(name, "postgresql") == 0)
        return &fdt__rm_postgresql;
    if (strcmp(name, "sqlite") == 0)
        return &fdt__rm_sqlite;
    return NULL;
}

/* Resource-manager drivers: one vtable per kind of database (curl's Curl_cftype idea).
 * A session is one database connection; a transaction branch runs on one session.
 *
 * Each driver is a loadable module (fdt_rm_postgresql.so, fdt_rm_sqlite.so) that only the
 * processes using a database load (txn_driver.c), so that the master never maps libpq or
 * SQLite (design §5). A module exports one symbol, FDT_RM_ENTRY: it is given the host
 * interface below and returns the driver's vtable. It calls libfdt's public FDT_API
 * functions directly and its internal helpers only through the host interface. */
#ifndef FDT_SRC_TXN_RM_H
#define FDT_SRC_TXN_RM_H

#include "config/config.h"

#include <fdt/error.h>
#include <fdt/txn.h>
#include <stdbool.h>

/* Bumped whenever struct fdt_rm_driver, struct fdt_rm_host or anything they pass around
 * (struct fdt_resource_cfg, struct fdt_error, struct fdt_sql_param) changes. */
#define FDT_RM_ABI_VERSION 3

struct fdt_rm_driver {
    int abi_version; /* FDT_RM_ABI_VERSION */
    const char *name;
    bool can_prepare; /* two-phase capable */
    /* Open a session for a resource configuration. */
    int (*open)(const struct fdt_resource_cfg *cfg, void **session, struct fdt_error *err);
    void (*close)(void *session);
    /* True while the session can be used (a dead server connection says false). */
    bool (*alive)(void *session);
    /* Run one statement; no result rows are returned. rows (may be NULL) gets the
     * number of rows affected or returned. */
    int (*exec)(void *session, const char *sql, long *rows, struct fdt_error *err);
    /* Run a query and copy the first column of its first row into out ("" if no row). */
    int (*query_text)(void *session, const char *sql, char *out, size_t size,
                      struct fdt_error *err);
    int (*begin)(void *session, struct fdt_error *err);
    /* The statement begin() runs, so that it can travel with the first statement of the
     * branch in one round trip ("BEGIN ...; first statement"). NULL: begin() is always
     * called on its own (an in-process database has no round trip to save). */
    const char *begin_sql;
    /* Valid in every state before prepare; never fails the caller's cleanup. */
    int (*rollback)(void *session, struct fdt_error *err);
    int (*prepare)(void *session, const char *gid, struct fdt_error *err);
    int (*commit)(void *session, struct fdt_error *err); /* one phase */
    /* From any session, for a branch prepared anywhere. */
    int (*commit_prepared)(void *session, const char *gid, struct fdt_error *err);
    int (*rollback_prepared)(void *session, const char *gid, struct fdt_error *err);
    /* Call fn for each prepared GID starting with prefix. */
    int (*recover)(void *session, const char *prefix, double min_age,
                   void (*fn)(const char *gid, double age, void *arg), void *arg,
                   struct fdt_error *err);
    /* Try to become the one recoverer of name (an advisory lock held by the session);
     * 1 when taken, 0 when someone else holds it. unlock gives it back. */
    int (*try_lock)(void *session, const char *name, struct fdt_error *err);
    void (*unlock)(void *session, const char *name);
    /* Serialization failure, deadlock, busy: the whole transaction may be retried. */
    bool (*retryable)(const struct fdt_error *err);
    /* The driver's handle (PGconn *, sqlite3 *) for the application. */
    void *(*handle)(void *session);
    /* Run one statement with parameters ($1..$n) and collect its rows into out (empty,
     * made by the caller) with the host's rows_cols() and rows_add(). */
    int (*query)(void *session, const char *sql, const struct fdt_sql_param *params, int n,
                 struct fdt_sql_rows *out, struct fdt_error *err);
    /* begin(), then query(), in one round trip (PostgreSQL's pipeline mode). May be NULL:
     * the two calls are made instead. */
    int (*begin_query)(void *session, const char *sql, const struct fdt_sql_param *params, int n,
                       struct fdt_sql_rows *out, struct fdt_error *err);
    /* The application's SQL in a transaction branch runs between app_sql(session, true)
     * and app_sql(session, false) (fdt_txn_exec, fdt_txn_query). Meanwhile a statement
     * that would begin or end the branch's transaction (BEGIN, COMMIT, ROLLBACK, END,
     * PREPARE TRANSACTION; savepoints the driver itself relies on) fails with FDT_EINVAL:
     * the framework ends transactions, and one shared by a batch or about to be prepared
     * must not end under it. The driver refuses such a statement before it runs where it
     * can tell, and reports a transaction ended by one it could not tell beforehand. */
    void (*app_sql)(void *session, bool on);
};

/* An empty result (txn_sql.c); NULL when out of memory. */
struct fdt_sql_rows *fdt__sql_rows_new(void);
/* For drivers filling a query's rows (txn_sql.c). cols: the number of columns, set once
 * before the first row. vals[i] NULL is SQL NULL; lens[i] its length. Return 0 or
 * FDT_ENOMEM. */
int fdt__sql_rows_cols(struct fdt_sql_rows *r, int cols);
int fdt__sql_rows_add(struct fdt_sql_rows *r, const char *const *vals, const size_t *lens);
void fdt__sql_rows_set_changes(struct fdt_sql_rows *r, long changes);

/* What libfdt lends a driver module: the internal functions it may call (libfdt exports
 * only FDT_API symbols). Lives as long as the process. */
struct fdt_rm_host {
    int abi_version; /* FDT_RM_ABI_VERSION */
    size_t size;     /* sizeof(struct fdt_rm_host) */
    int (*rows_cols)(struct fdt_sql_rows *r, int cols);
    int (*rows_add)(struct fdt_sql_rows *r, const char *const *vals, const size_t *lens);
    void (*rows_set_changes)(struct fdt_sql_rows *r, long changes);
};

/* libfdt's host interface (txn_driver.c). */
extern const struct fdt_rm_host fdt__rm_host;

/* The entry point every driver module exports, by this name. It keeps host (borrowed for
 * the life of the process) and returns the module's driver (static, never freed), or NULL
 * when host is not the interface the module was built for. Called once per process, before
 * any other use of the driver. */
#define FDT_RM_ENTRY "fdt_rm_driver_v1"
typedef const struct fdt_rm_driver *fdt_rm_entry_fn(const struct fdt_rm_host *host);
FDT_API const struct fdt_rm_driver *fdt_rm_driver_v1(const struct fdt_rm_host *host);

/* Driver for a [resource.NAME] driver = value, or NULL (unknown name, or its module did
 * not load: that error is logged, naming the file). Loads the driver's module on first
 * use, once per process; never in the master, which never calls this. Borrowed for the
 * life of the process. Thread: any. */
const struct fdt_rm_driver *fdt__rm_driver_find(const char *name);

/* Drivers report FDT_ERETRY, FDT_EDB and FDT_EDOWN (fdt/error.h) in err->code. */

#endif

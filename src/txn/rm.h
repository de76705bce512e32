/* Resource-manager drivers: one vtable per kind of database (curl's Curl_cftype idea).
 * A session is one database connection; a transaction branch runs on one session. */
#ifndef FDT_SRC_TXN_RM_H
#define FDT_SRC_TXN_RM_H

#include "config/config.h"

#include <fdt/error.h>
#include <fdt/txn.h>
#include <stdbool.h>

struct fdt_rm_driver {
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
     * branch in one round trip ("BEGIN ...; first statement"). */
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
     * made by the caller) with fdt__sql_rows_cols() and fdt__sql_rows_add(). */
    int (*query)(void *session, const char *sql, const struct fdt_sql_param *params, int n,
                 struct fdt_sql_rows *out, struct fdt_error *err);
    /* begin(), then query(), in one round trip (PostgreSQL's pipeline mode). May be NULL:
     * the two calls are made instead. */
    int (*begin_query)(void *session, const char *sql, const struct fdt_sql_param *params, int n,
                       struct fdt_sql_rows *out, struct fdt_error *err);
};

/* For drivers filling a query's rows (txn_sql.c). cols: the number of columns, set once
 * before the first row. vals[i] NULL is SQL NULL; lens[i] its length. Return 0 or
 * FDT_ENOMEM. */
/* An empty result (txn_sql.c); NULL when out of memory. */
struct fdt_sql_rows *fdt__sql_rows_new(void);
int fdt__sql_rows_cols(struct fdt_sql_rows *r, int cols);
int fdt__sql_rows_add(struct fdt_sql_rows *r, const char *const *vals, const size_t *lens);
void fdt__sql_rows_set_changes(struct fdt_sql_rows *r, long changes);

extern const struct fdt_rm_driver fdt__rm_postgresql;
extern const struct fdt_rm_driver fdt__rm_sqlite;

/* Driver for a [resource.NAME] driver = value, or NULL. */
const struct fdt_rm_driver *fdt__rm_driver_find(const char *name);

/* Drivers report FDT_ERETRY, FDT_EDB and FDT_EDOWN (fdt/error.h) in err->code. */

#endif

/* Transactions bound to client connections, with two-phase commit.
 *
 * A connection owns at most one transaction at a time. Resources are the
 * [resource.NAME] sections of the configuration (PostgreSQL or SQLite). A transaction
 * joins a resource the first time the application uses it; each joined resource is one
 * branch, on a database session the transaction holds until it ends.
 *
 * Two roles:
 *  - root (xid NULL): fdtserver names the transaction (fdt_txn_xid) and decides.
 *    fdt_txn_commit() commits one branch in one phase; several branches by two-phase
 *    commit with a decision record in the log resource.
 *  - participant (xid given): the client's coordinator decides. fdt_txn_vote() prepares
 *    every branch and writes a durable vote record; fdt_txn_finish() commits them.
 * A root transaction may also be voted (its client then coordinates, using the xid
 * fdtserver chose), and a participant may be committed in one phase with
 * fdt_txn_commit() (the coordinator's one-phase optimisation).
 *
 * The disconnect rule: a connection that closes before the vote rolls its transaction
 * back; after the vote the branches stay prepared (in doubt) for a higher level to resolve.
 *
 * Thread: a transaction is used by the thread running its connection's callback. */
#ifndef FDT_TXN_H
#define FDT_TXN_H

#include <fdt/common.h>
#include <fdt/conn.h>
#include <fdt/error.h>
#include <stdint.h>

#define FDT_XID_PART_MAX 64

/* An X/Open XID as a client's coordinator names its transaction. */
struct fdt_xid {
    int32_t format_id;
    uint8_t gtrid[FDT_XID_PART_MAX];
    size_t gtrid_len; /* 1..64 */
    uint8_t bqual[FDT_XID_PART_MAX];
    size_t bqual_len; /* 0..64 */
};

enum fdt_txn_state {
    FDT_TXN_ACTIVE = 1,   /* begun; work may be added */
    FDT_TXN_PREPARED = 2, /* voted: every branch prepared, vote record durable */
    FDT_TXN_COMMITTED = 3,
    FDT_TXN_ROLLED_BACK = 4,
    FDT_TXN_UNKNOWN = 5, /* the outcome is not known (a failure during phase two) */
};

struct fdt_txn;

/* Begin a transaction on the connection. xid NULL: a root transaction. Fails with
 * FDT_ETXNSTATE when the connection already has one, FDT_ELIMIT when the xid's GID would
 * not fit PostgreSQL's 199 bytes. */
FDT_API int fdt_txn_begin(struct fdt_conn *c, const struct fdt_xid *xid, struct fdt_error *err);

/* The connection's transaction, or NULL. Borrowed until it ends. */
FDT_API struct fdt_txn *fdt_conn_txn(struct fdt_conn *c);

/* Join a resource (begins its branch on first use) and return the driver's handle:
 * PGconn * for postgresql, sqlite3 * for sqlite. Borrowed until the transaction ends;
 * never COMMIT or ROLLBACK on it directly. NULL on error. */
FDT_API void *fdt_txn_join(struct fdt_txn *t, const char *resource, struct fdt_error *err);

/* Run one SQL statement in the resource's branch (joining it). rows (may be NULL) gets the
 * rows affected or returned. A failed statement dooms the transaction. */
FDT_API int fdt_txn_exec(struct fdt_txn *t, const char *resource, const char *sql, long *rows,
                         struct fdt_error *err);

/* Phase one: prepare every branch and write the vote record. A transaction with a branch
 * that cannot prepare (SQLite) is refused with FDT_ETXNSTATE and left as it was (commit
 * it in one phase, or abort it). On any other error every branch is rolled back and the
 * transaction ends. A transaction with no work votes yes with nothing prepared. */
FDT_API int fdt_txn_vote(struct fdt_txn *t, struct fdt_error *err);
/* Phase two after the vote: commit the prepared branches. */
FDT_API int fdt_txn_finish(struct fdt_txn *t, struct fdt_error *err);
/* Commit an active transaction (one or two phases inside). The transaction ends. An
 * unknown outcome (the decision's connection died) is FDT_EOUTCOME: recovery ends it. */
FDT_API int fdt_txn_commit(struct fdt_txn *t, struct fdt_error *err);
/* Roll back (any state before prepare; a prepared one: rollback prepared). The
 * transaction ends; returns the first failure of a prepared branch (which then stays
 * prepared for recovery), else 0. */
FDT_API int fdt_txn_abort(struct fdt_txn *t, struct fdt_error *err);
/* The transaction's xid: the coordinator's, or the one fdtserver chose for a root
 * transaction. Borrowed until the transaction ends. */
FDT_API const struct fdt_xid *fdt_txn_xid(const struct fdt_txn *t);
/* Branches prepared by the vote (0 before it, or when the transaction had no work). */
FDT_API int fdt_txn_prepared_count(const struct fdt_txn *t);

FDT_API enum fdt_txn_state fdt_txn_state(const struct fdt_txn *t);

/* Savepoints: name a point of an ACTIVE transaction to come back to. fdt_txn_savepoint()
 * marks it in every branch begun so far; fdt_txn_rollback_to() undoes everything done
 * since, in every branch (a branch begun since is rolled back whole and begins again on
 * its next statement), drops the savepoints taken after it, keeps this one, and lifts a
 * doom that came after it (a failed statement since then); fdt_txn_release() forgets the
 * savepoint and those after it, keeping the work. name: a letter or '_' then letters,
 * digits or '_', at most 63 bytes. At most 16 savepoints at a time (FDT_ELIMIT). */
FDT_API int fdt_txn_savepoint(struct fdt_txn *t, const char *name, struct fdt_error *err);
FDT_API int fdt_txn_rollback_to(struct fdt_txn *t, const char *name, struct fdt_error *err);
FDT_API int fdt_txn_release(struct fdt_txn *t, const char *name, struct fdt_error *err);

/* Mark the transaction to roll back: commit and vote will fail with reason. */
FDT_API void fdt_txn_doom(struct fdt_txn *t, const char *reason);

/* The work of a root transaction, run by fdt_txn_run(). Return 0, or a negative code with
 * err filled (a statement's FDT_ERETRY makes the whole transaction run again). */
typedef int (*fdt_txn_fn)(struct fdt_txn *t, void *arg, struct fdt_error *err);

/* Begin a root transaction on c, run fn, commit. When fn or the commit fails with a
 * retryable conflict (serialization failure, deadlock, SQLite busy) before the decision,
 * everything is rolled back and fn runs again, up to max_attempts times in all, with a
 * short growing pause. Never retried after a decision. attempts (may be NULL) gets the
 * number of runs. Returns 0 or the last error. */
FDT_API int fdt_txn_run(struct fdt_conn *c, fdt_txn_fn fn, void *arg, int max_attempts,
                        int *attempts, struct fdt_error *err);

/* ---- Queries with parameters and rows, the same on PostgreSQL and SQLite. ----
 *
 * Parameters are written $1, $2, ... in the SQL on both drivers and bound by value (never
 * spliced into the text). Rows come back as text; fdt_sql_int() converts. */

enum fdt_sql_type {
    FDT_SQL_NULL = 0,
    FDT_SQL_INT = 1,
    FDT_SQL_TEXT = 2,
};

/* One parameter: FDT_SQL_INT uses i; FDT_SQL_TEXT uses s (NUL-terminated, borrowed for
 * the call). */
struct fdt_sql_param {
    enum fdt_sql_type type;
    int64_t i;
    const char *s;
};

#define FDT_SQL_INT_P(v)  ((struct fdt_sql_param){.type = FDT_SQL_INT, .i = (v)})
#define FDT_SQL_TEXT_P(v) ((struct fdt_sql_param){.type = FDT_SQL_TEXT, .s = (v)})
#define FDT_SQL_NULL_P    ((struct fdt_sql_param){.type = FDT_SQL_NULL})

/* The rows a query returned (copied out of the driver). Owned by the caller: free it with
 * fdt_sql_rows_free(). */
struct fdt_sql_rows;

/* Run one statement with n params in the resource's branch (joining it; BEGIN is sent
 * first when the branch is new). rows (may be NULL) gets the result rows, NULL on error.
 * A failed statement dooms the transaction; a conflict (serialization failure, deadlock,
 * SQLite busy) fails with FDT_ERETRY and makes fdt_txn_run() and the HTTP and JSON-RPC
 * layers run the whole transaction again. */
FDT_API int fdt_txn_query(struct fdt_txn *t, const char *resource, const char *sql,
                          const struct fdt_sql_param *params, int n, struct fdt_sql_rows **rows,
                          struct fdt_error *err);

/* Rows returned, columns, and rows changed by an INSERT/UPDATE/DELETE. */
FDT_API int fdt_sql_nrows(const struct fdt_sql_rows *r);
FDT_API int fdt_sql_ncols(const struct fdt_sql_rows *r);
FDT_API long fdt_sql_changes(const struct fdt_sql_rows *r);
/* The value at (row, col) as text, NULL for SQL NULL or out of range. Borrowed from r. */
FDT_API const char *fdt_sql_text(const struct fdt_sql_rows *r, int row, int col);
/* The value at (row, col) as an integer; 0 for NULL, out of range, or not a number. */
FDT_API int64_t fdt_sql_int(const struct fdt_sql_rows *r, int row, int col);
FDT_API void fdt_sql_rows_free(struct fdt_sql_rows *r);

/* ---- Resources outside a transaction (schema migrations in process_init, bookkeeping
 * that must outlive a rolled-back request). Each call runs on a pooled session of its own,
 * committed at once (autocommit), never inside a connection's transaction. Thread: any. */

/* The driver of [resource.NAME]: "postgresql", "sqlite", or NULL when there is none. */
FDT_API const char *fdt_resource_driver(const char *resource);
/* Whether one transaction that writes every one of the n named resources can commit
 * atomically: at most one of them may be unable to prepare (SQLite, which then takes part
 * as the logging last resource). For process_init, so that a configuration that could
 * never commit is refused at start. Returns 0, FDT_ENOENT (a name is not configured) or
 * FDT_ECONFIG, with err naming the resources. */
FDT_API int fdt_resource_check_atomic(const char *const *resources, int n, struct fdt_error *err);
/* Run a script of one or more statements (no parameters). */
FDT_API int fdt_resource_exec(const char *resource, const char *sql, struct fdt_error *err);
/* Run one statement with parameters, as fdt_txn_query() does. */
FDT_API int fdt_resource_query(const char *resource, const char *sql,
                               const struct fdt_sql_param *params, int n,
                               struct fdt_sql_rows **rows, struct fdt_error *err);

#endif

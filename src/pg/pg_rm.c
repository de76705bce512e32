#include "fdt_config.h"

#include "txn/rm.h"

#include <fdt/log.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A session: the server connection and the statements fdt_txn_query() prepared on it
 * (named fdtN, prepared once and executed by name afterwards: the server parses and plans
 * each only once per session). */
#define STMT_CACHE 64

struct pgs {
    PGconn *pg;
    struct {
        char *sql;
        char name[16];
    } stmt[STMT_CACHE];
    int n_stmt;
    bool broken; /* unusable (protocol state unknown, or its statements stale): discard it */
    bool app;    /* running the application's SQL of a transaction (rm.h, app_sql) */
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

#define PG(s) (((struct pgs *)(s))->pg)

/* What begin() runs (begin_sql): READ COMMITTED, whatever the server's default. */
#define PG_BEGIN "BEGIN ISOLATION LEVEL READ COMMITTED"

/* SQLSTATEs worth a retry: serialization_failure, deadlock_detected. */
static bool state_retryable(const char *state)
{
    return state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0);
}

static int fail(void *s, PGresult *res, struct fdt_error *err, const char *what)
{
    PGconn *pg = PG(s);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /* A statement's result without a SQLSTATE is not the server's error (a read or write
     * that failed): what the server still has to say on this connection is unknown, and
     * a later statement would read an earlier one's answer. The session is discarded,
     * never returned to the pool. (Without a result, nothing was sent: the caller knows.) */
    if (res && !state)
        ((struct pgs *)s)->broken = true;
    int code = FDT_EDB;
    if (PQstatus(pg) != CONNECTION_OK)
        code = FDT_EDOWN;
    else if (state_retryable(state))
        code = FDT_ERETRY;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(pg);
    fdt_error_set(err, code, "%s: %s%s%s", what, state ? state : "", state ? " " : "",
                  msg && *msg ? msg : "error");
    if (res)
        PQclear(res);
    return code;
}

/* The server's warnings go to the error log as fdtserver's own lines, its notices (such as
 * "already exists, skipping") at debug level; libpq would print them raw on stderr. */
static void pg_notice(void *arg, const char *message)
{
    (void)arg;
    size_t n = strlen(message);
    while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == ' '))
        n--;
    bool warning = strncmp(message, "WARNING", 7) == 0;
    fdt_log(warning ? FDT_LOG_WARN : FDT_LOG_DEBUG, "postgresql: %.*s", (int)n, message);
}

static int pg_open(const struct fdt_resource_cfg *cfg, void **session, struct fdt_error *err)
{
    PGconn *pg = PQconnectdb(cfg->dsn);
    if (PQstatus(pg) == CONNECTION_OK)
        PQsetNoticeProcessor(pg, pg_notice, NULL);
    if (PQstatus(pg) != CONNECTION_OK) {
        fdt_error_set(err, FDT_EDOWN, "[resource.%s] connect: %s", cfg->name, PQerrorMessage(pg));
        PQfinish(pg);
        return FDT_EDOWN;
    }
    struct pgs *ps = calloc(1, sizeof(*ps));
    if (!ps) {
        PQfinish(pg);
        return fdt_error_set(err, FDT_ENOMEM, "out of memory");
    }
    ps->pg = pg;
    *session = ps;
    return 0;
}

static void pg_close(void *s)
{
    struct pgs *ps = s;
    for (int i = 0; i < ps->n_stmt; i++)
        free(ps->stmt[i].sql);
    PQfinish(ps->pg);
    free(ps);
}

static bool pg_alive(void *s)
{
    return !((struct pgs *)s)->broken && PQstatus(PG(s)) == CONNECTION_OK;
}

#define BLANKS " \t\r\n\f"

/* The length of the word at s (letters); *end: just after it. */
static size_t word(const char *s, const char **end)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
    *end = s + n;
    return n;
}

/* Transaction control, which the application's SQL may not run (rm.h, app_sql): the
 * statement's first word, after blanks and comments. A script's later statements
 * ("UPDATE ...; COMMIT") are not read here: their effect is seen afterwards (app_after). */
static bool controls_transaction(const char *sql)
{
    for (;;) {
        sql += strspn(sql, BLANKS);
        if (sql[0] == '-' && sql[1] == '-') {
            sql += strcspn(sql, "\n");
        } else if (sql[0] == '/' && sql[1] == '*') {
            int depth = 0; /* PostgreSQL's block comments nest */
            do {
                if (sql[0] == '/' && sql[1] == '*') {
                    depth++;
                    sql++;
                } else if (sql[0] == '*' && sql[1] == '/') {
                    depth--;
                    sql++;
                }
                sql++;
            } while (depth > 0 && *sql);
        } else {
            break;
        }
    }
    static const char *const words[] = {"BEGIN", "START", "COMMIT", "END", "ABORT"};
    const char *next = NULL;
    size_t n = word(sql, &next);
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (n == strlen(words[i]) && strncasecmp(sql, words[i], n) == 0)
            return true;
    }
    bool prepare = n == 7 && strncasecmp(sql, "PREPARE", 7) == 0;
    bool rollback = n == 8 && strncasecmp(sql, "ROLLBACK", 8) == 0;
    if (!prepare && !rollback)
        return false;
    const char *w = next + strspn(next, BLANKS);
    n = word(w, &next);
    if (prepare) /* PREPARE TRANSACTION, not PREPARE name AS ... */
        return n == 11 && strncasecmp(w, "TRANSACTION", 11) == 0;
    /* ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name stays inside the transaction. */
    if ((n == 4 && strncasecmp(w, "WORK", 4) == 0) ||
        (n == 11 && strncasecmp(w, "TRANSACTION", 11) == 0)) {
        w = next + strspn(next, BLANKS);
        n = word(w, &next);
    }
    return !(n == 2 && strncasecmp(w, "TO", 2) == 0);
}

static int app_refused(struct fdt_error *err)
{
    return fdt_error_set(err, FDT_EINVAL,
                         "a transaction's own SQL may not begin or end it (BEGIN, START, COMMIT, "
                         "END, ROLLBACK, ABORT, PREPARE TRANSACTION): fdtserver ends the "
                         "transaction");
}

/* After the application's statement: a script can end the transaction in a later statement
 * than controls_transaction() reads (and fail after it). What ran is as the server left it;
 * the branch is over, and the caller is told so (the transaction is rolled back wherever it
 * still can be). open: the transaction was open on the server while the statement ran
 * (before it, or its own BEGIN ran); a statement refused or failing before that left
 * nothing open, and one failing inside the transaction leaves it open (in error). A lost
 * connection is not idle. */
static int app_after(struct pgs *ps, bool open, int rc, struct fdt_error *err)
{
    if (ps->app && open && PQtransactionStatus(ps->pg) == PQTRANS_IDLE)
        return fdt_error_set(err, FDT_EINVAL,
                             "the statement ended the transaction (COMMIT, ROLLBACK or END in a "
                             "transaction's own SQL): what ran on this database before it is as "
                             "that statement left it, outside fdtserver's transaction");
    return rc;
}

/* A statement's (or a script's last) result: its error, or the rows it returned or
 * changed; res is cleared. */
static int exec_result(void *s, PGresult *res, long *rows, struct fdt_error *err)
{
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return fail(s, res, err, "statement failed");
    if (rows) {
        const char *n = PQcmdTuples(res);
        *rows = st == PGRES_TUPLES_OK ? PQntuples(res) : (n && *n ? atol(n) : 0);
    }
    PQclear(res);
    return 0;
}

static int exec_sql(void *s, const char *sql, long *rows, struct fdt_error *err)
{
    return exec_result(s, PQexec(PG(s), sql), rows, err);
}

/* A branch's first statement travels after its BEGIN (begin_sql) in one simple query. As
 * PQexec, but also telling whether that BEGIN ran: a script's syntax error is found before
 * any of it runs, leaving nothing open. */
static int exec_begun(struct pgs *ps, const char *sql, long *rows, bool *begun,
                      struct fdt_error *err)
{
    *begun = false;
    if (!PQsendQuery(ps->pg, sql))
        return fail(ps, NULL, err, "statement failed");
    PGresult *last = NULL;
    bool first = true;
    for (PGresult *res; (res = PQgetResult(ps->pg));) {
        ExecStatusType st = PQresultStatus(res);
        if (first && st == PGRES_COMMAND_OK)
            *begun = true;
        first = false;
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            PQclear(last);
            ps->broken = true; /* mid-COPY: the session is given up */
            PQclear(res);
            return fdt_error_set(err, FDT_EINVAL, "COPY is not supported in a transaction");
        }
        PQclear(last); /* the script stops at its first error: the last result is the answer */
        last = res;
    }
    return exec_result(ps, last, rows, err);
}

static int pg_exec(void *s, const char *sql, long *rows, struct fdt_error *err)
{
    struct pgs *ps = s;
    if (!ps->app)
        return exec_sql(s, sql, rows, err);
    const char *own = sql;
    bool prefixed = strncmp(own, PG_BEGIN "; ", sizeof(PG_BEGIN "; ") - 1) == 0;
    if (prefixed)
        own += sizeof(PG_BEGIN "; ") - 1;
    if (controls_transaction(own))
        return app_refused(err);
    bool open = PQtransactionStatus(ps->pg) != PQTRANS_IDLE;
    int rc = prefixed ? exec_begun(ps, sql, rows, &open, err) : exec_sql(s, sql, rows, err);
    return app_after(ps, open, rc, err);
}

static int pg_query_text(void *s, const char *sql, char *out, size_t size, struct fdt_error *err)
{
    PGconn *pg = PG(s);
    out[0] = '\0';
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return fail(s, res, err, "query failed");
    if (PQntuples(res) > 0 && PQnfields(res) > 0)
        copy_text(out, PQgetvalue(res, 0, 0), size);
    PQclear(res);
    return 0;
}

static int pg_begin(void *s, struct fdt_error *err)
{
    return exec_sql(s, PG_BEGIN, NULL, err);
}

static int pg_rollback(void *s, struct fdt_error *err)
{
    PGconn *pg = PG(s);
    if (PQstatus(pg) != CONNECTION_OK)
        return 0; /* the server rolled it back when the connection died */
    if (PQtransactionStatus(pg) == PQTRANS_IDLE)
        return 0; /* nothing open (a failed PREPARE or COMMIT ended it) */
    return exec_sql(s, "ROLLBACK", NULL, err);
}

/* Run a statement with one quoted literal argument (a GID). */
static int exec_gid(void *s, const char *verb, const char *gid, struct fdt_error *err)
{
    PGconn *pg = PG(s);
    char *lit = PQescapeLiteral(pg, gid, strlen(gid));
    if (!lit)
        return fail(s, NULL, err, verb);
    char sql[512];
    snprintf(sql, sizeof(sql), "%s %s", verb, lit);
    PQfreemem(lit);
    return exec_sql(s, sql, NULL, err);
}

static int pg_prepare(void *s, const char *gid, struct fdt_error *err)
{
    PGconn *pg = PG(s);
    char *lit = PQescapeLiteral(pg, gid, strlen(gid));
    if (!lit)
        return fail(s, NULL, err, "PREPARE TRANSACTION");
    char sql[512];
    snprintf(sql, sizeof(sql), "PREPARE TRANSACTION %s", lit);
    PQfreemem(lit);
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return fail(s, res, err, "PREPARE TRANSACTION");
    PQclear(res);
    /* A transaction that had already failed "prepares" as a rollback: PostgreSQL answers
     * ROLLBACK as the command tag. Check that the GID really is prepared. */
    res = PQexecParams(pg, "SELECT 1 FROM pg_prepared_xacts WHERE gid = $1", 1, NULL, &gid, NULL,
                       NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return fail(s, res, err, "checking the prepared transaction");
    int n = PQntuples(res);
    PQclear(res);
    if (n != 1)
        return fdt_error_set(err, FDT_EDB,
                             "PREPARE TRANSACTION rolled back (the transaction "
                             "had failed)");
    return 0;
}

static int pg_commit(void *s, struct fdt_error *err)
{
    PGconn *pg = PG(s);
    PGresult *res = PQexec(pg, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return fail(s, res, err, "COMMIT");
    /* COMMIT of a failed transaction answers ROLLBACK. */
    bool rolled_back = strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
    PQclear(res);
    if (rolled_back)
        return fdt_error_set(err, FDT_EDB, "COMMIT rolled back (the transaction had failed)");
    return 0;
}

static int pg_commit_prepared(void *s, const char *gid, struct fdt_error *err)
{
    return exec_gid(s, "COMMIT PREPARED", gid, err);
}

static int pg_rollback_prepared(void *s, const char *gid, struct fdt_error *err)
{
    return exec_gid(s, "ROLLBACK PREPARED", gid, err);
}

static int pg_recover(void *s, const char *prefix, double min_age,
                      void (*fn)(const char *gid, double age, void *arg), void *arg,
                      struct fdt_error *err)
{
    PGconn *pg = PG(s);
    char age[32];
    snprintf(age, sizeof(age), "%.3f", min_age);
    const char *params[2] = {prefix, age};
    PGresult *res = PQexecParams(
        pg,
        "SELECT gid, extract(epoch FROM now() - prepared) FROM pg_prepared_xacts WHERE database = "
        "current_database() AND starts_with(gid, $1) AND prepared <= "
        "now() - make_interval(secs => $2::float8) ORDER BY prepared",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return fail(s, res, err, "listing prepared transactions");
    for (int i = 0; i < PQntuples(res); i++)
        fn(PQgetvalue(res, i, 0), atof(PQgetvalue(res, i, 1)), arg);
    PQclear(res);
    return 0;
}

static int pg_try_lock(void *s, const char *name, struct fdt_error *err)
{
    PGconn *pg = PG(s);
    const char *params[1] = {name};
    PGresult *res = PQexecParams(pg, "SELECT pg_try_advisory_lock(hashtext($1))", 1, NULL, params,
                                 NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return fail(s, res, err, "advisory lock");
    int got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return got;
}

static void pg_unlock(void *s, const char *name)
{
    PGconn *pg = PG(s);
    const char *params[1] = {name};
    PGresult *res =
        PQexecParams(pg, "SELECT pg_advisory_unlock(hashtext($1))", 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail(s, res, NULL, "advisory unlock"); /* the session is discarded if it must be */
    else
        PQclear(res);
}

static bool pg_retryable(const struct fdt_error *err)
{
    return err && err->code == FDT_ERETRY;
}

static void *pg_handle(void *s)
{
    return PG(s);
}

/* The name of sql's prepared statement on this session, preparing it on first use; NULL
 * when the cache is full (the statement then runs unprepared). */
static const char *prepared_name(struct pgs *ps, const char *sql, int n, int *rc,
                                 struct fdt_error *err)
{
    *rc = 0;
    for (int i = 0; i < ps->n_stmt; i++) {
        if (strcmp(ps->stmt[i].sql, sql) == 0)
            return ps->stmt[i].name;
    }
    if (ps->n_stmt == STMT_CACHE)
        return NULL;
    char *copy = strdup(sql);
    if (!copy) {
        *rc = fdt_error_set(err, FDT_ENOMEM, "out of memory");
        return NULL;
    }
    int i = ps->n_stmt;
    snprintf(ps->stmt[i].name, sizeof(ps->stmt[i].name), "fdt%d", i);
    PGresult *res = PQprepare(ps->pg, ps->stmt[i].name, sql, n, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        free(copy);
        *rc = fail(ps, res, err, "statement failed");
        return NULL;
    }
    PQclear(res);
    ps->stmt[i].sql = copy;
    ps->n_stmt++;
    return ps->stmt[i].name;
}

#define QUERY_PARAMS_MAX 32

/* Collect a statement's result into out (and clear it). */
static int collect(struct pgs *ps, PGresult *res, struct fdt_sql_rows *out, struct fdt_error *err)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        ps->broken = true; /* mid-COPY: the session is given up */
        PQclear(res);
        return fdt_error_set(err, FDT_EINVAL, "COPY is not supported by fdt_txn_query");
    }
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        /* The server no longer has a statement we cached (DEALLOCATE, a pooler), or its
         * result type changed (ALTER TABLE): the session's cache is stale, so the session
         * is discarded when released and a new one starts with an empty cache. */
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && (strcmp(state, "26000") == 0 || strcmp(state, "0A000") == 0 ||
                      strcmp(state, "42P05") == 0))
            ps->broken = true;
        return fail(ps, res, err, "statement failed");
    }
    int cols = PQnfields(res);
    int rc = host->rows_cols(out, cols);
    const char *vals[QUERY_PARAMS_MAX];
    size_t lens[QUERY_PARAMS_MAX];
    if (cols > QUERY_PARAMS_MAX)
        rc = fdt_error_set(err, FDT_EINVAL, "more than %d result columns", QUERY_PARAMS_MAX);
    for (int r = 0; rc == 0 && r < PQntuples(res); r++) {
        for (int c = 0; c < cols; c++) {
            vals[c] = PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
            lens[c] = (size_t)PQgetlength(res, r, c);
        }
        rc = host->rows_add(out, vals, lens);
    }
    const char *changed = PQcmdTuples(res);
    host->rows_set_changes(out, changed && *changed ? atol(changed) : 0);
    PQclear(res);
    if (rc == FDT_ENOMEM)
        fdt_error_set(err, FDT_ENOMEM, "out of memory");
    return rc;
}

/* One statement, prepared once per session; with begin, BEGIN goes first in the same
 * round trip (pipeline mode: both are sent, then both answers read). */
static int run_query(void *s, bool begin, const char *sql, const struct fdt_sql_param *params,
                     int n, struct fdt_sql_rows *out, bool *begun, struct fdt_error *err)
{
    *begun = false;
    PGconn *pg = PG(s);
    if (n > QUERY_PARAMS_MAX)
        return fdt_error_set(err, FDT_EINVAL, "more than %d parameters", QUERY_PARAMS_MAX);
    /* COPY needs its own protocol (PQputCopyData ...): refused before anything is sent. */
    const char *word = sql + strspn(sql, " \t\r\n(");
    if (strncasecmp(word, "COPY", 4) == 0)
        return fdt_error_set(err, FDT_EINVAL, "COPY is not supported by fdt_txn_query");
    char ints[QUERY_PARAMS_MAX][24];
    const char *values[QUERY_PARAMS_MAX];
    for (int i = 0; i < n; i++) {
        switch (params[i].type) {
        case FDT_SQL_INT:
            snprintf(ints[i], sizeof(ints[i]), "%lld", (long long)params[i].i);
            values[i] = ints[i];
            break;
        case FDT_SQL_TEXT:
            values[i] = params[i].s;
            break;
        default:
            values[i] = NULL;
            break;
        }
    }
    int prc;
    const char *name = prepared_name(s, sql, n, &prc, err);
    if (prc < 0)
        return prc;
    if (!begin) {
        PGresult *res = name ? PQexecPrepared(pg, name, n, values, NULL, NULL, 0)
                             : PQexecParams(pg, sql, n, NULL, values, NULL, NULL, 0);
        return collect(s, res, out, err);
    }
    struct pgs *ps = s;
    if (!PQenterPipelineMode(pg))
        return fail(s, NULL, err, "pipeline mode");
    bool sent = PQsendQueryParams(pg, PG_BEGIN, 0, NULL, NULL, NULL, NULL, 0) &&
                (name ? PQsendQueryPrepared(pg, name, n, values, NULL, NULL, 0)
                      : PQsendQueryParams(pg, sql, n, NULL, values, NULL, NULL, 0)) &&
                PQpipelineSync(pg);
    if (!sent) {
        /* Half a pipeline may be queued without its sync: the session's state is not
         * known any more. */
        ps->broken = true;
        return fail(s, NULL, err, "sending BEGIN and the statement");
    }
    /* Read every result up to the sync point, whatever happens, so that the session stays
     * usable: BEGIN's, the statement's, then the sync. A NULL ends one statement's
     * results; two in a row mean nothing more is coming. */
    int rc = 0, step = 0, nulls = 0;
    for (;;) {
        PGresult *res = PQgetResult(pg);
        if (!res) {
            if (PQstatus(pg) != CONNECTION_OK || ++nulls > 1) {
                ps->broken = true;
                break;
            }
            continue;
        }
        nulls = 0;
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_FATAL_ERROR && !PQresultErrorField(res, PG_DIAG_SQLSTATE))
            ps->broken = true; /* not the server's error: as in fail() */
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            ps->broken = true;
            PQclear(res);
            if (rc == 0)
                rc = fdt_error_set(err, FDT_EINVAL, "COPY is not supported by fdt_txn_query");
            break;
        }
        if (step == 0) {
            *begun = st == PGRES_COMMAND_OK;
            if (st != PGRES_COMMAND_OK && rc == 0)
                rc = fail(s, res, err, "BEGIN");
            else
                PQclear(res);
        } else if (step == 1 && rc == 0) {
            rc = collect(ps, res, out, err);
        } else {
            PQclear(res);
        }
        step++;
    }
    if (!ps->broken && !PQexitPipelineMode(pg))
        ps->broken = true;
    if (rc == 0 && (step < 2 || ps->broken))
        rc = fdt_error_set(err, FDT_EDOWN, "the statement's result was lost: %s",
                           PQerrorMessage(pg));
    return rc;
}

static int pg_query(void *s, const char *sql, const struct fdt_sql_param *params, int n,
                    struct fdt_sql_rows *out, struct fdt_error *err)
{
    struct pgs *ps = s;
    if (ps->app && controls_transaction(sql))
        return app_refused(err);
    bool open = PQtransactionStatus(ps->pg) != PQTRANS_IDLE, begun;
    int rc = run_query(s, false, sql, params, n, out, &begun, err);
    return app_after(ps, open, rc, err);
}

static int pg_begin_query(void *s, const char *sql, const struct fdt_sql_param *params, int n,
                          struct fdt_sql_rows *out, struct fdt_error *err)
{
    struct pgs *ps = s;
    if (ps->app && controls_transaction(sql))
        return app_refused(err);
    bool begun;
    int rc = run_query(s, true, sql, params, n, out, &begun, err);
    return app_after(ps, begun, rc, err);
}

static void pg_app_sql(void *s, bool on)
{
    ((struct pgs *)s)->app = on;
}

static const struct fdt_rm_driver driver = {
    .abi_version = FDT_RM_ABI_VERSION,
    .name = "postgresql",
    .can_prepare = true,
    .open = pg_open,
    .close = pg_close,
    .alive = pg_alive,
    .exec = pg_exec,
    .query_text = pg_query_text,
    .begin = pg_begin,
    .begin_sql = PG_BEGIN,
    .rollback = pg_rollback,
    .prepare = pg_prepare,
    .commit = pg_commit,
    .commit_prepared = pg_commit_prepared,
    .rollback_prepared = pg_rollback_prepared,
    .recover = pg_recover,
    .try_lock = pg_try_lock,
    .unlock = pg_unlock,
    .retryable = pg_retryable,
    .handle = pg_handle,
    .query = pg_query,
    .begin_query = pg_begin_query,
    .app_sql = pg_app_sql,
};

const struct fdt_rm_driver *fdt_rm_driver_v1(const struct fdt_rm_host *h)
{
    if (!h || h->abi_version != FDT_RM_ABI_VERSION || h->size < sizeof(*h))
        return NULL;
    host = h;
    return &driver;
}

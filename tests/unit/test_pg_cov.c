#include "fdt_config.h"

#include "alloc_fault.h"
#include "txn/rm.h"
#include "util/util.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The PostgreSQL driver's error paths, against a real server: the database named by
 * FDT_TEST_PG_DSN (tests/e2e/test_15_coverage_pg.py runs this with a fresh database of its
 * PostgreSQL fixture). Without it the test is skipped (exit 77). The driver is compiled
 * into this program and given the host interface as a load would. */
static const struct fdt_rm_driver *drv;
static struct fdt_resource_cfg cfg;

/* libpq as the driver sees it (linked with -Wl,--wrap for these two): the drop_at-th call
 * of PQgetResult once armed reads a result and answers NULL instead, and PQexitPipelineMode
 * leaves pipeline mode but says it could not — libpq misbehaving where no test can make
 * it. */
PGresult *__real_PQgetResult(PGconn *conn);
PGresult *__wrap_PQgetResult(PGconn *conn);
int __real_PQexitPipelineMode(PGconn *conn);
int __wrap_PQexitPipelineMode(PGconn *conn);
static int drop_at, getresult_calls;
static bool exit_fails;

PGresult *__wrap_PQgetResult(PGconn *conn)
{
    PGresult *r = __real_PQgetResult(conn);
    if (drop_at && ++getresult_calls == drop_at) {
        PQclear(r);
        return NULL;
    }
    return r;
}

int __wrap_PQexitPipelineMode(PGconn *conn)
{
    int ok = __real_PQexitPipelineMode(conn);
    return exit_fails ? 0 : ok;
}

static void *open_session(void)
{
    struct fdt_error err = {0};
    void *s = NULL;
    if (drv->open(&cfg, &s, &err) != 0)
        fail_msg("open: %s", err.msg);
    return s;
}

static int query(void *s, bool begin, const char *sql, const struct fdt_sql_param *p, int n,
                 struct fdt_error *err)
{
    struct fdt_sql_rows *r = fdt__sql_rows_new();
    assert_non_null(r);
    memset(err, 0, sizeof(*err));
    int rc = begin ? drv->begin_query(s, sql, p, n, r, err) : drv->query(s, sql, p, n, r, err);
    fdt_sql_rows_free(r);
    return rc;
}

/* A transaction that failed cannot be prepared or committed: PostgreSQL answers ROLLBACK,
 * and the driver says so instead of reporting success. Nothing else can run in it. */
static void test_failed_transaction(void **state)
{
    (void)state;
    void *s = open_session();
    struct fdt_error err = {0};
    assert_int_equal(drv->begin(s, &err), 0);
    assert_int_equal(drv->exec(s, "SELEKT 1", NULL, &err), FDT_EDB);
    assert_int_equal(drv->prepare(s, "fdt1:cov:pg:1:YQ:", &err), FDT_EDB);
    assert_string_equal(err.msg, "PREPARE TRANSACTION rolled back (the transaction had failed)");

    assert_int_equal(drv->begin(s, &err), 0);
    assert_int_equal(drv->exec(s, "SELEKT 1", NULL, &err), FDT_EDB);
    assert_int_equal(drv->commit(s, &err), FDT_EDB);
    assert_string_equal(err.msg, "COMMIT rolled back (the transaction had failed)");

    assert_int_equal(drv->begin(s, &err), 0);
    assert_int_equal(drv->exec(s, "SELEKT 1", NULL, &err), FDT_EDB);
    assert_int_equal(drv->recover(s, "fdt1:", 0.0, NULL, NULL, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "listing prepared transactions: 25P02 "));
    /* BEGIN with the first statement (one round trip) reads both answers, and the session
     * stays usable once the transaction is rolled back. */
    assert_int_equal(query(s, true, "SELECT 1", NULL, 0, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "25P02 "));
    assert_true(drv->alive(s));
    assert_int_equal(drv->rollback(s, &err), 0);
    assert_int_equal(query(s, true, "SELECT 1", NULL, 0, &err), 0);
    assert_int_equal(drv->rollback(s, &err), 0);
    drv->close(s);
}

/* A GID that is not valid text in the connection's encoding cannot even be quoted. */
static void test_unquotable_gid(void **state)
{
    (void)state;
    void *s = open_session();
    struct fdt_error err = {0};
    const char *bad = "fdt1:\xff\xfe:pg:1:YQ:";
    assert_int_equal(drv->commit_prepared(s, bad, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "COMMIT PREPARED: "));
    assert_non_null(strstr(err.msg, "invalid"));
    assert_int_equal(drv->rollback_prepared(s, bad, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "ROLLBACK PREPARED: "));
    assert_int_equal(drv->begin(s, &err), 0);
    assert_int_equal(drv->prepare(s, bad, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "PREPARE TRANSACTION: "));
    assert_int_equal(drv->rollback(s, &err), 0);
    drv->close(s);
}

/* fdt_txn_query's refusals: too many parameters or result columns, and COPY, also when a
 * comment hides the keyword from the check made before sending (the session is then given
 * up: its protocol state is COPY). */
static void test_query_refusals(void **state)
{
    (void)state;
    void *s = open_session();
    struct fdt_error err = {0};
    struct fdt_sql_param many[33];
    for (int i = 0; i < 33; i++)
        many[i] = FDT_SQL_INT_P(i);
    assert_int_equal(query(s, false, "SELECT $1", many, 33, &err), FDT_EINVAL);
    assert_string_equal(err.msg, "more than 32 parameters");

    char wide[256] = "SELECT 1";
    for (int i = 2; i <= 33; i++)
        snprintf(wide + strlen(wide), sizeof(wide) - strlen(wide), ", %d", i);
    assert_int_equal(query(s, false, wide, NULL, 0, &err), FDT_EINVAL);
    assert_string_equal(err.msg, "more than 32 result columns");
    assert_true(drv->alive(s));

    assert_int_equal(query(s, false, "COPY (SELECT 1) TO STDOUT", NULL, 0, &err), FDT_EINVAL);
    assert_true(drv->alive(s)); /* refused before anything was sent */
    assert_int_equal(query(s, false, "/* hidden */ COPY (SELECT 1) TO STDOUT", NULL, 0, &err),
                     FDT_EINVAL);
    assert_string_equal(err.msg, "COPY is not supported by fdt_txn_query");
    assert_false(drv->alive(s));
    drv->close(s);

    s = open_session();
    assert_int_equal(query(s, true, "/* hidden */ COPY (SELECT 2) TO STDOUT", NULL, 0, &err),
                     FDT_EINVAL);
    assert_string_equal(err.msg, "COPY is not supported by fdt_txn_query");
    assert_false(drv->alive(s));
    drv->close(s);

    /* Not refused: a session's statements past its cache of 64 prepared ones run
     * unprepared, with the right answer. */
    s = open_session();
    for (int i = 0; i < 66; i++) {
        char sql[64];
        snprintf(sql, sizeof(sql), "SELECT $1::int + %d", i);
        struct fdt_sql_param one = FDT_SQL_INT_P(1000);
        struct fdt_sql_rows *r = fdt__sql_rows_new();
        assert_non_null(r);
        assert_int_equal(drv->query(s, sql, &one, 1, r, &err), 0);
        assert_int_equal(fdt_sql_int(r, 0, 0), 1000 + i);
        fdt_sql_rows_free(r);
    }
    struct fdt_sql_rows *r = fdt__sql_rows_new();
    assert_non_null(r);
    assert_int_equal(drv->query(s, "SELECT count(*) FROM pg_prepared_statements", NULL, 0, r, &err),
                     0);
    assert_int_equal(fdt_sql_int(r, 0, 0), 64);
    fdt_sql_rows_free(r);
    drv->close(s);
}

/* The server ends the session between statements (an administrator, a restart): the next
 * statement with BEGIN fails, and the session is dead, so the pool discards it. */
static void test_session_killed(void **state)
{
    (void)state;
    void *victim = open_session();
    void *killer = open_session();
    struct fdt_error err = {0};
    /* The statement is prepared on the session before it dies: only its execution is sent
     * after. */
    assert_int_equal(query(victim, true, "SELECT 1", NULL, 0, &err), 0);
    assert_int_equal(drv->rollback(victim, &err), 0);
    char pid[16];
    assert_int_equal(drv->query_text(victim, "SELECT pg_backend_pid()", pid, sizeof(pid), &err), 0);
    char sql[64];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%s)", pid);
    char out[8];
    assert_int_equal(drv->query_text(killer, sql, out, sizeof(out), &err), 0);
    assert_string_equal(out, "t");
    /* The server's last word (57P01) may be read as BEGIN's answer before libpq sees the
     * connection closed: a statement error then, else the resource is down. */
    int rc = query(victim, true, "SELECT 1", NULL, 0, &err);
    assert_true(rc == FDT_EDB || rc == FDT_EDOWN);
    assert_false(drv->alive(victim));
    /* Giving back a lock on it: nothing to give back, and it stays given up. */
    drv->unlock(victim, "fdt-cov");
    assert_false(drv->alive(victim));
    drv->close(victim);
    drv->close(killer);
}

/* A session whose server went away, known to libpq as closed: a statement with BEGIN is
 * not sent at all, and the session is given up. */
static void test_send_on_closed_session(void **state)
{
    (void)state;
    void *victim = open_session();
    void *killer = open_session();
    struct fdt_error err = {0};
    assert_int_equal(query(victim, true, "SELECT 1", NULL, 0, &err), 0);
    assert_int_equal(drv->rollback(victim, &err), 0);
    char pid[16];
    assert_int_equal(drv->query_text(victim, "SELECT pg_backend_pid()", pid, sizeof(pid), &err), 0);
    char sql[64];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%s)", pid);
    char out[8];
    assert_int_equal(drv->query_text(killer, sql, out, sizeof(out), &err), 0);
    assert_string_equal(out, "t");
    /* libpq sees the close on a read: at most a few statements (bounded). */
    PGconn *pg = drv->handle(victim);
    for (int i = 0; i < 5 && PQstatus(pg) == CONNECTION_OK; i++)
        assert_int_not_equal(drv->exec(victim, "SELECT 1", NULL, &err), 0);
    assert_int_equal(PQstatus(pg), CONNECTION_BAD);
    /* "SELECT 1" is prepared already: nothing is asked of the server before the send. */
    assert_int_equal(query(victim, true, "SELECT 1", NULL, 0, &err), FDT_EDOWN);
    assert_non_null(strstr(err.msg, "sending BEGIN and the statement: "));
    assert_false(drv->alive(victim));
    /* The application's first statement after its BEGIN (one script): not sent either,
     * and nothing was open to end. */
    char both[96];
    snprintf(both, sizeof(both), "%s; SELECT 1", drv->begin_sql);
    drv->app_sql(victim, true);
    assert_int_equal(drv->exec(victim, both, NULL, &err), FDT_EDOWN);
    assert_non_null(strstr(err.msg, "statement failed: "));
    drv->app_sql(victim, false);
    drv->close(victim);
    drv->close(killer);
}

/* An application that sent a command on the raw handle and did not read its answer: a
 * statement with BEGIN cannot enter pipeline mode, says so, and the session works again
 * once the answer is read. */
static void test_raw_handle_busy(void **state)
{
    (void)state;
    void *s = open_session();
    PGconn *pg = drv->handle(s);
    struct fdt_error err = {0};
    /* Prepared before: only the pipeline is asked for. */
    assert_int_equal(query(s, true, "SELECT 2", NULL, 0, &err), 0);
    assert_int_equal(drv->rollback(s, &err), 0);
    assert_int_equal(PQsendQuery(pg, "SELECT 1"), 1);
    assert_int_equal(query(s, true, "SELECT 2", NULL, 0, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "pipeline mode: "));
    PGresult *res;
    while ((res = PQgetResult(pg)) != NULL)
        PQclear(res);
    if (query(s, true, "SELECT 2", NULL, 0, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(drv->rollback(s, &err), 0);
    drv->close(s);
}

/* The driver's own allocations failing (libpq's are its own): the session, a statement's
 * cache entry, the rows. Each is FDT_ENOMEM; the same call then works. */
static void test_out_of_memory(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    void *s = NULL;
    alloc_fault_arm(1, false);
    assert_int_equal(drv->open(&cfg, &s, &err), FDT_ENOMEM);
    assert_true(alloc_fault_hit());
    alloc_fault_disarm();
    assert_null(s);
    assert_string_equal(err.msg, "out of memory");
    s = open_session();
    for (unsigned n = 1;; n++) {
        struct fdt_sql_rows *r = fdt__sql_rows_new();
        assert_non_null(r);
        memset(&err, 0, sizeof(err));
        alloc_fault_arm(n, false);
        int rc = drv->query(s, "SELECT 'one', 2", NULL, 0, r, &err);
        bool hit = alloc_fault_hit();
        alloc_fault_disarm();
        if (!hit) {
            assert_int_equal(rc, 0);
            assert_string_equal(fdt_sql_text(r, 0, 0), "one");
            fdt_sql_rows_free(r);
            assert_true(n > 2);
            break;
        }
        assert_int_equal(rc, FDT_ENOMEM);
        assert_string_equal(err.msg, "out of memory");
        fdt_sql_rows_free(r);
    }
    assert_true(drv->alive(s));
    drv->close(s);
}

/* What fdt_txn_join hands an application: the libpq connection itself; and which errors
 * are worth running the transaction again (serialization failures, deadlocks). */
static void test_handle_and_retryable(void **state)
{
    (void)state;
    void *s = open_session();
    PGconn *pg = drv->handle(s);
    assert_non_null(pg);
    PGresult *res = PQexec(pg, "SELECT 40 + 2");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), "42");
    PQclear(res);
    struct fdt_error err = {0};
    assert_int_equal(
        drv->exec(s, "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$", NULL, &err),
        FDT_ERETRY);
    assert_true(drv->retryable(&err));
    assert_int_equal(drv->exec(s, "SELEKT", NULL, &err), FDT_EDB);
    assert_false(drv->retryable(&err));
    assert_false(drv->retryable(NULL));
    drv->close(s);
}

/* The application's SQL in a branch (rm.h, app_sql) may not begin or end the transaction:
 * the first word is read past blanks and (nested) comments; what only a script's later
 * statement does is seen afterwards. Other statements, savepoints included, run. */
static void test_app_transaction_control(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "COMMIT",
        "  commit work",
        "-- a comment\nEND",
        "/* one /* nested */ comment */ Rollback",
        "ROLLBACK WORK",
        "ROLLBACK TRANSACTION AND CHAIN",
        "ABORT",
        "BEGIN",
        "START TRANSACTION",
        "PREPARE TRANSACTION 'x'",
        "prepare\ttransaction 'x'",
        "COMMIT PREPARED 'x'",
        "ROLLBACK PREPARED 'x'",
    };
    static const char *const allowed[] = {
        "SELECT 1",
        "SAVEPOINT a",
        "ROLLBACK TO a",
        "ROLLBACK WORK TO SAVEPOINT a",
        "ROLLBACK TRANSACTION TO a",
        "RELEASE a",
        "PREPARE p AS SELECT 1",
        "-- only a comment\nSELECT 2",
        "/* unended",
    };
    void *s = open_session();
    struct fdt_error err = {0};
    assert_int_equal(drv->begin(s, &err), 0);
    drv->app_sql(s, true);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        memset(&err, 0, sizeof(err));
        if (drv->exec(s, refused[i], NULL, &err) != FDT_EINVAL)
            fail_msg("exec ran %s", refused[i]);
        assert_non_null(strstr(err.msg, "may not begin or end it"));
        assert_int_equal(query(s, false, refused[i], NULL, 0, &err), FDT_EINVAL);
        assert_int_equal(query(s, true, refused[i], NULL, 0, &err), FDT_EINVAL);
    }
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        memset(&err, 0, sizeof(err));
        int rc = drv->exec(s, allowed[i], NULL, &err);
        if (rc != 0 && strcmp(allowed[i], "/* unended") != 0)
            fail_msg("%s: %s", allowed[i], err.msg);
    }
    /* The branch's first statement travels after the driver's own BEGIN. */
    drv->app_sql(s, false);
    assert_int_equal(drv->rollback(s, &err), 0);
    drv->app_sql(s, true);
    char both[128];
    snprintf(both, sizeof(both), "%s; COMMIT", drv->begin_sql);
    assert_int_equal(drv->exec(s, both, NULL, &err), FDT_EINVAL);
    snprintf(both, sizeof(both), "%s; SELECT 1", drv->begin_sql);
    assert_int_equal(drv->exec(s, both, NULL, &err), 0);
    /* A script that ends the transaction in a later statement: seen afterwards. */
    assert_int_equal(drv->exec(s, "SELECT 1; COMMIT", NULL, &err), FDT_EINVAL);
    assert_non_null(strstr(err.msg, "the statement ended the transaction"));
    /* ... and fails after it: what the caller must know is still that it ended. */
    drv->app_sql(s, false);
    assert_int_equal(drv->begin(s, &err), 0);
    drv->app_sql(s, true);
    assert_int_equal(drv->exec(s, "SELECT 1; COMMIT; SELECT 1 / 0", NULL, &err), FDT_EINVAL);
    assert_non_null(strstr(err.msg, "the statement ended the transaction"));
    /* A statement failing inside the transaction leaves it open: its own error. */
    drv->app_sql(s, false);
    assert_int_equal(drv->begin(s, &err), 0);
    drv->app_sql(s, true);
    assert_int_equal(drv->exec(s, "SELEKT", NULL, &err), FDT_EDB);
    drv->app_sql(s, false);
    assert_int_equal(drv->rollback(s, &err), 0);
    /* A branch's first statement failing before its BEGIN ran left nothing open: its own
     * error (a script's syntax error, found before any of it runs; a statement that cannot
     * be prepared; COPY). One failing after its BEGIN ran leaves the transaction in error. */
    drv->app_sql(s, true);
    snprintf(both, sizeof(both), "%s; SELECT 1; COMMIT; SELEKT", drv->begin_sql);
    assert_int_equal(drv->exec(s, both, NULL, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "syntax error"));
    snprintf(both, sizeof(both), "%s; SELECT 1; COMMIT; SELECT 1 / 0", drv->begin_sql);
    assert_int_equal(drv->exec(s, both, NULL, &err), FDT_EINVAL);
    assert_non_null(strstr(err.msg, "the statement ended the transaction"));
    snprintf(both, sizeof(both), "%s; SELECT * FROM nosuch", drv->begin_sql);
    assert_int_equal(drv->exec(s, both, NULL, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "nosuch"));
    long rows = -1;
    snprintf(both, sizeof(both), "%s; SELECT 1 UNION SELECT 2", drv->begin_sql);
    drv->app_sql(s, false);
    assert_int_equal(drv->rollback(s, &err), 0);
    drv->app_sql(s, true);
    assert_int_equal(drv->exec(s, both, &rows, &err), 0);
    assert_int_equal(rows, 2);
    drv->app_sql(s, false);
    assert_int_equal(drv->rollback(s, &err), 0);
    drv->app_sql(s, true);
    assert_int_equal(query(s, true, "SELECT * FROM nosuch", NULL, 0, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "nosuch"));
    assert_int_equal(query(s, true, "COPY nosuch TO STDOUT", NULL, 0, &err), FDT_EINVAL);
    assert_non_null(strstr(err.msg, "COPY is not supported"));
    assert_int_equal(query(s, true, "SELECT 1 / 0", NULL, 0, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "division by zero"));
    drv->app_sql(s, false);
    assert_int_equal(drv->rollback(s, &err), 0);
    /* The driver's own statements are not the application's. */
    assert_int_equal(drv->begin(s, &err), 0);
    assert_int_equal(drv->commit(s, &err), 0);
    assert_true(drv->alive(s));
    drv->close(s);
    /* COPY in a script: the session, mid-COPY, is given up. */
    s = open_session();
    drv->app_sql(s, true);
    snprintf(both, sizeof(both), "%s; COPY (SELECT 1) TO STDOUT", drv->begin_sql);
    assert_int_equal(drv->exec(s, both, NULL, &err), FDT_EINVAL);
    assert_non_null(strstr(err.msg, "COPY is not supported"));
    assert_false(drv->alive(s));
    drv->close(s);
}

/* BEGIN and a statement in one pipeline: when its sync never comes (libpq answers nothing
 * more), or pipeline mode cannot be left after it, the statement's result cannot be trusted:
 * FDT_EDOWN, and the session is given up. */
static void test_pipeline_lost(void **state)
{
    (void)state;
    void *s = open_session();
    struct fdt_error err = {0};
    getresult_calls = 0;
    drop_at = 5; /* BEGIN's result, NULL, the statement's, NULL, then the sync */
    int rc = query(s, true, "SELECT 1", NULL, 0, &err);
    drop_at = 0;
    assert_int_equal(rc, FDT_EDOWN);
    assert_non_null(strstr(err.msg, "the statement's result was lost"));
    assert_false(drv->alive(s));
    drv->close(s);
    s = open_session();
    exit_fails = true;
    rc = query(s, true, "SELECT 1", NULL, 0, &err);
    exit_fails = false;
    assert_int_equal(rc, FDT_EDOWN);
    assert_false(drv->alive(s));
    drv->close(s);
}

int main(void)
{
    const char *dsn = getenv("FDT_TEST_PG_DSN");
    if (!dsn || !*dsn) {
        fprintf(stderr, "FDT_TEST_PG_DSN not set: skipped (tests/e2e/test_15_coverage_pg.py "
                        "runs this test against its PostgreSQL)\n");
        return 77;
    }
    snprintf(cfg.name, sizeof(cfg.name), "pg");
    snprintf(cfg.driver, sizeof(cfg.driver), "postgresql");
    snprintf(cfg.dsn, sizeof(cfg.dsn), "%s", dsn);
    drv = fdt_rm_driver_v1(&fdt__rm_host);
    if (!drv)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_transaction),
        cmocka_unit_test(test_unquotable_gid),
        cmocka_unit_test(test_query_refusals),
        cmocka_unit_test(test_session_killed),
        cmocka_unit_test(test_handle_and_retryable),
        cmocka_unit_test(test_send_on_closed_session),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_raw_handle_busy),
        cmocka_unit_test(test_app_transaction_control),
        cmocka_unit_test(test_pipeline_lost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "fdt_config.h"

#include "sqlite/sqlite.h"
#include "txn/rm.h"
#include "util/util.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The driver, linked statically: main() hands it the host interface as a load would. */
static const struct fdt_rm_driver *drv;

static void make_cfg(struct fdt_resource_cfg *cfg, char *dir)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->name, sizeof(cfg->name), "ledger");
    snprintf(cfg->driver, sizeof(cfg->driver), "sqlite");
    snprintf(cfg->path, sizeof(cfg->path), "%s/ledger.db", dir);
}

/* make_cfg with group commit on or off (max members, window in seconds). */
static void group_cfg(struct fdt_resource_cfg *cfg, char *dir, bool group, int max, double window)
{
    make_cfg(cfg, dir);
    cfg->group_commit = group;
    cfg->group_commit_max = max;
    cfg->group_commit_window = window;
}

static long count(void *s)
{
    long rows = -1;
    struct fdt_error err = {0};
    assert_int_equal(drv->exec(s, "SELECT * FROM t", &rows, &err), 0);
    return rows;
}

static void test_commit_rollback_durable(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    make_cfg(&cfg, dir);
    struct fdt_error err = {0};
    void *s = NULL;
    assert_int_equal(drv->open(&cfg, &s, &err), 0);
    assert_int_equal(drv->exec(s, "CREATE TABLE t (x INTEGER)", NULL, &err), 0);

    assert_int_equal(drv->begin(s, &err), 0);
    long rows = 0;
    assert_int_equal(drv->exec(s, "INSERT INTO t VALUES (1), (2)", &rows, &err), 0);
    assert_int_equal(rows, 2);
    assert_int_equal(drv->rollback(s, &err), 0);
    assert_int_equal(count(s), 0);
    /* Rollback outside a transaction is harmless (valid in every state). */
    assert_int_equal(drv->rollback(s, &err), 0);

    assert_int_equal(drv->begin(s, &err), 0);
    assert_int_equal(drv->exec(s, "INSERT INTO t VALUES (3)", NULL, &err), 0);
    assert_int_equal(drv->commit(s, &err), 0);
    drv->close(s);

    /* A new session sees the committed row: it is in the file. */
    assert_int_equal(drv->open(&cfg, &s, &err), 0);
    assert_int_equal(count(s), 1);
    /* SQLite cannot prepare: a clear error, not a silent one-phase commit. */
    assert_int_equal(drv->begin(s, &err), 0);
    assert_int_equal(drv->prepare(s, "fdt1:n:ledger:1:Bw:", &err), FDT_ETXNSTATE);
    assert_non_null(strstr(err.msg, "cannot prepare"));
    assert_int_equal(drv->rollback(s, &err), 0);
    /* A bad statement names the problem. */
    assert_int_equal(drv->exec(s, "SELEKT 1", NULL, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "syntax error"));
    drv->close(s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static struct fdt_sql_rows *query(void *s, const char *sql, const struct fdt_sql_param *p, int n)
{
    struct fdt_error err = {0};
    struct fdt_sql_rows *r = fdt__sql_rows_new();
    assert_non_null(r);
    int rc = drv->query(s, sql, p, n, r, &err);
    if (rc != 0)
        fail_msg("%s: %s", sql, err.msg);
    return r;
}

static void test_query_params_and_rows(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    make_cfg(&cfg, dir);
    struct fdt_error err = {0};
    void *s = NULL;
    assert_int_equal(drv->open(&cfg, &s, &err), 0);
    assert_int_equal(
        drv->exec(s, "CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)", NULL, &err),
        0);
    /* The same statement many times: prepared once, then taken from the cache; more
     * different statements than the cache holds still work. */
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n'%d", i);
        struct fdt_sql_param p[2] = {FDT_SQL_TEXT_P(name), FDT_SQL_INT_P(i * 1000000000LL)};
        struct fdt_sql_rows *r =
            query(s, "INSERT INTO a (name, n) VALUES ($1, $2) RETURNING id", p, 2);
        assert_int_equal(fdt_sql_nrows(r), 1);
        assert_int_equal(fdt_sql_int(r, 0, 0), i + 1);
        assert_int_equal(fdt_sql_changes(r), 1);
        fdt_sql_rows_free(r);
        char other[64];
        snprintf(other, sizeof(other), "SELECT %d, $1", i);
        struct fdt_sql_param q[1] = {FDT_SQL_NULL_P};
        r = query(s, other, q, 1);
        assert_int_equal(fdt_sql_int(r, 0, 0), i);
        assert_null(fdt_sql_text(r, 0, 1));
        fdt_sql_rows_free(r);
    }
    /* Parameters are values, never SQL: the quote in the name is stored as is. */
    struct fdt_sql_param p[1] = {FDT_SQL_INT_P(39LL * 1000000000LL)};
    struct fdt_sql_rows *r = query(s, "SELECT name, n, id FROM a WHERE n >= $1", p, 1);
    assert_int_equal(fdt_sql_nrows(r), 1);
    assert_int_equal(fdt_sql_ncols(r), 3);
    assert_string_equal(fdt_sql_text(r, 0, 0), "n'39");
    assert_int_equal(fdt_sql_int(r, 0, 1), 39000000000LL);
    assert_null(fdt_sql_text(r, 1, 0)); /* out of range */
    assert_int_equal(fdt_sql_int(r, 0, 7), 0);
    fdt_sql_rows_free(r);
    /* An UPDATE reports the rows it changed, and no rows. */
    r = query(s, "UPDATE a SET n = n + 1 WHERE id <= $1", p, 0);
    fdt_sql_rows_free(r);
    struct fdt_sql_param lim[1] = {FDT_SQL_INT_P(3)};
    r = query(s, "UPDATE a SET n = n + 1 WHERE id <= $1", lim, 1);
    assert_int_equal(fdt_sql_changes(r), 3);
    assert_int_equal(fdt_sql_nrows(r), 0);
    fdt_sql_rows_free(r);
    /* A bad statement is an error with the reason, and the session still works. */
    r = fdt__sql_rows_new();
    assert_int_equal(drv->query(s, "SELEKT $1", lim, 1, r, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "syntax error"));
    fdt_sql_rows_free(r);
    /* One statement only, as on PostgreSQL: a second one is refused, not ignored. */
    r = fdt__sql_rows_new();
    assert_int_equal(drv->query(s, "DELETE FROM a; SELECT 1", NULL, 0, r, &err), FDT_EINVAL);
    fdt_sql_rows_free(r);
    r = query(s, "SELECT count(*) FROM a;  ", NULL, 0);
    assert_int_equal(fdt_sql_int(r, 0, 0), 40);
    fdt_sql_rows_free(r);
    drv->close(s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_busy_is_retryable(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    make_cfg(&cfg, dir);
    struct fdt_error err = {0};
    void *a = NULL;
    void *b = NULL;
    assert_int_equal(drv->open(&cfg, &a, &err), 0);
    assert_int_equal(drv->open(&cfg, &b, &err), 0);
    assert_int_equal(drv->exec(b, "PRAGMA busy_timeout = 20", NULL, &err), 0);
    assert_int_equal(drv->begin(a, &err), 0);
    int rc = drv->begin(b, &err);
    assert_int_equal(rc, FDT_ERETRY);
    assert_true(drv->retryable(&err));
    assert_int_equal(drv->commit(a, &err), 0);
    assert_int_equal(drv->begin(b, &err), 0);
    assert_int_equal(drv->commit(b, &err), 0);
    drv->close(a);
    drv->close(b);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Group commit: threads, each with its own session, commit or roll back in turns on the
 * shared writer; what each was told is what the file holds. */
#define GC_THREADS 8
#define GC_ROUNDS  40

struct gc_worker {
    void *s;
    int id;
    int committed;
    int failed;
};

static void *gc_work(void *arg)
{
    struct gc_worker *w = arg;
    for (int i = 0; i < GC_ROUNDS; i++) {
        struct fdt_error err = {0};
        if (drv->begin(w->s, &err) < 0) {
            w->failed++;
            continue;
        }
        char sql[96];
        snprintf(sql, sizeof(sql), "INSERT INTO t VALUES (%d)", w->id * 1000 + i);
        int rc = drv->exec(w->s, sql, NULL, &err);
        if (rc == 0 && i % 4 != 3)
            rc = drv->commit(w->s, &err);
        else
            drv->rollback(w->s, &err);
        if (rc == 0 && i % 4 != 3)
            w->committed++;
    }
    return NULL;
}

static void rm_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_group_commit_threads(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    group_cfg(&cfg, dir, true, 5, 0.01);
    struct fdt_error err = {0};
    void *s0 = NULL;
    assert_int_equal(drv->open(&cfg, &s0, &err), 0);
    assert_int_equal(drv->exec(s0, "CREATE TABLE t (x INTEGER)", NULL, &err), 0);
    struct gc_worker w[GC_THREADS];
    pthread_t th[GC_THREADS];
    for (int i = 0; i < GC_THREADS; i++) {
        w[i] = (struct gc_worker){.id = i};
        assert_int_equal(drv->open(&cfg, &w[i].s, &err), 0);
        assert_int_equal(pthread_create(&th[i], NULL, gc_work, &w[i]), 0);
    }
    long committed = 0;
    for (int i = 0; i < GC_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failed, 0);
        committed += w[i].committed;
        drv->close(w[i].s);
    }
    assert_int_equal(committed, GC_THREADS * GC_ROUNDS * 3 / 4);
    assert_int_equal(count(s0), committed);
    drv->close(s0);
    rm_dir(dir);
}

struct spoiler {
    void *s;
    int begin_rc;
    int exec_rc;
};

/* Joins the batch after the main thread's request and ends its transaction (INSERT OR
 * ROLLBACK on a duplicate): the whole batch is gone. */
static void *spoil(void *arg)
{
    struct spoiler *sp = arg;
    struct fdt_error err = {0};
    sp->begin_rc = drv->begin(sp->s, &err);
    if (sp->begin_rc == 0) {
        sp->exec_rc = drv->exec(sp->s, "INSERT OR ROLLBACK INTO u VALUES (1)", NULL, &err);
        drv->rollback(sp->s, &err);
    }
    return NULL;
}

static void test_group_commit_batch_fails_together(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    group_cfg(&cfg, dir, true, 100, 10);
    struct fdt_error err = {0};
    void *a = NULL;
    struct spoiler sp = {0};
    assert_int_equal(drv->open(&cfg, &a, &err), 0);
    assert_int_equal(drv->open(&cfg, &sp.s, &err), 0);
    assert_int_equal(drv->exec(a, "CREATE TABLE u (x INTEGER UNIQUE)", NULL, &err), 0);

    /* A failing statement undoes only itself; rolling the request back undoes the rest. */
    assert_int_equal(drv->begin(a, &err), 0);
    assert_int_equal(drv->exec(a, "INSERT INTO u VALUES (7)", NULL, &err), 0);
    assert_int_equal(drv->exec(a, "INSERT INTO u VALUES (7)", NULL, &err), FDT_EDB);
    assert_int_equal(drv->rollback(a, &err), 0);

    assert_int_equal(drv->begin(a, &err), 0);
    assert_int_equal(drv->exec(a, "INSERT INTO u VALUES (1)", NULL, &err), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, spoil, &sp), 0);
    /* Ordering, not timing: wait until the spoiler waits for the writer. */
    while (fdt__sqlite_group_waiting(a) == 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    memset(&err, 0, sizeof(err));
    int rc = drv->commit(a, &err);
    pthread_join(th, NULL);
    assert_int_equal(sp.begin_rc, 0);
    assert_int_equal(sp.exec_rc, FDT_EDB);
    /* a was released into the batch, then the spoiler ended the batch's transaction: a is
     * told it failed, and nothing of it is in the file. */
    assert_int_equal(rc, FDT_ERETRY);
    assert_non_null(strstr(err.msg, "rolled back with its batch"));
    assert_int_equal(drv->exec(a, "SELECT * FROM u", NULL, &err), 0);
    long rows = -1;
    assert_int_equal(drv->exec(a, "SELECT * FROM u", &rows, &err), 0);
    assert_int_equal(rows, 0);

    /* The writer is usable again. */
    assert_int_equal(drv->begin(a, &err), 0);
    assert_int_equal(drv->exec(a, "INSERT INTO u VALUES (2)", NULL, &err), 0);
    assert_int_equal(drv->commit(a, &err), 0);
    assert_int_equal(drv->exec(a, "SELECT * FROM u", &rows, &err), 0);
    assert_int_equal(rows, 1);
    drv->close(a);
    drv->close(sp.s);
    rm_dir(dir);
}

/* The application's SQL in a branch (rm.h, app_sql): statements that would begin or end
 * the transaction, or touch group commit's savepoint, are refused before they run (the
 * authorizer), its own savepoints run; a statement cached by the framework's own use is
 * not reused for the application's. With and without group commit. */
static void app_control(bool group)
{
    char dir[] = "/tmp/fdt-sqlite-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    group_cfg(&cfg, dir, group, 5, 0.001);
    struct fdt_error err = {0};
    void *s = NULL;
    assert_int_equal(drv->open(&cfg, &s, &err), 0);
    assert_int_equal(drv->exec(s, "CREATE TABLE t (x INTEGER)", NULL, &err), 0);
    struct fdt_sql_rows *r = fdt__sql_rows_new();
    assert_non_null(r);
    /* Prepared (and cached) outside any transaction: SQLite refuses it only as it runs. */
    assert_int_equal(drv->query(s, "COMMIT", NULL, 0, r, &err), FDT_EDB);
    assert_int_equal(drv->begin(s, &err), 0);
    drv->app_sql(s, true);
    assert_int_equal(drv->exec(s, "INSERT INTO t VALUES (1)", NULL, &err), 0);
    static const char *const refused[] = {
        "COMMIT",           "end", "ROLLBACK", "BEGIN", "RELEASE fdt__gc", "ROLLBACK TO fdt__gc",
        "SAVEPOINT FDT__GC"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        memset(&err, 0, sizeof(err));
        if (drv->exec(s, refused[i], NULL, &err) != FDT_EINVAL)
            fail_msg("exec ran %s", refused[i]);
        assert_non_null(strstr(err.msg, "may not begin or end it"));
        memset(&err, 0, sizeof(err));
        assert_int_equal(drv->query(s, refused[i], NULL, 0, r, &err), FDT_EINVAL);
    }
    assert_int_equal(drv->exec(s,
                               "SAVEPOINT a; INSERT INTO t VALUES (2); ROLLBACK TO a; "
                               "RELEASE a; INSERT INTO t VALUES (3)",
                               NULL, &err),
                     0);
    drv->app_sql(s, false);
    assert_int_equal(drv->commit(s, &err), 0);
    fdt_sql_rows_free(r);
    r = query(s, "SELECT group_concat(x) FROM t", NULL, 0);
    assert_string_equal(fdt_sql_text(r, 0, 0), "1,3");
    fdt_sql_rows_free(r);
    drv->close(s);
    rm_dir(dir);
}

static void test_app_transaction_control(void **state)
{
    (void)state;
    app_control(false);
    app_control(true);
}

int main(void)
{
    drv = fdt_rm_driver_v1(&fdt__rm_host);
    if (!drv)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_rollback_durable),
        cmocka_unit_test(test_busy_is_retryable),
        cmocka_unit_test(test_query_params_and_rows),
        cmocka_unit_test(test_group_commit_threads),
        cmocka_unit_test(test_group_commit_batch_fails_together),
        cmocka_unit_test(test_app_transaction_control),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "fdt_config.h"

#include "txn/rm.h"
#include "util/util.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct fdt_rm_driver *drv = &fdt__rm_sqlite;

static void make_cfg(struct fdt_resource_cfg *cfg, char *dir)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->name, sizeof(cfg->name), "ledger");
    snprintf(cfg->driver, sizeof(cfg->driver), "sqlite");
    snprintf(cfg->path, sizeof(cfg->path), "%s/ledger.db", dir);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_rollback_durable),
        cmocka_unit_test(test_busy_is_retryable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

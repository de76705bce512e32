#include "fdt_config.h"

#include "alloc_fault.h"
#include "txn/rm.h"

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

/* The SQLite driver (linked statically) walked through each of its own allocations (not
 * SQLite's: the library allocates for itself): opening a session, a group commit session
 * (its group and the group's writer), a statement's cache entry and rows, a batch. Each
 * fails cleanly with FDT_ENOMEM and leaves nothing half made: the same call then works. */
static const struct fdt_rm_driver *drv;
static char t_dir[64];

static void make_cfg(struct fdt_resource_cfg *cfg, const char *file, bool group)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->name, sizeof(cfg->name), "lite");
    snprintf(cfg->driver, sizeof(cfg->driver), "sqlite");
    snprintf(cfg->path, sizeof(cfg->path), "%s/%s", t_dir, file);
    cfg->group_commit = group;
    cfg->group_commit_max = 10;
    cfg->group_commit_window = 10;
}

/* Open cfg failing at each allocation in turn; returns the session of the first open that
 * needed no failure, and how many allocations it made. */
static void *open_walk(const struct fdt_resource_cfg *cfg, unsigned *allocs)
{
    for (unsigned n = 1;; n++) {
        struct fdt_error err = {0};
        void *s = NULL;
        alloc_fault_arm(n, false);
        int rc = drv->open(cfg, &s, &err);
        bool hit = alloc_fault_hit();
        alloc_fault_disarm();
        if (!hit) {
            assert_int_equal(rc, 0);
            *allocs = n - 1;
            return s;
        }
        assert_int_equal(rc, FDT_ENOMEM);
        assert_string_equal(err.msg, "out of memory");
        assert_null(s);
    }
}

static void test_open(void **state)
{
    (void)state;
    struct fdt_resource_cfg cfg;
    make_cfg(&cfg, "a.db", false);
    unsigned allocs = 0;
    void *s = open_walk(&cfg, &allocs);
    assert_int_equal(allocs, 1);
    drv->close(s);

    /* A group commit session: the session, its group, the group's writer. */
    make_cfg(&cfg, "g.db", true);
    s = open_walk(&cfg, &allocs);
    assert_int_equal(allocs, 3);
    drv->close(s);
}

/* A query: its statement's cache entry, then its rows. */
static void test_query(void **state)
{
    (void)state;
    struct fdt_resource_cfg cfg;
    make_cfg(&cfg, "q.db", false);
    struct fdt_error err = {0};
    void *s = NULL;
    assert_int_equal(drv->open(&cfg, &s, &err), 0);
    for (unsigned n = 1;; n++) {
        struct fdt_sql_rows *rows = fdt__sql_rows_new();
        assert_non_null(rows);
        alloc_fault_arm(n, false);
        int rc = drv->query(s, "SELECT 'one', 2", NULL, 0, rows, &err);
        bool hit = alloc_fault_hit();
        alloc_fault_disarm();
        if (!hit) {
            assert_int_equal(rc, 0);
            assert_int_equal(fdt_sql_nrows(rows), 1);
            assert_string_equal(fdt_sql_text(rows, 0, 0), "one");
            fdt_sql_rows_free(rows);
            assert_true(n > 2);
            break;
        }
        assert_int_equal(rc, FDT_ENOMEM);
        assert_string_equal(err.msg, "out of memory");
        fdt_sql_rows_free(rows);
    }
    drv->close(s);
}

/* The first begin of a batch makes the batch: without memory the turn is handed on, and
 * the next begin works. */
static void test_batch(void **state)
{
    (void)state;
    struct fdt_resource_cfg cfg;
    make_cfg(&cfg, "b.db", true);
    struct fdt_error err = {0};
    void *s = NULL;
    assert_int_equal(drv->open(&cfg, &s, &err), 0);
    assert_int_equal(drv->exec(s, "CREATE TABLE t (x INTEGER)", NULL, &err), 0);
    alloc_fault_arm(1, false);
    assert_int_equal(drv->begin(s, &err), FDT_ENOMEM);
    assert_true(alloc_fault_hit());
    alloc_fault_disarm();
    assert_int_equal(drv->begin(s, &err), 0);
    assert_int_equal(drv->exec(s, "INSERT INTO t VALUES (1)", NULL, &err), 0);
    assert_int_equal(drv->commit(s, &err), 0);
    long rows = 0;
    assert_int_equal(drv->exec(s, "SELECT * FROM t", &rows, &err), 0);
    assert_int_equal(rows, 1);
    drv->close(s);
}

static int setup(void **state)
{
    (void)state;
    snprintf(t_dir, sizeof(t_dir), "/tmp/fdt-sqlite-alloc-XXXXXX");
    return mkdtemp(t_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", t_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    drv = fdt_rm_driver_v1(&fdt__rm_host);
    if (!drv)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_batch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

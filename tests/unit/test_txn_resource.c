#include "fdt_config.h"

#include "config/config.h"
#include "txn/txn.h"
#include "util/util.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <fdt/txn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The resource API an application calls (fdt_resource_exec, fdt_resource_query,
 * fdt_resource_check_atomic, fdt_resource_driver) over two SQLite resources, loaded the way
 * a worker loads them (the driver module from the build directory): what it answers for a
 * name that is not configured, a pair that could never commit atomically, and a script that
 * fails half-way. */

static char t_dir[64];
static struct fdt_cfg *t_cfg;

static void add_resource(struct fdt_cfg *cfg, const char *name, const char *driver)
{
    struct fdt_resource_cfg *r = &cfg->resources[cfg->n_resources++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->driver, sizeof(r->driver), "%s", driver);
    snprintf(r->path, sizeof(r->path), "%s/%s.db", t_dir, name);
}

static int setup(void **state)
{
    (void)state;
    snprintf(t_dir, sizeof(t_dir), "/tmp/fdt-test-txnres-XXXXXX");
    if (!mkdtemp(t_dir))
        return -1;
    t_cfg = malloc(sizeof(*t_cfg));
    if (!t_cfg)
        return -1;
    fdt__cfg_init(t_cfg);
    add_resource(t_cfg, "a", "sqlite");
    add_resource(t_cfg, "b", "sqlite");
    add_resource(t_cfg, "c", "sqlite");
    /* c's database is in a directory that does not exist: it cannot be opened. */
    snprintf(t_cfg->resources[2].path, sizeof(t_cfg->resources[2].path), "%s/none/c.db", t_dir);
    struct fdt_error err = {0};
    if (fdt__txn_init(t_cfg, &err) < 0) {
        fprintf(stderr, "fdt__txn_init: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fdt__txn_shutdown();
    fdt__cfg_deinit(t_cfg);
    free(t_cfg);
    char path[128];
    snprintf(path, sizeof(path), "%s/a.db", t_dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/b.db", t_dir);
    unlink(path);
    rmdir(t_dir);
    return 0;
}

static void test_unknown_resource(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    assert_string_equal(fdt_resource_driver("a"), "sqlite");
    assert_null(fdt_resource_driver("nope"));
    assert_null(fdt_resource_driver(NULL));
    assert_int_equal(fdt_resource_exec("nope", "SELECT 1", &err), FDT_ENOENT);
    assert_string_equal(err.msg, "no resource named nope");
    struct fdt_sql_rows *rows = (struct fdt_sql_rows *)&err; /* set to NULL on failure */
    assert_int_equal(fdt_resource_query(NULL, "SELECT 1", NULL, 0, &rows, &err), FDT_ENOENT);
    assert_string_equal(err.msg, "no resource named"); /* the trailing space is trimmed */
    assert_null(rows);
    const char *pair[] = {"a", "nope"};
    assert_int_equal(fdt_resource_check_atomic(pair, 2, &err), FDT_ENOENT);
    assert_string_equal(err.msg, "no [resource.nope] section");
}

/* A database that cannot be opened: the driver's reason comes back, for exec and query. */
static void test_cannot_open(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    assert_true(fdt_resource_exec("c", "SELECT 1", &err) < 0);
    assert_true(err.code < 0);
    assert_non_null(strstr(err.msg, "c.db"));
    struct fdt_sql_rows *rows = NULL;
    memset(&err, 0, sizeof(err));
    assert_true(fdt_resource_query("c", "SELECT 1", NULL, 0, &rows, &err) < 0);
    assert_non_null(strstr(err.msg, "c.db"));
    assert_null(rows);
}

/* Two resources that cannot prepare could never commit one transaction atomically. */
static void test_check_atomic(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    const char *one[] = {"a"};
    assert_int_equal(fdt_resource_check_atomic(one, 1, &err), 0);
    const char *both[] = {"a", "b"};
    assert_int_equal(fdt_resource_check_atomic(both, 2, &err), FDT_ECONFIG);
    assert_non_null(strstr(err.msg, "[resource.a] and [resource.b] both cannot prepare (sqlite)"));
}

/* A script that began a transaction and failed half-way is rolled back: nothing of it
 * stays, and the resource's next caller starts clean. */
static void test_script_fails_half_way(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    assert_int_equal(fdt_resource_exec("a", "CREATE TABLE kept (x INTEGER)", &err), 0);
    assert_true(fdt_resource_exec("a",
                                  "BEGIN; INSERT INTO kept VALUES (1); "
                                  "INSERT INTO missing VALUES (2); COMMIT",
                                  &err) < 0);
    assert_non_null(strstr(err.msg, "missing"));
    struct fdt_sql_rows *rows = NULL;
    assert_int_equal(fdt_resource_query("a", "SELECT count(*) FROM kept", NULL, 0, &rows, &err), 0);
    assert_string_equal(fdt_sql_text(rows, 0, 0), "0");
    fdt_sql_rows_free(rows);
    /* Without rows wanted and without an error structure. */
    assert_int_equal(fdt_resource_query("a", "INSERT INTO kept VALUES (3)", NULL, 0, NULL, NULL),
                     0);
    assert_int_equal(fdt_resource_query("a", "SELECT x FROM kept", NULL, 0, &rows, NULL), 0);
    assert_int_equal(fdt_sql_nrows(rows), 1);
    assert_string_equal(fdt_sql_text(rows, 0, 0), "3");
    fdt_sql_rows_free(rows);
}

/* A driver this build does not have: the worker refuses to start and says which. */
static void test_unknown_driver(void **state)
{
    (void)state;
    /* Close the pooled sessions first: init starts from an empty table. */
    fdt__txn_shutdown();
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    assert_non_null(cfg);
    fdt__cfg_init(cfg);
    add_resource(cfg, "x", "oracle");
    struct fdt_error err = {0};
    assert_int_equal(fdt__txn_init(cfg, &err), FDT_ECONFIG);
    assert_non_null(strstr(err.msg, "[resource.x] driver oracle is not available"));
    fdt__cfg_deinit(cfg);
    free(cfg);
    /* Put the two SQLite resources back for the tests after this one. */
    assert_int_equal(fdt__txn_init(t_cfg, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_resource), cmocka_unit_test(test_cannot_open),
        cmocka_unit_test(test_check_atomic),     cmocka_unit_test(test_script_fails_half_way),
        cmocka_unit_test(test_unknown_driver),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

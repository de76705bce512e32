#include "fdt_config.h"

#include "config/config.h"
#include "txn/txn.h"
#include "txn/txn_gid.h"

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

/* How root transactions are named (txn.c, name_root): 16 bytes of getrandom(2) under the
 * format "fdt1", drawn at begin for fdt_txn_begin, and for fdt_txn_run's own transaction
 * only once it enlists a resource or its xid is asked for. Every name differs; a
 * transaction that touches no resource tells its holder of no wait (before_wait) and,
 * named or not, commits. */

#define ROOT_FORMAT_ID 0x66647431
#define RUNS           200

static char t_dir[64];
static struct fdt_cfg *t_cfg;
static struct fdt_txn_env t_env;
static int t_waits;

static void count_wait(struct fdt_txn_holder *h)
{
    (void)h;
    t_waits++;
}

static int setup(void **state)
{
    (void)state;
    snprintf(t_dir, sizeof(t_dir), "/tmp/fdt-test-txnname-XXXXXX");
    if (!mkdtemp(t_dir))
        return -1;
    t_cfg = malloc(sizeof(*t_cfg));
    if (!t_cfg)
        return -1;
    fdt__cfg_init(t_cfg);
    struct fdt_resource_cfg *r = &t_cfg->resources[t_cfg->n_resources++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "a");
    snprintf(r->driver, sizeof(r->driver), "sqlite");
    snprintf(r->path, sizeof(r->path), "%s/a.db", t_dir);
    struct fdt_error err = {0};
    if (fdt__txn_init(t_cfg, &err) < 0) {
        fprintf(stderr, "fdt__txn_init: %s\n", err.msg);
        return -1;
    }
    t_env.node = "n1";
    t_env.cfg = t_cfg;
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
    rmdir(t_dir);
    return 0;
}

static void assert_root_name(const struct fdt_xid *x)
{
    assert_int_equal(x->format_id, ROOT_FORMAT_ID);
    assert_int_equal(x->gtrid_len, 16);
    assert_int_equal(x->bqual_len, 0);
}

static bool all_distinct(struct fdt_xid *xs, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (fdt__xid_equal(&xs[i], &xs[j]))
                return false;
    return true;
}

struct run_arg {
    struct fdt_xid *out;
    const char *sql; /* NULL: touch no resource */
    bool ask;        /* ask for the xid (fdt_txn_xid) */
};

static int run_fn(struct fdt_txn *t, void *arg, struct fdt_error *err)
{
    struct run_arg *a = arg;
    if (a->sql && fdt_txn_exec(t, "a", a->sql, NULL, err) < 0)
        return err->code;
    if (a->ask)
        *a->out = *fdt_txn_xid(t);
    return 0;
}

static void test_begin_names_at_once(void **state)
{
    (void)state;
    struct fdt_txn_holder h = {.env = &t_env, .before_wait = count_wait};
    static struct fdt_xid xs[RUNS];
    struct fdt_error err = {0};
    for (int i = 0; i < RUNS; i++) {
        assert_int_equal(fdt__txn_begin(&h, NULL, false, &err), 0);
        xs[i] = *fdt_txn_xid(h.txn);
        assert_root_name(&xs[i]);
        assert_int_equal(fdt_txn_abort(h.txn, &err), 0);
        assert_null(h.txn);
    }
    assert_true(all_distinct(xs, RUNS));
}

static void test_run_names_when_asked_or_enlisting(void **state)
{
    (void)state;
    struct fdt_txn_holder h = {.env = &t_env, .before_wait = count_wait};
    static struct fdt_xid xs[2 * RUNS];
    struct fdt_error err = {0};
    assert_int_equal(fdt_resource_exec("a", "CREATE TABLE IF NOT EXISTS t (x int)", &err), 0);
    /* Asked for, with no resource touched: named then, and no wait was announced. */
    t_waits = 0;
    for (int i = 0; i < RUNS; i++) {
        struct run_arg a = {&xs[i], NULL, true};
        assert_int_equal(fdt__txn_run(&h, run_fn, &a, 1, NULL, &err), 0);
        assert_root_name(&xs[i]);
    }
    assert_int_equal(t_waits, 0);
    /* A statement enlists the resource: named before the branch (its GID needs it), and the
     * holder is told before every wait on the database. */
    for (int i = RUNS; i < 2 * RUNS; i++) {
        struct run_arg a = {&xs[i], "INSERT INTO t VALUES (1)", true};
        assert_int_equal(fdt__txn_run(&h, run_fn, &a, 1, NULL, &err), 0);
        assert_root_name(&xs[i]);
    }
    assert_true(t_waits >= 2 * RUNS); /* the statement and the commit */
    assert_true(all_distinct(xs, 2 * RUNS));
    /* Never asked, nothing touched: it commits all the same. */
    struct run_arg none = {NULL, NULL, false};
    assert_int_equal(fdt__txn_run(&h, run_fn, &none, 1, NULL, &err), 0);
    assert_null(h.txn);
}

static void test_participant_keeps_its_xid(void **state)
{
    (void)state;
    struct fdt_txn_holder h = {.env = &t_env};
    struct fdt_xid x = {.format_id = 7, .gtrid_len = 3, .bqual_len = 1};
    memcpy(x.gtrid, "abc", 3);
    x.bqual[0] = 'z';
    struct fdt_error err = {0};
    assert_int_equal(fdt__txn_begin(&h, &x, true, &err), 0);
    assert_true(fdt__xid_equal(fdt_txn_xid(h.txn), &x));
    assert_int_equal(fdt_txn_abort(h.txn, &err), 0);
    /* An xid whose GID would not fit is refused at begin, as before. */
    struct fdt_txn_env long_node = t_env;
    long_node.node = "n123456789012345678901234567890123456789012345678901234567890xy";
    h.env = &long_node;
    x.gtrid_len = FDT_XID_PART_MAX;
    x.bqual_len = FDT_XID_PART_MAX;
    assert_int_equal(fdt__txn_begin(&h, &x, true, &err), FDT_ELIMIT);
    assert_null(h.txn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_begin_names_at_once),
        cmocka_unit_test(test_run_names_when_asked_or_enlisting),
        cmocka_unit_test(test_participant_keeps_its_xid),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

#include "fdt_config.h"

#include "alloc_fault.h"
#include "config/config.h"
#include "proc/proc.h"
#include "txn/txn.h"
#include "txn/txn_fault.h"
#include "txn/txn_gid.h"
#include "util/util.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <errno.h>
#include <fdt/txn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* The transaction manager (txn.c) over mock drivers: the failures a real database gives
 * only at a bad moment (a BEGIN on a session the server dropped, a PREPARE, the decision
 * record, COMMIT PREPARED, a SAVEPOINT failing) made to happen on demand, and what the
 * manager then answers, asks the drivers, and leaves behind (no session left open, the
 * outcome counters). The resources are configured as SQLite ones (so that fdt__txn_init
 * loads a real module), then their drivers are swapped for the mocks: "p" and "q" can
 * prepare (PostgreSQL's role; "p" holds the log), "l" and "m" cannot (SQLite's).
 *
 * Linked with --wrap for the allocator (alloc_fault.h) and for getrandom(2), which a test
 * can make fail. */

enum op {
    OP_OPEN,
    OP_BEGIN,
    OP_EXEC,
    OP_QUERY,
    OP_COMMIT,
    OP_ROLLBACK,
    OP_PREPARE,
    OP_COMMIT_PREPARED,
    OP_ROLLBACK_PREPARED,
    OP_QUERY_TEXT,
    OP_RECOVER,
    OP_N
};
static const char *const op_names[OP_N] = {
    "open",       "begin",           "exec",
    "query",      "commit",          "rollback",
    "prepare",    "commit prepared", "rollback prepared",
    "query_text", "recover",
};

struct msess {
    bool dead;
    char resource[32];
};

static int calls[OP_N];
static int fail_in[OP_N]; /* the n-th call from now fails (0: none) */
static int fail_code;     /* the code of a failure (0: FDT_EDB) */
static bool fail_kills;   /* a failing call leaves its session dead */
static int sessions;      /* open now */
static char sqls[16384];  /* every statement exec ran, one a line */
static size_t last_len;   /* the length of the last statement */

/* What recovery finds: the prepared branches (GIDs) in every resource, the log record of
 * any transaction ("role outcome", "" for none), the answer to a try of a node's alive
 * lock, and whether a listing of every node's prepared branches leaves its session dead
 * (and the next open failing). */
static const char *prepared[4];
static const char *log_row = "";
static const char *lock_answer = "t";
static bool recover_kills;
static char last_query[512];

static int step(enum op o, struct msess *s, struct fdt_error *err)
{
    calls[o]++;
    if (fail_in[o] > 0 && --fail_in[o] == 0) {
        if (fail_kills && s)
            s->dead = true;
        return fdt_error_set(err, fail_code ? fail_code : FDT_EDB, "mock %s failed", op_names[o]);
    }
    return 0;
}

static int m_open(const struct fdt_resource_cfg *cfg, void **session, struct fdt_error *err)
{
    (void)cfg;
    int rc = step(OP_OPEN, NULL, err);
    if (rc < 0)
        return rc;
    struct msess *s = calloc(1, sizeof(*s));
    if (!s)
        return fdt_error_set(err, FDT_ENOMEM, "out of memory");
    snprintf(s->resource, sizeof(s->resource), "%s", cfg->name);
    sessions++;
    *session = s;
    return 0;
}

static void m_close(void *s)
{
    sessions--;
    free(s);
}

static bool m_alive(void *s)
{
    return !((struct msess *)s)->dead;
}

static int m_exec(void *s, const char *sql, long *rows, struct fdt_error *err)
{
    last_len = strlen(sql);
    size_t used = strlen(sqls);
    snprintf(sqls + used, sizeof(sqls) - used, "%.200s\n", sql);
    if (rows)
        *rows = 0;
    return step(OP_EXEC, s, err);
}

static int m_begin(void *s, struct fdt_error *err)
{
    return step(OP_BEGIN, s, err);
}

static int m_rollback(void *s, struct fdt_error *err)
{
    return step(OP_ROLLBACK, s, err);
}

static int m_prepare(void *s, const char *gid, struct fdt_error *err)
{
    (void)gid;
    return step(OP_PREPARE, s, err);
}

static int m_commit(void *s, struct fdt_error *err)
{
    return step(OP_COMMIT, s, err);
}

static int m_commit_prepared(void *s, const char *gid, struct fdt_error *err)
{
    (void)gid;
    return step(OP_COMMIT_PREPARED, s, err);
}

static int m_rollback_prepared(void *s, const char *gid, struct fdt_error *err)
{
    (void)gid;
    return step(OP_ROLLBACK_PREPARED, s, err);
}

static bool is_prepared(const char *gid)
{
    for (size_t i = 0; i < FDT_ARRAY_LEN(prepared); i++) {
        if (prepared[i] && strcmp(prepared[i], gid) == 0)
            return true;
    }
    return false;
}

static int m_query_text(void *s, const char *sql, char *out, size_t size, struct fdt_error *err)
{
    snprintf(last_query, sizeof(last_query), "%s", sql);
    int rc = step(OP_QUERY_TEXT, s, err);
    if (rc < 0)
        return rc;
    const char *q = strchr(sql, '\'');
    char gid[256] = "";
    if (q)
        snprintf(gid, sizeof(gid), "%.*s", (int)strcspn(q + 1, "'"), q + 1);
    if (strstr(sql, "FROM fdt_txn_log"))
        snprintf(out, size, "%s", log_row);
    else if (strstr(sql, "pg_prepared_xacts"))
        snprintf(out, size, "%s", is_prepared(gid) ? "1" : "0");
    else if (strstr(sql, "pg_try_advisory_lock("))
        snprintf(out, size, "%s", lock_answer);
    else
        snprintf(out, size, "t");
    return 0;
}

/* The prepared branches of this session's resource whose GID starts with prefix. */
static int m_recover(void *s, const char *prefix, double min_age,
                     void (*fn)(const char *gid, double age, void *arg), void *arg,
                     struct fdt_error *err)
{
    (void)min_age;
    struct msess *m = s;
    int rc = step(OP_RECOVER, s, err);
    if (rc < 0)
        return rc;
    char part[40];
    snprintf(part, sizeof(part), ":%s:", m->resource);
    for (size_t i = 0; i < FDT_ARRAY_LEN(prepared); i++) {
        if (prepared[i] && strncmp(prepared[i], prefix, strlen(prefix)) == 0 &&
            strstr(prepared[i], part))
            fn(prepared[i], 100.0, arg);
    }
    if (recover_kills && strcmp(prefix, FDT_GID_PREFIX) == 0) {
        m->dead = true;
        fail_in[OP_OPEN] = 1;
    }
    return 0;
}

static int m_try_lock(void *s, const char *name, struct fdt_error *err)
{
    (void)s;
    (void)name;
    (void)err;
    return 1;
}

static void m_unlock(void *s, const char *name)
{
    (void)s;
    (void)name;
}

/* Transaction control in application SQL is the drivers' to refuse (their own tests). */
static void m_app_sql(void *s, bool on)
{
    (void)s;
    (void)on;
}

static void *m_handle(void *s)
{
    return s;
}

/* One row, one column: "1". */
static int m_query(void *s, const char *sql, const struct fdt_sql_param *params, int n,
                   struct fdt_sql_rows *out, struct fdt_error *err)
{
    (void)sql;
    (void)params;
    (void)n;
    int rc = step(OP_QUERY, s, err);
    if (rc < 0)
        return rc;
    const char *vals[1] = {"1"};
    size_t lens[1] = {1};
    fdt__sql_rows_cols(out, 1);
    if (fdt__sql_rows_add(out, vals, lens) < 0)
        return fdt_error_set(err, FDT_ENOMEM, "out of memory");
    return 0;
}

static const struct fdt_rm_driver mock_2pc = {
    .abi_version = FDT_RM_ABI_VERSION,
    .name = "mock2pc",
    .can_prepare = true,
    .open = m_open,
    .close = m_close,
    .alive = m_alive,
    .exec = m_exec,
    .begin = m_begin,
    .begin_sql = "BEGIN",
    .rollback = m_rollback,
    .prepare = m_prepare,
    .commit = m_commit,
    .commit_prepared = m_commit_prepared,
    .rollback_prepared = m_rollback_prepared,
    .handle = m_handle,
    .query = m_query,
    .begin_query = m_query,
    .query_text = m_query_text,
    .recover = m_recover,
    .try_lock = m_try_lock,
    .unlock = m_unlock,
    .app_sql = m_app_sql,
};

static const struct fdt_rm_driver mock_llr = {
    .abi_version = FDT_RM_ABI_VERSION,
    .name = "mockllr",
    .can_prepare = false,
    .open = m_open,
    .close = m_close,
    .alive = m_alive,
    .exec = m_exec,
    .begin = m_begin,
    .rollback = m_rollback,
    .prepare = m_prepare,
    .commit = m_commit,
    .commit_prepared = m_commit_prepared,
    .rollback_prepared = m_rollback_prepared,
    .handle = m_handle,
    .query = m_query,
    .query_text = m_query_text,
    .recover = m_recover,
    .try_lock = m_try_lock,
    .unlock = m_unlock,
    .app_sql = m_app_sql,
};

/* getrandom(2), failing on demand. */
ssize_t __real_getrandom(void *buf, size_t len, unsigned flags);
ssize_t __wrap_getrandom(void *buf, size_t len, unsigned flags);
static bool random_fails;

ssize_t __wrap_getrandom(void *buf, size_t len, unsigned flags)
{
    if (random_fails)
        return -1;
    return __real_getrandom(buf, len, flags);
}

/* pthread_create(3), failing on demand. */
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
static bool threads_fail;

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    if (threads_fail)
        return EAGAIN;
    return __real_pthread_create(t, a, fn, arg);
}

static char t_dir[64];
static struct fdt_cfg *t_cfg;
static _Atomic int64_t t_open;
static struct fdt_counters t_counters;
static struct fdt_txn_env t_env;
static struct fdt_txn_holder t_h;

static void add_resource(const char *name, bool log)
{
    struct fdt_resource_cfg *r = &t_cfg->resources[t_cfg->n_resources++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->driver, sizeof(r->driver), "sqlite");
    snprintf(r->path, sizeof(r->path), "%s/%s.db", t_dir, name);
    r->log = log;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(t_dir, sizeof(t_dir), "/tmp/fdt-test-txnmock-XXXXXX");
    if (!mkdtemp(t_dir))
        return -1;
    t_cfg = malloc(sizeof(*t_cfg));
    if (!t_cfg)
        return -1;
    fdt__cfg_init(t_cfg);
    snprintf(t_cfg->node, sizeof(t_cfg->node), "n1");
    add_resource("q", false);
    add_resource("p", true);
    add_resource("l", false);
    add_resource("m", false);
    struct fdt_error err = {0};
    if (fdt__txn_init(t_cfg, &err) < 0) {
        fprintf(stderr, "fdt__txn_init: %s\n", err.msg);
        return -1;
    }
    fdt__resource_find("p")->drv = &mock_2pc;
    fdt__resource_find("q")->drv = &mock_2pc;
    fdt__resource_find("l")->drv = &mock_llr;
    fdt__resource_find("m")->drv = &mock_llr;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fdt__cfg_deinit(t_cfg);
    free(t_cfg);
    rmdir(t_dir);
    return 0;
}

/* Each test starts with no session open, the log table known to exist, nothing armed. */
static int setup(void **state)
{
    (void)state;
    memset(calls, 0, sizeof(calls));
    memset(fail_in, 0, sizeof(fail_in));
    fail_code = 0;
    fail_kills = false;
    random_fails = false;
    threads_fail = false;
    memset(prepared, 0, sizeof(prepared));
    log_row = "";
    lock_answer = "t";
    recover_kills = false;
    sqls[0] = '\0';
    memset(&t_counters, 0, sizeof(t_counters));
    t_open = 0;
    t_env =
        (struct fdt_txn_env){.node = "n1", .cfg = t_cfg, .open = &t_open, .counters = &t_counters};
    t_h = (struct fdt_txn_holder){.env = &t_env, .id = 7};
    fdt__resource_find("p")->log_ready = true;
    fdt__resource_find("l")->log_ready = true;
    fdt__resource_find("q")->log_ready = true;
    fdt__resource_find("m")->log_ready = true;
    return 0;
}

/* Every transaction ended, every session given back: none left open after the pools are
 * emptied. */
static int teardown(void **state)
{
    (void)state;
    if (t_h.txn)
        fdt__txn_holder_closed(&t_h);
    fdt__txn_shutdown();
    assert_null(t_h.txn);
    assert_int_equal(t_open, 0);
    assert_int_equal(sessions, 0);
    return 0;
}

static struct fdt_txn *begin(void)
{
    struct fdt_error err = {0};
    assert_int_equal(fdt__txn_begin(&t_h, NULL, false, &err), 0);
    assert_non_null(t_h.txn);
    return t_h.txn;
}

static bool ran(const char *sql)
{
    return strstr(sqls, sql) != NULL;
}

/* A node name that cannot go into a GID, and no random bytes: begin says why. */
static void test_begin_cannot_name(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    t_env.node = "bad node";
    assert_int_equal(fdt__txn_begin(&t_h, NULL, false, &err), FDT_EINVAL);
    assert_string_equal(err.msg, "bad node name");
    assert_null(t_h.txn);
    t_env.node = "n1";
    random_fails = true;
    assert_int_equal(fdt__txn_begin(&t_h, NULL, false, &err), FDT_ERANDOM);
    assert_string_equal(err.msg, "getrandom failed");
    assert_null(t_h.txn);
    assert_int_equal(t_open, 0);

    /* A lazy root transaction asked for its xid then: doomed, so the all-zero name it shows
     * can never commit. */
    assert_int_equal(fdt__txn_begin(&t_h, NULL, true, &err), 0);
    struct fdt_txn *t = t_h.txn;
    const struct fdt_xid *x = fdt_txn_xid(t);
    assert_int_equal(x->gtrid_len, 16);
    random_fails = false;
    assert_int_equal(fdt_txn_commit(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "rolled back: getrandom failed");
    assert_int_equal(t_counters.txn_rolled_back, 1);

    /* A lazy one named at its first statement, with no random bytes then: that statement
     * fails and says why, opening nothing; the next one, with them, runs. */
    assert_int_equal(fdt__txn_begin(&t_h, NULL, true, &err), 0);
    t = t_h.txn;
    random_fails = true;
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), FDT_ERANDOM);
    assert_string_equal(err.msg, "getrandom failed");
    assert_int_equal(calls[OP_OPEN], 0);
    random_fails = false;
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_commit(t, &err), 0);
}

/* Out of memory at begin, and for a long first statement that carries its BEGIN. */
static void test_out_of_memory(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    alloc_fault_arm(1, false);
    assert_int_equal(fdt__txn_begin(&t_h, NULL, false, &err), FDT_ENOMEM);
    assert_true(alloc_fault_hit());
    alloc_fault_disarm();
    assert_null(t_h.txn);

    char sql[3000];
    memset(sql, 'x', sizeof(sql) - 1);
    sql[sizeof(sql) - 1] = '\0';
    struct fdt_txn *t = begin();
    /* The branch's session (1), then the joined statement (2). */
    alloc_fault_arm(2, false);
    assert_int_equal(fdt_txn_exec(t, "p", sql, NULL, &err), FDT_ENOMEM);
    assert_true(alloc_fault_hit());
    alloc_fault_disarm();
    assert_int_equal(calls[OP_EXEC], 0);
    assert_int_equal(fdt_txn_abort(t, &err), 0);

    /* A query's rows that cannot grow: the statement fails, the transaction is doomed. */
    t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "SELECT 0", NULL, &err), 0);
    struct fdt_sql_rows *rows = NULL;
    alloc_fault_arm(2, false); /* the result (1), its cells (2) */
    assert_int_equal(fdt_txn_query(t, "p", "SELECT 1", NULL, 0, &rows, &err), FDT_ENOMEM);
    assert_true(alloc_fault_hit());
    alloc_fault_disarm();
    assert_null(rows);
    assert_int_equal(fdt_txn_commit(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "rolled back: out of memory");
}

/* A statement longer than the stack buffer still travels with its BEGIN, whole. */
static void test_long_first_statement(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    char sql[3000];
    memset(sql, 'x', sizeof(sql) - 1);
    sql[sizeof(sql) - 1] = '\0';
    struct fdt_txn *t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", sql, NULL, &err), 0);
    assert_int_equal(last_len, strlen("BEGIN; ") + strlen(sql));
    assert_true(ran("BEGIN; xxxx"));
    assert_int_equal(calls[OP_BEGIN], 0);
    assert_int_equal(fdt_txn_commit(t, &err), 0);
    assert_int_equal(calls[OP_COMMIT], 1);
    assert_int_equal(t_counters.txn_committed, 1);
}

/* fdt_txn_join: the branch's handle, begun once; a dead pooled session is renewed; a BEGIN
 * that fails on a live session is the error (and dooms nothing). */
static void test_join(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    struct fdt_txn *t = begin();
    void *h = fdt_txn_join(t, "p", &err);
    assert_non_null(h);
    assert_int_equal(calls[OP_BEGIN], 1);
    assert_ptr_equal(fdt_txn_join(t, "p", &err), h);
    assert_int_equal(calls[OP_BEGIN], 1);

    /* q's first BEGIN finds its session dead: a fresh one is opened and begun. */
    fail_in[OP_BEGIN] = 1;
    fail_kills = true;
    void *hq = fdt_txn_join(t, "q", &err);
    assert_non_null(hq);
    assert_int_equal(calls[OP_BEGIN], 3);
    assert_int_equal(calls[OP_OPEN], 3);
    assert_int_equal(sessions, 2); /* the dead one was closed */

    /* l's BEGIN fails on a live session: no handle, the message says why. */
    fail_kills = false;
    fail_in[OP_BEGIN] = 1;
    assert_null(fdt_txn_join(t, "l", &err));
    assert_string_equal(err.msg, "mock begin failed");
    /* Its next BEGIN finds the session dead, and no fresh one opens (the server is down):
     * the BEGIN's error is the answer, no other. */
    fail_kills = true;
    fail_in[OP_BEGIN] = 1;
    fail_in[OP_OPEN] = 2; /* the first opens the session, the second would replace it */
    assert_null(fdt_txn_join(t, "l", &err));
    assert_string_equal(err.msg, "mock begin failed");
    assert_int_equal(fail_in[OP_OPEN], 0);
    fail_kills = false;
    assert_null(fdt_txn_join(t, "nosuch", &err));
    assert_string_equal(err.msg, "no resource named nosuch");

    /* A branch rolled back whole to a savepoint begins again when joined. */
    assert_int_equal(fdt_txn_abort(t, &err), 0);
    t = begin();
    assert_int_equal(fdt_txn_savepoint(t, "s0", &err), 0);
    assert_int_equal(fdt_txn_exec(t, "l", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_rollback_to(t, "s0", &err), 0);
    int begins = calls[OP_BEGIN];
    fail_in[OP_BEGIN] = 1;
    assert_null(fdt_txn_join(t, "l", &err));
    assert_string_equal(err.msg, "mock begin failed");
    assert_non_null(fdt_txn_join(t, "l", &err));
    assert_int_equal(calls[OP_BEGIN], begins + 2);
    assert_int_equal(fdt_txn_commit(t, &err), 0);
}

/* Queries: bad arguments, no err and no rows wanted. */
static void test_query_arguments(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    struct fdt_txn *t = begin();
    struct fdt_sql_rows *rows = (struct fdt_sql_rows *)&err;
    assert_int_equal(fdt_txn_query(t, "p", "SELECT 1", NULL, -1, &rows, &err), FDT_EINVAL);
    assert_null(rows);
    assert_string_equal(err.msg, "bad query arguments");
    assert_int_equal(fdt_txn_query(t, "p", "SELECT 1", NULL, 1, NULL, &err), FDT_EINVAL);
    assert_int_equal(fdt_txn_query(t, "p", NULL, NULL, 0, NULL, &err), FDT_EINVAL);
    assert_int_equal(fdt_txn_query(t, "p", "SELECT 1", NULL, 0, NULL, NULL), 0);
    assert_int_equal(calls[OP_QUERY], 1);
    fail_in[OP_QUERY] = 1;
    assert_int_equal(fdt_txn_query(t, "p", "SELECT 1", NULL, 0, NULL, NULL), FDT_EDB);
    assert_int_equal(fdt_txn_commit(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "rolled back: mock query failed");
}

/* What a prepared transaction refuses, and what a doomed one does. */
static void test_states(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    struct fdt_txn *t = begin();
    assert_int_equal(fdt_txn_finish(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "finish: vote first");
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_vote(t, &err), 0);
    assert_int_equal(fdt_txn_state(t), FDT_TXN_PREPARED);
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 2", NULL, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "the transaction is no longer active");
    assert_int_equal(fdt_txn_commit(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "commit: the transaction is not active");
    assert_int_equal(fdt_txn_vote(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "vote: the transaction is not active");
    assert_int_equal(fdt_txn_savepoint(t, "s", &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "savepoint: the transaction is not active");
    assert_int_equal(fdt_txn_rollback_to(t, "s", &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "savepoint: the transaction is not active");
    assert_int_equal(fdt_txn_finish(t, &err), 0);
    assert_int_equal(calls[OP_COMMIT_PREPARED], 1);
    assert_true(ran("UPDATE fdt_txn_log SET outcome = 'committed'"));

    /* Doomed by the application: the first reason stays; vote and savepoints refuse. */
    t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_rollback_to(t, "1bad", &err), FDT_EINVAL);
    assert_string_equal(err.msg, "bad savepoint name");
    fdt_txn_doom(t, "over the limit");
    fdt_txn_doom(t, "second reason");
    assert_int_equal(fdt_txn_savepoint(t, "s", &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "the transaction is doomed: over the limit");
    assert_int_equal(fdt_txn_vote(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "rolled back: over the limit");
    assert_int_equal(calls[OP_ROLLBACK], 1);
    t = begin();
    fdt_txn_doom(t, NULL);
    assert_int_equal(fdt_txn_commit(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "rolled back: doomed");
}

/* A rollback that fails: an active branch's is only logged (its database rolls it back
 * when the session goes); a prepared branch's is the error, and it stays prepared. */
static void test_rollback_fails(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    struct fdt_txn *t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    fail_in[OP_ROLLBACK] = 1;
    assert_int_equal(fdt_txn_abort(t, &err), 0);
    assert_int_equal(calls[OP_ROLLBACK], 1);

    t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_exec(t, "q", "INSERT 2", NULL, &err), 0);
    assert_int_equal(fdt_txn_vote(t, &err), 0);
    assert_int_equal(fdt_txn_prepared_count(t), 2);
    fail_in[OP_ROLLBACK_PREPARED] = 2;
    assert_int_equal(fdt_txn_abort(t, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, ":q:"));
    assert_non_null(strstr(err.msg, "mock rollback prepared failed (it stays prepared; "
                                    "recovery rolls it back)"));
    assert_int_equal(calls[OP_ROLLBACK_PREPARED], 2);
    assert_true(ran("UPDATE fdt_txn_log SET outcome = 'rolled back'"));
}

/* Two branches that cannot prepare never commit together; nothing is committed. */
static void test_two_last_resources(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    struct fdt_txn *t = begin();
    assert_int_equal(fdt_txn_exec(t, "l", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_exec(t, "m", "INSERT 2", NULL, &err), 0);
    assert_int_equal(fdt_txn_commit(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "rolled back: two resources that cannot prepare (sqlite) cannot "
                                 "commit atomically together");
    assert_int_equal(calls[OP_COMMIT], 0);
    assert_int_equal(calls[OP_ROLLBACK], 2);
}

/* The decision record cannot be written on a live session (the log table cannot be
 * created, the session for it cannot be opened): everything is rolled back. */
static void test_decision_refused(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    fdt__resource_find("p")->log_ready = false;
    struct fdt_txn *t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_exec(t, "q", "INSERT 2", NULL, &err), 0);
    fail_in[OP_EXEC] = 1; /* the advisory lock of the table's creation */
    assert_int_equal(fdt_txn_commit(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "rolled back: decision: mock exec failed");
    assert_int_equal(calls[OP_PREPARE], 2);
    assert_int_equal(calls[OP_ROLLBACK_PREPARED], 2);
    assert_int_equal(calls[OP_COMMIT_PREPARED], 0);
    assert_false(fdt__resource_find("p")->log_ready);
    assert_int_equal(t_counters.txn_rolled_back, 1);

    fdt__resource_find("p")->log_ready = true;
    t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_exec(t, "q", "INSERT 2", NULL, &err), 0);
    fdt__txn_shutdown(); /* the decision's own session must be opened */
    fail_in[OP_OPEN] = 1;
    assert_int_equal(fdt_txn_commit(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "rolled back: decision record: mock open failed");
    assert_int_equal(calls[OP_ROLLBACK_PREPARED], 4);
}

/* The decision's session dies while it is written: the outcome is unknown, the branches
 * stay prepared for recovery, and the unknown outcome is counted. */
static void test_decision_unknown(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    struct fdt_txn *t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_exec(t, "q", "INSERT 2", NULL, &err), 0);
    fail_in[OP_EXEC] = 1;
    fail_kills = true;
    assert_int_equal(fdt_txn_commit(t, &err), FDT_EOUTCOME);
    assert_string_equal(err.msg, "outcome unknown: mock exec failed");
    assert_null(t_h.txn);
    assert_int_equal(calls[OP_PREPARE], 2);
    assert_int_equal(calls[OP_ROLLBACK_PREPARED] + calls[OP_COMMIT_PREPARED], 0);
    assert_int_equal(t_counters.txn_unknown, 1);

    /* The same with a last resource, whose commit is the decision. Its session is
     * closed, not pooled (teardown counts the sessions left open). */
    t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_exec(t, "l", "INSERT 2", NULL, &err), 0);
    fail_in[OP_COMMIT] = 1;
    assert_int_equal(fdt_txn_commit(t, &err), FDT_EOUTCOME);
    assert_string_equal(err.msg, "outcome unknown: mock commit failed");
    assert_true(ran("INSERT INTO fdt_txn_log"));
    assert_int_equal(calls[OP_ROLLBACK_PREPARED] + calls[OP_COMMIT_PREPARED], 0);
    assert_int_equal(t_counters.txn_unknown, 2);
}

/* COMMIT PREPARED failing after the decision: commit still succeeds (recovery finishes
 * the branch), and the decision is kept for it. */
static void test_commit_prepared_fails(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    struct fdt_txn *t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_exec(t, "q", "INSERT 2", NULL, &err), 0);
    fail_in[OP_COMMIT_PREPARED] = 1;
    assert_int_equal(fdt_txn_commit(t, &err), 0);
    assert_int_equal(calls[OP_COMMIT_PREPARED], 2);
    assert_true(ran("'root', 'commit'"));
    assert_false(ran("DELETE FROM fdt_txn_log"));
    assert_int_equal(t_counters.txn_committed, 1);

    /* After a vote, finish reports the outcome unknown. */
    t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_vote(t, &err), 0);
    fail_in[OP_COMMIT_PREPARED] = 1;
    assert_int_equal(fdt_txn_finish(t, &err), FDT_EOUTCOME);
    assert_string_equal(err.msg, "outcome unknown: mock commit prepared failed");
    assert_int_equal(t_counters.txn_unknown, 1);
}

/* The vote record cannot be written: the vote fails and the branch is rolled back. */
static void test_vote_record_fails(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    struct fdt_txn *t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    fail_in[OP_EXEC] = 1;
    assert_int_equal(fdt_txn_vote(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "rolled back: vote record: mock exec failed");
    assert_int_equal(calls[OP_ROLLBACK_PREPARED], 1);

    /* No session for it (the pool is empty: the branch holds the only one). */
    t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    fdt__txn_shutdown();
    fail_in[OP_OPEN] = 1;
    assert_int_equal(fdt_txn_vote(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "rolled back: vote record: mock open failed");
    assert_int_equal(calls[OP_ROLLBACK_PREPARED], 2);
}

/* The outcome after a vote cannot be recorded: a warning only; the work is done. */
static void test_outcome_not_recorded(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    struct fdt_txn *t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_vote(t, &err), 0);
    fail_in[OP_EXEC] = 1;
    assert_int_equal(fdt_txn_finish(t, &err), 0);
    assert_int_equal(calls[OP_COMMIT_PREPARED], 1);
    assert_int_equal(t_counters.txn_committed, 1);

    t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_vote(t, &err), 0);
    fdt__txn_shutdown();
    fail_in[OP_OPEN] = 1;
    sqls[0] = '\0';
    assert_int_equal(fdt_txn_abort(t, &err), 0);
    assert_int_equal(calls[OP_ROLLBACK_PREPARED], 1);
    assert_false(ran("UPDATE"));
    assert_int_equal(t_counters.txn_rolled_back, 1);
}

/* Savepoint statements failing: each dooms the transaction with the database's message. */
static void test_savepoint_failures(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    struct fdt_txn *t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    fail_in[OP_EXEC] = 1;
    fail_code = FDT_ERETRY;
    assert_int_equal(fdt_txn_savepoint(t, "a", &err), FDT_ERETRY);
    assert_true(ran("SAVEPOINT a"));
    assert_true(fdt__txn_conflicted(t));
    assert_int_equal(fdt_txn_commit(t, &err), FDT_ERETRY);
    assert_string_equal(err.msg, "rolled back: mock exec failed");
    assert_int_equal(t_counters.txn_conflicts, 1);
    fail_code = 0;

    /* ROLLBACK TO in a branch begun before it. */
    t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_savepoint(t, "a", &err), 0);
    fail_in[OP_EXEC] = 1;
    assert_int_equal(fdt_txn_rollback_to(t, "a", &err), FDT_EDB);
    assert_true(ran("ROLLBACK TO SAVEPOINT a"));
    assert_int_equal(fdt_txn_commit(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "rolled back: mock exec failed");

    /* The whole rollback of a branch begun after it. */
    t = begin();
    assert_int_equal(fdt_txn_savepoint(t, "a", &err), 0);
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    fail_in[OP_ROLLBACK] = 1;
    assert_int_equal(fdt_txn_rollback_to(t, "a", &err), FDT_EDB);
    assert_int_equal(fdt_txn_commit(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "rolled back: mock rollback failed");

    /* RELEASE. */
    t = begin();
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_savepoint(t, "a", &err), 0);
    fail_in[OP_EXEC] = 1;
    assert_int_equal(fdt_txn_release(t, "a", &err), FDT_EDB);
    assert_true(ran("RELEASE SAVEPOINT a"));
    assert_int_equal(fdt_txn_commit(t, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "rolled back: mock exec failed");
}

static int runs;

static int conflict_once(struct fdt_txn *t, void *arg, struct fdt_error *err)
{
    (void)arg;
    runs++;
    random_fails = false;
    int rc = fdt_txn_exec(t, "p", "INSERT 1", NULL, err);
    if (rc < 0 || runs > 1)
        return rc;
    random_fails = true; /* for the pause before the second run */
    return fdt_error_set(err, FDT_ERETRY, "conflict");
}

/* fdt__txn_run: with no err, on a holder that already has a transaction, and a retry
 * whose jitter has no random bytes (it waits the shortest pause). */
static void test_run(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    runs = 0;
    int attempts = 0;
    assert_int_equal(fdt__txn_run(&t_h, conflict_once, NULL, 3, &attempts, NULL), 0);
    assert_int_equal(attempts, 2);
    assert_int_equal(calls[OP_COMMIT], 1);
    assert_int_equal(t_counters.txn_rolled_back, 1);
    assert_int_equal(t_counters.txn_committed, 1);

    struct fdt_txn *t = begin();
    assert_int_equal(fdt__txn_run(&t_h, conflict_once, NULL, 3, &attempts, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "a transaction is already open on this connection");
    assert_ptr_equal(t_h.txn, t);
    assert_int_equal(fdt_txn_abort(t, &err), 0);
}

/* A connection that closes after a vote that had no work: nothing stays prepared. */
static void test_closed_after_empty_vote(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    struct fdt_txn *t = begin();
    assert_int_equal(fdt_txn_vote(t, &err), 0);
    assert_int_equal(fdt_txn_state(t), FDT_TXN_PREPARED);
    assert_int_equal(fdt_txn_prepared_count(t), 0);
    fdt__txn_holder_closed(&t_h);
    assert_null(t_h.txn);
    assert_int_equal(calls[OP_OPEN], 0);
}

/* A vote that had no work, then finish or abort: the transaction ends committed or rolled
 * back without a session: there is no log record to update. */
static void test_finish_after_empty_vote(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    struct fdt_txn *t = begin();
    assert_int_equal(fdt_txn_vote(t, &err), 0);
    assert_int_equal(fdt_txn_finish(t, &err), 0);
    assert_null(t_h.txn);
    t = begin();
    assert_int_equal(fdt_txn_vote(t, &err), 0);
    assert_int_equal(fdt_txn_abort(t, &err), 0);
    assert_null(t_h.txn);
    assert_int_equal(calls[OP_OPEN], 0);
    assert_false(ran("fdt_txn_log"));

    /* Its only branch rolled back whole to a savepoint: nothing is prepared, so there is
     * no vote record either, and no log session is taken to update one. */
    t = begin();
    assert_int_equal(fdt_txn_savepoint(t, "s0", &err), 0);
    assert_int_equal(fdt_txn_exec(t, "p", "INSERT 1", NULL, &err), 0);
    assert_int_equal(fdt_txn_rollback_to(t, "s0", &err), 0);
    assert_int_equal(fdt_txn_vote(t, &err), 0);
    assert_int_equal(fdt_txn_prepared_count(t), 0);
    assert_int_equal(fdt_txn_finish(t, &err), 0);
    assert_false(ran("fdt_txn_log"));
}

/* A pooled session found dead is dropped (and counted) and the next one is taken; with
 * none left, a new one is opened. */
static void test_pool_dead_session(void **state)
{
    (void)state;
    struct fdt_resource *r = fdt__resource_find("p");
    struct fdt_error err = {0};
    void *a = NULL;
    void *b = NULL;
    assert_int_equal(fdt__resource_acquire(r, &a, &err), 0);
    assert_int_equal(fdt__resource_acquire(r, &b, &err), 0);
    fdt__resource_release(r, a, true);
    fdt__resource_release(r, b, true);
    assert_int_equal(r->n_idle, 2);
    ((struct msess *)a)->dead = true;
    ((struct msess *)b)->dead = true;
    fdt__txn_set_counters(&t_counters);
    void *c = NULL;
    assert_int_equal(fdt__resource_acquire(r, &c, &err), 0);
    fdt__txn_set_counters(NULL);
    assert_true(c != NULL && m_alive(c));
    assert_int_equal(t_counters.resource_errors, 2);
    assert_int_equal(t_counters.resource_sessions, 1);
    assert_int_equal(sessions, 1);
    assert_int_equal(r->n_idle, 0);
    fdt__resource_release(r, c, true);
}

/* The log table is created once: a second preparation asks nothing of the database. */
static void test_logs_prepared_once(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    fdt__resource_find("p")->log_ready = false;
    assert_int_equal(fdt__txn_logs_prepare(&err), 0);
    assert_true(fdt__resource_find("p")->log_ready);
    assert_true(ran("CREATE TABLE IF NOT EXISTS fdt_txn_log"));
    int execs = calls[OP_EXEC];
    assert_int_equal(fdt__txn_logs_prepare(&err), 0);
    assert_int_equal(calls[OP_EXEC], execs);
    assert_int_equal(calls[OP_OPEN], 1);
}

#if FDT_FAULT_POINTS
#include <signal.h>
#include <sys/wait.h>

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The fault points of FDT_FAULT_FILE: no file, another point's name, a pause (the file is
 * used up), and a kill (in a child: it dies of SIGKILL). */
static void test_fault_points(void **state)
{
    (void)state;
    char path[96];
    snprintf(path, sizeof(path), "%s/fault", t_dir);
    setenv("FDT_FAULT_FILE", path, 1);
    fdt__txn_fault("before_decision"); /* no file: nothing happens */
    write_file(path, "after_prepare\n");
    fdt__txn_fault("before_decision");
    assert_int_equal(access(path, F_OK), 0);
    write_file(path, "before_decision sleep 1\n");
    fdt__txn_fault("before_decision");
    assert_int_not_equal(access(path, F_OK), 0);
    write_file(path, "before_decision\n");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fdt__txn_fault("before_decision");
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    assert_int_not_equal(access(path, F_OK), 0);
    unsetenv("FDT_FAULT_FILE");
}
#endif

static const struct fdt_xid xid1 = {.format_id = 1, .gtrid_len = 3, .gtrid = {1, 2, 3}};

static const char *gid_of(char *out, const char *node, const char *resource)
{
    assert_int_equal(fdt__gid_format(out, FDT_GID_MAX + 1, node, resource, &xid1), 0);
    return out;
}

/* A log that cannot be read decides nothing: the branch is left in doubt. */
static void test_recover_log_unreadable(void **state)
{
    (void)state;
    char gid[FDT_GID_MAX + 1];
    prepared[0] = gid_of(gid, "n1", "p");
    fail_in[OP_QUERY_TEXT] = 1; /* q's log: p's has no record, but q's might */
    struct fdt_recover_result res;
    struct fdt_error err = {0};
    assert_int_equal(fdt__txn_recover_once("n1", 0.0, &res, &err), 0);
    assert_true(res.scanned);
    assert_int_equal(res.in_doubt, 1);
    assert_int_equal(calls[OP_COMMIT_PREPARED] + calls[OP_ROLLBACK_PREPARED], 0);

    /* Readable, with its decision: committed, and who did it recorded. */
    log_row = "root commit";
    assert_int_equal(fdt__txn_recover_once("n1", 0.0, &res, &err), 0);
    assert_int_equal(res.in_doubt, 0);
    assert_int_equal(calls[OP_COMMIT_PREPARED], 1);
    assert_true(ran("UPDATE fdt_txn_log SET outcome = 'committed', comment = 'committed by node "
                    "n1 at "));
}

/* COMMIT PREPARED failing in recovery: a warning, the decision stays for the next pass. */
static void test_recover_commit_fails(void **state)
{
    (void)state;
    char gid[FDT_GID_MAX + 1];
    prepared[0] = gid_of(gid, "n1", "p");
    log_row = "root commit";
    fail_in[OP_COMMIT_PREPARED] = 1;
    struct fdt_recover_result res;
    struct fdt_error err = {0};
    assert_int_equal(fdt__txn_recover_once("n1", 0.0, &res, &err), 0);
    assert_int_equal(calls[OP_COMMIT_PREPARED], 1);
    assert_false(ran("UPDATE"));

    /* The next pass commits it; recording who did fails: only a warning, the branch is
     * committed all the same. */
    fail_in[OP_EXEC] = 1;
    assert_int_equal(fdt__txn_recover_once("n1", 0.0, &res, &err), 0);
    assert_int_equal(calls[OP_COMMIT_PREPARED], 2);
    assert_int_equal(fail_in[OP_EXEC], 0);
}

/* Listing the prepared branches fails: the pass says so. */
static void test_recover_listing_fails(void **state)
{
    (void)state;
    struct fdt_recover_result res;
    struct fdt_error err = {0};
    fail_in[OP_RECOVER] = 1;
    assert_int_equal(fdt__txn_recover_once("n1", 0.0, &res, &err), FDT_EDB);
    assert_string_equal(err.msg, "mock recover failed");
    assert_true(res.scanned);

    /* fdtserver txn list the same. */
    fail_in[OP_RECOVER] = 1;
    assert_int_equal(fdt__txn_list(NULL, NULL, NULL, &err), FDT_EDB);
    assert_string_equal(err.msg, "mock recover failed");
}

/* Takeover of a peer (n2) with a prepared branch: its alive lock cannot be asked for, is
 * held (the peer is alive: left alone), or is free but its pass fails. */
static void test_takeover(void **state)
{
    (void)state;
    char gid[FDT_GID_MAX + 1];
    prepared[0] = gid_of(gid, "n2", "p");
    struct fdt_recover_result res;
    struct fdt_error err = {0};
    fail_in[OP_QUERY_TEXT] = 1;
    assert_int_equal(fdt__txn_recover_once("n1", 0.0, &res, &err), FDT_EDB);
    assert_string_equal(err.msg, "takeover: mock query_text failed");
    assert_non_null(strstr(last_query, "pg_try_advisory_lock("));
    assert_non_null(strstr(last_query, "fdt-alive:n2"));

    lock_answer = "f";
    memset(&err, 0, sizeof(err));
    assert_int_equal(fdt__txn_recover_once("n1", 0.0, &res, &err), 0);
    assert_int_equal(calls[OP_ROLLBACK_PREPARED], 0);

    /* Free: its pass (recover calls 1-2 are n1's, 3-4 list the peers) fails. */
    lock_answer = "t";
    fail_in[OP_RECOVER] = 5;
    assert_int_equal(fdt__txn_recover_once("n1", 0.0, &res, &err), FDT_EDB);
    assert_string_equal(err.msg, "takeover: mock recover failed");
    assert_non_null(strstr(last_query, "pg_advisory_unlock"));

    /* Listing the peers fails (recover calls 1-2 are n1's). */
    fail_in[OP_RECOVER] = 3;
    assert_int_equal(fdt__txn_recover_once("n1", 0.0, &res, &err), FDT_EDB);
    assert_string_equal(err.msg, "takeover: mock recover failed");

    /* No session for the log resource to try the lock on: the sessions that listed the
     * peers died, and no new one can be opened. */
    fdt__txn_shutdown();
    recover_kills = true;
    assert_int_equal(fdt__txn_recover_once("n1", 0.0, &res, &err), FDT_EDB);
    assert_string_equal(err.msg, "takeover: mock open failed");
    recover_kills = false;

    /* Free and readable: with no decision in the shared log, the dead node's may be in its
     * own SQLite file: left in doubt, nothing rolled back. */
    assert_int_equal(fdt__txn_recover_once("n1", 0.0, &res, &err), 0);
    assert_int_equal(calls[OP_ROLLBACK_PREPARED] + calls[OP_COMMIT_PREPARED], 0);
}

/* fdtserver txn commit / rollback (fdt__txn_resolve) when things fail. */
static void test_resolve_failures(void **state)
{
    (void)state;
    struct fdt_error err = {0};
    int found = -1;
    struct fdt_xid bad = {.format_id = 1};
    assert_int_equal(fdt__txn_resolve("n1", &bad, true, "c", &found, &err), FDT_EINVAL);
    assert_string_equal(err.msg, "bad xid");
    assert_int_equal(found, 0);

    /* A rollback with no record fences first; the fence fails (a decision raced). */
    char gid[FDT_GID_MAX + 1];
    prepared[0] = gid_of(gid, "n1", "p");
    fail_in[OP_EXEC] = 1;
    assert_int_equal(fdt__txn_resolve("n1", &xid1, false, "c", &found, &err), FDT_EAGAIN);
    assert_string_equal(err.msg, "a decision raced with the rollback: try again");
    assert_int_equal(calls[OP_ROLLBACK_PREPARED], 0);

    /* A voted branch whose COMMIT PREPARED fails. */
    log_row = "participant voted";
    fail_in[OP_COMMIT_PREPARED] = 1;
    assert_int_equal(fdt__txn_resolve("n1", &xid1, true, "c", &found, &err), FDT_EDB);
    char want[300];
    snprintf(want, sizeof(want), "commit %s: mock commit prepared failed", gid);
    assert_string_equal(err.msg, want);
    assert_int_equal(found, 0);
    assert_false(ran("UPDATE"));
}

/* The recovery thread: the log table cannot be created at its start (it is then created
 * on first use), the alive lock is held on a session of its own; no thread to start. */
static void test_recovery_thread(void **state)
{
    (void)state;
    _Atomic int64_t in_doubt = 0;
    _Atomic int64_t oldest = 0;
    struct fdt_txn_recovery *rec = NULL;
    t_cfg->recovery_interval = 0;
    fdt__resource_find("p")->log_ready = false;
    fail_in[OP_EXEC] = 1;
    assert_int_equal(fdt__txn_recovery_start(t_cfg, &in_doubt, &oldest, &rec), 0);
    assert_non_null(rec);
    fdt__txn_recovery_stop(rec);
    assert_int_equal(calls[OP_EXEC], 1);
    assert_int_equal(calls[OP_ROLLBACK], 1);
    assert_false(fdt__resource_find("p")->log_ready);
    fdt__resource_find("p")->log_ready = true;

    threads_fail = true;
    rec = (struct fdt_txn_recovery *)&in_doubt;
    assert_int_equal(fdt__txn_recovery_start(t_cfg, &in_doubt, &oldest, &rec), -EAGAIN);
    assert_null(rec);
    threads_fail = false;

    /* Out of memory for its state: the caller is told, and no thread runs. */
    rec = (struct fdt_txn_recovery *)&in_doubt;
    alloc_fault_arm(1, false);
    assert_int_equal(fdt__txn_recovery_start(t_cfg, &in_doubt, &oldest, &rec), FDT_ENOMEM);
    assert_true(alloc_fault_hit());
    alloc_fault_disarm();
    assert_null(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_begin_cannot_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_first_statement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_last_resources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decision_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decision_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_prepared_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vote_record_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outcome_not_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoint_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_after_empty_vote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finish_after_empty_vote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_log_unreadable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_commit_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_listing_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_takeover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_dead_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_prepared_once, setup, teardown),
#if FDT_FAULT_POINTS
        cmocka_unit_test_setup_teardown(test_fault_points, setup, teardown),
#endif
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

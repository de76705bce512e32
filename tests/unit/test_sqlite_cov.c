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
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The SQLite driver's answers to what a manager of two-phase commit may ask of any
 * resource (it never prepares, so it has nothing to recover, lock or resolve), its raw
 * handle, and the errors of a file it cannot use. Linked statically, as in test_sqlite_rm. */
static const struct fdt_rm_driver *drv;

/* sqlite3_step, as the driver sees it (linked with -Wl,--wrap=sqlite3_step): a statement
 * whose text is step_sql fails with SQLITE_IOERR, or (step_ends) ends the connection's
 * transaction with a real ROLLBACK and reports success — what SQLite does on its own after
 * an I/O error or a full disk, which no test can order at the instant wanted. */
int __real_sqlite3_step(sqlite3_stmt *st);
int __wrap_sqlite3_step(sqlite3_stmt *st);
static const char *step_sql;
#define SP_NAME_FOR_TEST "fdt__gc" /* sqlite_rm.c's group commit savepoint */
static bool step_ends;

int __wrap_sqlite3_step(sqlite3_stmt *st)
{
    if (!step_sql || strcmp(sqlite3_sql(st), step_sql) != 0)
        return __real_sqlite3_step(st);
    if (!step_ends)
        return SQLITE_IOERR;
    sqlite3 *db = sqlite3_db_handle(st);
    step_sql = NULL;
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    return SQLITE_DONE;
}

static void make_cfg(struct fdt_resource_cfg *cfg, const char *dir, const char *file)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->name, sizeof(cfg->name), "lite");
    snprintf(cfg->driver, sizeof(cfg->driver), "sqlite");
    snprintf(cfg->path, sizeof(cfg->path), "%s/%s", dir, file);
}

static void rm_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static int calls;

static void count_gid(const char *gid, double age, void *arg)
{
    (void)gid;
    (void)age;
    (void)arg;
    calls++;
}

/* Nothing is ever prepared in SQLite: recovery finds nothing, the recovery lock is always
 * free, and a GID cannot be committed or rolled back there (a clear error naming it). */
static void test_no_two_phase_state(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    make_cfg(&cfg, dir, "a.db");
    struct fdt_error err = {0};
    void *s = NULL;
    assert_int_equal(drv->open(&cfg, &s, &err), 0);
    assert_true(drv->alive(s));
    assert_int_equal(fdt__sqlite_group_waiting(s), 0); /* no group commit: nobody waits */

    calls = 0;
    assert_int_equal(drv->recover(s, "fdt1:", 0.0, count_gid, NULL, &err), 0);
    assert_int_equal(calls, 0);
    assert_int_equal(drv->try_lock(s, "fdt-recovery:n", &err), 1);
    drv->unlock(s, "fdt-recovery:n");

    const char *gid = "fdt1:n:lite:1:Bw:";
    assert_int_equal(drv->commit_prepared(s, gid, &err), FDT_ENOENT);
    assert_non_null(strstr(err.msg, "no prepared transaction fdt1:n:lite:1:Bw:"));
    memset(&err, 0, sizeof(err));
    assert_int_equal(drv->rollback_prepared(s, gid, &err), FDT_ENOENT);
    assert_non_null(strstr(err.msg, "sqlite has no prepared transaction"));
    assert_false(drv->retryable(&err));
    assert_false(drv->retryable(NULL));
    drv->close(s);
    rm_dir(dir);
}

/* fdt_txn_join's handle is the sqlite3 connection of the session: statements run on it
 * directly are seen through the driver; with group commit, during a transaction, it is
 * the group's writer, so that they belong to the transaction. */
static void test_handle_is_the_connection(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    make_cfg(&cfg, dir, "h.db");
    struct fdt_error err = {0};
    void *s = NULL;
    assert_int_equal(drv->open(&cfg, &s, &err), 0);
    sqlite3 *db = drv->handle(s);
    assert_non_null(db);
    assert_int_equal(
        sqlite3_exec(db, "CREATE TABLE t (x); INSERT INTO t VALUES (7)", NULL, NULL, NULL),
        SQLITE_OK);
    char out[16];
    assert_int_equal(drv->query_text(s, "SELECT x FROM t", out, sizeof(out), &err), 0);
    assert_string_equal(out, "7");
    drv->close(s);

    cfg.group_commit = true;
    cfg.group_commit_max = 4;
    assert_int_equal(drv->open(&cfg, &s, &err), 0);
    sqlite3 *own = drv->handle(s);
    assert_int_equal(drv->begin(s, &err), 0);
    sqlite3 *writer = drv->handle(s);
    assert_ptr_not_equal(own, writer);
    assert_int_equal(sqlite3_exec(writer, "INSERT INTO t VALUES (8)", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(drv->rollback(s, &err), 0);
    assert_ptr_equal(drv->handle(s), own);
    assert_int_equal(drv->query_text(s, "SELECT count(*) FROM t", out, sizeof(out), &err), 0);
    assert_string_equal(out, "1");
    drv->close(s);
    rm_dir(dir);
}

/* A file that cannot be opened, and one that is not a database: FDT_EDOWN (the resource
 * is down, not a statement error) with the reason. */
static void test_unusable_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    struct fdt_error err = {0};
    void *s = NULL;

    make_cfg(&cfg, dir, "missing/dir/x.db");
    assert_int_equal(drv->open(&cfg, &s, &err), FDT_EDOWN);
    assert_non_null(strstr(err.msg, "[resource.lite] open "));
    assert_non_null(strstr(err.msg, "unable to open database file"));

    make_cfg(&cfg, dir, "garbage.db");
    FILE *f = fopen(cfg.path, "w");
    assert_non_null(f);
    for (int i = 0; i < 64; i++)
        fputs("this is not an SQLite database file, only text. ", f);
    fclose(f);
    memset(&err, 0, sizeof(err));
    assert_int_equal(drv->open(&cfg, &s, &err), FDT_EDOWN);
    assert_non_null(strstr(err.msg, "not a database"));
    rm_dir(dir);
}

/* A host of another ABI gets no driver (the loader then says the module is unusable). */
static void test_entry_checks_the_host(void **state)
{
    (void)state;
    assert_null(fdt_rm_driver_v1(NULL));
    struct fdt_rm_host other = fdt__rm_host;
    other.abi_version++;
    assert_null(fdt_rm_driver_v1(&other));
    other = fdt__rm_host;
    other.size = sizeof(other) - 1;
    assert_null(fdt_rm_driver_v1(&other));
    assert_ptr_equal(fdt_rm_driver_v1(&fdt__rm_host), drv);
}

static int query_rc(void *s, const char *sql, const struct fdt_sql_param *p, int n,
                    struct fdt_error *err)
{
    struct fdt_sql_rows *r = fdt__sql_rows_new();
    assert_non_null(r);
    memset(err, 0, sizeof(*err));
    int rc = drv->query(s, sql, p, n, r, err);
    fdt_sql_rows_free(r);
    return rc;
}

/* fdt_txn_query's refusals and errors, each with its reason; a parameter the statement
 * does not name is ignored. */
static void test_query_errors(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    make_cfg(&cfg, dir, "q.db");
    struct fdt_error err = {0};
    void *s = NULL;
    assert_int_equal(drv->open(&cfg, &s, &err), 0);

    struct fdt_sql_param many[33];
    for (int i = 0; i < 33; i++)
        many[i] = FDT_SQL_INT_P(i);
    assert_int_equal(query_rc(s, "SELECT $1", many, 33, &err), FDT_EINVAL);
    assert_string_equal(err.msg, "more than 32 parameters");

    assert_int_equal(query_rc(s, "  ;  ", NULL, 0, &err), FDT_EINVAL);
    assert_string_equal(err.msg, "empty statement");

    char wide[256] = "SELECT 1";
    for (int i = 2; i <= 33; i++)
        snprintf(wide + strlen(wide), sizeof(wide) - strlen(wide), ", %d", i);
    assert_int_equal(query_rc(s, wide, NULL, 0, &err), FDT_EINVAL);
    assert_string_equal(err.msg, "more than 32 result columns");

    /* An error found while the statement runs, not when it is prepared. */
    const char *overflow = "SELECT abs(-9223372036854775808)";
    assert_int_equal(query_rc(s, overflow, NULL, 0, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "integer overflow"));
    char out[32];
    assert_int_equal(drv->query_text(s, overflow, out, sizeof(out), &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "query failed: integer overflow"));

    /* $1 is not in the statement: only $2 is bound. */
    struct fdt_sql_param two[2] = {FDT_SQL_INT_P(1), FDT_SQL_INT_P(42)};
    struct fdt_sql_rows *r = fdt__sql_rows_new();
    assert_int_equal(drv->query(s, "SELECT $2", two, 2, r, &err), 0);
    assert_int_equal(fdt_sql_int(r, 0, 0), 42);
    fdt_sql_rows_free(r);
    drv->close(s);
    rm_dir(dir);
}

/* A database that cannot be in WAL mode (SQLite's in-memory database, which the path
 * ":memory:" names) is refused: commits there would not be durable. */
static void test_no_wal_is_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    struct fdt_resource_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.name, sizeof(cfg.name), "mem");
    snprintf(cfg.path, sizeof(cfg.path), ":memory:");
    struct fdt_error err = {0};
    void *s = NULL;
    assert_int_equal(drv->open(&cfg, &s, &err), FDT_EDOWN);
    assert_string_equal(err.msg, "[resource.mem] cannot switch :memory: to WAL mode");
    assert_int_equal(chdir(cwd), 0);
    rm_dir(dir);
}

struct opener {
    const struct fdt_resource_cfg *cfg;
    void *s;
    int rc;
};

static void *open_thread(void *arg)
{
    struct opener *o = arg;
    struct fdt_error err = {0};
    o->rc = drv->open(o->cfg, &o->s, &err);
    return NULL;
}

/* A session opened while another connection holds the write lock of a new file (not yet
 * in WAL mode) waits for it, then switches the file to WAL, instead of failing. */
static void test_wal_switch_waits_for_a_writer(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    make_cfg(&cfg, dir, "w.db");
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(cfg.path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw,
                                  "CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t "
                                  "VALUES (1)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    struct opener o = {.cfg = &cfg, .rc = 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, open_thread, &o), 0);
    struct timespec ts = {0, 100 * 1000 * 1000}; /* the opener is waiting meanwhile */
    nanosleep(&ts, NULL);
    assert_int_equal(sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    pthread_join(th, NULL);
    assert_int_equal(o.rc, 0);
    struct fdt_error err = {0};
    char out[16];
    assert_int_equal(drv->query_text(o.s, "PRAGMA journal_mode", out, sizeof(out), &err), 0);
    assert_string_equal(out, "wal");
    assert_int_equal(drv->query_text(o.s, "SELECT x FROM t", out, sizeof(out), &err), 0);
    assert_string_equal(out, "1");
    drv->close(o.s);
    sqlite3_close(raw);
    rm_dir(dir);
}

static void gc_cfg(struct fdt_resource_cfg *cfg, const char *dir, const char *file)
{
    make_cfg(cfg, dir, file);
    cfg->group_commit = true;
    cfg->group_commit_max = 100;
    cfg->group_commit_window = 10;
}

static long rows_of(void *s, const char *sql)
{
    long rows = -1;
    struct fdt_error err = {0};
    assert_int_equal(drv->exec(s, sql, &rows, &err), 0);
    return rows;
}

/* Group commit: a second begin on the same session is refused; a session closed in the
 * middle of its turn rolls its work back and frees the writer for the others. */
static void test_group_session_misuse(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    gc_cfg(&cfg, dir, "g.db");
    struct fdt_error err = {0};
    void *a = NULL;
    void *b = NULL;
    assert_int_equal(drv->open(&cfg, &a, &err), 0);
    assert_int_equal(drv->open(&cfg, &b, &err), 0);
    assert_int_equal(drv->exec(a, "CREATE TABLE u (x INTEGER UNIQUE)", NULL, &err), 0);
    assert_int_equal(drv->begin(a, &err), 0);
    assert_int_equal(drv->begin(a, &err), FDT_ETXNSTATE);
    assert_string_equal(err.msg, "a transaction is already open on this session");
    assert_int_equal(drv->exec(a, "INSERT INTO u VALUES (1)", NULL, &err), 0);
    drv->close(a);
    assert_int_equal(drv->begin(b, &err), 0);
    assert_int_equal(drv->exec(b, "INSERT INTO u VALUES (2)", NULL, &err), 0);
    assert_int_equal(drv->commit(b, &err), 0);
    assert_int_equal(rows_of(b, "SELECT * FROM u WHERE x = 1"), 0);
    assert_int_equal(rows_of(b, "SELECT * FROM u WHERE x = 2"), 1);
    drv->close(b);
    rm_dir(dir);
}

/* A statement that makes SQLite end the batch's transaction itself (ON CONFLICT ROLLBACK):
 * every later statement of the request is refused as retryable, not run on its own outside
 * the batch, and the request ends rolled back. */
static void test_group_batch_ended_by_sqlite(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    gc_cfg(&cfg, dir, "e.db");
    struct fdt_error err = {0};
    void *a = NULL;
    assert_int_equal(drv->open(&cfg, &a, &err), 0);
    assert_int_equal(drv->exec(a, "CREATE TABLE u (x INTEGER UNIQUE)", NULL, &err), 0);
    assert_int_equal(drv->exec(a, "INSERT INTO u VALUES (1)", NULL, &err), 0);
    assert_int_equal(drv->begin(a, &err), 0);
    assert_int_equal(drv->exec(a, "INSERT INTO u VALUES (5)", NULL, &err), 0);
    assert_int_equal(drv->exec(a, "INSERT OR ROLLBACK INTO u VALUES (1)", NULL, &err), FDT_EDB);
    assert_int_equal(drv->exec(a, "INSERT INTO u VALUES (6)", NULL, &err), FDT_ERETRY);
    assert_string_equal(err.msg, "[resource.lite] the batch's transaction was rolled back");
    assert_true(drv->retryable(&err));
    memset(&err, 0, sizeof(err));
    assert_int_equal(query_rc(a, "SELECT 1", NULL, 0, &err), FDT_ERETRY);
    char out[8];
    assert_int_equal(drv->query_text(a, "SELECT 1", out, sizeof(out), &err), FDT_ERETRY);
    assert_int_equal(drv->commit(a, &err), FDT_ERETRY);
    assert_int_equal(rows_of(a, "SELECT * FROM u"), 1);
    drv->close(a);
    rm_dir(dir);
}

/* A group commit session on dir/file, with tables p and c (c.p references p.id, checked
 * at commit). */
static void *open_fk_group(const char *dir, const char *file)
{
    struct fdt_resource_cfg cfg;
    gc_cfg(&cfg, dir, file);
    struct fdt_error err = {0};
    void *a = NULL;
    assert_int_equal(drv->open(&cfg, &a, &err), 0);
    assert_int_equal(drv->exec(a,
                               "CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p "
                               "INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)",
                               NULL, &err),
                     0);
    return a;
}

/* The COMMIT of a batch fails (a deferred foreign key, checked only at COMMIT): every
 * member is told so, the batch is rolled back, and the writer serves the next request. */
static void test_group_commit_fails(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_error err = {0};
    void *a = open_fk_group(dir, "c.db");
    assert_int_equal(drv->begin(a, &err), 0);
    assert_int_equal(drv->exec(a, "INSERT INTO c VALUES (9)", NULL, &err), 0);
    assert_int_equal(drv->commit(a, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "batch commit: "));
    assert_non_null(strstr(err.msg, "FOREIGN KEY constraint failed"));
    assert_int_equal(rows_of(a, "SELECT * FROM c"), 0);
    assert_int_equal(drv->begin(a, &err), 0);
    assert_int_equal(drv->exec(a, "INSERT INTO p VALUES (9); INSERT INTO c VALUES (9)", NULL, &err),
                     0);
    assert_int_equal(drv->commit(a, &err), 0);
    assert_int_equal(rows_of(a, "SELECT * FROM c"), 1);
    drv->close(a);
    rm_dir(dir);
}

/* Group commit, SQLite failing where no test can make it fail: the batch's COMMIT fails and
 * so does the ROLLBACK after it (logged; the members are told, the next batch works); and
 * a request's RELEASE that ends the batch's transaction (the batch fails: "its transaction
 * ended"). */
static void test_group_rollback_fails(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_error err = {0};
    void *a = open_fk_group(dir, "r.db");
    assert_int_equal(drv->begin(a, &err), 0);
    sqlite3 *writer = drv->handle(a); /* the group's, during the turn */
    assert_int_equal(drv->exec(a, "INSERT INTO c VALUES (9)", NULL, &err), 0);
    step_sql = "ROLLBACK";
    step_ends = false;
    assert_int_equal(drv->commit(a, &err), FDT_EDB);
    step_sql = NULL;
    assert_non_null(strstr(err.msg, "FOREIGN KEY constraint failed"));
    /* The ROLLBACK that failed left the writer's transaction open (ended here by hand). */
    assert_false(sqlite3_get_autocommit(writer));
    assert_int_equal(sqlite3_exec(writer, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(rows_of(a, "SELECT * FROM c"), 0);

    assert_int_equal(drv->begin(a, &err), 0);
    assert_int_equal(drv->exec(a, "INSERT INTO p VALUES (1)", NULL, &err), 0);
    step_sql = "RELEASE " SP_NAME_FOR_TEST;
    step_ends = true;
    assert_int_equal(drv->commit(a, &err), FDT_ERETRY);
    assert_null(step_sql); /* it ran */
    assert_non_null(strstr(err.msg, "rolled back with its batch: its transaction ended"));
    assert_int_equal(rows_of(a, "SELECT * FROM p"), 0);
    assert_int_equal(drv->begin(a, &err), 0);
    assert_int_equal(drv->exec(a, "INSERT INTO p VALUES (2)", NULL, &err), 0);
    assert_int_equal(drv->commit(a, &err), 0);
    assert_int_equal(rows_of(a, "SELECT * FROM p"), 1);
    drv->close(a);
    rm_dir(dir);
}

/* The group's BEGIN IMMEDIATE fails when another connection keeps the file's write lock
 * (the writer's wait shortened here through its handle): the request is told to retry and
 * the writer is free for the next one. */
static void test_group_begin_busy(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    gc_cfg(&cfg, dir, "b.db");
    struct fdt_error err = {0};
    void *a = NULL;
    assert_int_equal(drv->open(&cfg, &a, &err), 0);
    assert_int_equal(drv->exec(a, "CREATE TABLE u (x)", NULL, &err), 0);
    assert_int_equal(drv->begin(a, &err), 0);
    assert_int_equal(sqlite3_busy_timeout(drv->handle(a), 1), SQLITE_OK);
    assert_int_equal(drv->rollback(a, &err), 0);

    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(cfg.path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(drv->begin(a, &err), FDT_ERETRY);
    assert_non_null(strstr(err.msg, "locked"));
    assert_int_equal(sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    assert_int_equal(drv->begin(a, &err), 0);
    assert_int_equal(drv->exec(a, "INSERT INTO u VALUES (1)", NULL, &err), 0);
    assert_int_equal(drv->commit(a, &err), 0);
    assert_int_equal(rows_of(a, "SELECT * FROM u"), 1);
    drv->close(a);
    rm_dir(dir);
}

/* A parameter SQLite refuses to bind (longer than the connection's length limit): the
 * query fails saying so, and the statement is usable again. */
static void test_bind_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    make_cfg(&cfg, dir, "t.db");
    struct fdt_error err = {0};
    void *s = NULL;
    assert_int_equal(drv->open(&cfg, &s, &err), 0);
    sqlite3_limit(drv->handle(s), SQLITE_LIMIT_LENGTH, 100);
    char big[200];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct fdt_sql_param p[1] = {FDT_SQL_TEXT_P(big)};
    assert_int_equal(query_rc(s, "SELECT $1", p, 1, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "binding parameters: "));
    p[0] = FDT_SQL_TEXT_P("small");
    struct fdt_sql_rows *r = fdt__sql_rows_new();
    assert_int_equal(drv->query(s, "SELECT $1", p, 1, r, &err), 0);
    assert_string_equal(fdt_sql_text(r, 0, 0), "small");
    fdt_sql_rows_free(r);
    drv->close(s);
    rm_dir(dir);
}

/* Savepoint statements SQLite refuses (an authorizer on the group's writer). */
static const char *deny_savepoint;

static int authorize(void *arg, int action, const char *a1, const char *a2, const char *a3,
                     const char *a4)
{
    (void)arg;
    (void)a2;
    (void)a3;
    (void)a4;
    if (action == SQLITE_SAVEPOINT && deny_savepoint && a1 && strcmp(a1, deny_savepoint) == 0)
        return SQLITE_DENY;
    return SQLITE_OK;
}

/* Group commit: a request whose savepoint cannot be taken fails at begin; undoing it
 * then fails too (there is no savepoint to roll back to), so the batch it opened is rolled
 * back whole, and the writer serves the next request. */
static void test_group_savepoint_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    gc_cfg(&cfg, dir, "s.db");
    struct fdt_error err = {0};
    void *a = NULL;
    assert_int_equal(drv->open(&cfg, &a, &err), 0);
    assert_int_equal(drv->exec(a, "CREATE TABLE u (x)", NULL, &err), 0);
    assert_int_equal(drv->begin(a, &err), 0);
    sqlite3 *writer = drv->handle(a);
    assert_int_equal(drv->rollback(a, &err), 0);
    assert_int_equal(sqlite3_set_authorizer(writer, authorize, NULL), SQLITE_OK);
    deny_savepoint = "BEGIN";
    assert_int_equal(drv->begin(a, &err), FDT_EDB);
    assert_non_null(strstr(err.msg, "not authorized"));
    assert_true(sqlite3_get_autocommit(writer));
    deny_savepoint = NULL;
    assert_int_equal(drv->begin(a, &err), 0);
    assert_int_equal(drv->exec(a, "INSERT INTO u VALUES (1)", NULL, &err), 0);
    assert_int_equal(drv->commit(a, &err), 0);
    assert_int_equal(rows_of(a, "SELECT * FROM u"), 1);
    sqlite3_set_authorizer(writer, NULL, NULL);
    drv->close(a);
    rm_dir(dir);
}

/* Group commit: a request waits for the writer at most the busy timeout (5 s) while
 * another holds its turn, then is told to retry. */
static void test_group_turn_wait(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-sqlite-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fdt_resource_cfg cfg;
    gc_cfg(&cfg, dir, "w.db");
    struct fdt_error err = {0};
    void *a = NULL;
    void *b = NULL;
    assert_int_equal(drv->open(&cfg, &a, &err), 0);
    assert_int_equal(drv->open(&cfg, &b, &err), 0);
    assert_int_equal(drv->begin(a, &err), 0);
    assert_int_equal(drv->begin(b, &err), FDT_ERETRY);
    assert_string_equal(err.msg, "[resource.lite] waited 5000 ms for the writer");
    assert_true(drv->retryable(&err));
    assert_int_equal(drv->commit(a, &err), 0);
    assert_int_equal(drv->begin(b, &err), 0);
    assert_int_equal(drv->commit(b, &err), 0);
    drv->close(a);
    drv->close(b);
    rm_dir(dir);
}

int main(void)
{
    drv = fdt_rm_driver_v1(&fdt__rm_host);
    if (!drv)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_two_phase_state),
        cmocka_unit_test(test_handle_is_the_connection),
        cmocka_unit_test(test_unusable_files),
        cmocka_unit_test(test_entry_checks_the_host),
        cmocka_unit_test(test_query_errors),
        cmocka_unit_test(test_no_wal_is_refused),
        cmocka_unit_test(test_wal_switch_waits_for_a_writer),
        cmocka_unit_test(test_group_session_misuse),
        cmocka_unit_test(test_group_batch_ended_by_sqlite),
        cmocka_unit_test(test_group_commit_fails),
        cmocka_unit_test(test_group_rollback_fails),
        cmocka_unit_test(test_group_begin_busy),
        cmocka_unit_test(test_bind_refused),
        cmocka_unit_test(test_group_savepoint_refused),
        cmocka_unit_test(test_group_turn_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

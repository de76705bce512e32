/* The test application: a line protocol that lets tests make a worker sleep, spin, hang,
 * crash, or say who it is.
 *
 *   PING          -> PONG
 *   SLEEP ms      -> SLEPT ms         (blocks its thread)
 *   SPIN ms       -> SPUN ms          (burns CPU)
 *   WHOAMI        -> pid=P generation=G worker=W thread=T version=V
 *   ECHO text     -> text
 *   BODY n        then n bytes -> GOT n SUM   (SUM: byte sum modulo 2^32)
 *   CRASH         -> abort()
 *   HANG          -> blocks forever
 *   CONN          -> id=N listener=NAME tls=0|1 calls=K   (K counts CONN on this connection,
 *                    kept with fdt_conn_set_data)
 *   LATER ms text -> nothing now; another thread writes "text" after ms and closes the
 *                    connection (fdt_conn_ref/unref keep it meanwhile); "text" "-": only close
 *   FLOOD n       -> n bytes (byte i is i mod 251) written at once with fdt_conn_write, which
 *                    buffers what the client does not take; over max_output it closes
 *                    -> then "FLOODED n rc" if every write was taken
 *   GREEDY        -> GREEDY, and on_data claims more bytes than it was given (what else came
 *                    with the line is dropped: the server must not read past its buffer)
 *   TXN BEGIN [GTRID_HEX]  begin a root (or, with a gtrid, participant) transaction
 *   SQL RESOURCE STATEMENT run a statement in the connection's transaction -> OK rows
 *   TXN COMMIT | VOTE | FINISH | ABORT | STATE | SAVEPOINT n | ROLLBACKTO n | RELEASE n
 *
 *
 * Over HTTP (request transactions, fdt_http_txn):
 *   POST /sql/RES/STATUS[/SLEEP_MS]  run the body (SQL) in the request's transaction, sleep,
 *                                    answer STATUS with "rows=N"; RES may name several
 *                                    resources joined by '+' (the body runs on each: N is
 *                                    the sum), so one request spans them (two-phase commit)
 *   POST /stream/RES/STATUS          the same, answered with a streamed body
 *   POST /query/RES?P1&P2...         fdt_txn_query(body, text params) -> one line per row,
 *                                    columns separated by '|', NULL as "NULL"
 *   GET /big/MIB                     a streamed body of MIB MiB in 64 KiB chunks; byte j of
 *                                    chunk k is (j + k) mod 256
 *
 * Built with LINEAPP_HOOKS (lineapp_hooks.so) it also has on_open (refuses a connection
 * while the file [app] refuse_open_if_exists names exists), on_close (logs "lineapp:
 * closed conn=N") and process_fini (appends "fini PID" to the file [app] fini_file).
 *
 * [app] keys: version (overrides the built-in one), fail_init = yes (process_init fails),
 * fail_thread_init = yes, init_delay_ms (sleep in process_init),
 * fail_init_if_exists = PATH (process_init fails while that file exists). */
#include <fdt/fdt.h>
#include <fdt/http.h>
#include <fdt/jsonrpc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef LINEAPP_VERSION
#define LINEAPP_VERSION "1"
#endif

#ifndef LINEAPP_ABI
#define LINEAPP_ABI FDT_APP_ABI_VERSION
#endif

#ifdef LINEAPP_BROKEN
/* Never defined anywhere: dlopen(RTLD_NOW) must refuse this object. */
extern int lineapp_symbol_that_does_not_exist(void);
#endif

/* Where SPIN's arithmetic goes, so that the compiler cannot drop it. */
volatile unsigned long lineapp_spin_sink;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int yes(const char *key)
{
    const char *v = fdt_app_config(key);
    return v && (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static int line_init(const struct fdt_worker_info *w, struct fdt_error *err)
{
    (void)w;
#ifdef LINEAPP_BROKEN
    if (lineapp_symbol_that_does_not_exist())
        return 1;
#endif
    const char *delay = fdt_app_config("init_delay_ms");
    if (delay)
        sleep_ms(atol(delay));
    const char *flag = fdt_app_config("fail_init_if_exists");
    if (flag && access(flag, F_OK) == 0) {
        fdt_error_set(err, FDT_EAPP, "%s exists", flag);
        return 1;
    }
    if (yes("fail_init")) {
        fdt_error_set(err, FDT_EAPP, "fail_init is set");
        return 1;
    }
    return 0;
}

static int line_thread_init(unsigned index, struct fdt_error *err)
{
    if (yes("fail_thread_init") && index == 0) {
        fdt_error_set(err, FDT_EAPP, "fail_thread_init is set");
        return 1;
    }
    return 0;
}

static void reply(struct fdt_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct fdt_conn *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    fdt_conn_write(c, buf, (size_t)n);
}

static const char *version(void)
{
    const char *v = fdt_app_config("version");
    return v ? v : LINEAPP_VERSION;
}

static void txn_reply(struct fdt_conn *c, int rc, const struct fdt_error *err)
{
    if (rc == 0)
        reply(c, "OK");
    else
        reply(c, "ERR %s", err->msg[0] ? err->msg : fdt_strerror(rc));
}

static int parse_hex(const char *hex, size_t len, uint8_t *out, size_t *out_len)
{
    if (len % 2 || len / 2 > FDT_XID_PART_MAX)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    *out_len = len / 2;
    return 0;
}

static void txn_command(struct fdt_conn *c, const char *line)
{
    struct fdt_error err = {0};
    struct fdt_txn *t = fdt_conn_txn(c);
    if (strncmp(line, "SQL ", 4) == 0) {
        char resource[64];
        const char *sp = strchr(line + 4, ' ');
        if (!sp || (size_t)(sp - line - 4) >= sizeof(resource)) {
            reply(c, "ERR usage: SQL RESOURCE STATEMENT");
            return;
        }
        memcpy(resource, line + 4, (size_t)(sp - line - 4));
        resource[sp - line - 4] = '\0';
        if (!t) {
            reply(c, "ERR no transaction");
            return;
        }
        long rows = 0;
        int rc = fdt_txn_exec(t, resource, sp + 1, &rows, &err);
        if (rc == 0)
            reply(c, "OK %ld", rows);
        else
            txn_reply(c, rc, &err);
        return;
    }
    const char *op = line + 4;
    if (strncmp(op, "BEGIN", 5) == 0) {
        struct fdt_xid xid = {.format_id = 1};
        const char *hex = op[5] == ' ' ? op + 6 : NULL;
        if (hex) {
            /* GTRID_HEX [BQUAL_HEX] */
            const char *sp = strchr(hex, ' ');
            size_t glen = sp ? (size_t)(sp - hex) : strlen(hex);
            if (parse_hex(hex, glen, xid.gtrid, &xid.gtrid_len) < 0 || xid.gtrid_len == 0 ||
                (sp && parse_hex(sp + 1, strlen(sp + 1), xid.bqual, &xid.bqual_len) < 0)) {
                reply(c, "ERR bad xid");
                return;
            }
        }
        txn_reply(c, fdt_txn_begin(c, hex ? &xid : NULL, &err), &err);
        return;
    }
    if (!t) {
        reply(c, "ERR no transaction");
        return;
    }
    if (strcmp(op, "COMMIT") == 0)
        txn_reply(c, fdt_txn_commit(t, &err), &err);
    else if (strcmp(op, "VOTE") == 0)
        txn_reply(c, fdt_txn_vote(t, &err), &err);
    else if (strcmp(op, "FINISH") == 0)
        txn_reply(c, fdt_txn_finish(t, &err), &err);
    else if (strcmp(op, "ABORT") == 0)
        txn_reply(c, fdt_txn_abort(t, &err), &err);
    else if (strcmp(op, "STATE") == 0)
        reply(c, "STATE %d", (int)fdt_txn_state(t));
    else if (strncmp(op, "SAVEPOINT ", 10) == 0)
        txn_reply(c, fdt_txn_savepoint(t, op + 10, &err), &err);
    else if (strncmp(op, "ROLLBACKTO ", 11) == 0)
        txn_reply(c, fdt_txn_rollback_to(t, op + 11, &err), &err);
    else if (strncmp(op, "RELEASE ", 8) == 0)
        txn_reply(c, fdt_txn_release(t, op + 8, &err), &err);
    else
        reply(c, "ERR unknown TXN command");
}

struct retry_work {
    char resource[64];
    const char *sql;
};

static int retry_fn(struct fdt_txn *t, void *arg, struct fdt_error *err)
{
    struct retry_work *rw = arg;
    return fdt_txn_exec(t, rw->resource, rw->sql, NULL, err);
}

/* RETRY RESOURCE STATEMENTS: run them in a root transaction, retried on conflicts. */
static void retry_command(struct fdt_conn *c, const char *args)
{
    struct retry_work rw;
    const char *sp = strchr(args, ' ');
    if (!sp || (size_t)(sp - args) >= sizeof(rw.resource)) {
        reply(c, "ERR usage: RETRY RESOURCE STATEMENTS");
        return;
    }
    memcpy(rw.resource, args, (size_t)(sp - args));
    rw.resource[sp - args] = '\0';
    rw.sql = sp + 1;
    struct fdt_error err = {0};
    int attempts = 0;
    int rc = fdt_txn_run(c, retry_fn, &rw, 5, &attempts, &err);
    if (rc == 0)
        reply(c, "OK attempts=%d", attempts);
    else
        reply(c, "ERR attempts=%d %s", attempts, err.msg);
}

struct later {
    struct fdt_conn *conn;
    long ms;
    char text[256];
};

static void *later_main(void *arg)
{
    struct later *l = arg;
    sleep_ms(l->ms);
    if (strcmp(l->text, "-") != 0)
        reply(l->conn, "%s", l->text);
    fdt_conn_close(l->conn);
    fdt_conn_unref(l->conn);
    free(l);
    return NULL;
}

/* LATER ms text: answered by another thread while the connection waits for its client. */
static void later_command(struct fdt_conn *c, const char *args)
{
    struct later *l = calloc(1, sizeof(*l));
    char *end;
    if (!l) {
        reply(c, "ERR out of memory");
        return;
    }
    l->conn = c;
    l->ms = strtol(args, &end, 10);
    snprintf(l->text, sizeof(l->text), "%s", *end == ' ' ? end + 1 : "-");
    fdt_conn_ref(c);
    pthread_t t;
    if (pthread_create(&t, NULL, later_main, l) != 0) {
        fdt_conn_unref(c);
        free(l);
        reply(c, "ERR pthread_create");
        return;
    }
    pthread_detach(t);
}

static void flood_command(struct fdt_conn *c, long n)
{
    unsigned char chunk[64 * 251]; /* 16 KiB: the pattern runs on across chunks */
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (unsigned char)(i % 251);
    long left = n;
    int rc = 0;
    while (left > 0 && rc == 0) {
        size_t k = (size_t)left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
        rc = fdt_conn_write(c, chunk, k);
        left -= (long)k;
    }
    if (rc == 0)
        reply(c, "FLOODED %ld %d", n, rc);
}

/* One command line (without its newline). Returns bytes of body it needs beyond the line,
 * or -1 to close. */
static long command(struct fdt_conn *c, char *line, const char *rest, size_t rest_len,
                    size_t *body_used)
{
    *body_used = 0;
    if (strcmp(line, "PING") == 0) {
        reply(c, "PONG");
    } else if (strncmp(line, "SLEEP ", 6) == 0) {
        long ms = atol(line + 6);
        sleep_ms(ms);
        reply(c, "SLEPT %ld", ms);
    } else if (strncmp(line, "SPIN ", 5) == 0) {
        long ms = atol(line + 5);
        struct timespec a, b;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        unsigned long x = 0;
        for (;;) {
            for (int i = 0; i < 10000; i++)
                x += (unsigned long)i * 2654435761u;
            lineapp_spin_sink = x;
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
            long el = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
            if (el >= ms)
                break;
        }
        reply(c, "SPUN %ld", ms);
    } else if (strcmp(line, "WHOAMI") == 0) {
        const struct fdt_worker_info *w = fdt_worker_info();
        reply(c, "pid=%d generation=%u worker=%u thread=%d version=%s", (int)getpid(),
              w->generation, w->index, fdt_thread_index(), version());
    } else if (strncmp(line, "ECHO ", 5) == 0) {
        reply(c, "%s", line + 5);
    } else if (strncmp(line, "GETENV ", 7) == 0) {
        /* What a program the application runs would inherit (tests of the master's
         * systemd variables). */
        const char *v = getenv(line + 7);
        reply(c, "ENV %s", v ? v : "-");
    } else if (strncmp(line, "BODY ", 5) == 0) {
        long n = atol(line + 5);
        if (n < 0 || n > 1 << 20) {
            reply(c, "ERR bad body length");
            return 0;
        }
        if ((size_t)n > rest_len)
            return n; /* wait for the whole body */
        unsigned sum = 0;
        for (long i = 0; i < n; i++)
            sum += (unsigned char)rest[i];
        *body_used = (size_t)n;
        reply(c, "GOT %ld %u", n, sum);
    } else if (strncmp(line, "RETRY ", 6) == 0) {
        retry_command(c, line + 6);
    } else if (strncmp(line, "TXN ", 4) == 0 || strncmp(line, "SQL ", 4) == 0) {
        txn_command(c, line);
    } else if (strcmp(line, "CRASH") == 0) {
        abort();
    } else if (strcmp(line, "HANG") == 0) {
        for (;;)
            pause();
    } else if (strcmp(line, "CONN") == 0) {
        uintptr_t calls = (uintptr_t)fdt_conn_data(c) + 1;
        fdt_conn_set_data(c, (void *)calls);
        reply(c, "id=%llu listener=%s tls=%d calls=%lu", (unsigned long long)fdt_conn_id(c),
              fdt_conn_listener(c), (int)fdt_conn_tls(c), (unsigned long)calls);
    } else if (strncmp(line, "LATER ", 6) == 0) {
        later_command(c, line + 6);
    } else if (strncmp(line, "FLOOD ", 6) == 0) {
        flood_command(c, atol(line + 6));
    } else if (strcmp(line, "QUIT") == 0) {
        reply(c, "BYE");
        fdt_conn_close(c);
    } else {
        reply(c, "ERR unknown command");
    }
    return 0;
}

static long line_data(struct fdt_conn *c, const char *data, size_t len)
{
    size_t used = 0;
    while (used < len) {
        const char *nl = memchr(data + used, '\n', len - used);
        if (!nl)
            break;
        size_t llen = (size_t)(nl - (data + used));
        char line[4096];
        if (llen >= sizeof(line)) {
            reply(c, "ERR line too long");
            return -1;
        }
        memcpy(line, data + used, llen);
        if (llen > 0 && line[llen - 1] == '\r')
            llen--;
        line[llen] = '\0';
        const char *rest = nl + 1;
        size_t rest_len = len - (size_t)(rest - data);
        if (strcmp(line, "GREEDY") == 0) {
            reply(c, "GREEDY");
            return (long)len + 1000;
        }
        size_t body_used;
        long need = command(c, line, rest, rest_len, &body_used);
        if (need > 0)
            break; /* the body is not all here: offer the line again later */
        used = (size_t)(rest - data) + body_used;
        if (fdt_conn_draining(c))
            break; /* answer one request at a time while draining */
    }
    return (long)used;
}

static void line_overflow(struct fdt_conn *c)
{
    reply(c, "ERR line too long");
}

/* JSON-RPC methods (listeners with protocol = jsonrpc). */
static int rpc_echo(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                    struct fdt_json_writer *w, struct fdt_error *err)
{
    (void)call;
    (void)err;
    return params ? fdt_json_writer_value(w, params) : fdt_json_writer_null(w);
}

/* whoami -> {"pid": P, "generation": G, "conn": ID, "listener": NAME}: which worker and
 * which connection answer. */
static int rpc_whoami(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                      struct fdt_json_writer *w, struct fdt_error *err)
{
    (void)params;
    (void)err;
    const struct fdt_worker_info *wi = fdt_worker_info();
    struct fdt_conn *c = fdt_jsonrpc_conn(call);
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "pid");
    fdt_json_writer_int(w, (long long)getpid());
    fdt_json_writer_key(w, "generation");
    fdt_json_writer_int(w, (long long)wi->generation);
    fdt_json_writer_key(w, "conn");
    fdt_json_writer_int(w, (long long)fdt_conn_id(c));
    fdt_json_writer_key(w, "listener");
    fdt_json_writer_string(w, fdt_conn_listener(c));
    return fdt_json_writer_end_object(w);
}

/* sql {"resource": R, "sql": S} -> {"rows": N}, in the call's transaction. */
static int rpc_sql(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                   struct fdt_json_writer *w, struct fdt_error *err)
{
    const char *resource;
    const char *sql;
    size_t n;
    if (!params ||
        fdt_json_get_string(fdt_json_object_get(params, "resource"), &resource, &n) < 0 ||
        fdt_json_get_string(fdt_json_object_get(params, "sql"), &sql, &n) < 0)
        return fdt_error_set(err, FDT_EINVAL, "params: resource and sql (strings) are required");
    long rows = 0;
    int rc = fdt_txn_exec(fdt_jsonrpc_txn(call), resource, sql, &rows, err);
    if (rc < 0)
        return rc;
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "rows");
    fdt_json_writer_int(w, rows);
    return fdt_json_writer_end_object(w);
}

static int rpc_sleep(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                     struct fdt_json_writer *w, struct fdt_error *err)
{
    (void)call;
    int64_t ms = 0;
    if (!params || fdt_json_get_int(fdt_json_object_get(params, "ms"), &ms) < 0 || ms < 0)
        return fdt_error_set(err, FDT_EINVAL, "params.ms: a non-negative integer is required");
    sleep_ms((long)ms);
    return fdt_json_writer_int(w, ms);
}

static int rpc_fail(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                    struct fdt_json_writer *w, struct fdt_error *err)
{
    (void)params;
    (void)w;
    fdt_jsonrpc_set_error_code(call, -32001);
    return fdt_error_set(err, FDT_EAPP, "failing on purpose");
}

/* sql_silent {"resource": R, "sql": S}: runs S in the call's transaction and succeeds
 * without writing a result (a method's bug: its answer is an error, so its work must not
 * commit). */
static int rpc_sql_silent(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                          struct fdt_json_writer *w, struct fdt_error *err)
{
    struct fdt_json_writer none;
    fdt_json_writer_init(&none, 0);
    int rc = rpc_sql(call, params, &none, err);
    fdt_json_writer_deinit(&none);
    (void)w;
    return rc < 0 ? rc : 0;
}

/* tpcb / tpcb2 {"aid","tid","bid","delta"}: pgbench's tpcb-like transaction, statement by
 * statement as pgbench sends it; tpcb2 writes the history row into a second database
 * (resource pg2), so the call commits by two-phase commit. For bench/txn. */
static int tpcb(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                struct fdt_json_writer *w, struct fdt_error *err, const char *history)
{
    int64_t aid, tid, bid, delta;
    if (fdt_json_get_int(fdt_json_object_get(params, "aid"), &aid) < 0 ||
        fdt_json_get_int(fdt_json_object_get(params, "tid"), &tid) < 0 ||
        fdt_json_get_int(fdt_json_object_get(params, "bid"), &bid) < 0 ||
        fdt_json_get_int(fdt_json_object_get(params, "delta"), &delta) < 0)
        return fdt_error_set(err, FDT_EINVAL, "params: aid, tid, bid, delta (integers)");
    struct fdt_txn *t = fdt_jsonrpc_txn(call);
    /* pgbench's tpcb-like, as statements with parameters (prepared once per session). */
    struct fdt_sql_param acc[2] = {FDT_SQL_INT_P(delta), FDT_SQL_INT_P(aid)};
    struct fdt_sql_param tel[2] = {FDT_SQL_INT_P(delta), FDT_SQL_INT_P(tid)};
    struct fdt_sql_param bra[2] = {FDT_SQL_INT_P(delta), FDT_SQL_INT_P(bid)};
    int rc = fdt_txn_query(t, "pg",
                           "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
                           acc, 2, NULL, err);
    if (rc == 0)
        rc = fdt_txn_query(t, "pg", "SELECT abalance FROM pgbench_accounts WHERE aid = $1", &acc[1],
                           1, NULL, err);
    if (rc == 0)
        rc = fdt_txn_query(t, "pg",
                           "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2",
                           tel, 2, NULL, err);
    if (rc == 0)
        rc = fdt_txn_query(t, "pg",
                           "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2",
                           bra, 2, NULL, err);
    if (rc < 0)
        return rc;
    struct fdt_sql_param h[4] = {FDT_SQL_INT_P(tid), FDT_SQL_INT_P(bid), FDT_SQL_INT_P(aid),
                                 FDT_SQL_INT_P(delta)};
    rc = fdt_txn_query(t, history,
                       "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES "
                       "($1, $2, $3, $4, CURRENT_TIMESTAMP)",
                       h, 4, NULL, err);
    if (rc < 0)
        return rc;
    return fdt_json_writer_bool(w, true);
}

static int rpc_tpcb(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                    struct fdt_json_writer *w, struct fdt_error *err)
{
    return tpcb(call, params, w, err, "pg");
}

static int rpc_tpcb2(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                     struct fdt_json_writer *w, struct fdt_error *err)
{
    return tpcb(call, params, w, err, "pg2");
}

static const struct fdt_jsonrpc_method rpc_methods[] = {
    {"tpcb", rpc_tpcb},     {"tpcb2", rpc_tpcb2},           {"echo", rpc_echo},
    {"sql", rpc_sql},       {"sleep", rpc_sleep},           {"fail", rpc_fail},
    {"whoami", rpc_whoami}, {"sql_silent", rpc_sql_silent},
};

static const struct fdt_jsonrpc_app rpc_app = {
    .abi_version = FDT_JSONRPC_ABI_VERSION,
    .size = sizeof(struct fdt_jsonrpc_app),
    .methods = rpc_methods,
    .n_methods = sizeof(rpc_methods) / sizeof(rpc_methods[0]),
};

/* ---- HTTP: request transactions ---- */

static const struct fdt_http_resource_type root_type = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(root_type),
    .name = "root",
};

static int http_sql(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    (void)context;
    bool stream = strcmp(fdt_http_view_name(req), "stream") == 0;
    if (fdt_http_subpath_count(req) < 2)
        return fdt_http_error(req, 404, "Use /sql/RESOURCE/STATUS[/SLEEP_MS].");
    const char *res = fdt_http_subpath(req, 0);
    int status = atoi(fdt_http_subpath(req, 1));
    long sleep = fdt_http_subpath_count(req) > 2 ? atol(fdt_http_subpath(req, 2)) : 0;
    struct fdt_error err = {0};
    struct fdt_txn *t = fdt_http_txn(req, &err);
    long rows = 0;
    int failed = t ? 0 : -1;
    for (const char *r = res; failed == 0 && *r;) {
        char name[64];
        size_t n = strcspn(r, "+");
        snprintf(name, sizeof(name), "%.*s", (int)n, r);
        long more = 0;
        failed = fdt_txn_exec(t, name, fdt_http_body(req, NULL), &more, &err);
        rows += more;
        r += n + (r[n] == '+');
    }
    if (failed < 0) {
        char msg[sizeof(err.msg) + 8];
        snprintf(msg, sizeof(msg), "ERR %s\n", err.msg);
        return fdt_http_respond(req, 500, "text/plain", msg, strlen(msg));
    }
    sleep_ms(sleep);
    char body[64];
    int n = snprintf(body, sizeof(body), "rows=%ld\n", rows);
    if (!stream)
        return fdt_http_respond(req, status, "text/plain", body, (size_t)n);
    int rc = fdt_http_begin(req, status, "text/plain");
    if (rc < 0)
        return 0; /* the framework answered for us (the commit failed) */
    fdt_http_write_chunk(req, body, (size_t)n);
    return fdt_http_end(req);
}

static int http_query(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    (void)context;
    if (fdt_http_subpath_count(req) < 1)
        return fdt_http_error(req, 404, "Use /query/RESOURCE?P1&P2.");
    char q[512];
    snprintf(q, sizeof(q), "%s", fdt_http_query(req));
    struct fdt_sql_param params[8];
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(q, "&", &save); tok && n < 8;
         tok = strtok_r(NULL, "&", &save))
        params[n++] = FDT_SQL_TEXT_P(tok);
    struct fdt_error err = {0};
    struct fdt_txn *t = fdt_http_txn(req, &err);
    struct fdt_sql_rows *rows = NULL;
    if (!t || fdt_txn_query(t, fdt_http_subpath(req, 0), fdt_http_body(req, NULL), params, n, &rows,
                            &err) < 0) {
        char msg[sizeof(err.msg) + 8];
        snprintf(msg, sizeof(msg), "ERR %s\n", err.msg);
        return fdt_http_respond(req, 500, "text/plain", msg, strlen(msg));
    }
    char out[4096];
    size_t len = 0;
    for (int r = 0; r < fdt_sql_nrows(rows); r++) {
        for (int c = 0; c < fdt_sql_ncols(rows); c++) {
            const char *v = fdt_sql_text(rows, r, c);
            len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", c ? "|" : "",
                                    v ? v : "NULL");
            if (len >= sizeof(out))
                len = sizeof(out) - 1;
        }
        len += (size_t)snprintf(out + len, sizeof(out) - len, "\n");
        if (len >= sizeof(out))
            len = sizeof(out) - 1;
    }
    len += (size_t)snprintf(out + len, sizeof(out) - len, "changes=%ld\n", fdt_sql_changes(rows));
    if (len >= sizeof(out))
        len = sizeof(out) - 1;
    fdt_sql_rows_free(rows);
    return fdt_http_respond(req, 200, "text/plain", out, len);
}

static int http_big(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    (void)context;
    if (fdt_http_subpath_count(req) != 1)
        return fdt_http_error(req, 404, "Use /big/MIB.");
    long chunks = strtol(fdt_http_subpath(req, 0), NULL, 10) * 16;
    static _Thread_local unsigned char chunk[65536];
    if (fdt_http_begin(req, 200, "application/octet-stream") < 0)
        return 0;
    for (long k = 0; k < chunks; k++) {
        for (size_t j = 0; j < sizeof(chunk); j++)
            chunk[j] = (unsigned char)(j + (size_t)k);
        if (fdt_http_write_chunk(req, chunk, sizeof(chunk)) < 0)
            return 0; /* the client is gone */
    }
    return fdt_http_end(req);
}

static const struct fdt_http_view http_views[] = {
    {.type = &root_type,
     .name = "big",
     .method = "GET",
     .fn = http_big,
     .flags = FDT_HTTP_VIEW_SUBPATH},
    {.type = &root_type,
     .name = "sql",
     .method = "POST",
     .fn = http_sql,
     .flags = FDT_HTTP_VIEW_SUBPATH},
    {.type = &root_type,
     .name = "stream",
     .method = "POST",
     .fn = http_sql,
     .flags = FDT_HTTP_VIEW_SUBPATH},
    {.type = &root_type,
     .name = "query",
     .method = "POST",
     .fn = http_query,
     .flags = FDT_HTTP_VIEW_SUBPATH},
};

static const struct fdt_http_app http_app = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(http_app),
    .root_type = &root_type,
    .views = http_views,
    .n_views = sizeof(http_views) / sizeof(http_views[0]),
};

#ifdef LINEAPP_HOOKS
static int line_open(struct fdt_conn *c)
{
    const char *flag = fdt_app_config("refuse_open_if_exists");
    (void)c;
    return flag && access(flag, F_OK) == 0 ? FDT_EAPP : 0;
}

static void line_close(struct fdt_conn *c)
{
    fdt_log(FDT_LOG_INFO, "lineapp: closed conn=%llu", (unsigned long long)fdt_conn_id(c));
}

static void line_fini(void)
{
    const char *path = fdt_app_config("fini_file");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (f) {
        fprintf(f, "fini %d\n", (int)getpid());
        fclose(f);
    }
}
#endif

FDT_APP_EXPORT const struct fdt_app fdt_app_v1 = {
    .abi_version = LINEAPP_ABI,
    .size = sizeof(struct fdt_app),
    .name = "lineapp",
    .version = LINEAPP_VERSION,
    .process_init = line_init,
    .thread_init = line_thread_init,
    .on_data = line_data,
    .on_overflow = line_overflow,
#ifdef LINEAPP_HOOKS
    .on_open = line_open,
    .on_close = line_close,
    .process_fini = line_fini,
#endif
    .busy_reply = "ERR busy\n",
    .jsonrpc = &rpc_app,
    .http = &http_app,
};

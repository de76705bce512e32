#include "fdt_config.h"

#define FDT_LOG_MODULE "jsonrpc"
#include "jsonrpc/jsonrpc.h"
#include "txn/txn.h"
#include "txn/txn_gid.h"
#include "util/util.h"

#include <fdt/jsonrpc.h>
#include <fdt/log.h>
#include <string.h>

/* One JSON object per line. Each line is parsed into the connection's document (cleared
 * per call), the answer is built with the connection's writer and sent as one write. */

#define RETRY_ATTEMPTS 5
#define CALL_SAVEPOINT "fdt_call"

struct rpc_conn {
    bool skipping; /* inside a line over max_input: dropping bytes up to its newline */
    struct fdt_json_doc *doc;
    struct fdt_json_writer out;    /* the whole response */
    struct fdt_json_writer result; /* an application method's result */
};

struct fdt_jsonrpc_call {
    struct fdt_conn *conn;
    struct fdt_txn *txn;
    const char *method; /* the method's name, as called */
    int code;           /* error code chosen by the method, 0: default */
};

/* What every JSON-RPC connection of a worker shares: the protocol's context, made on the
 * worker's main thread before any connection and only read afterwards. */
struct fdt__jsonrpc_server {
    const struct fdt_jsonrpc_app *app; /* the application's methods, or NULL */
    struct fdt_json_limits limits;
    const char *node;  /* [server] node, for txn.recover and txn.*_prepared */
    bool txn_recovery; /* the listener answers the recovery methods ([listen] txn_recovery) */
    size_t max_input;
    size_t max_output;
};

static const struct fdt__jsonrpc_server *server_of(const struct fdt_conn *c)
{
    return c->proto->ctx;
}

struct fdt_txn *fdt_jsonrpc_txn(struct fdt_jsonrpc_call *call)
{
    return call->txn;
}

struct fdt_conn *fdt_jsonrpc_conn(struct fdt_jsonrpc_call *call)
{
    return call->conn;
}

const char *fdt_jsonrpc_method(const struct fdt_jsonrpc_call *call)
{
    return call->method;
}

void fdt_jsonrpc_set_error_code(struct fdt_jsonrpc_call *call, int code)
{
    call->code = code;
}

static void write_id(struct fdt_json_writer *w, const struct fdt_json *id);

/* Send the message in w as one line. When it cannot be finished (too large for max_output,
 * or out of memory), the call's id still gets an answer that says so: written by a writer
 * of its own, bounded by what the id can take (it came in a line of at most max_input). */
static void send_writer(struct fdt_conn *c, struct fdt_json_writer *w, const struct fdt_json *id)
{
    const char *data;
    size_t len;
    struct fdt_json_writer err;
    bool own = false;
    int rc = fdt_json_writer_finish(w, &data, &len);
    if (rc < 0) {
        char msg[120];
        if (rc == FDT_ELIMIT)
            snprintf(msg, sizeof(msg), "answer larger than max_output (%zu bytes)",
                     server_of(c)->max_output);
        else
            snprintf(msg, sizeof(msg), "answer could not be written: %s", fdt_strerror(rc));
        fdt_json_writer_init(&err, server_of(c)->max_input + 256);
        own = true;
        fdt__jsonrpc_error_write(
            &err, id, rc == FDT_ELIMIT ? FDT_JSONRPC_LIMIT : FDT_JSONRPC_INTERNAL_ERROR, msg);
        if (fdt_json_writer_finish(&err, &data, &len) < 0) {
            /* Out of memory again: the id cannot be copied, say so without it. */
            static const char oops[] =
                "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32603,\"message\":"
                "\"out of memory writing the answer\"},\"id\":null}\n";
            fdt_json_writer_deinit(&err);
            fdt_conn_write(c, oops, sizeof(oops) - 1);
            return;
        }
    }
    /* One line per message: the writer never emits a raw newline (strings are escaped).
     * The newline goes in place of the writer's terminating NUL, so that the line leaves
     * in one write (one segment with TCP_NODELAY); the NUL is put back after. The thread
     * running the method waits if the client is slow to read (backpressure). */
    char *line = (char *)data;
    line[len] = '\n';
    fdt__conn_write_wait(c, line, len + 1);
    line[len] = '\0';
    if (own)
        fdt_json_writer_deinit(&err);
}

static void write_id(struct fdt_json_writer *w, const struct fdt_json *id)
{
    fdt_json_writer_key(w, "id");
    if (id)
        fdt_json_writer_value(w, id);
    else
        fdt_json_writer_null(w);
}

void fdt__jsonrpc_error_write(struct fdt_json_writer *w, const struct fdt_json *id, int code,
                              const char *message)
{
    fdt_json_writer_reset(w);
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "jsonrpc");
    fdt_json_writer_string(w, "2.0");
    fdt_json_writer_key(w, "error");
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "code");
    fdt_json_writer_int(w, code);
    fdt_json_writer_key(w, "message");
    fdt_json_writer_string(w, message);
    fdt_json_writer_end_object(w);
    write_id(w, id);
    fdt_json_writer_end_object(w);
}

static void send_error(struct fdt_conn *c, struct rpc_conn *rc, const struct fdt_json *id, int code,
                       const char *message)
{
    fdt__jsonrpc_error_write(&rc->out, id, code, message);
    send_writer(c, &rc->out, id);
}

/* The answer line of a result into rc->out; returns the writer's error, if any. */
static int build_result(struct rpc_conn *rc, const struct fdt_json *id, const char *result,
                        size_t len)
{
    struct fdt_json_writer *w = &rc->out;
    fdt_json_writer_reset(w);
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "jsonrpc");
    fdt_json_writer_string(w, "2.0");
    fdt_json_writer_key(w, "result");
    fdt_json_writer_raw(w, result, len);
    write_id(w, id);
    fdt_json_writer_end_object(w);
    return fdt_json_writer_finish(w, NULL, NULL);
}

static void send_result(struct fdt_conn *c, struct rpc_conn *rc, const struct fdt_json *id,
                        const char *result, size_t len)
{
    build_result(rc, id, result, len);
    send_writer(c, &rc->out, id);
}

/* JSON-RPC code for a framework error code. */
static int code_for(int rc)
{
    switch (rc) {
    case FDT_EINVAL:
        return FDT_JSONRPC_INVALID_PARAMS;
    case FDT_ETXNSTATE:
        return FDT_JSONRPC_TXN_STATE;
    case FDT_ERETRY:
        return FDT_JSONRPC_CONFLICT;
    case FDT_ENOENT:
        return FDT_JSONRPC_TXN_UNKNOWN;
    case FDT_ELIMIT:
        return FDT_JSONRPC_LIMIT;
    default:
        return FDT_JSONRPC_APP_ERROR;
    }
}

/* ---- built-in txn.* methods ---- */

static int parse_part(const struct fdt_json *obj, const char *key, uint8_t *out, size_t *len,
                      bool required, struct fdt_error *err)
{
    const struct fdt_json *v = fdt_json_object_get(obj, key);
    *len = 0;
    if (!v)
        return required ? fdt_error_set(err, FDT_EINVAL, "xid.%s is required", key) : 0;
    const char *s;
    size_t n;
    if (fdt_json_get_string(v, &s, &n) < 0)
        return fdt_error_set(err, FDT_EINVAL, "xid.%s must be a base64url string", key);
    long got = fdt__b64url_decode(out, FDT_XID_PART_MAX, s, n);
    if (got < 0 || (required && got == 0))
        return fdt_error_set(err, FDT_EINVAL, "xid.%s must be 1 to %d bytes in unpadded base64url",
                             key, FDT_XID_PART_MAX);
    *len = (size_t)got;
    return 0;
}

static int parse_xid(const struct fdt_json *params, struct fdt_xid *xid, bool *has,
                     struct fdt_error *err)
{
    *has = false;
    memset(xid, 0, sizeof(*xid));
    if (!params)
        return 0;
    if (fdt_json_type(params) != FDT_JSON_OBJECT)
        return fdt_error_set(err, FDT_EINVAL, "params must be an object");
    const struct fdt_json *x = fdt_json_object_get(params, "xid");
    if (!x || fdt_json_type(x) == FDT_JSON_NULL)
        return 0;
    if (fdt_json_type(x) != FDT_JSON_OBJECT)
        return fdt_error_set(err, FDT_EINVAL, "xid must be an object");
    int64_t fmt = 0;
    const struct fdt_json *f = fdt_json_object_get(x, "format_id");
    if (f && (fdt_json_get_int(f, &fmt) < 0 || fmt < INT32_MIN || fmt > INT32_MAX))
        return fdt_error_set(err, FDT_EINVAL, "xid.format_id must be a 32-bit integer");
    xid->format_id = (int32_t)fmt;
    if (parse_part(x, "gtrid", xid->gtrid, &xid->gtrid_len, true, err) < 0 ||
        parse_part(x, "bqual", xid->bqual, &xid->bqual_len, false, err) < 0)
        return FDT_EINVAL;
    *has = true;
    return 0;
}

static void write_state(struct fdt_json_writer *w, const char *state)
{
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "state");
    fdt_json_writer_string(w, state);
    fdt_json_writer_end_object(w);
}

/* "xid": {"format_id", "gtrid", "bqual"} (base64url), as txn.begin takes it. */
static void write_xid(struct fdt_json_writer *w, const struct fdt_xid *xid)
{
    char b64[FDT_XID_PART_MAX * 2];
    fdt_json_writer_key(w, "xid");
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "format_id");
    fdt_json_writer_int(w, xid->format_id);
    fdt__b64url_encode(b64, sizeof(b64), xid->gtrid, xid->gtrid_len);
    fdt_json_writer_key(w, "gtrid");
    fdt_json_writer_string(w, b64);
    fdt__b64url_encode(b64, sizeof(b64), xid->bqual, xid->bqual_len);
    fdt_json_writer_key(w, "bqual");
    fdt_json_writer_string(w, b64);
    fdt_json_writer_end_object(w);
}

struct recover_ctx {
    struct fdt_json_writer *w;
};

static void recover_one(const char *gid, const struct fdt_gid *g, double age, const char *role,
                        const char *outcome, void *arg)
{
    struct recover_ctx *rc = arg;
    struct fdt_json_writer *w = rc->w;
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "gid");
    fdt_json_writer_string(w, gid);
    fdt_json_writer_key(w, "node");
    fdt_json_writer_string(w, g->node);
    fdt_json_writer_key(w, "resource");
    fdt_json_writer_string(w, g->resource);
    write_xid(w, &g->xid);
    fdt_json_writer_key(w, "role");
    fdt_json_writer_string(w, role[0] ? role : "none");
    fdt_json_writer_key(w, "record");
    fdt_json_writer_string(w, outcome[0] ? outcome : "none");
    fdt_json_writer_key(w, "age");
    fdt_json_writer_double(w, age);
    fdt_json_writer_end_object(w);
}

/* A built-in method: runs with its parameters checked, writes its result to w, or returns
 * a negative code with err (and, where the default mapping does not fit, *jcode). */
struct builtin_call {
    struct fdt_conn *c;
    const struct fdt_json *params; /* as sent (checked by check_params) */
    const struct fdt_xid *xid;     /* NULL when the method takes none or none was given */
    struct fdt_json_writer *w;
    int *jcode;
    struct fdt_error *err;
};

static int m_begin(struct builtin_call *b)
{
    int rc = fdt_txn_begin(b->c, b->xid, b->err);
    if (rc == FDT_ELIMIT)
        *b->jcode = FDT_JSONRPC_INVALID_PARAMS;
    if (rc < 0)
        return rc;
    fdt_json_writer_begin_object(b->w);
    fdt_json_writer_key(b->w, "state");
    fdt_json_writer_string(b->w, "active");
    fdt_json_writer_key(b->w, "role");
    fdt_json_writer_string(b->w, b->xid ? "participant" : "root");
    write_xid(b->w, fdt_txn_xid(fdt_conn_txn(b->c)));
    fdt_json_writer_end_object(b->w);
    return 0;
}

static struct fdt_txn *open_txn(struct builtin_call *b)
{
    struct fdt_txn *t = fdt_conn_txn(b->c);
    if (!t)
        fdt_error_set(b->err, FDT_ETXNSTATE, "no transaction: call txn.begin first");
    return t;
}

static int m_vote(struct builtin_call *b)
{
    struct fdt_txn *t = open_txn(b);
    if (!t)
        return FDT_ETXNSTATE;
    int rc = fdt_txn_vote(t, b->err);
    if (rc < 0) {
        *b->jcode = fdt_conn_txn(b->c) ? FDT_JSONRPC_TXN_STATE : FDT_JSONRPC_ROLLED_BACK;
        return rc;
    }
    /* The xid resolves it later from any connection (txn.commit_prepared); "prepared" says
     * how many branches hold locks in doubt (0: the transaction had no work). */
    fdt_json_writer_begin_object(b->w);
    fdt_json_writer_key(b->w, "state");
    fdt_json_writer_string(b->w, "prepared");
    fdt_json_writer_key(b->w, "prepared");
    fdt_json_writer_int(b->w, fdt_txn_prepared_count(t));
    write_xid(b->w, fdt_txn_xid(t));
    fdt_json_writer_end_object(b->w);
    return 0;
}

static int m_finish(struct builtin_call *b)
{
    struct fdt_txn *t = open_txn(b);
    if (!t)
        return FDT_ETXNSTATE;
    /* Not voted: it commits here in one phase (two inside, across resources, with
     * fdtserver's decision record); voted: phase two. */
    bool voted = fdt_txn_state(t) == FDT_TXN_PREPARED;
    int rc = voted ? fdt_txn_finish(t, b->err) : fdt_txn_commit(t, b->err);
    /* Each is called in its own state, so neither fails for a wrong state (which would
     * leave the transaction open): a failure has ended it. */
    if (rc < 0) {
        *b->jcode = rc == FDT_EOUTCOME ? FDT_JSONRPC_OUTCOME_UNKNOWN : FDT_JSONRPC_ROLLED_BACK;
        return rc;
    }
    write_state(b->w, "committed");
    return 0;
}

static int m_abort(struct builtin_call *b)
{
    struct fdt_txn *t = open_txn(b);
    if (!t)
        return FDT_ETXNSTATE;
    int rc = fdt_txn_abort(t, b->err);
    if (rc < 0) {
        /* Ended, but a prepared branch could not be rolled back (only those fail: work
         * not prepared goes with its session): it stays prepared, said in the message. */
        *b->jcode = FDT_JSONRPC_OUTCOME_UNKNOWN;
        return rc;
    }
    write_state(b->w, "rolled back");
    return 0;
}

static int m_recover(struct builtin_call *b)
{
    struct recover_ctx ctx = {b->w};
    fdt_json_writer_begin_array(b->w);
    /* Every node's: a coordinator may reconnect to any host sharing the databases. */
    int rc = fdt__txn_list(NULL, recover_one, &ctx, b->err);
    fdt_json_writer_end_array(b->w);
    return rc;
}

static int resolve(struct builtin_call *b, bool commit)
{
    /* params.node: the node that prepared the branches (txn.recover says it), when not this
     * one: a coordinator whose host died resolves through any other host. */
    const char *node = server_of(b->c)->node;
    const struct fdt_json *n = fdt_json_object_get(b->params, "node");
    if (n && fdt_json_type(n) != FDT_JSON_NULL) {
        size_t len;
        if (fdt_json_get_string(n, &node, &len) < 0 || strlen(node) != len ||
            !fdt__gid_name_ok(node))
            return fdt_error_set(b->err, FDT_EINVAL,
                                 "params.node must be a node name (letters, digits, _ and -)");
    }
    int found = 0;
    int rc = fdt__txn_resolve(node, b->xid, commit,
                              commit ? "txn.commit_prepared over JSON-RPC"
                                     : "txn.rollback_prepared over JSON-RPC",
                              &found, b->err);
    if (rc < 0)
        return rc;
    fdt_json_writer_begin_object(b->w);
    fdt_json_writer_key(b->w, "state");
    fdt_json_writer_string(b->w, commit ? "committed" : "rolled back");
    fdt_json_writer_key(b->w, "already");
    fdt_json_writer_bool(b->w, found == 0);
    fdt_json_writer_end_object(b->w);
    return 0;
}

static int m_commit_prepared(struct builtin_call *b)
{
    return resolve(b, true);
}

static int m_rollback_prepared(struct builtin_call *b)
{
    return resolve(b, false);
}

/* What a built-in method takes: nothing (any params given are ignored), an optional xid, or
 * a required one. */
enum builtin_params {
    PARAMS_NONE,
    PARAMS_XID,
    PARAMS_XID_REQUIRED,
};

static const struct builtin {
    const char *name;
    enum builtin_params params;
    int (*fn)(struct builtin_call *b);
    bool recovery; /* acts on any coordinator's transactions: only where the listener allows */
} builtins[] = {
    {"txn.begin", PARAMS_XID, m_begin, false},
    {"txn.vote", PARAMS_NONE, m_vote, false},
    {"txn.finish", PARAMS_NONE, m_finish, false},
    {"txn.abort", PARAMS_NONE, m_abort, false},
    {"txn.recover", PARAMS_NONE, m_recover, true},
    {"txn.commit_prepared", PARAMS_XID_REQUIRED, m_commit_prepared, true},
    {"txn.rollback_prepared", PARAMS_XID_REQUIRED, m_rollback_prepared, true},
};

static const struct builtin *find_builtin(const char *name)
{
    for (size_t i = 0; i < FDT_ARRAY_LEN(builtins); i++) {
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    }
    return NULL;
}

static int check_params(const struct builtin *m, const struct fdt_json *params, struct fdt_xid *xid,
                        bool *has_xid, struct fdt_error *err)
{
    *has_xid = false;
    memset(xid, 0, sizeof(*xid));
    if (m->params == PARAMS_NONE)
        return 0;
    if (parse_xid(params, xid, has_xid, err) < 0)
        return FDT_EINVAL;
    if (m->params == PARAMS_XID_REQUIRED && !*has_xid)
        return fdt_error_set(err, FDT_EINVAL, "params.xid is required");
    return 0;
}

int fdt__jsonrpc_builtin_params(const char *name, const struct fdt_json *params,
                                struct fdt_xid *xid, bool *has_xid, struct fdt_error *err)
{
    const struct builtin *m = find_builtin(name);
    if (!m) {
        *has_xid = false;
        memset(xid, 0, sizeof(*xid));
        return fdt_error_set(err, FDT_ENOENT, "method not found: %s", name);
    }
    return check_params(m, params, xid, has_xid, err);
}

/* Run the built-in method name. Returns 0 with the result written to w, or a negative code
 * with err (and *jcode). */
static int builtin(struct fdt_conn *c, const char *name, const struct fdt_json *params,
                   struct fdt_json_writer *w, int *jcode, struct fdt_error *err)
{
    const struct builtin *m = find_builtin(name);
    if (!m) {
        *jcode = FDT_JSONRPC_METHOD_NOT_FOUND;
        return fdt_error_set(err, FDT_ENOENT, "method not found: %s", name);
    }
    if (m->recovery && !server_of(c)->txn_recovery) {
        *jcode = FDT_JSONRPC_METHOD_NOT_FOUND;
        return fdt_error_set(err, FDT_ENOENT,
                             "%s is not available on this listener (its configuration has no "
                             "txn_recovery = yes)",
                             name);
    }
    struct fdt_xid xid;
    bool has;
    int rc = check_params(m, params, &xid, &has, err);
    if (rc < 0)
        return rc;
    struct builtin_call b = {
        .c = c, .params = params, .xid = has ? &xid : NULL, .w = w, .jcode = jcode, .err = err};
    return m->fn(&b);
}

/* ---- application methods ---- */

struct app_call {
    const struct fdt_jsonrpc_method *m;
    const struct fdt_json *params;
    struct fdt_json_writer *w;
    struct fdt_jsonrpc_call call;
    struct rpc_conn *rc;
    const struct fdt_json *id; /* NULL: a notification, nothing to answer */
};

/* Run the method, and make its answer line (rc->out) before its work commits: a method
 * that succeeded but whose answer cannot be sent (it wrote no value, or one over
 * max_output, or memory ran out writing it or its answer) has failed, since the client will
 * be told so; its work must not commit. */
static int run_method(struct app_call *ac, struct fdt_error *err)
{
    int r = ac->m->fn(&ac->call, ac->params, ac->w, err);
    if (r < 0)
        return r;
    const char *data = NULL;
    size_t len = 0;
    int wr = fdt_json_writer_finish(ac->w, &data, &len);
    if (wr == 0 && len > 0 && ac->id)
        wr = build_result(ac->rc, ac->id, data, len);
    if (wr == FDT_ELIMIT) {
        ac->call.code = FDT_JSONRPC_LIMIT;
        return fdt_error_set(err, FDT_ELIMIT, "answer larger than max_output (%zu bytes)",
                             server_of(ac->call.conn)->max_output);
    }
    if (wr < 0 || len == 0) {
        ac->call.code = FDT_JSONRPC_INTERNAL_ERROR;
        return fdt_error_set(err, wr == FDT_ENOMEM ? FDT_ENOMEM : FDT_EINVAL,
                             wr == FDT_ENOMEM
                                 ? "internal error: out of memory writing the answer"
                                 : "internal error: the method did not write one JSON value");
    }
    return 0;
}

static int run_in_root(struct fdt_txn *t, void *arg, struct fdt_error *err)
{
    struct app_call *ac = arg;
    fdt_json_writer_reset(ac->w); /* a retry starts from an empty result */
    ac->call.txn = t;
    ac->call.code = 0;
    return run_method(ac, err);
}

static const struct fdt_jsonrpc_method *find_method(const struct fdt_jsonrpc_app *app,
                                                    const char *name)
{
    for (size_t i = 0; app && i < app->n_methods; i++) {
        if (strcmp(app->methods[i].name, name) == 0)
            return &app->methods[i];
    }
    return NULL;
}

int fdt__jsonrpc_request_parse(struct fdt_json_doc *doc, const char *line, size_t len,
                               size_t max_line, const struct fdt_json_limits *limits,
                               struct fdt__jsonrpc_request *out, struct fdt_error *err)
{
    struct fdt_json *req = NULL;
    memset(out, 0, sizeof(*out));
    if (len > max_line) {
        fdt_error_set(err, FDT_ELIMIT, "request line longer than max_input (%zu bytes)", max_line);
        return FDT_JSONRPC_INVALID_REQUEST;
    }
    fdt_json_doc_clear(doc);
    int rc = fdt_json_parse(doc, line, len, limits, &req, err);
    if (rc < 0) {
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "parse error: %s", err->msg);
        memcpy(err->msg, msg, sizeof(msg));
        return rc == FDT_ELIMIT ? FDT_JSONRPC_INVALID_REQUEST : FDT_JSONRPC_PARSE_ERROR;
    }
    if (fdt_json_type(req) != FDT_JSON_OBJECT) {
        fdt_error_set(err, FDT_EPROTO, "%s",
                      fdt_json_type(req) == FDT_JSON_ARRAY
                          ? "invalid request: batches are not supported, send one object per line"
                          : "invalid request: not an object");
        return FDT_JSONRPC_INVALID_REQUEST;
    }
    const struct fdt_json *id = fdt_json_object_get(req, "id");
    if (id && fdt_json_type(id) != FDT_JSON_STRING && fdt_json_type(id) != FDT_JSON_INT &&
        fdt_json_type(id) != FDT_JSON_NULL) {
        fdt_error_set(err, FDT_EPROTO, "invalid request: id must be a string, an integer or null");
        return FDT_JSONRPC_INVALID_REQUEST;
    }
    out->id = id; /* from here on, errors answer with the request's id */
    const char *version;
    size_t vlen;
    const struct fdt_json *jv = fdt_json_object_get(req, "jsonrpc");
    if (!jv || fdt_json_get_string(jv, &version, &vlen) < 0 || vlen != 3 ||
        memcmp(version, "2.0", 3) != 0) {
        fdt_error_set(err, FDT_EPROTO, "invalid request: jsonrpc must be \"2.0\"");
        return FDT_JSONRPC_INVALID_REQUEST;
    }
    const char *method;
    size_t mlen;
    const struct fdt_json *mv = fdt_json_object_get(req, "method");
    if (!mv || fdt_json_get_string(mv, &method, &mlen) < 0 || mlen == 0 || mlen > 128 ||
        memchr(method, '\0', mlen)) {
        fdt_error_set(err, FDT_EPROTO, "invalid request: method must be a non-empty string");
        return FDT_JSONRPC_INVALID_REQUEST;
    }
    const struct fdt_json *params = fdt_json_object_get(req, "params");
    if (params && fdt_json_type(params) != FDT_JSON_OBJECT &&
        fdt_json_type(params) != FDT_JSON_ARRAY) {
        fdt_error_set(err, FDT_EPROTO, "invalid request: params must be an object or an array");
        return FDT_JSONRPC_INVALID_REQUEST;
    }
    out->method = method;
    out->params = params;
    return 0;
}

/* Handle one line (without its newline). */
static void handle_line(struct fdt_conn *c, struct rpc_conn *rc, const char *line, size_t len)
{
    struct fdt_error err = {0};
    struct fdt__jsonrpc_request req;
    const struct fdt__jsonrpc_server *srv = server_of(c);
    int64_t t0 = fdt__now_ns();
    int code =
        fdt__jsonrpc_request_parse(rc->doc, line, len, srv->max_input, &srv->limits, &req, &err);
    if (code != 0) {
        fdt__conn_request_end(c, FDT_MCLASS_ERROR, (fdt__now_ns() - t0) / 1000);
        send_error(c, rc, req.id, code, err.msg);
        return;
    }
    const struct fdt_json *id = req.id;
    const char *method = req.method;
    const struct fdt_json *params = req.params;
    err = (struct fdt_error){0};
    bool notify = id == NULL;
    int jcode = 0;
    int r;
    struct fdt_json_writer *w = &rc->result;
    fdt_json_writer_reset(w);
    if (strncmp(method, "txn.", 4) == 0) {
        r = builtin(c, method, params, w, &jcode, &err);
    } else {
        const struct fdt_jsonrpc_method *m = find_method(srv->app, method);
        if (!m) {
            fdt__conn_request_end(c, FDT_MCLASS_ERROR, (fdt__now_ns() - t0) / 1000);
            if (!notify) {
                char msg[200];
                snprintf(msg, sizeof(msg), "method not found: %.128s", method);
                send_error(c, rc, id, FDT_JSONRPC_METHOD_NOT_FOUND, msg);
            }
            return;
        }
        struct app_call ac = {.m = m,
                              .params = params,
                              .w = w,
                              .call = {.conn = c, .method = m->name},
                              .rc = rc,
                              .id = id};
        struct fdt_txn *t = fdt_conn_txn(c);
        if (t) {
            /* Inside txn.begin ... : the call joins the connection's transaction, under a
             * savepoint, so that a call that fails leaves the transaction as it was. */
            ac.call.txn = t;
            struct fdt_error sperr = {0};
            bool sp = fdt_txn_state(t) == FDT_TXN_ACTIVE &&
                      fdt_txn_savepoint(t, CALL_SAVEPOINT, &sperr) == 0;
            r = run_method(&ac, &err);
            if (sp && fdt_conn_txn(c) == t) {
                if (r < 0)
                    fdt_txn_rollback_to(t, CALL_SAVEPOINT, &sperr);
                fdt_txn_release(t, CALL_SAVEPOINT, &sperr);
            }
        } else {
            /* Its own root transaction, retried on conflicts. */
            r = fdt_txn_run(c, run_in_root, &ac, RETRY_ATTEMPTS, NULL, &err);
        }
        jcode = ac.call.code;
        if (r == 0 && !notify) {
            /* Its answer line was made before the commit. */
            fdt__conn_request_end(c, FDT_MCLASS_OK, (fdt__now_ns() - t0) / 1000);
            send_writer(c, &rc->out, id);
            return;
        }
    }
    fdt__conn_request_end(c, r < 0 ? FDT_MCLASS_ERROR : FDT_MCLASS_OK, (fdt__now_ns() - t0) / 1000);
    if (notify)
        return;
    if (r < 0) {
        send_error(c, rc, id, jcode ? jcode : code_for(r), err.msg[0] ? err.msg : fdt_strerror(r));
        return;
    }
    const char *data;
    size_t dlen;
    int wr = fdt_json_writer_finish(w, &data, &dlen);
    if (wr == FDT_ELIMIT) {
        char msg[120];
        snprintf(msg, sizeof(msg), "answer larger than max_output (%zu bytes)", srv->max_output);
        send_error(c, rc, id, FDT_JSONRPC_LIMIT, msg);
        return;
    }
    /* A built-in's result (application methods were answered above): only memory can fail
     * it, growing a long list of txn.recover (which resolves nothing). */
    if (wr < 0) {
        send_error(c, rc, id, FDT_JSONRPC_INTERNAL_ERROR, "internal error: out of memory");
        return;
    }
    send_result(c, rc, id, data, dlen);
}

bool fdt__jsonrpc_next_line(const char *buf, size_t len, size_t *pos, const char **line, size_t *n)
{
    while (*pos < len) {
        const char *start = buf + *pos;
        const char *nl = memchr(start, '\n', len - *pos);
        if (!nl)
            return false;
        const char *end = nl;
        *pos += (size_t)(nl - start) + 1;
        while (end > start && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            end--;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        if (start == end)
            continue; /* blank lines are allowed between messages */
        *line = start;
        *n = (size_t)(end - start);
        return true;
    }
    return false;
}

static void rpc_free(struct rpc_conn *rc)
{
    fdt_json_doc_free(rc->doc);
    fdt_json_writer_deinit(&rc->out);
    fdt_json_writer_deinit(&rc->result);
    free(rc);
}

static int rpc_open(struct fdt_conn *c)
{
    struct rpc_conn *rc = calloc(1, sizeof(*rc));
    if (rc)
        rc->doc = fdt_json_doc_new();
    if (!rc || !rc->doc) {
        free(rc);
        fdt_log(FDT_LOG_WARN, "conn=%llu out of memory: closed", (unsigned long long)c->id);
        return FDT_ENOMEM;
    }
    fdt_json_writer_init(&rc->out, server_of(c)->max_output);
    fdt_json_writer_init(&rc->result, server_of(c)->max_output);
    /* Each writer gets its first buffer now: an answer written after a commit (txn.finish's)
     * then needs no allocation, so it cannot fail for want of memory once the work is
     * done. A connection that cannot have them is refused now instead. */
    fdt_json_writer_null(&rc->out);
    fdt_json_writer_null(&rc->result);
    if (fdt_json_writer_finish(&rc->out, NULL, NULL) < 0 ||
        fdt_json_writer_finish(&rc->result, NULL, NULL) < 0) {
        rpc_free(rc);
        fdt_log(FDT_LOG_WARN, "conn=%llu out of memory: closed", (unsigned long long)c->id);
        return FDT_ENOMEM;
    }
    fdt_json_writer_reset(&rc->out);
    fdt_json_writer_reset(&rc->result);
    c->proto_data = rc;
    return 0;
}

static void refuse_long_line(struct fdt_conn *c, struct rpc_conn *rc)
{
    char msg[120];
    snprintf(msg, sizeof(msg), "request line longer than max_input (%zu bytes)",
             server_of(c)->max_input);
    send_error(c, rc, NULL, FDT_JSONRPC_INVALID_REQUEST, msg);
}

/* A line over max_input is answered once and then dropped up to its newline, so that the
 * connection (and its transaction) keeps working, as after any other error. Returns the
 * bytes of buf dropped; rc->skipping stays set while the line's end has not come. */
static size_t skip_long_line(struct fdt_conn *c, struct rpc_conn *rc, const char *buf, size_t len)
{
    if (!rc->skipping) {
        if (len < server_of(c)->max_input || memchr(buf, '\n', len))
            return 0;
        refuse_long_line(c, rc);
        rc->skipping = true;
    }
    const char *nl = memchr(buf, '\n', len);
    if (!nl)
        return len;
    rc->skipping = false;
    return (size_t)(nl - buf) + 1;
}

static long rpc_data(struct fdt_conn *c, const char *buf, size_t len)
{
    struct rpc_conn *rc = c->proto_data;
    size_t pos = skip_long_line(c, rc, buf, len);
    if (rc->skipping)
        return (long)pos;
    /* Every whole line that came is answered, also while draining: the core closes (or
     * hands on) the connection between calls, once no part of the next one is buffered.
     * Pipelined calls (more than one whole line read at once) are answered with one send:
     * the answers are collected (corked) while a further whole line is waiting, and sent
     * with the answer to the last one (docs/jsonrpc.md, "Pipelining"). */
    const char *line;
    size_t n;
    bool more = fdt__jsonrpc_next_line(buf, len, &pos, &line, &n);
    bool corked = false;
    while (more) {
        const char *cur = line;
        size_t cur_n = n;
        more = fdt__jsonrpc_next_line(buf, len, &pos, &line, &n);
        if (more && !corked) {
            fdt__conn_cork(c);
            corked = true;
        }
        handle_line(c, rc, cur, cur_n);
    }
    if (corked)
        fdt__conn_uncork(c);
    return (long)pos; /* past the last whole line and the blank lines after it */
}

/* Between messages when no part of the next line is buffered (nor being skipped). */
static bool rpc_idle(struct fdt_conn *c)
{
    const struct rpc_conn *rc = c->proto_data;
    return c->in.len == 0 && !(rc && rc->skipping);
}

static void rpc_txn_expired(struct fdt_conn *c)
{
    static const char note[] =
        "{\"jsonrpc\":\"2.0\",\"method\":\"txn.expired\",\"params\":{\"reason\":"
        "\"transaction_timeout: the transaction was idle too long and was rolled back\"}}\n";
    fdt_conn_write(c, note, sizeof(note) - 1);
}

static void rpc_close(struct fdt_conn *c)
{
    struct rpc_conn *rc = c->proto_data;
    if (!rc)
        return;
    rpc_free(rc);
    c->proto_data = NULL;
}

struct fdt__jsonrpc_server *fdt__jsonrpc_server_new(const struct fdt_app *app,
                                                    const struct fdt_cfg *cfg,
                                                    const struct fdt_listen_cfg *listener,
                                                    char *reason, size_t rsize)
{
    const struct fdt_jsonrpc_app *ja = app->jsonrpc;
    if (ja && !FDT_ABI_OK(ja, FDT_JSONRPC_ABI_VERSION, struct fdt_jsonrpc_app)) {
        snprintf(reason, rsize,
                 "the application's struct fdt_jsonrpc_app has abi_version %u and size %u; "
                 "this fdtserver expects %u and at least %zu",
                 ja->abi_version, ja->size, FDT_JSONRPC_ABI_VERSION,
                 offsetof(struct fdt_jsonrpc_app, reserved));
        return NULL;
    }
    struct fdt__jsonrpc_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(reason, rsize, "out of memory");
        return NULL;
    }
    srv->app = ja;
    fdt_json_limits_default(&srv->limits);
    srv->limits.max_size = cfg->max_input;
    srv->node = cfg->node;
    srv->txn_recovery = listener->txn_recovery;
    srv->max_input = cfg->max_input;
    srv->max_output = cfg->max_output;
    return srv;
}

void fdt__jsonrpc_server_free(struct fdt__jsonrpc_server *srv)
{
    free(srv);
}

void fdt__proto_jsonrpc_init(struct fdt_proto *p, const struct fdt__jsonrpc_server *srv)
{
    memset(p, 0, sizeof(*p));
    p->name = "jsonrpc";
    p->ctx = srv;
    p->open = rpc_open;
    p->data = rpc_data;
    /* No overflow callback: rpc_data leaves unconsumed only the start of a line shorter
     * than max_input (a longer one is answered and skipped, skip_long_line), so the input
     * buffer, of max_input bytes, never fills. */
    p->close = rpc_close;
    p->txn_expired = rpc_txn_expired;
    p->idle = rpc_idle;
    /* Between calls a connection holds only its transaction (which stops a hand-off). */
    p->handoff = true;
    p->counts_requests = true;
    p->metric_proto = FDT_MPROTO_JSONRPC;
    p->busy_reply = "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32020,\"message\":\"server busy: "
                    "max_connections reached\"},\"id\":null}\n";
}

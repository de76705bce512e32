/* wingcash over HTTP, routed by traversal:
 *
 *   /                                  GET   what this is
 *   /accounts/                         POST  open an account        {"name"}
 *   /accounts/ID                       GET   the account and its balance
 *   /accounts/ID/deposits              POST  {"amount"}
 *   /accounts/ID/transfers             POST  {"to","amount","idempotency_key"?}
 *                                      GET   ?limit=&before=  newest first
 *   /accounts/ID/withdrawals           POST  {"amount","bank_account"}
 *   /accounts/ID/claims                POST  {"amount"} -> a 12-digit code
 *   /claims/CODE/redeem                POST  {"to"} with the token of "to"
 *
 * Every view but the root's runs one operation of wc_ops.c (routes[] below), with the
 * account or claim code of the URL, the fields of the JSON body or the query, and the
 * token of the Authorization header. Each request runs in the framework's request
 * transaction (fdt_http_txn): a 2xx answer commits it, any error rolls it back, a conflict
 * runs the view again. Every error, the framework's own included, is
 * {"error": {"code", "message", "field"?}}. */
#include "wingcash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_MAX (1024 * 1024)

/* Each application thread keeps its request document and response writer from one request
 * to the next (no allocation per request); wc_http_thread_fini releases them. */
static _Thread_local struct fdt_json_doc *t_doc;
static _Thread_local struct fdt_json_writer t_out;
static _Thread_local bool t_ready;

void wc_http_thread_fini(void)
{
    fdt_json_doc_free(t_doc);
    t_doc = NULL;
    if (t_ready)
        fdt_json_writer_deinit(&t_out);
    t_ready = false;
}

static struct fdt_json_writer *writer(void)
{
    if (!t_ready) {
        fdt_json_writer_init(&t_out, OUT_MAX);
        t_ready = true;
    }
    fdt_json_writer_reset(&t_out);
    return &t_out;
}

static struct fdt_json_doc *doc(void)
{
    if (!t_doc)
        t_doc = fdt_json_doc_new();
    else
        fdt_json_doc_clear(t_doc);
    return t_doc;
}

static int send_json(struct fdt_http_request *req, int status, struct fdt_json_writer *w)
{
    const char *data;
    size_t len;
    if (fdt_json_writer_finish(w, &data, &len) < 0)
        return fdt_http_error(req, 500, "The response could not be written.");
    return fdt_http_respond(req, status, "application/json", data, len);
}

static int send_error(struct fdt_http_request *req, int status, const char *code, const char *field,
                      const char *message)
{
    struct fdt_json_writer *w = writer();
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "error");
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "code");
    fdt_json_writer_string(w, code);
    fdt_json_writer_key(w, "message");
    fdt_json_writer_string(w, message);
    if (field) {
        fdt_json_writer_key(w, "field");
        fdt_json_writer_string(w, field);
    }
    fdt_json_writer_end_object(w);
    fdt_json_writer_end_object(w);
    return send_json(req, status, w);
}

/* Answer a failed operation: its own error, or 503/500 for a database error (a conflict
 * has doomed the transaction, so the framework runs the view again anyway; the kernel's
 * random source failing is as temporary), 500 for any other. */
static int fail(struct fdt_http_request *req, int rc, const struct wc_err *e)
{
    if (rc == WC_FAIL)
        return send_error(req, e->status, e->code, e->field, e->message);
    if (rc == FDT_ERETRY)
        return send_error(req, 503, "conflict", NULL, "the request conflicted; try again");
    if (rc == FDT_ERANDOM) /* the transaction's id could not be drawn: nothing was done */
        return send_error(req, 503, "unavailable", NULL, "no randomness; try again");
    fdt_log(FDT_LOG_ERROR, "wingcash: %s", e->db.msg[0] ? e->db.msg : e->message);
    return send_error(req, 500, "internal", NULL, "internal error");
}

static const char *status_code(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 408:
        return "request_timeout";
    case 413:
        return "body_too_large";
    case 417:
        return "expectation_failed";
    case 431:
        return "headers_too_large";
    case 501:
        return "not_implemented";
    case 503:
        return "unavailable";
    case 505:
        return "http_version_not_supported";
    default:
        return status < 500 ? "bad_request" : "internal";
    }
}

static void error_view(struct fdt_http_request *req, int status, const char *message)
{
    send_error(req, status, status_code(status), NULL, message ? message : "");
}

/* ---- Resources ---- */

static const struct fdt_http_resource_type root_type, accounts_type, account_type, claims_type,
    claim_type;

static int64_t parse_id(const char *s)
{
    if (!*s || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s) || s[0] == '0')
        return 0;
    return strtoll(s, NULL, 10);
}

static int root_getitem(struct fdt_http_request *req, struct fdt_http_resource *parent,
                        const char *key, size_t len, struct fdt_http_resource **child)
{
    const struct fdt_http_resource_type *type = NULL;
    if (strcmp(key, "accounts") == 0)
        type = &accounts_type;
    else if (strcmp(key, "claims") == 0)
        type = &claims_type;
    else
        return FDT_ENOENT;
    *child = fdt_http_resource_new(req, parent, type, key, len, NULL);
    return *child ? 0 : FDT_ENOMEM;
}

static int accounts_getitem(struct fdt_http_request *req, struct fdt_http_resource *parent,
                            const char *key, size_t len, struct fdt_http_resource **child)
{
    /* The account's number is the resource's name (read again by the views). */
    if (!parse_id(key))
        return FDT_ENOENT;
    *child = fdt_http_resource_new(req, parent, &account_type, key, len, NULL);
    return *child ? 0 : FDT_ENOMEM;
}

static int claims_getitem(struct fdt_http_request *req, struct fdt_http_resource *parent,
                          const char *key, size_t len, struct fdt_http_resource **child)
{
    *child = fdt_http_resource_new(req, parent, &claim_type, key, len, NULL);
    return *child ? 0 : FDT_ENOMEM;
}

#define RESOURCE_TYPE(name_, getitem_)                                                             \
    {                                                                                              \
        .abi_version = FDT_HTTP_ABI_VERSION, .size = sizeof(struct fdt_http_resource_type),        \
        .name = name_, .getitem = getitem_                                                         \
    }

static const struct fdt_http_resource_type root_type = RESOURCE_TYPE("root", root_getitem);
static const struct fdt_http_resource_type accounts_type =
    RESOURCE_TYPE("accounts", accounts_getitem);
static const struct fdt_http_resource_type account_type = RESOURCE_TYPE("account", NULL);
static const struct fdt_http_resource_type claims_type = RESOURCE_TYPE("claims", claims_getitem);
static const struct fdt_http_resource_type claim_type = RESOURCE_TYPE("claim", NULL);

/* ---- Views ---- */

static int v_root(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    (void)context;
    static const char about[] =
        "{\"service\":\"wingcash\",\"about\":\"zero-fee cash sending; see docs/wingcash.md\","
        "\"accounts\":\"/accounts/\"}";
    return fdt_http_respond(req, 200, "application/json", about, sizeof(about) - 1);
}

/* A request as wc_op_run() reads it. */

static int body_object(void *req, const struct fdt_json **obj, struct wc_err *e)
{
    size_t len;
    const char *body = fdt_http_body(req, &len);
    return wc_parse_object(doc(), body, len, obj, e);
}

static int request_txn(void *req, struct fdt_txn **t, struct wc_err *e)
{
    *t = fdt_http_txn(req, &e->db);
    return *t ? 0 : wc_db(e, e->db.code ? e->db.code : FDT_EINVAL);
}

static const char *bearer(void *req)
{
    return wc_bearer(fdt_http_header(req, "Authorization"));
}

/* The value of query parameter name (the first), or NULL. */
static const char *query_param(void *req, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (const char *p = fdt_http_query(req); p && *p;) {
        if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            *len = strcspn(p + nlen + 1, "&");
            return p + nlen + 1;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return NULL;
}

static const struct wc_frontend http_frontend = {
    .object = body_object,
    .txn = request_txn,
    .token = bearer,
    .token_hint = "Authorization: Bearer <token>",
    .query = query_param,
};

/* Every view but the root's is one operation of wc_ops.c: the view's resource gives the
 * fields found in the URL, the rest come from the body or the query. */
static const struct route {
    const struct fdt_http_resource_type *type;
    const char *view;
    const char *method;
    const struct wc_op *op;
    int status; /* of a success */
} routes[] = {
    {&accounts_type, "", "POST", &wc_ops[WC_OP_CREATE_ACCOUNT], 201},
    {&account_type, "", "GET", &wc_ops[WC_OP_BALANCE], 200},
    {&account_type, "deposits", "POST", &wc_ops[WC_OP_DEPOSIT], 201},
    {&account_type, "transfers", "POST", &wc_ops[WC_OP_TRANSFER], 201},
    {&account_type, "transfers", "GET", &wc_ops[WC_OP_HISTORY], 200},
    {&account_type, "withdrawals", "POST", &wc_ops[WC_OP_WITHDRAW], 201},
    {&account_type, "claims", "POST", &wc_ops[WC_OP_CLAIM], 201},
    {&claim_type, "redeem", "POST", &wc_ops[WC_OP_REDEEM], 200},
};

/* The route the framework chose this view by (HEAD is served by the GET view). */
static const struct route *find_route(struct fdt_http_request *req,
                                      struct fdt_http_resource *context)
{
    const char *view = fdt_http_view_name(req), *method = fdt_http_method(req);
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *r = &routes[i];
        if (r->type == fdt_http_resource_type(context) && strcmp(r->view, view) == 0 &&
            strcmp(r->method, method) == 0)
            return r;
    }
    return NULL; /* GCOVR_EXCL_LINE: unreachable: each view of v_operation has its row in routes */
}

static int v_operation(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    const struct route *route = find_route(req, context);
    /* GCOVR_EXCL_START: unreachable: each view of v_operation below has its row in routes */
    if (!route)
        return fdt_http_error(req, 500, "No operation serves this view.");
    /* GCOVR_EXCL_STOP */
    struct wc_input in = {0};
    if (fdt_http_resource_type(context) == &account_type)
        in.account = parse_id(fdt_http_resource_name(context, NULL));
    else if (fdt_http_resource_type(context) == &claim_type)
        in.code = fdt_http_resource_name(context, NULL);
    struct wc_result r = {0};
    struct wc_err e = {0};
    struct fdt_json_writer *w = writer();
    int rc = wc_op_run(route->op, &http_frontend, req, &in, &r, w, &e);
    if (rc < 0)
        return fail(req, rc, &e);
    if (r.replayed)
        fdt_http_set_header(req, "Idempotent-Replayed", "true");
    if (r.account.token[0]) {
        char url[64];
        snprintf(url, sizeof(url), "/accounts/%lld", (long long)r.account.id);
        fdt_http_set_header(req, "Location", url);
    }
    return send_json(req, route->status, w);
}

static const struct fdt_http_view views[] = {
    {.type = &root_type, .name = "", .method = "GET", .fn = v_root},
    {.type = &accounts_type, .name = "", .method = "POST", .fn = v_operation},
    {.type = &account_type, .name = "", .method = "GET", .fn = v_operation},
    {.type = &account_type, .name = "deposits", .method = "POST", .fn = v_operation},
    {.type = &account_type, .name = "transfers", .method = "POST", .fn = v_operation},
    {.type = &account_type, .name = "transfers", .method = "GET", .fn = v_operation},
    {.type = &account_type, .name = "withdrawals", .method = "POST", .fn = v_operation},
    {.type = &account_type, .name = "claims", .method = "POST", .fn = v_operation},
    {.type = &claim_type, .name = "redeem", .method = "POST", .fn = v_operation},
};

const struct fdt_http_app wc_http_app = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(wc_http_app),
    .root_type = &root_type,
    .views = views,
    .n_views = sizeof(views) / sizeof(views[0]),
    .error_view = error_view,
};

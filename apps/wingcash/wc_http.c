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
 * Each request runs in the framework's request transaction (fdt_http_txn): a 2xx answer
 * commits it, any error rolls it back, a conflict runs the view again. Every error, the
 * framework's own included, is {"error": {"code", "message", "field"?}}. */
#include "wingcash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_MAX (1024 * 1024)

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
 * has doomed the transaction, so the framework runs the view again anyway). */
static int fail(struct fdt_http_request *req, int rc, const struct wc_err *e)
{
    if (rc == WC_FAIL)
        return send_error(req, e->status, e->code, e->field, e->message);
    if (rc == FDT_ERETRY)
        return send_error(req, 503, "conflict", NULL, "the request conflicted; try again");
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
    int64_t id = parse_id(key);
    if (!id)
        return FDT_ENOENT;
    int64_t *data = fdt_http_alloc(req, sizeof(*data));
    if (!data)
        return FDT_ENOMEM;
    *data = id;
    *child = fdt_http_resource_new(req, parent, &account_type, key, len, data);
    return *child ? 0 : FDT_ENOMEM;
}

static int claims_getitem(struct fdt_http_request *req, struct fdt_http_resource *parent,
                          const char *key, size_t len, struct fdt_http_resource **child)
{
    *child = fdt_http_resource_new(req, parent, &claim_type, key, len, NULL);
    return *child ? 0 : FDT_ENOMEM;
}

static const struct fdt_http_resource_type root_type = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(root_type),
    .name = "root",
    .getitem = root_getitem,
};
static const struct fdt_http_resource_type accounts_type = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(accounts_type),
    .name = "accounts",
    .getitem = accounts_getitem,
};
static const struct fdt_http_resource_type account_type = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(account_type),
    .name = "account",
};
static const struct fdt_http_resource_type claims_type = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(claims_type),
    .name = "claims",
    .getitem = claims_getitem,
};
static const struct fdt_http_resource_type claim_type = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(claim_type),
    .name = "claim",
};

static int64_t account_id(struct fdt_http_resource *context)
{
    return *(int64_t *)fdt_http_resource_data(context);
}

/* The request's transaction, and the caller authorized for account id. */
static int begin_authorized(struct fdt_http_request *req, int64_t id, struct fdt_txn **t,
                            struct wc_err *e)
{
    *t = fdt_http_txn(req, &e->db);
    if (!*t)
        return wc_db(e, e->db.code ? e->db.code : FDT_EINVAL);
    return wc_authorize(*t, id, wc_bearer(fdt_http_header(req, "Authorization")), e);
}

static int body_object(struct fdt_http_request *req, const struct fdt_json **obj, struct wc_err *e)
{
    size_t len;
    const char *body = fdt_http_body(req, &len);
    return wc_parse_object(doc(), body, len, obj, e);
}

/* ---- Views ---- */

static int v_root(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    (void)context;
    static const char about[] =
        "{\"service\":\"wingcash\",\"about\":\"zero-fee cash sending; see docs/wingcash.md\","
        "\"accounts\":\"/accounts/\"}";
    return fdt_http_respond(req, 200, "application/json", about, sizeof(about) - 1);
}

static int v_create_account(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    (void)context;
    struct wc_err e = {0};
    const struct fdt_json *obj;
    const char *name = NULL;
    struct wc_account a;
    int rc = body_object(req, &obj, &e);
    if (rc == 0)
        rc = wc_get_string(obj, "name", WC_NAME_MAX, true, &name, &e);
    struct fdt_txn *t = NULL;
    if (rc == 0 && !(t = fdt_http_txn(req, &e.db)))
        rc = wc_db(&e, e.db.code);
    if (rc == 0)
        rc = wc_account_create(t, name, &a, &e);
    if (rc < 0)
        return fail(req, rc, &e);
    char url[64];
    snprintf(url, sizeof(url), "/accounts/%lld", (long long)a.id);
    fdt_http_set_header(req, "Location", url);
    struct fdt_json_writer *w = writer();
    wc_write_account(w, &a);
    return send_json(req, 201, w);
}

static int v_account(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    struct wc_err e = {0};
    struct fdt_txn *t;
    struct wc_account a;
    int64_t id = account_id(context);
    int rc = begin_authorized(req, id, &t, &e);
    if (rc == 0)
        rc = wc_account_get(t, id, &a, &e);
    if (rc < 0)
        return fail(req, rc, &e);
    struct fdt_json_writer *w = writer();
    wc_write_account(w, &a);
    return send_json(req, 200, w);
}

static int v_deposit(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    struct wc_err e = {0};
    struct fdt_txn *t;
    const struct fdt_json *obj;
    int64_t id = account_id(context), amount = 0;
    struct wc_movement m;
    int rc = begin_authorized(req, id, &t, &e);
    if (rc == 0)
        rc = body_object(req, &obj, &e);
    if (rc == 0)
        rc = wc_get_amount(obj, "amount", &amount, &e);
    if (rc == 0)
        rc = wc_deposit(t, id, amount, &m, &e);
    if (rc < 0)
        return fail(req, rc, &e);
    struct fdt_json_writer *w = writer();
    wc_write_movement(w, &m);
    return send_json(req, 201, w);
}

static int v_transfer(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    struct wc_err e = {0};
    struct fdt_txn *t;
    const struct fdt_json *obj;
    int64_t id = account_id(context), to = 0, amount = 0;
    const char *key = NULL;
    struct wc_movement m;
    bool replayed = false;
    int rc = begin_authorized(req, id, &t, &e);
    if (rc == 0)
        rc = body_object(req, &obj, &e);
    if (rc == 0)
        rc = wc_get_id(obj, "to", &to, &e);
    if (rc == 0)
        rc = wc_get_amount(obj, "amount", &amount, &e);
    if (rc == 0)
        rc = wc_get_string(obj, "idempotency_key", WC_KEY_MAX, false, &key, &e);
    if (rc == 0)
        rc = wc_transfer(t, id, to, amount, key, &m, &replayed, &e);
    if (rc < 0)
        return fail(req, rc, &e);
    if (replayed)
        fdt_http_set_header(req, "Idempotent-Replayed", "true");
    struct fdt_json_writer *w = writer();
    wc_write_movement(w, &m);
    return send_json(req, 201, w);
}

/* A query parameter as a positive integer: 0 when absent, -1 when malformed. */
static int64_t query_int(const char *query, const char *name)
{
    size_t nlen = strlen(name);
    for (const char *p = query; p && *p;) {
        if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = strcspn(v, "&");
            char buf[24];
            if (vlen == 0 || vlen >= sizeof(buf))
                return -1;
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            int64_t n = parse_id(buf);
            return n ? n : -1;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return 0;
}

static int v_history(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    struct wc_err e = {0};
    struct fdt_txn *t;
    int64_t id = account_id(context);
    int64_t limit = query_int(fdt_http_query(req), "limit");
    int64_t before = query_int(fdt_http_query(req), "before");
    int rc = begin_authorized(req, id, &t, &e);
    if (rc == 0 && (limit < 0 || limit > wc.history_max))
        rc = wc_fail(&e, 422, "invalid_field", "limit", "limit must be an integer from 1 to %lld",
                     (long long)wc.history_max);
    if (rc == 0 && before < 0)
        rc = wc_fail(&e, 422, "invalid_field", "before", "before must be a transfer id");
    struct wc_page *page = NULL;
    if (rc == 0 && !(page = fdt_http_alloc(req, sizeof(*page))))
        rc = wc_fail(&e, 503, "unavailable", NULL, "out of memory");
    if (rc == 0)
        rc = wc_history(t, id, limit ? limit : WC_HISTORY_DEFAULT, before, page, &e);
    if (rc < 0)
        return fail(req, rc, &e);
    struct fdt_json_writer *w = writer();
    wc_write_page(w, page);
    return send_json(req, 200, w);
}

static int v_withdraw(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    struct wc_err e = {0};
    struct fdt_txn *t;
    const struct fdt_json *obj;
    int64_t id = account_id(context), amount = 0;
    const char *bank = NULL, *key = NULL;
    struct wc_movement m;
    bool replayed = false;
    int rc = begin_authorized(req, id, &t, &e);
    if (rc == 0)
        rc = body_object(req, &obj, &e);
    if (rc == 0)
        rc = wc_get_amount(obj, "amount", &amount, &e);
    if (rc == 0)
        rc = wc_get_string(obj, "bank_account", WC_BANK_MAX, true, &bank, &e);
    if (rc == 0)
        rc = wc_get_string(obj, "idempotency_key", WC_KEY_MAX, false, &key, &e);
    if (rc == 0)
        rc = wc_withdraw(t, id, amount, bank, key, &m, &replayed, &e);
    if (rc < 0)
        return fail(req, rc, &e);
    if (replayed)
        fdt_http_set_header(req, "Idempotent-Replayed", "true");
    struct fdt_json_writer *w = writer();
    wc_write_result(w, &m);
    return send_json(req, 201, w);
}

static int v_claim(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    struct wc_err e = {0};
    struct fdt_txn *t;
    const struct fdt_json *obj;
    int64_t id = account_id(context), amount = 0;
    struct wc_movement m;
    int rc = begin_authorized(req, id, &t, &e);
    if (rc == 0)
        rc = body_object(req, &obj, &e);
    if (rc == 0)
        rc = wc_get_amount(obj, "amount", &amount, &e);
    if (rc == 0)
        rc = wc_claim_create(t, id, amount, &m, &e);
    if (rc < 0)
        return fail(req, rc, &e);
    struct fdt_json_writer *w = writer();
    wc_write_result(w, &m);
    return send_json(req, 201, w);
}

static int v_redeem(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    struct wc_err e = {0};
    const struct fdt_json *obj;
    int64_t to = 0;
    struct wc_movement m;
    const char *code = fdt_http_resource_name(context, NULL);
    int rc = body_object(req, &obj, &e);
    if (rc == 0)
        rc = wc_get_id(obj, "to", &to, &e);
    struct fdt_txn *t = NULL;
    if (rc == 0 && !(t = fdt_http_txn(req, &e.db)))
        rc = wc_db(&e, e.db.code);
    if (rc == 0)
        rc = wc_claim_redeem(t, code, to, wc_bearer(fdt_http_header(req, "Authorization")), &m, &e);
    if (rc < 0)
        return fail(req, rc, &e);
    struct fdt_json_writer *w = writer();
    wc_write_result(w, &m);
    return send_json(req, 200, w);
}

static const struct fdt_http_view views[] = {
    {.type = &root_type, .name = "", .method = "GET", .fn = v_root},
    {.type = &accounts_type, .name = "", .method = "POST", .fn = v_create_account},
    {.type = &account_type, .name = "", .method = "GET", .fn = v_account},
    {.type = &account_type, .name = "deposits", .method = "POST", .fn = v_deposit},
    {.type = &account_type, .name = "transfers", .method = "POST", .fn = v_transfer},
    {.type = &account_type, .name = "transfers", .method = "GET", .fn = v_history},
    {.type = &account_type, .name = "withdrawals", .method = "POST", .fn = v_withdraw},
    {.type = &account_type, .name = "claims", .method = "POST", .fn = v_claim},
    {.type = &claim_type, .name = "redeem", .method = "POST", .fn = v_redeem},
};

const struct fdt_http_app wc_http_app = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(wc_http_app),
    .root_type = &root_type,
    .views = views,
    .n_views = sizeof(views) / sizeof(views[0]),
    .error_view = error_view,
};

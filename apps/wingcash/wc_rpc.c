/* wingcash over JSON-RPC 2.0 (named params), so that a remote coordinator can put a
 * transfer inside its own distributed transaction (txn.begin ... txn.vote ... txn.finish).
 * Outside txn.begin each call is a root transaction of its own.
 *
 *   wingcash.create_account {name}                              -> {id,name,balance,token}
 *   wingcash.balance        {token,account}                     -> {id,name,balance}
 *   wingcash.deposit        {token,account,amount}              -> movement
 *   wingcash.transfer       {token,from,to,amount,idempotency_key?} -> movement
 *   wingcash.transfers      {token,account,limit?,before?}      -> {items,next}
 *   wingcash.withdraw       {token,account,amount,bank_account,idempotency_key?}
 *                                                               -> {id,amount,fee,status}
 *   wingcash.claim          {token,account,amount}              -> {code,amount}
 *   wingcash.redeem         {token,code,to}                     -> {id,code,to,amount}
 *
 * Errors: -32602 (invalid params: 400/422, the field named in the message), or the HTTP
 * status of the same error as the code (401, 403, 404, 409, 429); the message starts with
 * the error's code word ("insufficient_funds: ..."). */
#include "wingcash.h"

#include <stdio.h>
#include <string.h>

static int rpc_fail(struct fdt_jsonrpc_call *call, int rc, const struct wc_err *e,
                    struct fdt_error *err)
{
    if (rc != WC_FAIL) {
        *err = e->db;
        if (!err->code)
            err->code = rc;
        return rc;
    }
    int code = e->status == 400 || e->status == 422 ? FDT_JSONRPC_INVALID_PARAMS : e->status;
    fdt_jsonrpc_set_error_code(call, code);
    return fdt_error_set(err, FDT_EAPP, "%s: %s", e->code, e->message);
}

static const char *token_param(const struct fdt_json *params)
{
    const char *t = NULL;
    size_t n;
    return fdt_json_get_string(fdt_json_object_get(params, "token"), &t, &n) == 0 ? t : NULL;
}

/* The call's params as an object, and its account (field) authorized by its token. */
static int authorized(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                      const char *field, int64_t *id, struct wc_err *e)
{
    if (fdt_json_type(params) != FDT_JSON_OBJECT)
        return wc_fail(e, 400, "invalid_params", NULL, "params must be an object");
    int rc = wc_get_id(params, field, id, e);
    return rc < 0 ? rc : wc_authorize(fdt_jsonrpc_txn(call), *id, token_param(params), e);
}

static int m_create_account(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                            struct fdt_json_writer *w, struct fdt_error *err)
{
    struct wc_err e = {0};
    const char *name = NULL;
    struct wc_account a;
    int rc = fdt_json_type(params) == FDT_JSON_OBJECT
                 ? wc_get_string(params, "name", WC_NAME_MAX, true, &name, &e)
                 : wc_fail(&e, 400, "invalid_params", NULL, "params must be an object");
    if (rc == 0)
        rc = wc_account_create(fdt_jsonrpc_txn(call), name, &a, &e);
    if (rc < 0)
        return rpc_fail(call, rc, &e, err);
    wc_write_account(w, &a);
    return 0;
}

static int m_balance(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                     struct fdt_json_writer *w, struct fdt_error *err)
{
    struct wc_err e = {0};
    int64_t id = 0;
    struct wc_account a;
    int rc = authorized(call, params, "account", &id, &e);
    if (rc == 0)
        rc = wc_account_get(fdt_jsonrpc_txn(call), id, &a, &e);
    if (rc < 0)
        return rpc_fail(call, rc, &e, err);
    wc_write_account(w, &a);
    return 0;
}

static int m_deposit(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                     struct fdt_json_writer *w, struct fdt_error *err)
{
    struct wc_err e = {0};
    int64_t id = 0, amount = 0;
    struct wc_movement m;
    int rc = authorized(call, params, "account", &id, &e);
    if (rc == 0)
        rc = wc_get_amount(params, "amount", &amount, &e);
    if (rc == 0)
        rc = wc_deposit(fdt_jsonrpc_txn(call), id, amount, &m, &e);
    if (rc < 0)
        return rpc_fail(call, rc, &e, err);
    wc_write_movement(w, &m);
    return 0;
}

static int m_transfer(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                      struct fdt_json_writer *w, struct fdt_error *err)
{
    struct wc_err e = {0};
    int64_t from = 0, to = 0, amount = 0;
    const char *key = NULL;
    struct wc_movement m;
    bool replayed;
    int rc = authorized(call, params, "from", &from, &e);
    if (rc == 0)
        rc = wc_get_id(params, "to", &to, &e);
    if (rc == 0)
        rc = wc_get_amount(params, "amount", &amount, &e);
    if (rc == 0)
        rc = wc_get_string(params, "idempotency_key", WC_KEY_MAX, false, &key, &e);
    if (rc == 0)
        rc = wc_transfer(fdt_jsonrpc_txn(call), from, to, amount, key, &m, &replayed, &e);
    if (rc < 0)
        return rpc_fail(call, rc, &e, err);
    wc_write_movement(w, &m);
    return 0;
}

static int m_transfers(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                       struct fdt_json_writer *w, struct fdt_error *err)
{
    struct wc_err e = {0};
    int64_t id = 0, limit = WC_HISTORY_DEFAULT, before = 0;
    int rc = authorized(call, params, "account", &id, &e);
    const struct fdt_json *lv = fdt_json_object_get(params, "limit");
    const struct fdt_json *bv = fdt_json_object_get(params, "before");
    if (rc == 0 && lv && (fdt_json_get_int(lv, &limit) < 0 || limit < 1 || limit > wc.history_max))
        rc = wc_fail(&e, 422, "invalid_field", "limit", "limit must be an integer from 1 to %lld",
                     (long long)wc.history_max);
    if (rc == 0 && bv && fdt_json_type(bv) != FDT_JSON_NULL &&
        (fdt_json_get_int(bv, &before) < 0 || before < 1))
        rc = wc_fail(&e, 422, "invalid_field", "before", "before must be a transfer id");
    static _Thread_local struct wc_page page;
    if (rc == 0)
        rc = wc_history(fdt_jsonrpc_txn(call), id, limit, before, &page, &e);
    if (rc < 0)
        return rpc_fail(call, rc, &e, err);
    wc_write_page(w, &page);
    return 0;
}

static int m_withdraw(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                      struct fdt_json_writer *w, struct fdt_error *err)
{
    struct wc_err e = {0};
    int64_t id = 0, amount = 0;
    const char *bank = NULL, *key = NULL;
    struct wc_movement m;
    int rc = authorized(call, params, "account", &id, &e);
    if (rc == 0)
        rc = wc_get_amount(params, "amount", &amount, &e);
    if (rc == 0)
        rc = wc_get_string(params, "bank_account", WC_BANK_MAX, true, &bank, &e);
    if (rc == 0)
        rc = wc_get_string(params, "idempotency_key", WC_KEY_MAX, false, &key, &e);
    bool replayed;
    if (rc == 0)
        rc = wc_withdraw(fdt_jsonrpc_txn(call), id, amount, bank, key, &m, &replayed, &e);
    if (rc < 0)
        return rpc_fail(call, rc, &e, err);
    wc_write_result(w, &m);
    return 0;
}

static int m_claim(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                   struct fdt_json_writer *w, struct fdt_error *err)
{
    struct wc_err e = {0};
    int64_t id = 0, amount = 0;
    struct wc_movement m;
    int rc = authorized(call, params, "account", &id, &e);
    if (rc == 0)
        rc = wc_get_amount(params, "amount", &amount, &e);
    if (rc == 0)
        rc = wc_claim_create(fdt_jsonrpc_txn(call), id, amount, &m, &e);
    if (rc < 0)
        return rpc_fail(call, rc, &e, err);
    wc_write_result(w, &m);
    return 0;
}

static int m_redeem(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                    struct fdt_json_writer *w, struct fdt_error *err)
{
    struct wc_err e = {0};
    int64_t to = 0;
    const char *code = NULL;
    struct wc_movement m;
    int rc = fdt_json_type(params) == FDT_JSON_OBJECT
                 ? wc_get_string(params, "code", 64, true, &code, &e)
                 : wc_fail(&e, 400, "invalid_params", NULL, "params must be an object");
    if (rc == 0)
        rc = wc_get_id(params, "to", &to, &e);
    if (rc == 0)
        rc = wc_claim_redeem(fdt_jsonrpc_txn(call), code, to, token_param(params), &m, &e);
    if (rc < 0)
        return rpc_fail(call, rc, &e, err);
    wc_write_result(w, &m);
    return 0;
}

static const struct fdt_jsonrpc_method methods[] = {
    {"wingcash.create_account", m_create_account},
    {"wingcash.balance", m_balance},
    {"wingcash.deposit", m_deposit},
    {"wingcash.transfer", m_transfer},
    {"wingcash.transfers", m_transfers},
    {"wingcash.withdraw", m_withdraw},
    {"wingcash.claim", m_claim},
    {"wingcash.redeem", m_redeem},
};

const struct fdt_jsonrpc_app wc_rpc_app = {
    .abi_version = FDT_APP_ABI_VERSION,
    .size = sizeof(wc_rpc_app),
    .methods = methods,
    .n_methods = sizeof(methods) / sizeof(methods[0]),
};

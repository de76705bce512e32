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
 * Each method is one operation of wc_ops.c, its fields taken from the named params.
 * Errors: -32602 (invalid params: 400/422, the field named in the message), or the HTTP
 * status of the same error as the code (401, 403, 404, 409, 429); the message starts with
 * the error's code word ("insufficient_funds: ..."). */
#include "wingcash.h"

static int rpc_fail(struct fdt_jsonrpc_call *call, int rc, const struct wc_err *e,
                    struct fdt_error *err)
{
    if (rc != WC_FAIL) {
        *err = e->db;
        if (!err->code)
            err->code = rc; /* GCOVR_EXCL_LINE: unreachable: every code but WC_FAIL comes from a
                               database call, which sets e->db (fdt_error_set) */
        return rc;
    }
    int code = e->status == 400 || e->status == 422 ? FDT_JSONRPC_INVALID_PARAMS : e->status;
    fdt_jsonrpc_set_error_code(call, code);
    return fdt_error_set(err, FDT_EAPP, "%s: %s", e->code, e->message);
}

/* A call as wc_op_run() reads it. */
struct rpc_request {
    struct fdt_jsonrpc_call *call;
    const struct fdt_json *params;
};

static int params_object(void *req, const struct fdt_json **obj, struct wc_err *e)
{
    const struct rpc_request *r = req;
    if (fdt_json_type(r->params) != FDT_JSON_OBJECT)
        return wc_fail(e, 400, "invalid_params", NULL, "params must be an object");
    *obj = r->params;
    return 0;
}

static int call_txn(void *req, struct fdt_txn **t, struct wc_err *e)
{
    (void)e;
    *t = fdt_jsonrpc_txn(((const struct rpc_request *)req)->call);
    return 0;
}

static const char *token_param(void *req)
{
    const struct rpc_request *r = req;
    const char *t = NULL;
    size_t n;
    return fdt_json_get_string(fdt_json_object_get(r->params, "token"), &t, &n) == 0 ? t : NULL;
}

static const struct wc_frontend rpc_frontend = {
    .object = params_object,
    .txn = call_txn,
    .token = token_param,
    .token_hint = "give the account's token in the params (\"token\")",
};

static int run(const struct wc_op *op, struct fdt_jsonrpc_call *call, const struct fdt_json *params,
               struct fdt_json_writer *w, struct fdt_error *err)
{
    struct rpc_request req = {call, params};
    struct wc_input in = {0};
    struct wc_result r = {0};
    struct wc_err e = {0};
    int rc = wc_op_run(op, &rpc_frontend, &req, &in, &r, w, &e);
    return rc < 0 ? rpc_fail(call, rc, &e, err) : 0;
}

/* A method is called without being told its name, and struct fdt_jsonrpc_method has no
 * room for anything else: so one small function per operation says which it is. */

static int m_create_account(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                            struct fdt_json_writer *w, struct fdt_error *err)
{
    return run(&wc_ops[WC_OP_CREATE_ACCOUNT], call, params, w, err);
}

static int m_balance(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                     struct fdt_json_writer *w, struct fdt_error *err)
{
    return run(&wc_ops[WC_OP_BALANCE], call, params, w, err);
}

static int m_deposit(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                     struct fdt_json_writer *w, struct fdt_error *err)
{
    return run(&wc_ops[WC_OP_DEPOSIT], call, params, w, err);
}

static int m_transfer(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                      struct fdt_json_writer *w, struct fdt_error *err)
{
    return run(&wc_ops[WC_OP_TRANSFER], call, params, w, err);
}

static int m_transfers(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                       struct fdt_json_writer *w, struct fdt_error *err)
{
    return run(&wc_ops[WC_OP_HISTORY], call, params, w, err);
}

static int m_withdraw(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                      struct fdt_json_writer *w, struct fdt_error *err)
{
    return run(&wc_ops[WC_OP_WITHDRAW], call, params, w, err);
}

static int m_claim(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                   struct fdt_json_writer *w, struct fdt_error *err)
{
    return run(&wc_ops[WC_OP_CLAIM], call, params, w, err);
}

static int m_redeem(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                    struct fdt_json_writer *w, struct fdt_error *err)
{
    return run(&wc_ops[WC_OP_REDEEM], call, params, w, err);
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
    .abi_version = FDT_JSONRPC_ABI_VERSION,
    .size = sizeof(wc_rpc_app),
    .methods = methods,
    .n_methods = sizeof(methods) / sizeof(methods[0]),
};

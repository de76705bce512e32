/* The operations of wingcash, one table for both front ends: each names its fields (kind,
 * required, bounds, where HTTP finds it), the authorization it needs, and the function that
 * performs it in the ledger and writes its result. wc_http.c maps views to these, wc_rpc.c
 * maps method names; wc_op_run() is the one path every request takes:
 *
 *   fields in order (the first failure answers) -> authorization after the first field
 *   (WC_AUTH_OWNER) -> the transaction -> run -> the JSON result. */
#include "wingcash.h"

#include <stddef.h>
#include <stdio.h>

#define IN(member) offsetof(struct wc_input, member)

/* ---- What each operation does once its fields are checked. ---- */

static int create_account(struct fdt_txn *t, const struct wc_input *in, struct wc_result *r,
                          struct wc_err *e)
{
    return wc_account_create(t, in->name, &r->account, e);
}

static int balance(struct fdt_txn *t, const struct wc_input *in, struct wc_result *r,
                   struct wc_err *e)
{
    return wc_account_get(t, in->account, &r->account, e);
}

static int deposit(struct fdt_txn *t, const struct wc_input *in, struct wc_result *r,
                   struct wc_err *e)
{
    return wc_deposit(t, in->account, in->amount, &r->movement, e);
}

static int transfer(struct fdt_txn *t, const struct wc_input *in, struct wc_result *r,
                    struct wc_err *e)
{
    return wc_transfer(t, in->account, in->to, in->amount, in->idempotency_key, &r->movement,
                       &r->replayed, e);
}

static int history(struct fdt_txn *t, const struct wc_input *in, struct wc_result *r,
                   struct wc_err *e)
{
    /* A page is too large for a thread's stack to be comfortable, and one per thread is
     * enough: it is written out before the next request on this thread. */
    static _Thread_local struct wc_page page;
    r->page = &page;
    return wc_history(t, in->account, in->limit ? in->limit : WC_HISTORY_DEFAULT, in->before, &page,
                      e);
}

static int withdraw(struct fdt_txn *t, const struct wc_input *in, struct wc_result *r,
                    struct wc_err *e)
{
    return wc_withdraw(t, in->account, in->amount, in->bank_account, in->idempotency_key,
                       &r->movement, &r->replayed, e);
}

static int claim(struct fdt_txn *t, const struct wc_input *in, struct wc_result *r,
                 struct wc_err *e)
{
    return wc_claim_create(t, in->account, in->amount, &r->movement, e);
}

/* The token is checked by wc_claim_redeem itself: it must be the token of "to", and a
 * wrong code counts against its owner before anything else is looked at. */
static int redeem(struct fdt_txn *t, const struct wc_input *in, struct wc_result *r,
                  struct wc_err *e)
{
    return wc_claim_redeem(t, in->code, in->to, in->token, &r->movement, e);
}

/* ---- The table. ----
 *
 * A row: the authorization, the fields, what it does, how a success is shown. Fields: {name, kind,
 * required, longest string, where HTTP finds it, where it goes}, up to one without a name. The
 * first field of a WC_AUTH_OWNER operation is the account acted on: a named param over JSON-RPC,
 * the account of the URL over HTTP. */

static const struct wc_field name_only[] = {
    {"name", WC_TEXT, true, WC_NAME_MAX, WC_IN_BODY, IN(name)},
    {.name = NULL},
};
static const struct wc_field account_only[] = {
    {"account", WC_ID, true, 0, WC_IN_URL, IN(account)},
    {.name = NULL},
};
static const struct wc_field account_amount[] = {
    {"account", WC_ID, true, 0, WC_IN_URL, IN(account)},
    {"amount", WC_AMOUNT, true, 0, WC_IN_BODY, IN(amount)},
    {.name = NULL},
};
static const struct wc_field transfer_fields[] = {
    {"from", WC_ID, true, 0, WC_IN_URL, IN(account)},
    {"to", WC_ID, true, 0, WC_IN_BODY, IN(to)},
    {"amount", WC_AMOUNT, true, 0, WC_IN_BODY, IN(amount)},
    {"idempotency_key", WC_TEXT, false, WC_KEY_MAX, WC_IN_BODY, IN(idempotency_key)},
    {.name = NULL},
};
static const struct wc_field history_fields[] = {
    {"account", WC_ID, true, 0, WC_IN_URL, IN(account)},
    {"limit", WC_PAGE_SIZE, false, 0, WC_IN_QUERY, IN(limit)},
    {"before", WC_BEFORE, false, 0, WC_IN_QUERY, IN(before)},
    {.name = NULL},
};
static const struct wc_field withdraw_fields[] = {
    {"account", WC_ID, true, 0, WC_IN_URL, IN(account)},
    {"amount", WC_AMOUNT, true, 0, WC_IN_BODY, IN(amount)},
    {"bank_account", WC_TEXT, true, WC_BANK_MAX, WC_IN_BODY, IN(bank_account)},
    {"idempotency_key", WC_TEXT, false, WC_KEY_MAX, WC_IN_BODY, IN(idempotency_key)},
    {.name = NULL},
};
static const struct wc_field redeem_fields[] = {
    {"code", WC_TEXT, true, 64, WC_IN_URL, IN(code)},
    {"to", WC_ID, true, 0, WC_IN_BODY, IN(to)},
    {.name = NULL},
};

const struct wc_op wc_ops[WC_OP_COUNT] = {
    [WC_OP_CREATE_ACCOUNT] = {WC_AUTH_NONE, name_only, create_account, WC_SHOW_ACCOUNT},
    [WC_OP_BALANCE] = {WC_AUTH_OWNER, account_only, balance, WC_SHOW_ACCOUNT},
    [WC_OP_DEPOSIT] = {WC_AUTH_OWNER, account_amount, deposit, WC_SHOW_MOVEMENT},
    [WC_OP_TRANSFER] = {WC_AUTH_OWNER, transfer_fields, transfer, WC_SHOW_MOVEMENT},
    [WC_OP_HISTORY] = {WC_AUTH_OWNER, history_fields, history, WC_SHOW_PAGE},
    [WC_OP_WITHDRAW] = {WC_AUTH_OWNER, withdraw_fields, withdraw, WC_SHOW_SUMMARY},
    [WC_OP_CLAIM] = {WC_AUTH_OWNER, account_amount, claim, WC_SHOW_SUMMARY},
    /* WC_AUTH_NONE: the ledger checks the token (that of "to") itself. */
    [WC_OP_REDEEM] = {WC_AUTH_NONE, redeem_fields, redeem, WC_SHOW_SUMMARY},
};

/* ---- Running one. ---- */

/* Field f from where this front end has it. */
static int read_field(const struct wc_field *f, const struct wc_frontend *fe, void *req,
                      const struct fdt_json **obj, struct wc_input *in, struct wc_err *e)
{
    if (fe->query && f->http == WC_IN_URL)
        return 0;
    if (fe->query && f->http == WC_IN_QUERY) {
        size_t len = 0;
        const char *text = fe->query(req, f->name, &len);
        return wc_field_from_text(f, text, len, in, e);
    }
    if (!*obj) {
        int rc = fe->object(req, obj, e);
        if (rc < 0)
            return rc;
    }
    return wc_field_from_json(f, *obj, in, e);
}

static void show(enum wc_show how, const struct wc_result *r, struct fdt_json_writer *w)
{
    switch (how) {
    case WC_SHOW_ACCOUNT:
        wc_write_account(w, &r->account);
        break;
    case WC_SHOW_MOVEMENT:
        wc_write_movement(w, &r->movement);
        break;
    case WC_SHOW_SUMMARY:
        wc_write_result(w, &r->movement);
        break;
    case WC_SHOW_PAGE:
        wc_write_page(w, r->page);
        break;
    }
}

/* The fields in order; authorization right after the first field when op asks for it. */
static int read_fields(const struct wc_op *op, const struct wc_frontend *fe, void *req,
                       struct wc_input *in, struct fdt_txn **t, struct wc_err *e)
{
    const struct fdt_json *obj = NULL;
    for (size_t i = 0; op->fields[i].name; i++) {
        int rc = read_field(&op->fields[i], fe, req, &obj, in, e);
        if (rc == 0 && i == 0 && op->auth == WC_AUTH_OWNER) {
            rc = fe->txn(req, t, e);
            if (rc == 0)
                rc = wc_authorize(*t, in->account, in->token, e);
            if (rc < 0 && e->status == 401 && fe->token_hint)
                snprintf(e->message, sizeof(e->message), "a valid token is required: %s",
                         fe->token_hint);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int wc_op_run(const struct wc_op *op, const struct wc_frontend *fe, void *req, struct wc_input *in,
              struct wc_result *r, struct fdt_json_writer *w, struct wc_err *e)
{
    struct fdt_txn *t = NULL;
    in->token = fe->token(req);
    int rc = read_fields(op, fe, req, in, &t, e);
    if (rc == 0 && !t)
        rc = fe->txn(req, &t, e);
    if (rc == 0)
        rc = op->run(t, in, r, e);
    if (rc == 0)
        show(op->show, r, w);
    return rc;
}

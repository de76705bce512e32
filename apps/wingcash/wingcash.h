/* wingcash: a zero-fee cash-sending ledger, the reference application (docs/wingcash.md).
 *
 * Modules: wc_main.c (descriptor, settings, start-up), wc_schema.c (versioned migrations
 * for SQLite and PostgreSQL), wc_auth.c (tokens), wc_ledger.c (the ledger's operations,
 * over the request's or call's transaction), wc_ops.c (the table of operations both front
 * ends drive: fields, authorization, result), wc_input.c (field checks, JSON output),
 * wc_http.c (HTTP by traversal), wc_rpc.c (JSON-RPC methods). The operations know nothing
 * of HTTP or JSON-RPC: they fill a struct wc_err that each front end renders its own way. */
#ifndef WINGCASH_H
#define WINGCASH_H

#include <fdt/fdt.h>
#include <fdt/jsonrpc.h>
#include <stdbool.h>
#include <stdint.h>

/* System accounts (created by the first migration). Every movement is a set of entries
 * that sum to zero; money enters from WORLD (deposits) and leaves to BANK (withdrawals). */
#define WC_ACCOUNT_WORLD 1 /* the outside world: deposits come from it */
#define WC_ACCOUNT_FEES  2 /* withdrawal fees collected */
#define WC_ACCOUNT_HELD  3 /* money held under live claim codes */
#define WC_ACCOUNT_BANK  4 /* paid out to bank accounts */

#define WC_TOKEN_LEN       46 /* "wc_" + 43 base64url characters (32 random bytes) */
#define WC_TOKEN_HASH_LEN  64 /* SHA-256, hex */
#define WC_NAME_MAX        100
#define WC_KEY_MAX         100
#define WC_BANK_MAX        64
#define WC_CLAIM_DIGITS    12
#define WC_HISTORY_DEFAULT 20

struct wc_settings {
    char ledger[64];  /* resource holding the ledger */
    char payouts[64]; /* resource holding payouts: "payouts" when configured, else ledger */
    bool payouts_separate;
    int64_t max_amount;     /* largest amount of one movement, in cents */
    int64_t withdrawal_fee; /* cents */
    int64_t claim_attempts; /* wrong claim codes per account per minute before 429 */
    int64_t history_max;    /* largest page of history */
};

/* The settings, read once by process_init before any thread starts and read-only after.
 * A global because no callback of the application interface carries a user pointer. */
extern const struct wc_settings *const wc;

/* An error for the client: HTTP status, a stable code, a sentence, the field at fault. */
struct wc_err {
    int status;        /* 400, 401, 403, 404, 409, 422, 429; 0: an internal error */
    const char *code;  /* "insufficient_funds", ... */
    const char *field; /* NULL when no field is at fault */
    char message[256];
    struct fdt_error db; /* the database error when status is 0 */
};

/* Fill e and return WC_FAIL. */
#define WC_FAIL (-1000)
int wc_fail(struct wc_err *e, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A database error rc (negative fdt code, err in e->db): keep it, return rc. */
int wc_db(struct wc_err *e, int rc);

/* ---- Start-up (wc_schema.c). ---- */
int wc_migrate(struct fdt_error *err);

/* ---- Tokens (wc_auth.c). ---- */
/* A new token (WC_TOKEN_LEN chars + NUL). */
int wc_token_new(char out[WC_TOKEN_LEN + 1]);
/* SHA-256 of token, hex. */
void wc_token_hash(const char *token, size_t len, char out[WC_TOKEN_HASH_LEN + 1]);
/* The token of an "Authorization: Bearer ..." value, or NULL. */
const char *wc_bearer(const char *authorization);

/* ---- Operations (wc_ledger.c). Each runs in transaction t and returns 0, WC_FAIL (e
 * filled), or a negative fdt code for a database error (FDT_ERETRY: a conflict; the
 * framework runs the whole request again). ---- */

struct wc_account {
    int64_t id;
    char name[WC_NAME_MAX + 1];
    int64_t balance;
    char token[WC_TOKEN_LEN + 1]; /* only when just created */
};

struct wc_movement {
    int64_t id;
    const char *kind; /* "transfer", "deposit", "withdrawal", "claim", "redeem" */
    int64_t from, to;
    int64_t amount, fee;
    int64_t created_ms;
    char status[16];                /* withdrawals: "pending" */
    char code[WC_CLAIM_DIGITS + 1]; /* claims */
};

/* The account whose token is given may act on account id: 401 (no or unknown token), 404
 * (no such account), 403 (another account's token). */
int wc_authorize(struct fdt_txn *t, int64_t id, const char *token, struct wc_err *e);
int wc_account_create(struct fdt_txn *t, const char *name, struct wc_account *out,
                      struct wc_err *e);
int wc_account_get(struct fdt_txn *t, int64_t id, struct wc_account *out, struct wc_err *e);
int wc_deposit(struct fdt_txn *t, int64_t id, int64_t amount, struct wc_movement *out,
               struct wc_err *e);
/* key may be NULL. *replayed says the answer is the first one for that key. */
int wc_transfer(struct fdt_txn *t, int64_t from, int64_t to, int64_t amount, const char *key,
                struct wc_movement *out, bool *replayed, struct wc_err *e);
/* key may be NULL; the same key with the same request answers the first withdrawal. */
int wc_withdraw(struct fdt_txn *t, int64_t id, int64_t amount, const char *bank_account,
                const char *key, struct wc_movement *out, bool *replayed, struct wc_err *e);
int wc_claim_create(struct fdt_txn *t, int64_t id, int64_t amount, struct wc_movement *out,
                    struct wc_err *e);
/* Checks the rate limit and the code outside the transaction (a wrong code is counted
 * even though the request itself changes nothing), then moves the money in t. */
int wc_claim_redeem(struct fdt_txn *t, const char *code, int64_t to, const char *token,
                    struct wc_movement *out, struct wc_err *e);

/* One page of an account's transfers, newest first, both directions. */
struct wc_page {
    struct wc_movement items[256];
    int n;
    int64_t next; /* 0: no more */
};
int wc_history(struct fdt_txn *t, int64_t id, int64_t limit, int64_t before, struct wc_page *out,
               struct wc_err *e);

/* ---- The operations as the front ends see them (wc_ops.c, wc_input.c). ---- */

/* The kinds of field, each with its own check and message (422 invalid_field). */
enum wc_type {
    WC_ID,        /* an account id: an integer >= 1 */
    WC_AMOUNT,    /* cents: an integer from 1 to max_amount */
    WC_TEXT,      /* a string of 1 to max bytes (JSON null: absent) */
    WC_PAGE_SIZE, /* an integer from 1 to history_max */
    WC_BEFORE,    /* a transfer id: an integer >= 1 (JSON null: absent) */
};

/* Where HTTP finds a field; JSON-RPC always takes named params. */
enum wc_place {
    WC_IN_BODY,  /* the JSON body */
    WC_IN_QUERY, /* the query string (a positive integer) */
    WC_IN_URL,   /* the traversal context: filled in by the HTTP front end, unchecked */
};

/* The values of an operation's fields; absent ones stay 0 or NULL. */
struct wc_input {
    int64_t account; /* the account acted on */
    int64_t to, amount, limit, before;
    const char *name, *bank_account, *idempotency_key, *code;
    const char *token; /* the caller's, or NULL */
};

struct wc_field {
    const char *name;
    enum wc_type type;
    bool required;
    size_t max; /* WC_TEXT: the longest, in bytes */
    enum wc_place http;
    size_t at; /* offsetof(struct wc_input, ...): int64_t, or const char * for WC_TEXT */
};

enum wc_auth {
    WC_AUTH_NONE,  /* anyone, or the operation checks the token itself */
    WC_AUTH_OWNER, /* the token of the account in the first field, checked right after it */
};

/* What an operation produced. */
struct wc_result {
    struct wc_account account; /* its token set only when the operation opened it */
    struct wc_movement movement;
    const struct wc_page *page;
    bool replayed; /* the first answer to a repeated idempotency key */
};

/* How a result is shown (the JSON of a success). */
enum wc_show {
    WC_SHOW_ACCOUNT,  /* wc_write_account */
    WC_SHOW_MOVEMENT, /* wc_write_movement */
    WC_SHOW_SUMMARY,  /* wc_write_result */
    WC_SHOW_PAGE,     /* wc_write_page */
};

struct wc_op {
    enum wc_auth auth;
    /* Read in order, up to one without a name; the first failure is the answer. */
    const struct wc_field *fields;
    /* Perform it in t. Returns as the ledger's operations do. */
    int (*run)(struct fdt_txn *t, const struct wc_input *in, struct wc_result *r, struct wc_err *e);
    enum wc_show show; /* its result when it succeeds */
};

enum wc_op_id {
    WC_OP_CREATE_ACCOUNT,
    WC_OP_BALANCE,
    WC_OP_DEPOSIT,
    WC_OP_TRANSFER,
    WC_OP_HISTORY,
    WC_OP_WITHDRAW,
    WC_OP_CLAIM,
    WC_OP_REDEEM,
    WC_OP_COUNT
};

/* The operations, by enum wc_op_id. */
extern const struct wc_op wc_ops[WC_OP_COUNT];

/* A front end's request, as wc_op_run() reads it. */
struct wc_frontend {
    /* The fields as a JSON object (HTTP: the body; JSON-RPC: the params), asked for when
     * the first such field is read. */
    int (*object)(void *req, const struct fdt_json **obj, struct wc_err *e);
    /* The transaction to run in, asked for once (before the fields when authorizing). */
    int (*txn)(void *req, struct fdt_txn **t, struct wc_err *e);
    /* The caller's bearer token, or NULL. */
    const char *(*token)(void *req);
    /* How this front end's callers give their token, for the 401 message
     * ("Authorization: Bearer <token>" over HTTP, "the token param" over JSON-RPC). */
    const char *token_hint;
    /* HTTP only: the value of a query parameter, or NULL. Set, it also means the caller
     * filled in the WC_IN_URL fields. NULL (JSON-RPC): every field is a named param. */
    const char *(*query)(void *req, const char *name, size_t *len);
};

/* Read op's fields into in (WC_IN_URL ones already there when fe->query is set),
 * authorize, run op into r (zeroed by the caller) and write its JSON with w. Returns as
 * op->run does; on failure nothing is written and e says why. */
int wc_op_run(const struct wc_op *op, const struct wc_frontend *fe, void *req, struct wc_input *in,
              struct wc_result *r, struct fdt_json_writer *w, struct wc_err *e);

/* ---- Fields and JSON output (wc_input.c). ---- */
/* Parse body as a JSON object into doc: 400 invalid_json otherwise. */
int wc_parse_object(struct fdt_json_doc *doc, const char *body, size_t len,
                    const struct fdt_json **out, struct wc_err *e);
/* Field f of obj into in: 422 missing_field or invalid_field naming it. */
int wc_field_from_json(const struct wc_field *f, const struct fdt_json *obj, struct wc_input *in,
                       struct wc_err *e);
/* Field f as the text of a query parameter (NULL: absent) into in, likewise. */
int wc_field_from_text(const struct wc_field *f, const char *text, size_t len, struct wc_input *in,
                       struct wc_err *e);
/* A movement as the API shows it. */
void wc_write_movement(struct fdt_json_writer *w, const struct wc_movement *m);
void wc_write_account(struct fdt_json_writer *w, const struct wc_account *a);
/* The answer to a withdrawal {id,amount,fee,status}, a claim {code,amount} or a
 * redemption {id,code,to,amount}. */
void wc_write_result(struct fdt_json_writer *w, const struct wc_movement *m);
/* {"items": [movements], "next": id or null} */
void wc_write_page(struct fdt_json_writer *w, const struct wc_page *page);
/* "2026-11-26T01:02:03.456Z" */
void wc_format_time(int64_t ms, char out[32]);

/* Release what an application thread kept for HTTP (wc_http.c). */
void wc_http_thread_fini(void);

extern const struct fdt_http_app wc_http_app;
extern const struct fdt_jsonrpc_app wc_rpc_app;

#endif

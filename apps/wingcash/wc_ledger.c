/* The ledger's operations, the same SQL on SQLite and PostgreSQL ($N parameters).
 *
 * Double entry: every movement writes entries that sum to zero (entries), and a row in
 * movements that says what it was. Balances: accounts.balance is the settled part; credits
 * are appended to `credits` and never touch the recipient's row, so any number of payers
 * can pay one recipient at once without queueing on its row lock, and a payment left
 * prepared (in doubt) blocks nobody else's payment to that recipient. An account's balance
 * is accounts.balance plus its pending credits; only a debit needs the settled figure, and
 * takes it with one conditional UPDATE (balance >= amount), which locks the payer's row:
 * concurrent debits of one account are serialized there and can never overdraw. When the
 * settled part is too small, the payer's pending credits are rolled up into it first
 * (DELETE ... RETURNING, then UPDATE) in the same transaction. */
#include "wingcash.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Run one statement in t's ledger branch (or res). */
static int q(struct fdt_txn *t, const char *res, const char *sql, const struct fdt_sql_param *p,
             int n, struct fdt_sql_rows **rows, struct wc_err *e)
{
    int rc = fdt_txn_query(t, res, sql, p, n, rows, &e->db);
    return rc < 0 ? wc_db(e, rc) : 0;
}

/* Run a statement whose rows are not needed. */
static int q0(struct fdt_txn *t, const char *res, const char *sql, const struct fdt_sql_param *p,
              int n, long *changes, struct wc_err *e)
{
    struct fdt_sql_rows *r = NULL;
    int rc = q(t, res, sql, p, n, &r, e);
    if (rc == 0 && changes)
        *changes = fdt_sql_changes(r);
    fdt_sql_rows_free(r);
    return rc;
}

/* Run an INSERT ... RETURNING id in the ledger; *id gets the new row's id. */
static int insert_id(struct fdt_txn *t, const char *sql, const struct fdt_sql_param *p, int n,
                     int64_t *id, struct wc_err *e)
{
    struct fdt_sql_rows *r = NULL;
    int rc = q(t, wc->ledger, sql, p, n, &r, e);
    if (rc == 0)
        *id = fdt_sql_int(r, 0, 0);
    fdt_sql_rows_free(r);
    return rc;
}

/* Whether account id is a user account. */
static int user_exists(struct fdt_txn *t, int64_t id, bool *exists, struct wc_err *e)
{
    struct fdt_sql_param p[1] = {FDT_SQL_INT_P(id)};
    struct fdt_sql_rows *r = NULL;
    int rc =
        q(t, wc->ledger, "SELECT 1 FROM accounts WHERE id = $1 AND kind = 'user'", p, 1, &r, e);
    *exists = rc == 0 && fdt_sql_nrows(r) == 1;
    fdt_sql_rows_free(r);
    return rc;
}

/* The owner of token (0 when none), looked up by its hash. */
static int token_owner(struct fdt_txn *t, const char *token, int64_t *owner, struct wc_err *e)
{
    *owner = 0;
    if (!token || strlen(token) != WC_TOKEN_LEN)
        return 0;
    char hash[WC_TOKEN_HASH_LEN + 1];
    wc_token_hash(token, WC_TOKEN_LEN, hash);
    struct fdt_sql_param p[1] = {FDT_SQL_TEXT_P(hash)};
    struct fdt_sql_rows *r = NULL;
    int rc = t ? q(t, wc->ledger, "SELECT id FROM accounts WHERE token_hash = $1", p, 1, &r, e)
               : fdt_resource_query(wc->ledger, "SELECT id FROM accounts WHERE token_hash = $1", p,
                                    1, &r, &e->db);
    if (rc < 0)
        return t ? rc : wc_db(e, rc);
    if (fdt_sql_nrows(r) == 1)
        *owner = fdt_sql_int(r, 0, 0);
    fdt_sql_rows_free(r);
    return 0;
}

static int authorize_owner(struct fdt_txn *t, int64_t id, int64_t owner, struct wc_err *e)
{
    if (!owner)
        return wc_fail(e, 401, "unauthorized", NULL, "a valid token is required");
    if (owner == id)
        return 0;
    bool exists = false;
    int rc = user_exists(t, id, &exists, e);
    if (rc < 0)
        return rc;
    if (!exists)
        return wc_fail(e, 404, "not_found", NULL, "no account %lld", (long long)id);
    return wc_fail(e, 403, "forbidden", NULL, "the token is not the token of account %lld",
                   (long long)id);
}

int wc_authorize(struct fdt_txn *t, int64_t id, const char *token, struct wc_err *e)
{
    int64_t owner;
    int rc = token_owner(t, token, &owner, e);
    return rc < 0 ? rc : authorize_owner(t, id, owner, e);
}

int wc_account_create(struct fdt_txn *t, const char *name, struct wc_account *out, struct wc_err *e)
{
    memset(out, 0, sizeof(*out));
    if (wc_token_new(out->token) < 0)
        return wc_fail(e, 503, "unavailable", NULL, "no randomness for a token; try again");
    char hash[WC_TOKEN_HASH_LEN + 1];
    wc_token_hash(out->token, WC_TOKEN_LEN, hash);
    struct fdt_sql_param p[3] = {FDT_SQL_TEXT_P(name), FDT_SQL_TEXT_P(hash),
                                 FDT_SQL_INT_P(now_ms())};
    int rc = insert_id(
        t, "INSERT INTO accounts (name, token_hash, created) VALUES ($1, $2, $3) RETURNING id", p,
        3, &out->id, e);
    if (rc < 0)
        return rc;
    snprintf(out->name, sizeof(out->name), "%s", name);
    return 0;
}

/* Move account id's pending credits into its settled balance; *added gets their sum. */
static int roll_up(struct fdt_txn *t, int64_t id, int64_t *added, struct wc_err *e)
{
    struct fdt_sql_param p[2] = {FDT_SQL_INT_P(id)};
    struct fdt_sql_rows *r = NULL;
    *added = 0;
    int rc =
        q(t, wc->ledger, "DELETE FROM credits WHERE account_id = $1 RETURNING amount", p, 1, &r, e);
    if (rc < 0)
        return rc;
    for (int i = 0; i < fdt_sql_nrows(r); i++)
        *added += fdt_sql_int(r, i, 0);
    int n = fdt_sql_nrows(r);
    fdt_sql_rows_free(r);
    if (n == 0)
        return 0;
    p[1] = FDT_SQL_INT_P(*added);
    return q0(t, wc->ledger, "UPDATE accounts SET balance = balance + $2 WHERE id = $1", p, 2, NULL,
              e);
}

/* Balances with this many pending credits are rolled up when read. */
#define ROLL_UP_ON_READ 256

int wc_account_get(struct fdt_txn *t, int64_t id, struct wc_account *out, struct wc_err *e)
{
    /* The settled balance, and the number and sum of the pending credits. */
    static const char sql[] =
        "SELECT a.name, a.balance, (SELECT count(*) FROM credits c WHERE c.account_id = a.id), "
        "(SELECT coalesce(sum(c.amount), 0) FROM credits c WHERE c.account_id = a.id) "
        "FROM accounts a WHERE a.id = $1 AND a.kind = 'user'";
    memset(out, 0, sizeof(*out));
    struct fdt_sql_param p[1] = {FDT_SQL_INT_P(id)};
    struct fdt_sql_rows *r = NULL;
    int rc = q(t, wc->ledger, sql, p, 1, &r, e);
    if (rc < 0)
        return rc;
    if (fdt_sql_nrows(r) != 1) {
        fdt_sql_rows_free(r);
        return wc_fail(e, 404, "not_found", NULL, "no account %lld", (long long)id);
    }
    out->id = id;
    snprintf(out->name, sizeof(out->name), "%s", fdt_sql_text(r, 0, 0));
    out->balance = fdt_sql_int(r, 0, 1) + fdt_sql_int(r, 0, 3);
    int64_t pending = fdt_sql_int(r, 0, 2);
    fdt_sql_rows_free(r);
    if (pending >= ROLL_UP_ON_READ) {
        int64_t added;
        rc = roll_up(t, id, &added, e);
    }
    return rc;
}

/* Take amount from account id's settled balance, rolling up its credits when needed:
 * 409 insufficient_funds when even that is not enough. */
static int debit(struct fdt_txn *t, int64_t id, int64_t amount, struct wc_err *e)
{
    struct fdt_sql_param p[2] = {FDT_SQL_INT_P(id), FDT_SQL_INT_P(amount)};
    for (int round = 0; round < 2; round++) {
        long changed = 0;
        int rc = q0(t, wc->ledger,
                    "UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND balance >= $2", p,
                    2, &changed, e);
        if (rc < 0)
            return rc;
        if (changed == 1)
            return 0;
        if (round == 0) {
            /* Roll the pending credits up, then try once more: even when this found none,
             * a concurrent debit of the same account may just have rolled them up itself
             * (this DELETE waited for it), and the new statement sees its balance. */
            int64_t added;
            rc = roll_up(t, id, &added, e);
            if (rc < 0)
                return rc;
        }
    }
    return wc_fail(e, 409, "insufficient_funds", "amount",
                   "the balance of account %lld is less than %lld", (long long)id,
                   (long long)amount);
}

/* Record a movement and its entries (n legs summing to zero), and append the credits of
 * the legs that receive (and of system accounts, whose rows are shared by everyone). */
struct leg {
    int64_t account;
    int64_t amount;
    bool append; /* goes to credits (not already applied by debit()) */
};

static int record(struct fdt_txn *t, struct wc_movement *m, const struct leg *legs, int n,
                  struct wc_err *e)
{
    m->created_ms = now_ms();
    struct fdt_sql_param p[6] = {FDT_SQL_TEXT_P(m->kind), FDT_SQL_INT_P(m->from),
                                 FDT_SQL_INT_P(m->to),    FDT_SQL_INT_P(m->amount),
                                 FDT_SQL_INT_P(m->fee),   FDT_SQL_INT_P(m->created_ms)};
    int rc = insert_id(t,
                       "INSERT INTO movements (kind, from_id, to_id, amount, fee, created) VALUES "
                       "($1, $2, $3, $4, $5, $6) RETURNING id",
                       p, 6, &m->id, e);
    if (rc < 0)
        return rc;
    /* Entries: one statement for all legs. */
    struct fdt_sql_param ep[7];
    ep[0] = FDT_SQL_INT_P(m->id);
    int np = 1;
    char sql[256] = "INSERT INTO entries (movement_id, account_id, amount) VALUES ";
    for (int i = 0; i < n; i++) {
        ep[np] = FDT_SQL_INT_P(legs[i].account);
        ep[np + 1] = FDT_SQL_INT_P(legs[i].amount);
        size_t len = strlen(sql);
        snprintf(sql + len, sizeof(sql) - len, "%s($1, $%d, $%d)", i ? ", " : "", np + 1, np + 2);
        np += 2;
    }
    rc = q0(t, wc->ledger, sql, ep, np, NULL, e);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n; i++) {
        if (!legs[i].append || legs[i].amount == 0)
            continue;
        struct fdt_sql_param cp[2] = {FDT_SQL_INT_P(legs[i].account),
                                      FDT_SQL_INT_P(legs[i].amount)};
        rc = q0(t, wc->ledger, "INSERT INTO credits (account_id, amount) VALUES ($1, $2)", cp, 2,
                NULL, e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int wc_deposit(struct fdt_txn *t, int64_t id, int64_t amount, struct wc_movement *out,
               struct wc_err *e)
{
    memset(out, 0, sizeof(*out));
    *out = (struct wc_movement){
        .kind = "deposit", .from = WC_ACCOUNT_WORLD, .to = id, .amount = amount};
    struct leg legs[2] = {{WC_ACCOUNT_WORLD, -amount, true}, {id, amount, true}};
    return record(t, out, legs, 2, e);
}

/* A movement by id (to answer a repeated idempotency key with the first answer). */
static int movement_get(struct fdt_txn *t, int64_t id, struct wc_movement *m, struct wc_err *e)
{
    struct fdt_sql_param p[1] = {FDT_SQL_INT_P(id)};
    struct fdt_sql_rows *r = NULL;
    int rc = q(t, wc->ledger,
               "SELECT from_id, to_id, amount, fee, created, kind FROM movements WHERE id = $1", p,
               1, &r, e);
    if (rc < 0)
        return rc;
    if (fdt_sql_nrows(r) != 1) {
        fdt_sql_rows_free(r);
        return wc_fail(e, 409, "idempotency_conflict", "idempotency_key",
                       "the first request with this key is still in progress");
    }
    const char *kind = fdt_sql_text(r, 0, 5);
    *m = (struct wc_movement){.id = id,
                              .kind = kind && strcmp(kind, "withdrawal") == 0 ? "withdrawal"
                                                                              : "transfer",
                              .from = fdt_sql_int(r, 0, 0),
                              .to = fdt_sql_int(r, 0, 1),
                              .amount = fdt_sql_int(r, 0, 2),
                              .fee = fdt_sql_int(r, 0, 3),
                              .created_ms = fdt_sql_int(r, 0, 4)};
    fdt_sql_rows_free(r);
    return 0;
}

/* Claim idempotency key `key` of account `id` for `request` (a canonical form of the
 * request). Returns 0 with *first_id 0 when the key is new (the caller does the work and
 * then idem_done()), or 0 with *first_id the movement of the first request with the same
 * key and the same request; 409 when that first request was a different one. A concurrent
 * request with the same key waits here for the first one to finish (its row lock). */
static int idem_claim(struct fdt_txn *t, int64_t id, const char *key, const char *request,
                      int64_t *first_id, struct wc_err *e)
{
    *first_id = 0;
    struct fdt_sql_param p[3] = {FDT_SQL_INT_P(id), FDT_SQL_TEXT_P(key), FDT_SQL_TEXT_P(request)};
    long inserted = 0;
    int rc = q0(t, wc->ledger,
                "INSERT INTO idempotency (account_id, key, request) VALUES ($1, $2, $3) ON "
                "CONFLICT DO NOTHING",
                p, 3, &inserted, e);
    if (rc < 0 || inserted == 1)
        return rc;
    struct fdt_sql_rows *r = NULL;
    rc = q(t, wc->ledger,
           "SELECT request, movement_id FROM idempotency WHERE account_id = $1 AND key = $2", p, 2,
           &r, e);
    if (rc < 0)
        return rc;
    const char *first = fdt_sql_text(r, 0, 0);
    bool same = first && strcmp(first, request) == 0;
    *first_id = fdt_sql_int(r, 0, 1);
    fdt_sql_rows_free(r);
    if (!same)
        return wc_fail(e, 409, "idempotency_conflict", "idempotency_key",
                       "this idempotency key was used for a different request");
    if (*first_id == 0)
        return wc_fail(e, 409, "idempotency_conflict", "idempotency_key",
                       "the first request with this key is still in progress");
    return 0;
}

static int idem_done(struct fdt_txn *t, int64_t id, const char *key, int64_t movement,
                     struct wc_err *e)
{
    struct fdt_sql_param p[3] = {FDT_SQL_INT_P(id), FDT_SQL_TEXT_P(key), FDT_SQL_INT_P(movement)};
    return q0(t, wc->ledger,
              "UPDATE idempotency SET movement_id = $3 WHERE account_id = $1 AND key = $2", p, 3,
              NULL, e);
}

int wc_transfer(struct fdt_txn *t, int64_t from, int64_t to, int64_t amount, const char *key,
                struct wc_movement *out, bool *replayed, struct wc_err *e)
{
    memset(out, 0, sizeof(*out));
    *replayed = false;
    if (to == from)
        return wc_fail(e, 422, "invalid_field", "to", "to must be another account");
    char request[64];
    snprintf(request, sizeof(request), "to=%lld amount=%lld", (long long)to, (long long)amount);
    if (key) {
        int64_t first = 0;
        int rc = idem_claim(t, from, key, request, &first, e);
        if (rc < 0)
            return rc;
        if (first) {
            *replayed = true;
            return movement_get(t, first, out, e);
        }
    }
    bool exists = false;
    int rc = user_exists(t, to, &exists, e);
    if (rc < 0)
        return rc;
    if (!exists)
        return wc_fail(e, 404, "not_found", "to", "no account %lld", (long long)to);
    rc = debit(t, from, amount, e);
    if (rc < 0)
        return rc;
    *out = (struct wc_movement){.kind = "transfer", .from = from, .to = to, .amount = amount};
    struct leg legs[2] = {{from, -amount, false}, {to, amount, true}};
    rc = record(t, out, legs, 2, e);
    if (rc < 0 || !key)
        return rc;
    return idem_done(t, from, key, out->id, e);
}

int wc_withdraw(struct fdt_txn *t, int64_t id, int64_t amount, const char *bank_account,
                const char *key, struct wc_movement *out, bool *replayed, struct wc_err *e)
{
    memset(out, 0, sizeof(*out));
    *replayed = false;
    int64_t fee = wc->withdrawal_fee;
    if (amount > wc->max_amount - fee)
        return wc_fail(e, 422, "invalid_field", "amount",
                       "amount plus the fee of %lld must not exceed %lld", (long long)fee,
                       (long long)wc->max_amount);
    if (key) {
        char request[WC_BANK_MAX + 64];
        snprintf(request, sizeof(request), "withdraw amount=%lld bank=%s", (long long)amount,
                 bank_account);
        int64_t first = 0;
        int rc = idem_claim(t, id, key, request, &first, e);
        if (rc < 0)
            return rc;
        if (first) {
            *replayed = true;
            rc = movement_get(t, first, out, e);
            snprintf(out->status, sizeof(out->status), "pending");
            return rc;
        }
    }
    int rc = debit(t, id, amount + fee, e);
    if (rc < 0)
        return rc;
    *out = (struct wc_movement){
        .kind = "withdrawal", .from = id, .to = WC_ACCOUNT_BANK, .amount = amount, .fee = fee};
    snprintf(out->status, sizeof(out->status), "pending");
    struct leg legs[3] = {{id, -(amount + fee), false},
                          {WC_ACCOUNT_BANK, amount, true},
                          {WC_ACCOUNT_FEES, fee, true}};
    rc = record(t, out, legs, fee ? 3 : 2, e);
    if (rc < 0)
        return rc;
    /* The payout: in the ledger's database (one phase), or in a separate payouts resource,
     * committed together with the ledger by two-phase commit. */
    struct fdt_sql_param p[5] = {FDT_SQL_INT_P(out->id), FDT_SQL_INT_P(id), FDT_SQL_INT_P(amount),
                                 FDT_SQL_TEXT_P(bank_account), FDT_SQL_INT_P(out->created_ms)};
    rc = q0(t, wc->payouts,
            "INSERT INTO payouts (movement_id, account_id, amount, bank_account, status, "
            "created) VALUES ($1, $2, $3, $4, 'pending', $5)",
            p, 5, NULL, e);
    if (rc < 0 || !key)
        return rc;
    return idem_done(t, id, key, out->id, e);
}

int wc_claim_create(struct fdt_txn *t, int64_t id, int64_t amount, struct wc_movement *out,
                    struct wc_err *e)
{
    memset(out, 0, sizeof(*out));
    int rc = debit(t, id, amount, e);
    if (rc < 0)
        return rc;
    *out =
        (struct wc_movement){.kind = "claim", .from = id, .to = WC_ACCOUNT_HELD, .amount = amount};
    struct leg legs[2] = {{id, -amount, false}, {WC_ACCOUNT_HELD, amount, true}};
    rc = record(t, out, legs, 2, e);
    if (rc < 0)
        return rc;
    /* A code unique among live claims: drawn again on the (rare) collision. */
    for (int attempt = 0; attempt < 8; attempt++) {
        if (fdt_random_code(out->code, sizeof(out->code), WC_CLAIM_DIGITS) < 0)
            return wc_fail(e, 503, "unavailable", NULL, "no randomness for a code; try again");
        struct fdt_sql_param p[5] = {FDT_SQL_TEXT_P(out->code), FDT_SQL_INT_P(id),
                                     FDT_SQL_INT_P(amount), FDT_SQL_INT_P(out->id),
                                     FDT_SQL_INT_P(out->created_ms)};
        long inserted = 0;
        rc = q0(t, wc->ledger,
                "INSERT INTO claims (code, account_id, amount, movement_id, created) VALUES ($1, "
                "$2, $3, $4, $5) ON CONFLICT DO NOTHING",
                p, 5, &inserted, e);
        if (rc < 0)
            return rc;
        if (inserted == 1)
            return 0;
    }
    return wc_fail(e, 503, "unavailable", NULL, "could not draw a free claim code; try again");
}

/* Wrong codes per account and minute, counted outside any transaction (autocommit), so
 * that the count survives the failed request that made it. */
static int claim_failures(const char *client, int64_t minute, int64_t *n, struct wc_err *e)
{
    struct fdt_sql_param p[2] = {FDT_SQL_TEXT_P(client), FDT_SQL_INT_P(minute)};
    struct fdt_sql_rows *r = NULL;
    int rc = fdt_resource_query(wc->ledger,
                                "SELECT n FROM claim_failures WHERE client = $1 AND minute = $2", p,
                                2, &r, &e->db);
    if (rc < 0)
        return wc_db(e, rc);
    *n = fdt_sql_int(r, 0, 0);
    fdt_sql_rows_free(r);
    return 0;
}

static void claim_failed(const char *client, int64_t minute)
{
    struct fdt_sql_param p[2] = {FDT_SQL_TEXT_P(client), FDT_SQL_INT_P(minute)};
    struct fdt_sql_param old = FDT_SQL_INT_P(minute - 1);
    struct fdt_error err = {0};
    if (fdt_resource_query(wc->ledger,
                           "INSERT INTO claim_failures (client, minute, n) VALUES ($1, $2, 1) ON "
                           "CONFLICT (client, minute) DO UPDATE SET n = claim_failures.n + 1",
                           p, 2, NULL, &err) < 0 ||
        fdt_resource_query(wc->ledger, "DELETE FROM claim_failures WHERE minute < $1", &old, 1,
                           NULL, &err) < 0)
        fdt_log(FDT_LOG_WARN, "wingcash: counting a wrong claim code: %s", err.msg);
}

int wc_claim_redeem(struct fdt_txn *t, const char *code, int64_t to, const char *token,
                    struct wc_movement *out, struct wc_err *e)
{
    memset(out, 0, sizeof(*out));
    /* Who asks, and whether they may still try, before the transaction takes any lock. */
    int64_t owner;
    int rc = token_owner(NULL, token, &owner, e);
    if (rc < 0)
        return rc;
    if (!owner)
        return authorize_owner(t, to, owner, e);
    char client[32];
    snprintf(client, sizeof(client), "account:%lld", (long long)owner);
    int64_t minute = now_ms() / 60000, failures = 0;
    rc = claim_failures(client, minute, &failures, e);
    if (rc < 0)
        return rc;
    if (failures >= wc->claim_attempts)
        return wc_fail(e, 429, "too_many_attempts", "code",
                       "too many wrong claim codes; wait a minute");
    bool valid = strlen(code) == WC_CLAIM_DIGITS && strspn(code, "0123456789") == WC_CLAIM_DIGITS;
    if (valid) {
        struct fdt_sql_param p[1] = {FDT_SQL_TEXT_P(code)};
        struct fdt_sql_rows *r = NULL;
        rc = fdt_resource_query(wc->ledger, "SELECT 1 FROM claims WHERE code = $1", p, 1, &r,
                                &e->db);
        if (rc < 0)
            return wc_db(e, rc);
        valid = fdt_sql_nrows(r) == 1;
        fdt_sql_rows_free(r);
    }
    if (!valid) {
        claim_failed(client, minute);
        return wc_fail(e, 404, "not_found", "code", "no live claim has this code");
    }
    rc = authorize_owner(t, to, owner, e);
    if (rc < 0)
        return rc;
    /* Taking the claim row decides who redeems it: a concurrent redeem finds it gone. */
    struct fdt_sql_param p[1] = {FDT_SQL_TEXT_P(code)};
    struct fdt_sql_rows *r = NULL;
    rc = q(t, wc->ledger, "DELETE FROM claims WHERE code = $1 RETURNING amount", p, 1, &r, e);
    if (rc < 0)
        return rc;
    bool taken = fdt_sql_nrows(r) == 1;
    int64_t amount = fdt_sql_int(r, 0, 0);
    fdt_sql_rows_free(r);
    if (!taken)
        return wc_fail(e, 404, "not_found", "code", "no live claim has this code");
    *out =
        (struct wc_movement){.kind = "redeem", .from = WC_ACCOUNT_HELD, .to = to, .amount = amount};
    snprintf(out->code, sizeof(out->code), "%s", code);
    struct leg legs[2] = {{WC_ACCOUNT_HELD, -amount, true}, {to, amount, true}};
    return record(t, out, legs, 2, e);
}

int wc_history(struct fdt_txn *t, int64_t id, int64_t limit, int64_t before, struct wc_page *out,
               struct wc_err *e)
{
    out->n = 0;
    out->next = 0;
    if (limit > (int64_t)(sizeof(out->items) / sizeof(out->items[0])) - 1)
        limit = (int64_t)(sizeof(out->items) / sizeof(out->items[0])) - 1;
    struct fdt_sql_param p[3] = {FDT_SQL_INT_P(id), FDT_SQL_INT_P(before > 0 ? before : INT64_MAX),
                                 FDT_SQL_INT_P(limit + 1)};
    struct fdt_sql_rows *r = NULL;
    int rc = q(t, wc->ledger,
               "SELECT m.id, m.from_id, m.to_id, m.amount, m.fee, m.created FROM entries e JOIN "
               "movements m ON m.id = e.movement_id WHERE e.account_id = $1 AND e.movement_id < "
               "$2 AND m.kind = 'transfer' ORDER BY e.movement_id DESC LIMIT $3",
               p, 3, &r, e);
    if (rc < 0)
        return rc;
    int n = fdt_sql_nrows(r);
    for (int i = 0; i < n && i < limit; i++) {
        out->items[i] = (struct wc_movement){.id = fdt_sql_int(r, i, 0),
                                             .kind = "transfer",
                                             .from = fdt_sql_int(r, i, 1),
                                             .to = fdt_sql_int(r, i, 2),
                                             .amount = fdt_sql_int(r, i, 3),
                                             .fee = fdt_sql_int(r, i, 4),
                                             .created_ms = fdt_sql_int(r, i, 5)};
        out->n++;
    }
    if (n > limit && out->n > 0)
        out->next = out->items[out->n - 1].id;
    fdt_sql_rows_free(r);
    return 0;
}

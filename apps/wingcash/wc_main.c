/* wingcash: the application descriptor, its settings ([app] keys) and start-up. */
#include "wingcash.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one piece of process-wide state. No callback of fdt_app, fdt_http_view or
 * fdt_jsonrpc_method carries a user pointer, so the settings cannot be handed to them:
 * wc_init fills this before any application thread starts, and the rest of wingcash sees
 * it only through the read-only pointer wc. */
static struct wc_settings settings;
const struct wc_settings *const wc = &settings;

int wc_fail(struct wc_err *e, int status, const char *code, const char *field, const char *fmt, ...)
{
    e->status = status;
    e->code = code;
    e->field = field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return WC_FAIL;
}

int wc_db(struct wc_err *e, int rc)
{
    e->status = 0;
    e->code = rc == FDT_ERETRY ? "conflict" : "internal";
    e->field = NULL;
    snprintf(e->message, sizeof(e->message), "%s", e->db.msg);
    return rc;
}

/* An [app] integer key within [min, max], or def when absent. */
static int int_key(const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
                   struct fdt_error *err)
{
    const char *v = fdt_app_config(key);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || n < min || n > max)
        return fdt_error_set(err, FDT_ECONFIG, "[app] %s must be an integer from %lld to %lld", key,
                             (long long)min, (long long)max);
    *out = n;
    return 0;
}

static int wc_init(const struct fdt_worker_info *w, struct fdt_error *err)
{
    (void)w;
    struct wc_settings *s = &settings;
    memset(s, 0, sizeof(*s));
    snprintf(s->ledger, sizeof(s->ledger), "ledger");
    if (!fdt_resource_driver(s->ledger))
        return fdt_error_set(err, FDT_ECONFIG,
                             "wingcash needs a [resource.ledger] section (driver = sqlite with a "
                             "path, or driver = postgresql with a dsn)");
    s->payouts_separate = fdt_resource_driver("payouts") != NULL;
    snprintf(s->payouts, sizeof(s->payouts), "%s", s->payouts_separate ? "payouts" : s->ledger);
    /* A withdrawal writes both in one transaction: refuse at start what could never
     * commit, rather than answer every withdrawal with a 500. */
    const char *both[] = {s->ledger, s->payouts};
    if (s->payouts_separate && fdt_resource_check_atomic(both, 2, err) < 0)
        return err->code;
    if (int_key("max_amount", 100000000, 1, INT64_C(1) << 50, &s->max_amount, err) < 0 ||
        int_key("withdrawal_fee", 25, 0, 1000000, &s->withdrawal_fee, err) < 0 ||
        int_key("claim_attempts_per_minute", 10, 1, 1000000, &s->claim_attempts, err) < 0 ||
        int_key("history_max", 100, 1, 256, &s->history_max, err) < 0)
        return err->code;
    return wc_migrate(err);
}

static void wc_thread_fini(unsigned index)
{
    (void)index;
    wc_http_thread_fini();
}

FDT_APP_EXPORT const struct fdt_app fdt_app_v1 = {
    .abi_version = FDT_APP_ABI_VERSION,
    .size = sizeof(struct fdt_app),
    .name = "wingcash",
    .version = "1",
    .process_init = wc_init,
    .thread_fini = wc_thread_fini,
    .http = &wc_http_app,
    .jsonrpc = &wc_rpc_app,
};

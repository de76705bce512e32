/* Request fields checked one by one against their kind (struct wc_field), and movements
 * written as JSON. Every refusal names the field, so that a client can show it next to the
 * right input. */
#include "wingcash.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int wc_parse_object(struct fdt_json_doc *doc, const char *body, size_t len,
                    const struct fdt_json **out, struct wc_err *e)
{
    struct fdt_json_limits lim;
    fdt_json_limits_default(&lim);
    lim.max_depth = 16;
    lim.max_values = 1024;
    struct fdt_json *root = NULL;
    struct fdt_error err = {0};
    if (fdt_json_parse(doc, body, len, &lim, &root, &err) < 0)
        return wc_fail(e, 400, "invalid_json", NULL, "the body is not valid JSON: %s", err.msg);
    if (fdt_json_type(root) != FDT_JSON_OBJECT)
        return wc_fail(e, 400, "invalid_json", NULL, "the body must be a JSON object");
    *out = root;
    return 0;
}

/* JSON null counts as an absent field for these types (an optional string, a page's start). */
static bool null_is_absent(enum wc_type type)
{
    return type == WC_TEXT || type == WC_BEFORE;
}

static int invalid(const struct wc_field *f, struct wc_err *e)
{
    const char *n = f->name;
    switch (f->type) {
    case WC_ID:
        return wc_fail(e, 422, "invalid_field", n, "%s must be an account id (an integer)", n);
    case WC_AMOUNT:
        return wc_fail(e, 422, "invalid_field", n,
                       "%s must be an integer number of cents from 1 to %lld", n,
                       (long long)wc->max_amount);
    case WC_TEXT:
        return wc_fail(e, 422, "invalid_field", n, "%s must be a string of 1 to %zu bytes", n,
                       f->max);
    case WC_PAGE_SIZE:
        return wc_fail(e, 422, "invalid_field", n, "%s must be an integer from 1 to %lld", n,
                       (long long)wc->history_max);
    case WC_BEFORE:
        break;
    }
    return wc_fail(e, 422, "invalid_field", n, "%s must be a transfer id", n);
}

static int absent(const struct wc_field *f, struct wc_err *e)
{
    if (!f->required)
        return 0;
    return wc_fail(e, 422, "missing_field", f->name, "%s is required", f->name);
}

/* Store integer n in in, within the bounds of f's type. */
static int set_int(const struct wc_field *f, int64_t n, struct wc_input *in, struct wc_err *e)
{
    int64_t max = INT64_MAX;
    if (f->type == WC_AMOUNT)
        max = wc->max_amount;
    else if (f->type == WC_PAGE_SIZE)
        max = wc->history_max;
    if (f->type == WC_TEXT || n < 1 || n > max)
        return invalid(f, e);
    *(int64_t *)(void *)((char *)in + f->at) = n;
    return 0;
}

int wc_field_from_json(const struct wc_field *f, const struct fdt_json *obj, struct wc_input *in,
                       struct wc_err *e)
{
    const struct fdt_json *v = fdt_json_object_get(obj, f->name);
    if (!v || (fdt_json_type(v) == FDT_JSON_NULL && null_is_absent(f->type)))
        return absent(f, e);
    if (f->type != WC_TEXT) {
        int64_t n;
        return fdt_json_get_int(v, &n) < 0 ? invalid(f, e) : set_int(f, n, in, e);
    }
    const char *s;
    size_t len;
    if (fdt_json_get_string(v, &s, &len) < 0 || len == 0 || len > f->max || strlen(s) != len)
        return invalid(f, e);
    *(const char **)(void *)((char *)in + f->at) = s;
    return 0;
}

int wc_field_from_text(const struct wc_field *f, const char *text, size_t len, struct wc_input *in,
                       struct wc_err *e)
{
    if (!text)
        return absent(f, e);
    /* A positive decimal integer of at most 18 digits, without a leading zero. */
    if (len == 0 || len > 18 || text[0] == '0')
        return invalid(f, e);
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return invalid(f, e);
        n = n * 10 + (text[i] - '0');
    }
    return set_int(f, n, in, e);
}

void wc_format_time(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

static void put_int(struct fdt_json_writer *w, const char *key, int64_t value)
{
    fdt_json_writer_key(w, key);
    fdt_json_writer_int(w, value);
}

static void put_string(struct fdt_json_writer *w, const char *key, const char *value)
{
    fdt_json_writer_key(w, key);
    fdt_json_writer_string(w, value);
}

void wc_write_movement(struct fdt_json_writer *w, const struct wc_movement *m)
{
    char when[32];
    wc_format_time(m->created_ms, when);
    fdt_json_writer_begin_object(w);
    put_int(w, "id", m->id);
    put_int(w, "from", m->from);
    put_int(w, "to", m->to);
    put_int(w, "amount", m->amount);
    put_int(w, "fee", m->fee);
    put_string(w, "created", when);
    fdt_json_writer_end_object(w);
}

void wc_write_account(struct fdt_json_writer *w, const struct wc_account *a)
{
    fdt_json_writer_begin_object(w);
    put_int(w, "id", a->id);
    put_string(w, "name", a->name);
    put_int(w, "balance", a->balance);
    if (a->token[0])
        put_string(w, "token", a->token);
    fdt_json_writer_end_object(w);
}

void wc_write_result(struct fdt_json_writer *w, const struct wc_movement *m)
{
    fdt_json_writer_begin_object(w);
    if (strcmp(m->kind, "claim") != 0)
        put_int(w, "id", m->id);
    if (m->code[0])
        put_string(w, "code", m->code);
    if (strcmp(m->kind, "redeem") == 0)
        put_int(w, "to", m->to);
    put_int(w, "amount", m->amount);
    if (strcmp(m->kind, "withdrawal") == 0) {
        put_int(w, "fee", m->fee);
        put_string(w, "status", m->status);
    }
    fdt_json_writer_end_object(w);
}

void wc_write_page(struct fdt_json_writer *w, const struct wc_page *page)
{
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "items");
    fdt_json_writer_begin_array(w);
    for (int i = 0; i < page->n; i++)
        wc_write_movement(w, &page->items[i]);
    fdt_json_writer_end_array(w);
    fdt_json_writer_key(w, "next");
    if (page->next)
        fdt_json_writer_int(w, page->next);
    else
        fdt_json_writer_null(w);
    fdt_json_writer_end_object(w);
}

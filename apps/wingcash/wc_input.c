/* Request bodies (JSON objects) checked field by field, and movements written as JSON.
 * Every refusal names the field, so that a client can show it next to the right input. */
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

int wc_get_amount(const struct fdt_json *obj, const char *field, int64_t *out, struct wc_err *e)
{
    const struct fdt_json *v = fdt_json_object_get(obj, field);
    if (!v)
        return wc_fail(e, 422, "missing_field", field, "%s is required", field);
    int64_t n;
    if (fdt_json_get_int(v, &n) < 0 || n < 1 || n > wc.max_amount)
        return wc_fail(e, 422, "invalid_field", field,
                       "%s must be an integer number of cents from 1 to %lld", field,
                       (long long)wc.max_amount);
    *out = n;
    return 0;
}

int wc_get_id(const struct fdt_json *obj, const char *field, int64_t *out, struct wc_err *e)
{
    const struct fdt_json *v = fdt_json_object_get(obj, field);
    if (!v)
        return wc_fail(e, 422, "missing_field", field, "%s is required", field);
    int64_t n;
    if (fdt_json_get_int(v, &n) < 0 || n < 1)
        return wc_fail(e, 422, "invalid_field", field, "%s must be an account id (an integer)",
                       field);
    *out = n;
    return 0;
}

int wc_get_string(const struct fdt_json *obj, const char *field, size_t max, bool required,
                  const char **out, struct wc_err *e)
{
    const struct fdt_json *v = fdt_json_object_get(obj, field);
    if (!v || fdt_json_type(v) == FDT_JSON_NULL) {
        if (!required)
            return 0;
        return wc_fail(e, 422, "missing_field", field, "%s is required", field);
    }
    const char *s;
    size_t len;
    if (fdt_json_get_string(v, &s, &len) < 0 || len == 0 || len > max || strlen(s) != len)
        return wc_fail(e, 422, "invalid_field", field, "%s must be a string of 1 to %zu bytes",
                       field, max);
    *out = s;
    return 0;
}

void wc_format_time(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

void wc_write_movement(struct fdt_json_writer *w, const struct wc_movement *m)
{
    char when[32];
    wc_format_time(m->created_ms, when);
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "id");
    fdt_json_writer_int(w, m->id);
    fdt_json_writer_key(w, "from");
    fdt_json_writer_int(w, m->from);
    fdt_json_writer_key(w, "to");
    fdt_json_writer_int(w, m->to);
    fdt_json_writer_key(w, "amount");
    fdt_json_writer_int(w, m->amount);
    fdt_json_writer_key(w, "fee");
    fdt_json_writer_int(w, m->fee);
    fdt_json_writer_key(w, "created");
    fdt_json_writer_string(w, when);
    fdt_json_writer_end_object(w);
}

void wc_write_account(struct fdt_json_writer *w, const struct wc_account *a)
{
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "id");
    fdt_json_writer_int(w, a->id);
    fdt_json_writer_key(w, "name");
    fdt_json_writer_string(w, a->name);
    fdt_json_writer_key(w, "balance");
    fdt_json_writer_int(w, a->balance);
    if (a->token[0]) {
        fdt_json_writer_key(w, "token");
        fdt_json_writer_string(w, a->token);
    }
    fdt_json_writer_end_object(w);
}

void wc_write_result(struct fdt_json_writer *w, const struct wc_movement *m)
{
    fdt_json_writer_begin_object(w);
    if (strcmp(m->kind, "claim") != 0) {
        fdt_json_writer_key(w, "id");
        fdt_json_writer_int(w, m->id);
    }
    if (m->code[0]) {
        fdt_json_writer_key(w, "code");
        fdt_json_writer_string(w, m->code);
    }
    if (strcmp(m->kind, "redeem") == 0) {
        fdt_json_writer_key(w, "to");
        fdt_json_writer_int(w, m->to);
    }
    fdt_json_writer_key(w, "amount");
    fdt_json_writer_int(w, m->amount);
    if (strcmp(m->kind, "withdrawal") == 0) {
        fdt_json_writer_key(w, "fee");
        fdt_json_writer_int(w, m->fee);
        fdt_json_writer_key(w, "status");
        fdt_json_writer_string(w, m->status);
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

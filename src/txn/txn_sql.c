#include "fdt_config.h"

#include "txn/rm.h"
#include "txn/txn.h"

#include <fdt/txn.h>
#include <stdlib.h>
#include <string.h>

/* Rows of a query, copied out of the driver: every value is NUL-terminated text in one
 * growing buffer, cells index it by offset (the buffer may move as it grows). */

struct cell {
    size_t off;
    bool null;
};

struct fdt_sql_rows {
    int nrows, ncols;
    long changes;
    struct cell *cells;
    size_t cells_cap;
    char *data;
    size_t len, cap;
};

struct fdt_sql_rows *fdt__sql_rows_new(void)
{
    return calloc(1, sizeof(struct fdt_sql_rows));
}

int fdt__sql_rows_cols(struct fdt_sql_rows *r, int cols)
{
    r->ncols = cols;
    return 0;
}

void fdt__sql_rows_set_changes(struct fdt_sql_rows *r, long changes)
{
    r->changes = changes;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return FDT_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

int fdt__sql_rows_add(struct fdt_sql_rows *r, const char *const *vals, const size_t *lens)
{
    size_t ncells = (size_t)(r->nrows + 1) * (size_t)r->ncols;
    size_t bytes = 0;
    for (int i = 0; i < r->ncols; i++)
        bytes += vals[i] ? lens[i] + 1 : 0;
    if (grow((void **)&r->cells, &r->cells_cap, ncells, sizeof(struct cell)) < 0 ||
        grow((void **)&r->data, &r->cap, r->len + bytes + 1, 1) < 0)
        return FDT_ENOMEM;
    struct cell *row = r->cells + (size_t)r->nrows * (size_t)r->ncols;
    for (int i = 0; i < r->ncols; i++) {
        row[i].null = vals[i] == NULL;
        row[i].off = r->len;
        if (vals[i]) {
            memcpy(r->data + r->len, vals[i], lens[i]);
            r->data[r->len + lens[i]] = '\0';
            r->len += lens[i] + 1;
        }
    }
    r->nrows++;
    return 0;
}

int fdt_sql_nrows(const struct fdt_sql_rows *r)
{
    return r ? r->nrows : 0;
}

int fdt_sql_ncols(const struct fdt_sql_rows *r)
{
    return r ? r->ncols : 0;
}

long fdt_sql_changes(const struct fdt_sql_rows *r)
{
    return r ? r->changes : 0;
}

const char *fdt_sql_text(const struct fdt_sql_rows *r, int row, int col)
{
    if (!r || row < 0 || col < 0 || row >= r->nrows || col >= r->ncols)
        return NULL;
    const struct cell *c = &r->cells[(size_t)row * (size_t)r->ncols + (size_t)col];
    return c->null ? NULL : r->data + c->off;
}

int64_t fdt_sql_int(const struct fdt_sql_rows *r, int row, int col)
{
    const char *v = fdt_sql_text(r, row, col);
    if (!v)
        return 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    return end == v ? 0 : (int64_t)n;
}

void fdt_sql_rows_free(struct fdt_sql_rows *r)
{
    if (!r)
        return;
    free(r->cells);
    free(r->data);
    free(r);
}

const char *fdt_resource_driver(const char *resource)
{
    struct fdt_resource *r = resource ? fdt__resource_find(resource) : NULL;
    return r ? r->drv->name : NULL;
}

int fdt_resource_check_atomic(const char *const *resources, int n, struct fdt_error *err)
{
    const char *cannot = NULL;
    for (int i = 0; i < n; i++) {
        struct fdt_resource *r = resources[i] ? fdt__resource_find(resources[i]) : NULL;
        if (!r)
            return fdt_error_set(err, FDT_ENOENT, "no [resource.%s] section",
                                 resources[i] ? resources[i] : "");
        if (r->drv->can_prepare)
            continue;
        if (cannot)
            return fdt_error_set(err, FDT_ECONFIG,
                                 "[resource.%s] and [resource.%s] both cannot prepare (%s): one "
                                 "transaction that writes both could never commit atomically; "
                                 "make one of them postgresql",
                                 cannot, r->cfg.name, r->drv->name);
        cannot = r->cfg.name;
    }
    return 0;
}

int fdt_resource_exec(const char *resource, const char *sql, struct fdt_error *err)
{
    struct fdt_resource *r = resource ? fdt__resource_find(resource) : NULL;
    if (!r)
        return fdt_error_set(err, FDT_ENOENT, "no resource named %s", resource ? resource : "");
    void *s = NULL;
    if (fdt__resource_acquire(r, &s, err) < 0)
        return err ? err->code : FDT_EDOWN;
    int rc = r->drv->exec(s, sql, NULL, err);
    if (rc < 0) {
        /* A script that began a transaction and failed half-way leaves it open. */
        struct fdt_error ignored = {0};
        r->drv->rollback(s, &ignored);
    }
    fdt__resource_release(r, s, rc == 0 || r->drv->alive(s));
    return rc;
}

int fdt_resource_query(const char *resource, const char *sql, const struct fdt_sql_param *params,
                       int n, struct fdt_sql_rows **rows, struct fdt_error *err)
{
    if (rows)
        *rows = NULL;
    struct fdt_resource *r = resource ? fdt__resource_find(resource) : NULL;
    if (!r)
        return fdt_error_set(err, FDT_ENOENT, "no resource named %s", resource ? resource : "");
    struct fdt_error local = {0};
    if (!err)
        err = &local;
    void *s = NULL;
    if (fdt__resource_acquire(r, &s, err) < 0)
        return err->code;
    struct fdt_sql_rows *out = fdt__sql_rows_new();
    int rc = out ? r->drv->query(s, sql, params, n, out, err)
                 : fdt_error_set(err, FDT_ENOMEM, "out of memory");
    fdt__resource_release(r, s, rc == 0 || r->drv->alive(s));
    if (rc < 0 || !rows)
        fdt_sql_rows_free(out);
    else
        *rows = out;
    return rc;
}

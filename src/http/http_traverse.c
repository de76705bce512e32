#include "fdt_config.h"

#include "http/http_int.h"
#include "util/util.h"

#include <fdt/error.h>
#include <stdio.h>
#include <string.h>

/* Traversal as in Pyramid: start at the root, ask the current resource's type for each
 * segment in turn, and stop at the first segment it does not have. See include/fdt/http.h
 * for the rules and docs/http.md for the choices (".." is resolved like a browser does,
 * before traversal). */

int fdt__http_traverse(struct fdt_http_request *req, const struct fdt_http_app *app,
                       const char **msg)
{
    struct fdt_http_resource *root = &req->root_storage;
    root->type = app->root_type;
    root->parent = NULL;
    root->name = "";
    root->name_len = 0;
    root->data = app->root_data ? app->root_data(req) : NULL;
    req->root = root;
    req->context = root;
    req->view_name = "";

    const char *path = req->path;
    size_t len = strlen(path);
    if (len == 0 || path[0] != '/') {
        /* GCOVR_EXCL_START: unreachable: finish_head (http_parse.c) makes every path start
         * with '/', except "*", which run_view answers before traversal */
        *msg = "The request target is not a path.";
        return 400;
        /* GCOVR_EXCL_STOP */
    }
    size_t max_segs = len / 2 + 1;
    char *out = fdt__http_arena_alloc(&req->arena, len + 1);
    const char **segs = fdt__http_arena_alloc(&req->arena, max_segs * sizeof(*segs));
    size_t *lens = fdt__http_arena_alloc(&req->arena, max_segs * sizeof(*lens));
    if (!out || !segs || !lens) {
        *msg = "The server is out of memory.";
        return 503;
    }
    size_t n;
    int rc = fdt__http_path_split(path, len, out, segs, lens, max_segs, &n);
    if (rc < 0) {
        *msg = "The path is malformed (a bad %-escape, an encoded NUL or '/', or '..' above "
               "the root).";
        return 400;
    }

    struct fdt_http_resource *ctx = root;
    size_t i = 0;
    for (; i < n; i++) {
        if (segs[i][0] == '@' && segs[i][1] == '@') {
            /* "@@name" names a view explicitly (Pyramid). */
            req->context = ctx;
            req->view_name = segs[i] + 2;
            req->subpath = segs + i + 1;
            req->n_subpath = n - i - 1;
            return 0;
        }
        if (!ctx->type || !ctx->type->getitem)
            break;
        struct fdt_http_resource *child = NULL;
        rc = ctx->type->getitem(req, ctx, segs[i], lens[i], &child);
        if (rc == FDT_ENOENT)
            break;
        if (rc < 0 || !child) {
            *msg = "The application failed to resolve the path.";
            return 500;
        }
        ctx = child;
    }
    req->context = ctx;
    if (i < n) {
        req->view_name = segs[i];
        req->subpath = segs + i + 1;
        req->n_subpath = n - i - 1;
    }
    return 0;
}

static bool method_matches(const char *view_method, const char *method)
{
    if (!view_method)
        return true;
    if (strcmp(view_method, method) == 0)
        return true;
    /* A GET view answers HEAD; the framework drops the body. */
    return strcmp(method, "HEAD") == 0 && strcmp(view_method, "GET") == 0;
}

/* Append method to the comma-separated list in allow unless it is there already. */
static void allow_add(char *allow, size_t size, const char *method)
{
    size_t mlen = strlen(method);
    for (const char *p = allow; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == mlen && memcmp(p, method, n) == 0)
            return;
        if (!comma)
            break;
        p = comma + 2;
    }
    size_t used = strlen(allow);
    size_t need = (used ? 2 : 0) + mlen + 1;
    if (used + need > size)
        return;
    if (used) {
        memcpy(allow + used, ", ", 2);
        used += 2;
    }
    memcpy(allow + used, method, mlen + 1);
}

/* Whether view v is considered in pass (see fdt__http_view_find) for name. */
static bool view_in_pass(const struct fdt_http_view *v, int pass,
                         const struct fdt_http_resource_type *type, const char *name,
                         bool has_subpath)
{
    if ((pass < 2) ? v->type != type : v->type != NULL)
        return false;
    bool any = (v->flags & FDT_HTTP_VIEW_ANY_NAME) != 0;
    if (pass % 2 == 1 ? !any : any || strcmp(v->name ? v->name : "", name) != 0)
        return false;
    return !has_subpath || (v->flags & FDT_HTTP_VIEW_SUBPATH);
}

const struct fdt_http_view *fdt__http_view_find(const struct fdt_http_app *app,
                                                const struct fdt_http_resource_type *type,
                                                const char *name, const char *method,
                                                bool has_subpath, char *allow, size_t size,
                                                int *status)
{
    if (size)
        allow[0] = '\0';
    /* Views for the exact type first, then views for any type only when none has this
     * name; within each, views named name before catch-alls (FDT_HTTP_VIEW_ANY_NAME). */
    for (int pass = 0; pass < 4; pass++) {
        bool named = false;
        for (size_t i = 0; i < app->n_views; i++) {
            const struct fdt_http_view *v = &app->views[i];
            if (!view_in_pass(v, pass, type, name, has_subpath))
                continue;
            named = true;
            if (method_matches(v->method, method))
                return v;
        }
        if (!named)
            continue;
        for (size_t i = 0; i < app->n_views; i++) {
            const struct fdt_http_view *v = &app->views[i];
            if (!view_in_pass(v, pass, type, name, has_subpath) || !v->method)
                continue;
            allow_add(allow, size, v->method);
            if (strcmp(v->method, "GET") == 0)
                allow_add(allow, size, "HEAD");
        }
        *status = 405;
        return NULL;
    }
    *status = 404;
    return NULL;
}

int fdt__http_app_check(const struct fdt_http_app *app, char *reason, size_t rsize)
{
    if (!FDT_ABI_OK(app, FDT_HTTP_ABI_VERSION, struct fdt_http_app)) {
        snprintf(reason, rsize,
                 "the application's struct fdt_http_app has abi_version %u and size %u; "
                 "this fdtserver expects %u and at least %zu",
                 app->abi_version, app->size, FDT_HTTP_ABI_VERSION,
                 offsetof(struct fdt_http_app, reserved));
        return FDT_EINVAL;
    }
    if (!app->root_type) {
        snprintf(reason, rsize, "the application's HTTP descriptor has no root_type");
        return FDT_EINVAL;
    }
    if (app->n_views > 0 && !app->views) {
        snprintf(reason, rsize, "the application's HTTP descriptor has n_views but no views");
        return FDT_EINVAL;
    }
    const struct fdt_http_resource_type *t = app->root_type;
    if (!FDT_ABI_OK(t, FDT_HTTP_ABI_VERSION, struct fdt_http_resource_type)) {
        snprintf(reason, rsize, "resource type %s: wrong abi_version or size",
                 t->name ? t->name : "(root)");
        return FDT_EINVAL;
    }
    for (size_t i = 0; i < app->n_views; i++) {
        const struct fdt_http_view *v = &app->views[i];
        t = v->type;
        if (!v->fn) {
            snprintf(reason, rsize, "view %zu (%s) has no function", i, v->name ? v->name : "");
            return FDT_EINVAL;
        }
        if (t && !FDT_ABI_OK(t, FDT_HTTP_ABI_VERSION, struct fdt_http_resource_type)) {
            snprintf(reason, rsize, "view %zu: resource type %s: wrong abi_version or size", i,
                     t->name ? t->name : "?");
            return FDT_EINVAL;
        }
    }
    return 0;
}

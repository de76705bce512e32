/* hello: the smallest HTTP application, used by the end-to-end tests and the benchmarks.
 *
 *   GET  /               Hello, world!
 *   GET  /sleep/MS       sleeps MS milliseconds (blocking its thread), then "slept MS"
 *   GET  /spin/MS        burns CPU for MS milliseconds, then "spun MS"
 *   GET  /whoami         {"pid":P,"generation":G,"thread":T,"version":"V"}
 *   POST /echo           the request body back
 *   GET  /stream/N       a streamed (chunked) body of N lines "line i"
 *   GET  /error/STATUS   the framework's error response for STATUS (4xx/5xx)
 *   GET  /tree/A/B/...   a resource tree where every key exists except "missing": the
 *                        resource's URL, name and depth; PUT on a node answers 204
 *
 * [app] keys: version (shown by /whoami), json_errors = yes (errors rendered as JSON by
 * an error view). */
#include <fdt/fdt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef HELLO_VERSION
#define HELLO_VERSION "1"
#endif

#define MAX_MS 600000

static int json_errors;
/* Written by /spin so that the compiler keeps the loop. */
static volatile unsigned long spin_sink;

static int hello_init(const struct fdt_worker_info *w, struct fdt_error *err)
{
    (void)w;
    (void)err;
    const char *v = fdt_app_config("json_errors");
    json_errors = v && (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
    return 0;
}

/* The first subpath segment as a number of milliseconds, or -1. */
static long subpath_ms(struct fdt_http_request *req)
{
    if (fdt_http_subpath_count(req) != 1)
        return -1;
    const char *s = fdt_http_subpath(req, 0);
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > MAX_MS)
        return -1;
    return v;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int reply(struct fdt_http_request *req, const char *fmt, ...) FDT_PRINTF(2, 3);
static int reply(struct fdt_http_request *req, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return fdt_http_error(req, 500, "Formatting failed.");
    if ((size_t)n >= sizeof(buf))
        n = (int)sizeof(buf) - 1;
    return fdt_http_respond(req, 200, "text/plain; charset=utf-8", buf, (size_t)n);
}

static int view_hello(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    static const char body[] = "Hello, world!";
    return fdt_http_respond(req, 200, "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

static int view_sleep(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    long ms = subpath_ms(req);
    if (ms < 0)
        return fdt_http_error(req, 400, "Expected /sleep/MILLISECONDS.");
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    return reply(req, "slept %ld", ms);
}

static int view_spin(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    long ms = subpath_ms(req);
    if (ms < 0)
        return fdt_http_error(req, 400, "Expected /spin/MILLISECONDS.");
    int64_t until = now_ns() + (int64_t)ms * 1000000;
    while (now_ns() < until) {
        for (int i = 0; i < 1000; i++)
            spin_sink += (unsigned long)i * 2654435761u;
    }
    return reply(req, "spun %ld", ms);
}

static int view_whoami(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    const struct fdt_worker_info *w = fdt_worker_info();
    const char *version = fdt_app_config("version");
    if (!version)
        version = HELLO_VERSION;
    char buf[256];
    /* version comes from our own configuration; keep it to characters JSON needs no escape
     * for. */
    char safe[64];
    size_t k = 0;
    for (const char *p = version; *p && k < sizeof(safe) - 1; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
            safe[k++] = *p;
    }
    safe[k] = '\0';
    int n = snprintf(buf, sizeof(buf),
                     "{\"pid\":%d,\"generation\":%u,\"thread\":%d,\"version\":\"%s\"}",
                     w ? (int)w->pid : 0, w ? w->generation : 0, fdt_thread_index(), safe);
    return fdt_http_respond(req, 200, "application/json", buf, (size_t)n);
}

static int view_echo(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    size_t len;
    const char *body = fdt_http_body(req, &len);
    const char *type = fdt_http_header(req, "Content-Type");
    return fdt_http_respond(req, 200, type ? type : "application/octet-stream", body, len);
}

static int view_stream(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    long n = subpath_ms(req);
    if (n < 0 || n > 100000)
        return fdt_http_error(req, 400, "Expected /stream/LINES.");
    int rc = fdt_http_begin(req, 200, "text/plain; charset=utf-8");
    for (long i = 0; i < n && rc == 0; i++) {
        char line[32];
        int len = snprintf(line, sizeof(line), "line %ld\n", i);
        rc = fdt_http_write_chunk(req, line, (size_t)len);
    }
    return rc == 0 ? fdt_http_finish(req) : rc;
}

static int view_error(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    long status = fdt_http_subpath_count(req) == 1 ? strtol(fdt_http_subpath(req, 0), NULL, 10) : 0;
    if (status < 400 || status > 599)
        return fdt_http_error(req, 400, "Expected /error/STATUS with a 4xx or 5xx status.");
    return fdt_http_error(req, (int)status, "You asked for it.");
}

/* ---- The tree: every key exists, except "missing"; at most 16 levels. ---- */

static int tree_getitem(struct fdt_http_request *req, struct fdt_http_resource *parent,
                        const char *key, size_t len, struct fdt_http_resource **child);

static const struct fdt_http_resource_type root_type = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(struct fdt_http_resource_type),
    .name = "root",
    .getitem = tree_getitem,
};

static const struct fdt_http_resource_type node_type = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(struct fdt_http_resource_type),
    .name = "node",
    .getitem = tree_getitem,
};

static int tree_getitem(struct fdt_http_request *req, struct fdt_http_resource *parent,
                        const char *key, size_t len, struct fdt_http_resource **child)
{
    uintptr_t depth = (uintptr_t)fdt_http_resource_data(parent);
    /* Below the root only "tree" leads into the tree; the rest are view names. */
    if (fdt_http_resource_type(parent) == &root_type && strcmp(key, "tree") != 0)
        return FDT_ENOENT;
    if (strcmp(key, "missing") == 0 || depth >= 16)
        return FDT_ENOENT;
    *child = fdt_http_resource_new(req, parent, &node_type, key, len, (void *)(depth + 1));
    return *child ? 0 : FDT_ENOMEM;
}

static int view_node(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    char url[2048];
    int rc = fdt_http_resource_url(ctx, url, sizeof(url), NULL);
    if (rc < 0)
        return fdt_http_error(req, 500, "The resource has no URL.");
    size_t name_len;
    const char *name = fdt_http_resource_name(ctx, &name_len);
    char buf[4096];
    int n = snprintf(buf, sizeof(buf), "url=%s\nname=%.*s\ndepth=%lu\n", url, (int)name_len, name,
                     (unsigned long)(uintptr_t)fdt_http_resource_data(ctx));
    if (n < 0 || (size_t)n >= sizeof(buf))
        return fdt_http_error(req, 500, "The answer is too long.");
    return fdt_http_respond(req, 200, "text/plain; charset=utf-8", buf, (size_t)n);
}

static int view_node_put(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    return fdt_http_respond(req, 204, NULL, NULL, 0);
}

/* Errors as JSON when json_errors is set; otherwise the framework's plain text. */
static void error_view(struct fdt_http_request *req, int status, const char *message)
{
    if (!json_errors)
        return;
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "{\"error\":{\"status\":%d,\"reason\":\"%s\",\"message\":\"%s\"}}\n", status,
                     fdt_http_reason(status), message ? message : "");
    if (n < 0 || (size_t)n >= sizeof(buf))
        return;
    fdt_http_respond(req, status, "application/json", buf, (size_t)n);
}

static const struct fdt_http_view views[] = {
    {.type = &root_type, .name = "", .method = "GET", .fn = view_hello},
    {.type = &root_type,
     .name = "sleep",
     .method = "GET",
     .fn = view_sleep,
     .flags = FDT_HTTP_VIEW_SUBPATH},
    {.type = &root_type,
     .name = "spin",
     .method = "GET",
     .fn = view_spin,
     .flags = FDT_HTTP_VIEW_SUBPATH},
    {.type = &root_type, .name = "whoami", .method = "GET", .fn = view_whoami},
    {.type = &root_type, .name = "echo", .method = "POST", .fn = view_echo},
    {.type = &root_type,
     .name = "stream",
     .method = "GET",
     .fn = view_stream,
     .flags = FDT_HTTP_VIEW_SUBPATH},
    {.type = &root_type,
     .name = "error",
     .method = "GET",
     .fn = view_error,
     .flags = FDT_HTTP_VIEW_SUBPATH},
    {.type = &node_type, .name = "", .method = "GET", .fn = view_node},
    {.type = &node_type, .name = "", .method = "PUT", .fn = view_node_put},
};

static const struct fdt_http_app hello_http = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(struct fdt_http_app),
    .root_type = &root_type,
    .views = views,
    .n_views = sizeof(views) / sizeof(views[0]),
    .error_view = error_view,
};

FDT_APP_EXPORT const struct fdt_app fdt_app_v1 = {
    .abi_version = FDT_APP_ABI_VERSION,
    .size = sizeof(struct fdt_app),
    .name = "hello",
    .version = HELLO_VERSION,
    .process_init = hello_init,
    .http = &hello_http,
};

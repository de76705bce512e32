/* hello: the smallest HTTP application, and the one to copy when starting a new one. The
 * end-to-end tests and the benchmarks (bench/http) run it.
 *
 * It shows: the one exported descriptor (fdt_app_v1); traversal, with a root resource whose
 * names are views and a tree of resources below /tree; views that take a subpath; plain-text,
 * JSON (libfdt's writer) and streamed answers; blocking and CPU-bound views (each runs on
 * one of the worker's threads, so it stalls only its own request); [app] keys; and an error
 * view that renders the framework's errors.
 *
 *   GET  /               Hello, world!
 *   GET  /sleep/MS       sleeps MS milliseconds (blocking its thread), then "slept MS"
 *   GET  /spin/MS        burns CPU for MS milliseconds, then "spun MS"
 *   GET  /whoami         {"pid":P,"generation":G,"thread":T,"version":"V"}
 *   POST /echo           the request body back
 *   GET  /stream/N       a streamed (chunked) body of N lines "line i"
 *   GET  /error/STATUS   the framework's error response for STATUS (4xx/5xx), with a line
 *                        in the error log (it carries the request's id)
 *   GET  /grow/MB        keeps MB more MiB of memory for the life of the worker: a leaky
 *                        application, for [server] max_worker_memory
 *   GET  /tree/A/B/...   a resource tree where every key exists except "missing": the
 *                        resource's URL, name and depth; PUT on a node answers 204
 *
 * [app] keys: version (shown by /whoami), json_errors = yes (errors rendered as JSON by
 * the error view). */
#include <fdt/fdt.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef HELLO_VERSION
#define HELLO_VERSION "1"
#endif

#define MAX_MS    600000
#define MAX_LINES 100000
#define MAX_DEPTH 16
#define TEXT      "text/plain; charset=utf-8"
#define JSON_MAX  4096
#define SUBPATH   FDT_HTTP_VIEW_SUBPATH

/* ---- Helpers ---- */

/* The one subpath segment as a number from 0 to max, or -1. */
static long subpath_number(struct fdt_http_request *req, long max)
{
    if (fdt_http_subpath_count(req) != 1)
        return -1;
    const char *s = fdt_http_subpath(req, 0);
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > max)
        return -1;
    return v;
}

static int reply_text(struct fdt_http_request *req, const char *text)
{
    return fdt_http_respond(req, 200, TEXT, text, strlen(text));
}

/* Send the JSON value w holds, then release w. */
static int reply_json(struct fdt_http_request *req, int status, struct fdt_json_writer *w)
{
    const char *data;
    size_t len;
    int rc = fdt_json_writer_finish(w, &data, &len);
    if (rc == 0)
        rc = fdt_http_respond(req, status, "application/json", data, len);
    else
        rc = fdt_http_error(req, 500, "The answer could not be written.");
    fdt_json_writer_deinit(w);
    return rc;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- Views of the root ---- */

static int view_hello(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    return reply_text(req, "Hello, world!");
}

static int view_sleep(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    long ms = subpath_number(req, MAX_MS);
    if (ms < 0)
        return fdt_http_error(req, 400, "Expected /sleep/MILLISECONDS.");
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    char text[32];
    snprintf(text, sizeof(text), "slept %ld", ms);
    return reply_text(req, text);
}

static int view_spin(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    long ms = subpath_number(req, MAX_MS);
    if (ms < 0)
        return fdt_http_error(req, 400, "Expected /spin/MILLISECONDS.");
    volatile unsigned long sink = 0; /* volatile: the compiler must keep the loop */
    int64_t until = now_ns() + (int64_t)ms * 1000000;
    while (now_ns() < until) {
        for (int i = 0; i < 1000; i++)
            sink += (unsigned long)i * 2654435761u;
    }
    char text[32];
    snprintf(text, sizeof(text), "spun %ld", ms);
    return reply_text(req, text);
}

static int view_whoami(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    const struct fdt_worker_info *w = fdt_worker_info();
    const char *version = fdt_app_config("version");
    struct fdt_json_writer json;
    fdt_json_writer_init(&json, JSON_MAX);
    fdt_json_writer_begin_object(&json);
    fdt_json_writer_key(&json, "pid");
    fdt_json_writer_int(&json, w ? w->pid : 0);
    fdt_json_writer_key(&json, "generation");
    fdt_json_writer_int(&json, w ? w->generation : 0);
    fdt_json_writer_key(&json, "thread");
    fdt_json_writer_int(&json, fdt_thread_index());
    fdt_json_writer_key(&json, "version");
    fdt_json_writer_string(&json, version ? version : HELLO_VERSION);
    fdt_json_writer_end_object(&json);
    return reply_json(req, 200, &json);
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
    long n = subpath_number(req, MAX_LINES);
    if (n < 0)
        return fdt_http_error(req, 400, "Expected /stream/LINES.");
    int rc = fdt_http_begin(req, 200, TEXT);
    for (long i = 0; i < n && rc == 0; i++) {
        char line[32];
        int len = snprintf(line, sizeof(line), "line %ld\n", i);
        rc = fdt_http_write_chunk(req, line, (size_t)len);
    }
    return rc == 0 ? fdt_http_end(req) : rc;
}

static int view_error(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    long status = fdt_http_subpath_count(req) == 1 ? strtol(fdt_http_subpath(req, 0), NULL, 10) : 0;
    if (status < 400 || status > 599)
        return fdt_http_error(req, 400, "Expected /error/STATUS with a 4xx or 5xx status.");
    fdt_log(FDT_LOG_WARN, "answering %ld, as asked", status);
    return fdt_http_error(req, (int)status, "You asked for it.");
}

/* Leaked on purpose: the worker's resident memory only grows (the pages are written, so
 * they are resident). Blocks are chained so that the memory stays reachable. */
static int view_grow(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    static _Atomic(void *) kept;
    long mb = subpath_number(req, 1024);
    if (mb < 1)
        return fdt_http_error(req, 400, "Expected /grow/MB, 1 to 1024.");
    size_t n = (size_t)mb << 20;
    char *block = malloc(n);
    if (!block)
        return fdt_http_error(req, 503, "Out of memory.");
    memset(block, 0x5a, n);
    *(void **)(void *)block = atomic_exchange(&kept, (void *)block);
    char text[32];
    snprintf(text, sizeof(text), "grew %ld", mb);
    return reply_text(req, text);
}

/* ---- The tree: every key exists, except "missing"; at most MAX_DEPTH levels. ---- */

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

/* A resource's data is its depth: the root has none (0), /tree is 1. */
static int tree_getitem(struct fdt_http_request *req, struct fdt_http_resource *parent,
                        const char *key, size_t len, struct fdt_http_resource **child)
{
    uintptr_t depth = (uintptr_t)fdt_http_resource_data(parent);
    /* Below the root only "tree" leads into the tree; the rest are view names. */
    if (fdt_http_resource_type(parent) == &root_type && strcmp(key, "tree") != 0)
        return FDT_ENOENT;
    if (strcmp(key, "missing") == 0 || depth >= MAX_DEPTH)
        return FDT_ENOENT;
    *child = fdt_http_resource_new(req, parent, &node_type, key, len, (void *)(depth + 1));
    return *child ? 0 : FDT_ENOMEM;
}

static int view_node(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    char url[2048];
    if (fdt_http_resource_url(ctx, url, sizeof(url), NULL) < 0)
        return fdt_http_error(req, 500, "The resource has no URL.");
    size_t name_len;
    const char *name = fdt_http_resource_name(ctx, &name_len);
    char text[4096];
    int n = snprintf(text, sizeof(text), "url=%s\nname=%.*s\ndepth=%lu\n", url, (int)name_len, name,
                     (unsigned long)(uintptr_t)fdt_http_resource_data(ctx));
    if (n < 0 || (size_t)n >= sizeof(text))
        return fdt_http_error(req, 500, "The answer is too long.");
    return reply_text(req, text);
}

static int view_node_put(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    return fdt_http_respond(req, 204, NULL, NULL, 0);
}

/* ---- Errors ---- */

static bool json_errors(void)
{
    const char *v = fdt_app_config("json_errors");
    return v && (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static void write_error(struct fdt_json_writer *w, int status, const char *message)
{
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "error");
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "status");
    fdt_json_writer_int(w, status);
    fdt_json_writer_key(w, "reason");
    fdt_json_writer_string(w, fdt_http_reason(status));
    fdt_json_writer_key(w, "message");
    fdt_json_writer_string(w, message);
    fdt_json_writer_end_object(w);
    fdt_json_writer_end_object(w);
}

/* With [app] json_errors = yes, the framework's errors as {"error":{"status","reason",
 * "message"}} and a newline; otherwise (no answer) its plain text. The key is looked up
 * here rather than kept from start-up because an error view gets no user pointer, and
 * fdt_app_config() is cheap and safe from any thread. */
static void error_view(struct fdt_http_request *req, int status, const char *message)
{
    if (!json_errors())
        return;
    struct fdt_json_writer json;
    fdt_json_writer_init(&json, JSON_MAX);
    write_error(&json, status, message ? message : "");
    const char *data;
    size_t len;
    char *body = NULL;
    if (fdt_json_writer_finish(&json, &data, &len) == 0)
        body = fdt_http_alloc(req, len + 1); /* lives until the request ends */
    if (body) {
        memcpy(body, data, len);
        body[len] = '\n';
        fdt_http_respond(req, status, "application/json", body, len + 1);
    }
    fdt_json_writer_deinit(&json);
}

/* ---- The descriptor ---- */

static const struct fdt_http_view views[] = {
    {.type = &root_type, .name = "", .method = "GET", .fn = view_hello},
    {.type = &root_type, .name = "sleep", .method = "GET", .fn = view_sleep, .flags = SUBPATH},
    {.type = &root_type, .name = "spin", .method = "GET", .fn = view_spin, .flags = SUBPATH},
    {.type = &root_type, .name = "whoami", .method = "GET", .fn = view_whoami},
    {.type = &root_type, .name = "echo", .method = "POST", .fn = view_echo},
    {.type = &root_type, .name = "stream", .method = "GET", .fn = view_stream, .flags = SUBPATH},
    {.type = &root_type, .name = "error", .method = "GET", .fn = view_error, .flags = SUBPATH},
    {.type = &root_type, .name = "grow", .method = "GET", .fn = view_grow, .flags = SUBPATH},
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
    .http = &hello_http,
};

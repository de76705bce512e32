/* Test support for the HTTP module: a session bound to a fake connection that captures its
 * output, fed the way the connection core feeds a protocol (unconsumed bytes kept and
 * offered again with the next ones), and a small application with a resource tree.
 * Used by the unit tests and by fuzz/fuzz_http.c; everything is static, one copy per
 * program. */
#ifndef FDT_TEST_HTTP_HARNESS_H
#define FDT_TEST_HTTP_HARNESS_H

#include "http/http_int.h"
#include "util/buf.h"

#include <fdt/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct harness {
    struct fdt__http_server srv;
    struct fdt__http_session s;
    struct fdt_buf in;  /* the connection's input buffer */
    struct fdt_buf out; /* everything written to the client */
    size_t max_input;
    int closed;
    int64_t deadline;
    int draining;
    int requests;
    size_t write_limit; /* writes fail (the client is gone) past this many bytes; 0: none */
    /* What the client sent that a view streaming its body reads itself (io->read): the
     * socket after what harness_send() handed over. */
    struct fdt_buf sock;
    int sock_eof; /* the client closed its side after sock */
};

static int h_write(void *ctx, const void *buf, size_t len)
{
    struct harness *h = ctx;
    if (h->closed || (h->write_limit && h->out.len + len > h->write_limit))
        return FDT_ECLOSED;
    return fdt__buf_append(&h->out, buf, len);
}

static void h_close(void *ctx)
{
    ((struct harness *)ctx)->closed = 1;
}

static void h_set_deadline(void *ctx, int64_t deadline_ms)
{
    ((struct harness *)ctx)->deadline = deadline_ms;
}

static int h_draining(void *ctx)
{
    return ((struct harness *)ctx)->draining;
}

static void h_request_done(void *ctx, int status, int64_t duration_us)
{
    (void)status;
    (void)duration_us;
    ((struct harness *)ctx)->requests++;
}

static void h_peer(void *ctx, char *buf, size_t size)
{
    (void)ctx;
    snprintf(buf, size, "192.0.2.7");
}

static long h_read(void *ctx, void *buf, size_t len, bool peek, int64_t deadline_ms)
{
    struct harness *h = ctx;
    if (h->sock.len == 0) {
        if (h->sock_eof)
            return 0;
        return deadline_ms ? FDT_ETIMEDOUT : FDT_EAGAIN;
    }
    size_t n = h->sock.len < len ? h->sock.len : len;
    memcpy(buf, fdt__buf_head(&h->sock), n);
    if (!peek)
        fdt__buf_consume(&h->sock, n);
    return (long)n;
}

static const struct fdt__http_io h_io = {
    .write = h_write,
    .close = h_close,
    .set_deadline = h_set_deadline,
    .draining = h_draining,
    .request_done = h_request_done,
    .peer = h_peer,
    .read = h_read,
};

/* ---- The test application. ----
 * /                       GET: "root"
 * /echo                   POST: the body back
 * /stream                 GET: "ab", "cd", "ef" as three chunks
 * /sub/...                GET: the subpath, joined with '|'
 * /nothing                GET: answers nothing (500)
 * /teapot                 GET: fdt_http_error(418)
 * /boom                   GET: returns -1 (500)
 * /hdr                    GET: "[X-Test value] header-count path query"
 * /x/y/... (one letter)   node resources; GET: the node's URL; /x/edit: PUT only
 * /fail                   getitem fails (500)
 * /any/...                a view for any method on a node called "any" */

static int t_getitem(struct fdt_http_request *req, struct fdt_http_resource *parent,
                     const char *key, size_t len, struct fdt_http_resource **child);

static const struct fdt_http_resource_type t_root = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(struct fdt_http_resource_type),
    .name = "root",
    .getitem = t_getitem,
};
static const struct fdt_http_resource_type t_node = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(struct fdt_http_resource_type),
    .name = "node",
    .getitem = t_getitem,
};

static int t_getitem_calls; /* how many times traversal asked for a child */

static int t_getitem(struct fdt_http_request *req, struct fdt_http_resource *parent,
                     const char *key, size_t len, struct fdt_http_resource **child)
{
    t_getitem_calls++;
    if (strcmp(key, "fail") == 0)
        return FDT_EINVAL;
    /* Single characters (after decoding, so "%20" is a key) and names with a space. */
    if (len != 1 && !memchr(key, ' ', len))
        return FDT_ENOENT;
    *child = fdt_http_resource_new(req, parent, &t_node, key, len, NULL);
    return *child ? 0 : FDT_ENOMEM;
}

static int v_root(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    return fdt_http_respond(req, 200, "text/plain", "root", 4);
}

static int v_echo(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    size_t n;
    const char *b = fdt_http_body(req, &n);
    return fdt_http_respond(req, 200, "application/octet-stream", b, n);
}

static int v_stream(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    fdt_http_begin(req, 200, "text/plain");
    fdt_http_write_chunk(req, "ab", 2);
    fdt_http_write_chunk(req, "cd", 2);
    fdt_http_write_chunk(req, "ef", 2);
    return fdt_http_end(req);
}

static int v_sub(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    char buf[512];
    size_t o = 0;
    for (size_t i = 0; i < fdt_http_subpath_count(req); i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? "|" : "",
                              fdt_http_subpath(req, i));
    return fdt_http_respond(req, 200, "text/plain", buf, o < sizeof(buf) ? o : sizeof(buf) - 1);
}

static int v_nothing(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)req;
    (void)ctx;
    return 0;
}

static int v_teapot(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    return fdt_http_error(req, 418, "I am a teapot.");
}

static int v_boom(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)req;
    (void)ctx;
    return -1;
}

static int v_hdr(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    const char *v = fdt_http_header(req, "x-test");
    if (!v)
        v = "none";
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "[%s] %zu %s %s", v, fdt_http_header_count(req),
                     fdt_http_path(req), fdt_http_query(req));
    return fdt_http_respond(req, 200, "text/plain", buf, (size_t)n);
}

static int v_node(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    char url[1024];
    size_t n;
    if (fdt_http_resource_url(ctx, url, sizeof(url), &n) < 0)
        return fdt_http_error(req, 500, "no url");
    return fdt_http_respond(req, 200, "text/plain", url, n);
}

static int v_edit(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    return fdt_http_respond(req, 204, NULL, NULL, 0);
}

/* Reads its body in pieces of 7 bytes (streamed when the server says so) and answers
 * "<length>:<the first 64 bytes>"; when the body cannot be read the framework has
 * answered. */
static int v_upload(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    char buf[64];
    size_t total = 0, kept = 0;
    char piece[7];
    long n;
    while ((n = fdt_http_read_body(req, piece, sizeof(piece))) > 0) {
        size_t k = (size_t)n < 64 - kept ? (size_t)n : 64 - kept;
        memcpy(buf + kept, piece, k);
        kept += k;
        total += (size_t)n;
    }
    if (n < 0)
        return (int)n;
    char out[96];
    int len = snprintf(out, sizeof(out), "%zu:%.*s", total, (int)kept, buf);
    return fdt_http_respond(req, 200, "text/plain", out, (size_t)len);
}

/* Reads its body, starts over as a run after a conflict would (fdt__http_body_rewind),
 * reads it again: "<first length>/<second length>/<same bytes>/<rewound>". */
static int v_reread(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    char a[128], b[128];
    size_t na = 0, nb = 0;
    long n;
    while (na < sizeof(a) && (n = fdt_http_read_body(req, a + na, 5)) > 0)
        na += (size_t)n;
    bool rewound = fdt__http_body_rewind(req);
    while (nb < sizeof(b) && (n = fdt_http_read_body(req, b + nb, 3)) > 0)
        nb += (size_t)n;
    char out[64];
    int len = snprintf(out, sizeof(out), "%zu/%zu/%d/%d", na, nb, na == nb && memcmp(a, b, na) == 0,
                       rewound);
    return fdt_http_respond(req, 200, "text/plain", out, (size_t)len);
}

/* Answers without reading its body. */
static int v_ignore(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    return fdt_http_respond(req, 200, "text/plain", "ignored", 7);
}

static const struct fdt_http_view t_views[] = {
    {.type = &t_root,
     .name = "upload",
     .method = "POST",
     .fn = v_upload,
     .flags = FDT_HTTP_VIEW_STREAM_BODY},
    {.type = &t_root,
     .name = "reread",
     .method = "POST",
     .fn = v_reread,
     .flags = FDT_HTTP_VIEW_STREAM_BODY},
    {.type = &t_root,
     .name = "ignore",
     .method = "POST",
     .fn = v_ignore,
     .flags = FDT_HTTP_VIEW_STREAM_BODY},
    {.type = &t_root, .name = "", .method = "GET", .fn = v_root},
    {.type = &t_root, .name = "echo", .method = "POST", .fn = v_echo},
    {.type = &t_root, .name = "stream", .method = "GET", .fn = v_stream},
    {.type = &t_root, .name = "sub", .method = "GET", .fn = v_sub, .flags = FDT_HTTP_VIEW_SUBPATH},
    {.type = &t_root, .name = "nothing", .method = "GET", .fn = v_nothing},
    {.type = &t_root, .name = "teapot", .method = "GET", .fn = v_teapot},
    {.type = &t_root, .name = "boom", .method = "GET", .fn = v_boom},
    {.type = &t_root, .name = "hdr", .method = "GET", .fn = v_hdr},
    {.type = &t_node, .name = "", .method = "GET", .fn = v_node},
    {.type = &t_node, .name = "edit", .method = "PUT", .fn = v_edit},
    {.type = &t_node, .name = "edit", .method = "DELETE", .fn = v_edit},
    {.type = NULL, .name = "any", .method = NULL, .fn = v_edit},
};

/* The JSON error view, switched on per test. */
static int t_json_errors;

static void t_error_view(struct fdt_http_request *req, int status, const char *message)
{
    if (!t_json_errors)
        return;
    char body[512];
    int n = snprintf(body, sizeof(body), "{\"status\":%d,\"message\":\"%s\"}", status, message);
    fdt_http_respond(req, status, "application/json", body, (size_t)n);
}

static const struct fdt_http_app t_app = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(struct fdt_http_app),
    .root_type = &t_root,
    .views = t_views,
    .n_views = sizeof(t_views) / sizeof(t_views[0]),
    .error_view = t_error_view,
};

/* ---- Driving a session. ---- */

static inline void harness_init(struct harness *h, size_t max_header, size_t max_body)
{
    memset(h, 0, sizeof(*h));
    h->srv.app = &t_app;
    h->srv.max_header_size = max_header;
    h->srv.max_body_size = max_body;
    h->srv.header_timeout_ms = 10000;
    h->srv.body_timeout_ms = 30000;
    h->srv.keepalive_timeout_ms = 60000;
    h->srv.access_log_fd = -1;
    h->srv.replay_max = 48;
    h->max_input = 65536;
    fdt__buf_init(&h->in, h->max_input);
    fdt__buf_init(&h->out, 64 * 1024 * 1024);
    fdt__buf_init(&h->sock, 1024 * 1024);
    fdt__http_session_init(&h->s, &h->srv, &h_io, h, NULL);
}

static inline void harness_deinit(struct harness *h)
{
    fdt__http_session_deinit(&h->s);
    fdt__buf_deinit(&h->in);
    fdt__buf_deinit(&h->out);
    fdt__buf_deinit(&h->sock);
}

/* Bytes arrive from the client, as conn.c hands them over: what is left unconsumed stays
 * in the input buffer and is offered again, with the new bytes after it. The session
 * consumes everything it is offered until it closes (which is why the HTTP protocol has
 * no overflow callback, http_proto.c): checked here, so every test and fuzz input checks
 * it. */
static inline void harness_send(struct harness *h, const char *data, size_t len)
{
    if (h->closed)
        return;
    if (fdt__buf_append(&h->in, data, len) < 0)
        abort(); /* a test sent more than max_input at once */
    size_t off = 0;
    char *p = fdt__buf_head(&h->in);
    while (off < h->in.len && !h->closed) {
        long used = fdt__http_session_feed(&h->s, p + off, h->in.len - off);
        if (used < 0)
            abort();
        if (used == 0)
            break;
        off += (size_t)used;
    }
    if (!h->closed && off != h->in.len)
        abort(); /* the session left bytes in the connection's input buffer */
    fdt__buf_consume(&h->in, off);
}

static inline void harness_send_str(struct harness *h, const char *s)
{
    harness_send(h, s, strlen(s));
}

/* The output so far as a C string (the buffer keeps a NUL after it). */
static inline const char *harness_out(struct harness *h)
{
    fdt__buf_append(&h->out, "", 1);
    h->out.len--;
    return h->out.len ? fdt__buf_head(&h->out) : "";
}

static inline void harness_clear_out(struct harness *h)
{
    fdt__buf_consume(&h->out, h->out.len);
}

/* ---- One fuzz input (fuzz/fuzz_http.c, and the corpus replay in meson test). ----
 * The first byte picks how the rest is cut into reads and a few switches; the rest is what
 * a client sends. Invariants checked: the session never consumes more than it is given,
 * every response starts with a status line, and the path decoder's output re-encodes to a
 * path that decodes to the same segments. */

static inline void fuzz_check_path(const char *data, size_t size)
{
    char path[512];
    if (size > sizeof(path) - 1)
        size = sizeof(path) - 1;
    path[0] = '/';
    memcpy(path + 1, data, size > 0 ? size - 1 : 0);
    size_t len = size > 0 ? size : 1;
    char out[513];
    const char *segs[257];
    size_t lens[257];
    size_t n;
    if (fdt__http_path_split(path, len, out, segs, lens, len / 2 + 1, &n) != 0)
        return;
    char again[4 * 512];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0 || memchr(segs[i], '/', lens[i]) || memchr(segs[i], 0, lens[i]) ||
            (lens[i] == 1 && segs[i][0] == '.') ||
            (lens[i] == 2 && segs[i][0] == '.' && segs[i][1] == '.'))
            abort();
        again[o++] = '/';
        o += fdt__http_segment_encode(segs[i], lens[i], again + o, sizeof(again) - o);
    }
    if (o == 0)
        again[o++] = '/';
    char out2[4 * 512 + 1];
    const char *segs2[257];
    size_t lens2[257];
    size_t n2;
    if (fdt__http_path_split(again, o, out2, segs2, lens2, 257, &n2) != 0 || n2 != n)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (lens2[i] != lens[i] || memcmp(segs2[i], segs[i], lens[i]) != 0)
            abort();
    }
}

static inline void fuzz_one(const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    unsigned mode = data[0];
    data++;
    size--;
    fuzz_check_path((const char *)data, size);
    struct harness h;
    harness_init(&h, 512, 256);
    h.draining = (mode & 0x80) != 0;
    /* /upload and /ignore stream their bodies: they read the rest of each piece, then find
     * the socket empty (408). */
    h.srv.stream_body = true;
    t_json_errors = (mode & 0x40) != 0;
    size_t piece = (mode & 0x3f) == 0 ? size : (mode & 0x3f);
    size_t off = 0;
    while (off < size && !h.closed) {
        size_t n = size - off < piece ? size - off : piece;
        size_t before = h.in.len;
        harness_send(&h, (const char *)data + off, n);
        if (h.in.len > before + n)
            abort();
        off += n;
    }
    if (!h.closed && (mode & 0x20))
        fdt__http_session_timeout(&h.s);
    const char *out = harness_out(&h);
    if (h.out.len > 0 && strncmp(out, "HTTP/1.1 ", 9) != 0)
        abort();
    harness_deinit(&h);
    t_json_errors = 0;
}

#endif

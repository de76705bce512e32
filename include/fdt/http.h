/* HTTP/1.1 applications: requests, responses, and routing by traversal (as in Pyramid).
 *
 * An application serves HTTP by pointing `struct fdt_app.http` at a `struct fdt_http_app`:
 *
 *     static const struct fdt_http_resource_type root_type = {
 *         .abi_version = FDT_HTTP_ABI_VERSION, .size = sizeof(root_type), .name = "root",
 *     };
 *     static int hello(struct fdt_http_request *req, struct fdt_http_resource *context)
 *     {
 *         return fdt_http_respond(req, 200, "text/plain", "Hello, world!\n", 14);
 *     }
 *     static const struct fdt_http_view views[] = {
 *         {.type = &root_type, .name = "", .method = "GET", .fn = hello},
 *     };
 *     static const struct fdt_http_app http = {
 *         .abi_version = FDT_HTTP_ABI_VERSION, .size = sizeof(http),
 *         .root_type = &root_type, .views = views, .n_views = 1,
 *     };
 *
 * How a request is routed (docs/http.md has the details):
 *  1. The path is split on '/', each segment percent-decoded; empty segments and "." are
 *     dropped, ".." removes the segment before it (above the root: 400). A bad escape, or a
 *     decoded NUL or '/' inside a segment, is a 400.
 *  2. Traversal starts at the root resource and calls the current resource type's getitem
 *     with each segment in turn. When getitem says FDT_ENOENT (or the type has no getitem,
 *     or a segment starts with "@@"), traversal stops: the current resource is the
 *     *context*, that segment is the *view name*, and the segments after it are the
 *     *subpath*. A path fully consumed leaves the view name "".
 *  3. The view is looked up by (context type, view name, method). None for (type, name):
 *     404. Some, but none for the method: 405 with an Allow header. A view for GET also
 *     answers HEAD (the body is not sent). A subpath is accepted only by a view with
 *     FDT_HTTP_VIEW_SUBPATH, otherwise it is a 404.
 *
 * Lifetimes: a request, its resources and everything allocated with fdt_http_alloc() live
 * until the view returns (and the response is finished). Strings returned by accessors are
 * NUL-terminated and borrowed for that long.
 *
 * Threads: a request is handled entirely on the application thread that runs its
 * connection; every function here must be called on that thread, from the view, getitem or
 * the error view, before it returns. A view may block (sleep, a database call): it holds
 * only its own thread. */
#ifndef FDT_HTTP_H
#define FDT_HTTP_H

#include <fdt/common.h>
#include <fdt/conn.h>
#include <fdt/error.h>
#include <fdt/txn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FDT_HTTP_ABI_VERSION 1

/* One HTTP request and its response. Opaque; owned by the framework. */
struct fdt_http_request;
/* A node of the resource tree. Opaque; made with fdt_http_resource_new(). */
struct fdt_http_resource;
struct fdt_http_resource_type;

/* Resolve one path segment below parent. On success store the child (made with
 * fdt_http_resource_new(req, parent, ...)) in *child and return 0. Return FDT_ENOENT when
 * parent has no such key (traversal stops there, see above); any other negative code makes
 * the request a 500. key is decoded, NUL-terminated, never empty, never "." or "..", and
 * contains neither NUL nor '/'. Thread: the request's. */
typedef int (*fdt_http_getitem_fn)(struct fdt_http_request *req, struct fdt_http_resource *parent,
                                   const char *key, size_t key_len,
                                   struct fdt_http_resource **child);

/* A kind of resource (Pyramid: a resource class). Filled by the application, usually a
 * static const; the framework only reads it. */
struct fdt_http_resource_type {
    uint32_t abi_version; /* FDT_HTTP_ABI_VERSION */
    uint32_t size;        /* sizeof(struct fdt_http_resource_type) */
    const char *name;     /* for logs and error messages */
    /* Children by key; NULL for a leaf (traversal stops at it). */
    fdt_http_getitem_fn getitem;
    void *reserved[4];
};

/* A view: answers a request for a context. It must answer with fdt_http_respond(),
 * fdt_http_error() or the streaming calls before it returns; a view that returns without
 * answering gets a 500 sent for it, and a stream left open is finished for it. A negative
 * return with nothing sent yet is a 500 too. Thread: the request's. */
typedef int (*fdt_http_view_fn)(struct fdt_http_request *req, struct fdt_http_resource *context);

/* The view accepts a subpath (segments left after the view name), see fdt_http_subpath(). */
#define FDT_HTTP_VIEW_SUBPATH 0x1u
/* The view answers every view name (its name is ignored): a catch-all for its type, tried
 * after the views whose name matches. With FDT_HTTP_VIEW_SUBPATH it takes every path that
 * reaches its type (the Python WSGI host uses it: one view for the whole application). */
#define FDT_HTTP_VIEW_ANY_NAME 0x2u
/* The view reads the request body itself, as it arrives, with fdt_http_read_body(),
 * instead of the framework reading it whole before the view runs (uploads larger than
 * memory should hold, or consumed as they come). Such a view is found when the request's
 * head is complete: for an application that has one, traversal runs before the body is
 * read (for every request with a body). fdt_http_body() is then "" for it. A body the
 * view leaves unread costs the connection: the response carries Connection: close unless
 * the rest of the body had already arrived (up to 64 KiB more are read ahead for that).
 * After a conflict (see fdt_http_txn) the view runs again and reads its body from the
 * start, if it had read at most 1 MiB of it (kept for that); otherwise the request ends
 * with the 503 of exhausted runs. The Python WSGI host uses it for wsgi.input. */
#define FDT_HTTP_VIEW_STREAM_BODY 0x4u

/* One entry of the view table. */
struct fdt_http_view {
    /* Context type the view is for; NULL: any type (used when no view of the exact type
     * has this name). */
    const struct fdt_http_resource_type *type;
    const char *name;   /* view name; "" (or NULL) is the resource's default view */
    const char *method; /* "GET", "POST", ...; NULL: any method */
    fdt_http_view_fn fn;
    unsigned flags; /* FDT_HTTP_VIEW_* */
    void *reserved[2];
};

/* Renders the framework's own error responses (400, 404, 405, 408, 413, 417, 431, 500,
 * 501, 505) and fdt_http_error(), e.g. as JSON. It should answer with fdt_http_respond()
 * using the status it is given; if it does not answer, the framework sends its plain-text
 * default. message is a short fixed English sentence (never client data).
 * For an error found while the request was being read (400, 408, 413, 417, 431, 501, 505)
 * the request is incomplete: method and path may be "", there are no headers and no body,
 * and the connection is closed after the response. Thread: the request's. */
typedef void (*fdt_http_error_view_fn)(struct fdt_http_request *req, int status,
                                       const char *message);

/* The HTTP side of an application (struct fdt_app.http). */
struct fdt_http_app {
    uint32_t abi_version; /* FDT_HTTP_ABI_VERSION */
    uint32_t size;        /* sizeof(struct fdt_http_app) */
    /* Type of the root resource. Required. */
    const struct fdt_http_resource_type *root_type;
    /* Data of the root resource for a request (Pyramid's root factory). May be NULL: the
     * root's data is then NULL. Thread: the request's. */
    void *(*root_data)(struct fdt_http_request *req);
    /* The view table, searched in order. */
    const struct fdt_http_view *views;
    size_t n_views;
    /* May be NULL: plain-text error responses. */
    fdt_http_error_view_fn error_view;
    void *reserved[8];
};

/* ---- Requests. All return values are borrowed until the view returns. ---- */

/* Method, upper case as sent ("GET"). */
FDT_API const char *fdt_http_method(const struct fdt_http_request *req);
/* The request target exactly as sent ("/a/b%20c?x=1"). */
FDT_API const char *fdt_http_target(const struct fdt_http_request *req);
/* The path part of the target, still percent-encoded ("/a/b%20c"). */
FDT_API const char *fdt_http_path(const struct fdt_http_request *req);
/* The query string after '?', not decoded; "" when there is none. */
FDT_API const char *fdt_http_query(const struct fdt_http_request *req);
/* 10 for HTTP/1.0, 11 for HTTP/1.1; 0 in an error view for a request line never read. */
FDT_API int fdt_http_version(const struct fdt_http_request *req);
/* Value of the first header called name (case-insensitive), or NULL. */
FDT_API const char *fdt_http_header(const struct fdt_http_request *req, const char *name);
/* Number of header lines, and the i-th of them (0 ≤ i < count) in the order received.
 * Returns 0, or FDT_EINVAL when i is out of range. */
FDT_API size_t fdt_http_header_count(const struct fdt_http_request *req);
FDT_API int fdt_http_header_at(const struct fdt_http_request *req, size_t i, const char **name,
                               const char **value);
/* The request body (Content-Length or chunked, at most [server] max_body_size bytes, also
 * NUL-terminated), its length in *len (may be NULL). Never NULL: "" when there is none,
 * and for a view with FDT_HTTP_VIEW_STREAM_BODY (it reads with fdt_http_read_body). */
FDT_API const char *fdt_http_body(const struct fdt_http_request *req, size_t *len);
/* Read up to n bytes of the request body into buf (the decoded body: chunked coding
 * removed). For a view with FDT_HTTP_VIEW_STREAM_BODY the bytes come from the client as
 * they arrive: the call waits for them (blocking the calling thread only) at most until
 * [server] body_timeout after the head was received, and sends "100 Continue" first to a
 * client that asked for it. For any other view it reads from the body the framework read
 * whole (fdt_http_body), from where the last call stopped.
 * Returns the number of bytes read (1..n), 0 at the end of the body (or n == 0), or a
 * negative code once the body cannot be read; the framework has then answered for the
 * view (unless it had already answered) and closes the connection after the response:
 * FDT_ELIMIT (the body is over [server] max_body_size: 413), FDT_ETIMEDOUT (body_timeout
 * passed: 408), FDT_EPROTO (malformed chunked coding: 400), FDT_ECLOSED (the client
 * closed the connection or it failed). The error is sticky: later calls return it again.
 * Thread: the request's. */
FDT_API long fdt_http_read_body(struct fdt_http_request *req, void *buf, size_t n);
/* The connection the request came on. */
FDT_API struct fdt_conn *fdt_http_conn(const struct fdt_http_request *req);

/* Traversal results: the root, the context, the view name, the subpath segments
 * (decoded). fdt_http_subpath() returns NULL when i ≥ fdt_http_subpath_count(). */
FDT_API struct fdt_http_resource *fdt_http_root(const struct fdt_http_request *req);
FDT_API struct fdt_http_resource *fdt_http_context(const struct fdt_http_request *req);
FDT_API const char *fdt_http_view_name(const struct fdt_http_request *req);
FDT_API size_t fdt_http_subpath_count(const struct fdt_http_request *req);
FDT_API const char *fdt_http_subpath(const struct fdt_http_request *req, size_t i);

/* size bytes (aligned for any type) that live until the request ends; NULL when out of
 * memory. Owned by the request: never free them. */
FDT_API void *fdt_http_alloc(struct fdt_http_request *req, size_t size);

/* ---- Resources ---- */

/* A resource called name (name_len bytes, copied) of type type under parent, carrying the
 * application's data (borrowed; the framework never frees it). It lives until the request
 * ends. parent NULL makes a new root (for building URLs only). NULL when out of memory or
 * when type has the wrong abi_version. */
FDT_API struct fdt_http_resource *fdt_http_resource_new(struct fdt_http_request *req,
                                                        struct fdt_http_resource *parent,
                                                        const struct fdt_http_resource_type *type,
                                                        const char *name, size_t name_len,
                                                        void *data);
FDT_API const struct fdt_http_resource_type *
fdt_http_resource_type(const struct fdt_http_resource *r);
/* NULL for the root. */
FDT_API struct fdt_http_resource *fdt_http_resource_parent(const struct fdt_http_resource *r);
/* The key under the parent ("" for the root), NUL-terminated; its length in *len (may be
 * NULL). */
FDT_API const char *fdt_http_resource_name(const struct fdt_http_resource *r, size_t *len);
FDT_API void *fdt_http_resource_data(const struct fdt_http_resource *r);

/* The absolute path of resource r with a trailing slash ("/" for the root,
 * "/accounts/a%20b/" below it), each name percent-encoded so that traversing the result
 * leads back to r. Written to buf (size bytes, NUL-terminated), the length without the NUL
 * in *len (may be NULL). Returns 0; FDT_ELIMIT when buf is too small (*len then says how
 * many bytes are needed, without the NUL); FDT_EINVAL when a name cannot come back through
 * traversal ("", ".", "..", or containing '/' or NUL). Thread: any. */
FDT_API int fdt_http_resource_url(const struct fdt_http_resource *r, char *buf, size_t size,
                                  size_t *len);

/* ---- Responses ----
 * The framework writes the status line and the Date, Server, Content-Length,
 * Transfer-Encoding and Connection headers. On HEAD requests and 204/304 responses no body
 * is sent. Each call returns 0 or a negative code: FDT_EINVAL (misuse: bad status, a
 * second response, a header after the head went out), FDT_ECLOSED (the client is gone),
 * FDT_ELIMIT (a response held back for the request's transaction over [server]
 * max_output), FDT_ENOMEM.
 *
 * Backpressure: what the client does not take at once is buffered, at most max_output per
 * connection and, for all the connections of a worker together, 8 x max_output. Beyond
 * that the call waits until the client has read (down to half of max_output), blocking
 * only the calling view's thread; a client that takes no byte for [server] idle_timeout
 * is cut off (the call returns FDT_ECLOSED). So a view may stream any amount to a slow
 * client, and a slow client costs the worker bounded memory. */

/* Add a response header (before the response starts). name must be a token and value must
 * not contain CR, LF or NUL. The framework's own headers are refused, except
 * "Connection: close", which closes the connection after this response. */
FDT_API int fdt_http_set_header(struct fdt_http_request *req, const char *name, const char *value);
/* The reason phrase of the status line ("HTTP/1.1 200 All good"), instead of the
 * framework's for the status code ("OK"). Before the response starts; copied. reason may
 * be "" (a status line with an empty phrase) and is at most 256 bytes of tab, space,
 * visible ASCII or bytes 0x80..0xff (RFC 9112 reason-phrase): no CR, LF or other control
 * characters. Returns 0, or FDT_EINVAL (after the head, or a phrase refused; nothing is
 * changed). Error responses the framework makes itself (fdt_http_error, 4xx/5xx it
 * sends) keep its own phrase. Thread: the request's. */
FDT_API int fdt_http_set_reason(struct fdt_http_request *req, const char *reason);
/* Answer with a whole body (len bytes, copied or sent before returning). status is
 * 200..599; content_type may be NULL (no Content-Type header). */
FDT_API int fdt_http_respond(struct fdt_http_request *req, int status, const char *content_type,
                             const void *body, size_t len);
/* Answer with len bytes of the open file fd, from offset, as the body (Content-Length:
 * len). The bytes go from the file to the socket with sendfile(2), without passing
 * through the worker's memory, unless the response is held back for the request's
 * transaction (then they are read and buffered like any body, within max_output). The
 * file stays the caller's (not closed, its offset unchanged). Returns as
 * fdt_http_respond() does, and also a negative errno or FDT_EPROTO when the file cannot
 * be read to the end (shorter than len): the response is then cut and the connection
 * closed. Waits for a slow client like the other calls. Thread: the request's. */
FDT_API int fdt_http_respond_file(struct fdt_http_request *req, int status,
                                  const char *content_type, int fd, int64_t offset, size_t len);
/* Answer with the framework's error response for status (4xx/5xx), rendered by the
 * application's error view if it has one. message: a short sentence for the client. */
FDT_API int fdt_http_error(struct fdt_http_request *req, int status, const char *message);
/* Start a streamed response: HTTP/1.1 clients get chunked transfer coding, HTTP/1.0
 * clients a body ended by closing the connection. */
FDT_API int fdt_http_begin(struct fdt_http_request *req, int status, const char *content_type);
/* Send len bytes of a streamed body (len 0 does nothing). May wait for a slow client (see
 * Backpressure above); FDT_ECLOSED once the client is gone: stop streaming. */
FDT_API int fdt_http_write_chunk(struct fdt_http_request *req, const void *data, size_t len);
/* End a streamed body. */
FDT_API int fdt_http_end(struct fdt_http_request *req);

/* ---- The request's transaction ----
 * Each request may have a root transaction (fdt/txn.h), begun by the first call of
 * fdt_http_txn(). When the view returns, the framework commits it if the response status
 * is 2xx or 3xx, and rolls it back otherwise, or when the client has gone (closed or
 * reset its connection) before the commit. Until then the response is held back, so the
 * client never sees an answer for work that did not commit: a failed commit replaces it
 * with a 500 (503 when conflicts persisted). A conflict (serialization failure, deadlock,
 * SQLite busy) rolls everything back and runs the view again, up to 5 runs in all; the
 * view must not have other side effects it cannot repeat. A streamed response commits at
 * fdt_http_begin(), before its head is sent. */

/* The request's transaction, begun on the first call (NULL with err set on failure, e.g.
 * when the connection already has a transaction the view began itself). Borrowed: the
 * framework ends it; a view may also end it itself with fdt_txn_commit()/abort(). */
FDT_API struct fdt_txn *fdt_http_txn(struct fdt_http_request *req, struct fdt_error *err);

/* The reason phrase of a status ("Not Found"), "Unknown" for codes it does not know.
 * Thread: any. */
FDT_API const char *fdt_http_reason(int status);

#endif

#include "fdt_config.h"

#include "http/http_int.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "util/util.h"

#include <fdt/error.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

/* One HTTP connection: feeds llhttp, applies the limits, answers each complete request in
 * order, and decides when the connection closes.
 *
 * Phases: IDLE (between requests) -> HEAD (first byte received; header_timeout runs) ->
 * BODY (headers accepted, a body announced; body_timeout runs) -> the request is answered
 * -> IDLE (keepalive_timeout runs) or CLOSED. Every refusal (400, 408, 413, 417, 431, 501,
 * 505) goes through fail(): the error response is sent and the connection closed, since
 * the rest of the input can no longer be trusted to be framed the way the client meant. */

void fdt__http_session_init(struct fdt__http_session *s, const struct fdt__http_server *srv,
                            const struct fdt__http_io *io, void *io_ctx, struct fdt_conn *conn)
{
    memset(s, 0, sizeof(*s));
    s->srv = srv;
    s->io = io;
    s->io_ctx = io_ctx;
    s->conn = conn;
    llhttp_init(&s->parser, HTTP_REQUEST, fdt__http_parser_settings());
    s->parser.data = s;
    s->req.s = s;
    /* What the head buffer keeps (target, names, values, one NUL each) is never more than
     * the raw head, which is limited to max_header_size. */
    fdt__buf_init(&s->req.head, srv->max_header_size + 1);
    fdt__buf_init(&s->req.headers,
                  (srv->max_header_size / 4 + 1) * sizeof(struct fdt__http_header));
    fdt__buf_init(&s->req.body, srv->max_body_size + 1);
    fdt__buf_init(&s->req.resp_headers, FDT__HTTP_RESP_HEADERS_MAX);
    fdt__buf_init(&s->held_out, srv->max_output ? srv->max_output : (size_t)1 << 30);
    fdt__http_request_reset(&s->req);
    s->phase = FDT__HTTP_IDLE;
    /* A new connection must send its first request within header_timeout. */
    io->set_deadline(io_ctx, fdt__now_ms() + srv->header_timeout_ms);
}

void fdt__http_session_deinit(struct fdt__http_session *s)
{
    fdt__http_request_reset(&s->req);
    fdt__buf_deinit(&s->held_out);
}

static void begin_request(struct fdt__http_session *s)
{
    s->phase = FDT__HTTP_HEAD;
    s->head_bytes = 0;
    s->version_len = 0;
    s->version_done = false;
    s->err_status = 0;
    s->err_msg = NULL;
    s->start_ns = fdt__now_ns();
    s->io->set_deadline(s->io_ctx, fdt__now_ms() + s->srv->header_timeout_ms);
}

/* A client's request id is used when it is 1 to 64 of [A-Za-z0-9-_.:], so that it can
 * neither forge log lines nor response headers. */
static bool request_id_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = v; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.' || ch == ':'))
            return false;
    }
    return true;
}

/* 16 hex digits, unique with overwhelming probability: each thread draws from its own
 * generator (splitmix64), seeded from getrandom once. */
static void generate_request_id(char *out, size_t size)
{
    static _Thread_local uint64_t state;
    static _Thread_local bool seeded;
    if (!seeded) {
        if (getrandom(&state, sizeof(state), 0) != (ssize_t)sizeof(state)) {
            /* GCOVR_EXCL_START: unreachable: getrandom(2) blocks until the kernel's pool is
             * ready, and then does not fail for 8 bytes */
            state = (uint64_t)fdt__now_ns() ^ ((uint64_t)getpid() << 32);
            /* GCOVR_EXCL_STOP */
        }
        seeded = true;
    }
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    snprintf(out, size, "%016llx", (unsigned long long)z);
}

/* The request's id (from the client's request_id_header when configured and well-formed,
 * else generated), made current for the error log lines of this thread. */
static void assign_request_id(struct fdt__http_session *s)
{
    struct fdt_http_request *req = &s->req;
    if (req->request_id[0])
        return;
    const char *v = NULL;
    if (s->srv->request_id_header && req->head_complete && !req->read_failed)
        v = fdt_http_header(req, s->srv->request_id_header);
    if (v && request_id_ok(v))
        fdt__strlcpy(req->request_id, v, sizeof(req->request_id));
    else
        generate_request_id(req->request_id, sizeof(req->request_id));
    fdt__log_set_request_id(req->request_id);
}

/* Requests the server answers itself, never reaching the application: GET /metrics on a
 * metrics listener, and [server] health_path. Returns true when it answered. */
static bool answer_builtin(struct fdt__http_session *s)
{
    const struct fdt__http_server *srv = s->srv;
    struct fdt_http_request *req = &s->req;
    if (srv->metrics_sb) {
        if (strcmp(req->path, "/metrics") != 0) {
            fdt__http_send_error(req, 404, "Only /metrics is served here.", false);
        } else if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
            fdt_http_set_header(req, "Allow", "GET, HEAD");
            fdt__http_send_error(req, 405, "Only GET and HEAD.", false);
        } else {
            struct fdt_buf b;
            fdt__buf_init(&b, (size_t)4 << 20);
            if (fdt__metrics_render(srv->metrics_sb, &b) < 0)
                fdt__http_send_error(req, 500, "The metrics could not be rendered.", false);
            else
                fdt_http_respond(req, 200, FDT_METRICS_CONTENT_TYPE, fdt__buf_head(&b), b.len);
            fdt__buf_deinit(&b);
        }
        return true;
    }
    if (srv->health_path && strcmp(req->path, srv->health_path) == 0) {
        bool stopping =
            s->io->stopping ? s->io->stopping(s->io_ctx) != 0 : s->io->draining(s->io_ctx) != 0;
        if (stopping)
            fdt_http_respond(req, 503, "text/plain; charset=utf-8", "stopping\n", 9);
        else
            fdt_http_respond(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
        return true;
    }
    return false;
}

/* The request has been answered: log it, count it, and close or wait for the next. */
static void end_request(struct fdt__http_session *s)
{
    struct fdt_http_request *req = &s->req;
    assign_request_id(s);
    if (s->srv->access_log_fd >= 0)
        fdt__http_access_log_write(s);
    fdt__log_set_request_id(NULL);
    s->io->request_done(s->io_ctx, req->status, (fdt__now_ns() - s->start_ns) / 1000);
    s->requests++;
    bool close = req->close_after;
    fdt__http_request_reset(req);
    if (close) {
        s->phase = FDT__HTTP_CLOSED;
        s->io->set_deadline(s->io_ctx, 0);
        s->io->close(s->io_ctx);
        return;
    }
    s->phase = FDT__HTTP_IDLE;
    s->io->set_deadline(s->io_ctx, fdt__now_ms() + s->srv->keepalive_timeout_ms);
}

/* Refuse the request being read: error response, then close. */
static void fail(struct fdt__http_session *s, int status, const char *msg)
{
    s->req.read_failed = true;
    if (s->io->linger)
        s->io->linger(s->io_ctx);
    s->io->set_deadline(s->io_ctx, 0);
    fdt__http_send_error(&s->req, status, msg, true);
    end_request(s);
}

/* Transfer codings other than chunked are not implemented (501); chunked twice is
 * malformed (400). Returns 0 or the status. */
static int check_transfer_encoding(struct fdt_http_request *req, const char **msg)
{
    int chunked = 0;
    size_t n = fdt_http_header_count(req);
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        fdt_http_header_at(req, i, &name, &value);
        if (strcasecmp(name, "Transfer-Encoding") != 0)
            continue;
        const char *p = value;
        while (*p) {
            while (*p == ' ' || *p == '\t' || *p == ',')
                p++;
            const char *start = p;
            while (*p && *p != ',')
                p++;
            const char *end = p;
            while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            if (end == start)
                continue;
            if ((size_t)(end - start) != 7 || strncasecmp(start, "chunked", 7) != 0) {
                *msg = "Only the chunked transfer coding is supported.";
                return 501;
            }
            chunked++;
        }
    }
    if (chunked != 1) {
        *msg = "The Transfer-Encoding header is invalid.";
        return 400;
    }
    return 0;
}

/* Traverse and find the view now, at the head (the application has views that stream
 * their body). Returns true when the view wants its body streamed. The result is kept
 * for the first run of the view, a traversal failure included (the application's getitem
 * runs once per request); dispatch answers a failure, or a path no view matches. */
static bool route_early(struct fdt__http_session *s)
{
    struct fdt_http_request *req = &s->req;
    const struct fdt_http_app *app = s->srv->app;
    if (strcmp(req->path, "*") == 0)
        return false;
    const char *msg = NULL;
    req->routed = true;
    req->view = NULL;
    req->route_status = fdt__http_traverse(req, app, &msg);
    req->route_msg = msg;
    if (req->route_status)
        return false;
    char allow[256];
    int st = 0;
    req->view = fdt__http_view_find(app, req->context->type, req->view_name, req->method,
                                    req->n_subpath > 0, allow, sizeof(allow), &st);
    return req->view && (req->view->flags & FDT_HTTP_VIEW_STREAM_BODY) != 0;
}

/* The head is complete: check it, then get ready for the body. Returns 0 or the status
 * that refuses the request, with *msg set. */
static int accept_head(struct fdt__http_session *s, const char **msg)
{
    struct fdt_http_request *req = &s->req;
    const llhttp_t *p = &s->parser;
    if (s->head_bytes > s->srv->max_header_size) {
        *msg = "The request line and headers are too large.";
        return 431;
    }
    int st = fdt__http_request_finish_head(req);
    if (st) {
        *msg = st == 400 ? "The request target is malformed." : "The server is out of memory.";
        return st;
    }
    if (req->version != 10 && req->version != 11) {
        *msg = "Only HTTP/1.0 and HTTP/1.1 are supported.";
        return 505;
    }
    int hosts = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *name;
        fdt_http_header_at(req, i, &name, NULL);
        if (strcasecmp(name, "Host") == 0)
            hosts++;
    }
    if (hosts > 1 || (req->version == 11 && hosts == 0)) {
        *msg = "An HTTP/1.1 request must have exactly one Host header.";
        return 400;
    }
    if (p->flags & F_TRANSFER_ENCODING) {
        st = check_transfer_encoding(req, msg);
        if (st)
            return st;
    }
    bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    if (has_length && p->content_length > s->srv->max_body_size) {
        *msg = "The request body is too large.";
        return 413;
    }
    const char *expect = fdt_http_header(req, "Expect");
    if (expect) {
        if (strcasecmp(expect, "100-continue") != 0) {
            *msg = "The only expectation supported is 100-continue.";
            return 417;
        }
        req->expect_continue = req->version == 11;
    }
    bool has_body = (p->flags & F_CHUNKED) || (has_length && p->content_length > 0);
    if (!has_body)
        return 0;
    s->phase = FDT__HTTP_BODY;
    s->body_deadline_ms = fdt__now_ms() + s->srv->body_timeout_ms;
    s->io->set_deadline(s->io_ctx, s->body_deadline_ms);
    if (s->srv->stream_body && route_early(s)) {
        /* The view reads the body itself (http_body.c); "100 Continue" waits for its
         * first read. */
        req->stream_body = true;
        req->keep_alive = llhttp_should_keep_alive(p) != 0;
        return 0;
    }
    if (has_length) {
        /* Room for the whole body and its NUL at once: no copying as it grows. */
        size_t room;
        int rc;
        if (!fdt__buf_reserve(&req->body, (size_t)p->content_length + 1, &room, &rc)) {
            *msg = "The server is out of memory.";
            return 503;
        }
    }
    if (req->expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        s->io->write(s->io_ctx, cont, sizeof(cont) - 1);
    }
    return 0;
}

/* Whether llhttp refused the version itself, not the request line around it: a version
 * made of a digit, a dot and a digit ("HTTP/1.2", "HTTP/3.0") that llhttp does not speak.
 * "HTTP/1.1 junk", "HTTP/1.x" or "HTTP/11" are malformed request lines instead (400). */
static bool version_unsupported(const struct fdt__http_session *s)
{
    const char *v = s->version_text;
    return !s->version_done && s->version_len == 3 && v[0] >= '0' && v[0] <= '9' && v[1] == '.' &&
           v[2] >= '0' && v[2] <= '9';
}

/* The status for a parser error that no callback chose. */
static int parse_error_status(const struct fdt__http_session *s, llhttp_errno_t e, const char **msg)
{
    switch (e) {
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        *msg = "Content-Length is repeated or comes with Transfer-Encoding.";
        return 400;
    case HPE_INVALID_CONTENT_LENGTH:
        *msg = "The Content-Length header is invalid.";
        return 400;
    case HPE_INVALID_TRANSFER_ENCODING:
        *msg = "The Transfer-Encoding header is invalid.";
        return 400;
    case HPE_INVALID_CHUNK_SIZE:
        *msg = "The chunked body is malformed.";
        return 400;
    case HPE_INVALID_VERSION:
        if (!version_unsupported(s)) {
            *msg = "The request line is malformed.";
            return 400;
        }
        *msg = "Only HTTP/1.0 and HTTP/1.1 are supported.";
        return 505;
    case HPE_PAUSED_H2_UPGRADE:
        *msg = "Only HTTP/1.0 and HTTP/1.1 are supported.";
        return 505;
    case HPE_INVALID_METHOD:
        *msg = "The request method is malformed or unknown.";
        return 400;
    default:
        *msg = "The request is malformed.";
        return 400;
    }
}

/* Route the request and run its view (once). */
static void run_view(struct fdt__http_session *s)
{
    struct fdt_http_request *req = &s->req;
    const struct fdt_http_app *app = s->srv->app;
    if (strcmp(req->path, "*") == 0) {
        /* OPTIONS * asks about the server as a whole. */
        fdt_http_respond(req, 204, NULL, NULL, 0);
        return;
    }
    const char *msg = NULL;
    int st = 0;
    char allow[256];
    const struct fdt_http_view *v = req->view;
    bool again = !req->routed || req->attempt > 1;
    if (again) {
        st = fdt__http_traverse(req, app, &msg);
    } else {
        st = req->route_status;
        msg = req->route_msg;
    }
    if (st) {
        fdt__http_send_error(req, st, msg, false);
        return;
    }
    /* Finding the view is a table look-up: done again for the status and Allow list of a
     * path that no view matched at the head. */
    if (again || !v)
        v = fdt__http_view_find(app, req->context->type, req->view_name, req->method,
                                req->n_subpath > 0, allow, sizeof(allow), &st);
    if (!v && st == 405) {
        fdt_http_set_header(req, "Allow", allow);
        fdt__http_send_error(req, 405, "The resource does not allow this method.", false);
    } else if (!v) {
        fdt__http_send_error(req, 404, "No resource or view matches the path.", false);
    } else if (v->fn(req, req->context) < 0 && !req->status) {
        fdt__http_send_error(req, 500, "The view failed.", false);
    }
}

/* Run the complete request: the view, then its transaction (committed or rolled back by
 * the status, the view run again after a conflict), then the held-back response. */
static void dispatch(struct fdt__http_session *s)
{
    struct fdt_http_request *req = &s->req;
    s->io->set_deadline(s->io_ctx, 0);
    assign_request_id(s);
    if (!req->stream_body && req->body.len > 0 && fdt__buf_append(&req->body, "", 1) < 0) {
        fail(s, 503, "The server is out of memory.");
        return;
    }
    if (answer_builtin(s)) {
        fdt__http_response_complete(req);
        end_request(s);
        return;
    }
    for (req->attempt = 1;; req->attempt++) {
        run_view(s);
        fdt__http_response_complete(req);
        /* A view that took more of its streamed body than was kept cannot run again. */
        bool may_retry = !req->stream_body || !req->replay_lost;
        if (!req->txn || fdt__http_txn_settle(req, may_retry) == 0)
            break;
        fdt__http_body_rewind(req);
    }
    if (req->stream_body && !req->body_done) {
        /* The rest of the body is still coming (the response said Connection: close):
         * drop it while the response goes out, then close. */
        req->close_after = true;
        if (s->io->linger)
            s->io->linger(s->io_ctx);
    }
    if (s->held_out.len) {
        s->io->write(s->io_ctx, fdt__buf_head(&s->held_out), s->held_out.len);
        fdt__buf_consume(&s->held_out, s->held_out.len);
        fdt__buf_shrink(&s->held_out, 16384);
    }
    end_request(s);
}

long fdt__http_session_feed(struct fdt__http_session *s, const char *buf, size_t len)
{
    if (s->phase == FDT__HTTP_CLOSED || len == 0)
        return (long)len;
    const char *p = buf;
    const char *end = buf + len;
    if (s->phase == FDT__HTTP_IDLE)
        begin_request(s);
    for (;;) {
        s->pause = FDT__HTTP_PAUSE_NONE;
        llhttp_errno_t e = llhttp_execute(&s->parser, p, (size_t)(end - p));
        if (e == HPE_OK) {
            if (s->phase == FDT__HTTP_HEAD) {
                s->head_bytes += (size_t)(end - p);
                if (s->head_bytes > s->srv->max_header_size) {
                    fail(s, 431, "The request line and headers are too large.");
                    return (long)len;
                }
            }
            break;
        }
        if (e == HPE_PAUSED && s->pause != FDT__HTTP_PAUSE_NONE) {
            const char *pos = llhttp_get_error_pos(&s->parser);
            llhttp_resume(&s->parser);
            if (s->pause == FDT__HTTP_PAUSE_HEADERS) {
                if (s->phase == FDT__HTTP_HEAD)
                    s->head_bytes += (size_t)(pos - p);
                p = pos;
                const char *msg = NULL;
                int st = accept_head(s, &msg);
                if (st) {
                    fail(s, st, msg);
                    return (long)len;
                }
                if (s->req.stream_body) {
                    /* The view runs now and reads the body from the rest of this input,
                     * then from the socket (http_body.c). */
                    s->feed_p = p;
                    s->feed_end = end;
                    dispatch(s);
                    p = s->feed_p;
                    s->feed_p = s->feed_end = NULL;
                    return s->phase == FDT__HTTP_CLOSED ? (long)len : (long)(p - buf);
                }
                continue;
            }
            p = pos;
            s->req.keep_alive = llhttp_should_keep_alive(&s->parser) != 0;
            dispatch(s);
            return s->phase == FDT__HTTP_CLOSED ? (long)len : (long)(p - buf);
        }
        const char *msg = s->err_msg;
        int st = s->err_status;
        if (!st)
            st = parse_error_status(s, e, &msg);
        fail(s, st, msg);
        return (long)len;
    }
    /* The request is not complete: everything was parsed, and what is kept of it has been
     * copied, so the connection's input buffer keeps nothing. */
    return (long)len;
}

bool fdt__http_session_idle(const struct fdt__http_session *s)
{
    return s->phase == FDT__HTTP_IDLE || s->phase == FDT__HTTP_CLOSED;
}

void fdt__http_session_timeout(struct fdt__http_session *s)
{
    if (s->phase == FDT__HTTP_HEAD || s->phase == FDT__HTTP_BODY) {
        fail(s, 408, "The client took too long to send its request.");
        return;
    }
    /* Idle: a keep-alive connection (or one that never sent anything) is closed quietly. */
    s->phase = FDT__HTTP_CLOSED;
}

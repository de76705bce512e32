#include "fdt_config.h"

#include "http/http_int.h"

#include <errno.h>
#include <fdt/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Responses: the status line and the framework's headers are written here and nowhere
 * else. A response head and a small body go out in one write (one packet with
 * TCP_NODELAY); bigger bodies follow the head in a second write. */

/* Head and body together up to this size are copied into one buffer. */
#define COALESCE_MAX 16384

static _Thread_local char t_out[COALESCE_MAX];

const char *fdt_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 418:
        return "I'm a Teapot";
    case 422:
        return "Unprocessable Content";
    case 425:
        return "Too Early";
    case 426:
        return "Upgrade Required";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static int out_write(struct fdt_http_request *req, const void *buf, size_t len)
{
    struct fdt__http_session *s = req->s;
    if (len == 0)
        return 0;
    if (req->txn && fdt__http_txn_open(req)) {
        /* Held back until the transaction ends (http_txn.c). */
        if (len > s->held_out.max - s->held_out.len) {
            req->held_overflow = true;
            return FDT_ELIMIT;
        }
        int rc = fdt__buf_append(&s->held_out, buf, len);
        if (rc < 0)
            req->held_nomem = true; /* the answer is incomplete: its work must not commit */
        return rc;
    }
    return s->io->write(s->io_ctx, buf, len);
}

void fdt__http_response_reset(struct fdt_http_request *req)
{
    struct fdt__http_session *s = req->s;
    fdt__buf_consume(&s->held_out, s->held_out.len);
    fdt__buf_consume(&req->resp_headers, req->resp_headers.len);
    req->status = 0;
    req->streaming = false;
    req->chunked = false;
    req->finished = false;
    req->close_after = false;
    req->held_overflow = false;
    req->held_nomem = false;
    req->body_sent = 0;
    req->reason = NULL;
}

static bool is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

int fdt_http_set_header(struct fdt_http_request *req, const char *name, const char *value)
{
    if (req->status || !name || !value || !*name)
        return FDT_EINVAL;
    for (const char *p = name; *p; p++) {
        if (!is_tchar((unsigned char)*p))
            return FDT_EINVAL;
    }
    for (const char *p = value; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return FDT_EINVAL;
    }
    if (strcasecmp(name, "Connection") == 0) {
        if (strcasecmp(value, "close") != 0)
            return FDT_EINVAL;
        req->close_after = true;
        return 0;
    }
    static const char *const reserved[] = {
        "Date", "Server", "Content-Length", "Transfer-Encoding", "Keep-Alive", "Upgrade"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcasecmp(name, reserved[i]) == 0)
            return FDT_EINVAL;
    }
    size_t nlen = strlen(name);
    size_t vlen = strlen(value);
    if (nlen + vlen + 4 > req->resp_headers.max - req->resp_headers.len)
        return FDT_ELIMIT;
    int rc = fdt__buf_append(&req->resp_headers, name, nlen);
    if (rc == 0)
        rc = fdt__buf_append(&req->resp_headers, ": ", 2);
    if (rc == 0)
        rc = fdt__buf_append(&req->resp_headers, value, vlen);
    if (rc == 0)
        rc = fdt__buf_append(&req->resp_headers, "\r\n", 2);
    return rc;
}

#define REASON_MAX 256

int fdt_http_set_reason(struct fdt_http_request *req, const char *reason)
{
    if (req->status || !reason)
        return FDT_EINVAL;
    size_t n = strlen(reason);
    if (n > REASON_MAX)
        return FDT_EINVAL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)reason[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return FDT_EINVAL;
    }
    char *copy = fdt__http_arena_alloc(&req->arena, n + 1);
    if (!copy)
        return FDT_ENOMEM;
    memcpy(copy, reason, n + 1);
    req->reason = copy;
    return 0;
}

/* Whether the connection closes after this response. */
static bool closes_after(struct fdt_http_request *req)
{
    struct fdt__http_session *s = req->s;
    if (req->close_after || req->read_failed || !req->keep_alive || req->upgrade)
        return true;
    /* A streamed body not received to its end: the rest cannot be told from the next
     * request without reading it, so the connection ends with this response. */
    if (!fdt__http_body_settle(req))
        return true;
    if (s->io->draining(s->io_ctx))
        return true;
    return false;
}

/* Format the head into out (size bytes). Returns its length, or the length it would need
 * when that is more than size. content_length < 0: streamed. */
static size_t format_head(struct fdt_http_request *req, char *out, size_t size, int status,
                          const char *content_type, long long content_length)
{
    char fixed[512 + REASON_MAX];
    const char *reason = req->reason ? req->reason : fdt_http_reason(status);
    int n = snprintf(fixed, sizeof(fixed), "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: fdtserver\r\n",
                     status, reason, fdt__http_date_now());
    size_t used = (size_t)n;
    if (content_length >= 0 && status != 204 && status != 304)
        used += (size_t)snprintf(fixed + used, sizeof(fixed) - used, "Content-Length: %lld\r\n",
                                 content_length);
    if (content_length < 0 && req->chunked)
        used +=
            (size_t)snprintf(fixed + used, sizeof(fixed) - used, "Transfer-Encoding: chunked\r\n");
    if (req->close_after)
        used += (size_t)snprintf(fixed + used, sizeof(fixed) - used, "Connection: close\r\n");
    else if (req->version == 10)
        used += (size_t)snprintf(fixed + used, sizeof(fixed) - used, "Connection: keep-alive\r\n");
    if (!req->close_after && req->s->srv->keepalive_advertised_s > 0)
        used += (size_t)snprintf(fixed + used, sizeof(fixed) - used, "Keep-Alive: timeout=%d\r\n",
                                 req->s->srv->keepalive_advertised_s);
    if (req->s->srv->request_id_header && req->request_id[0])
        used += (size_t)snprintf(fixed + used, sizeof(fixed) - used, "%s: %s\r\n",
                                 req->s->srv->request_id_header, req->request_id);
    size_t ct_len = content_type ? strlen(content_type) : 0;
    size_t total = used + (content_type ? 14 + ct_len + 2 : 0) + req->resp_headers.len + 2;
    if (total > size)
        return total;
    memcpy(out, fixed, used);
    if (content_type) {
        memcpy(out + used, "Content-Type: ", 14);
        memcpy(out + used + 14, content_type, ct_len);
        memcpy(out + used + 14 + ct_len, "\r\n", 2);
        used += 14 + ct_len + 2;
    }
    if (req->resp_headers.len) {
        memcpy(out + used, fdt__buf_head(&req->resp_headers), req->resp_headers.len);
        used += req->resp_headers.len;
    }
    memcpy(out + used, "\r\n", 2);
    return used + 2;
}

static bool valid_content_type(const char *ct)
{
    if (!ct)
        return true;
    for (const char *p = ct; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

/* Send the head, and body (len bytes) if it is given; one write when it all fits. */
static int send_head(struct fdt_http_request *req, int status, const char *content_type,
                     long long content_length, const void *body, size_t len)
{
    req->status = status;
    req->close_after = closes_after(req);
    size_t hlen = format_head(req, t_out, sizeof(t_out), status, content_type, content_length);
    if (hlen <= sizeof(t_out)) {
        if (len <= sizeof(t_out) - hlen) {
            if (len)
                memcpy(t_out + hlen, body, len);
            return out_write(req, t_out, hlen + len);
        }
        int rc = out_write(req, t_out, hlen);
        return rc < 0 ? rc : out_write(req, body, len);
    }
    char *big = malloc(hlen);
    if (!big) {
        /* Nothing went out: the view may answer otherwise, or the framework does (without
         * this the request counted as answered and the client waited for nothing). */
        req->status = 0;
        return FDT_ENOMEM;
    }
    format_head(req, big, hlen, status, content_type, content_length);
    int rc = out_write(req, big, hlen);
    free(big);
    return rc < 0 ? rc : out_write(req, body, len);
}

static bool body_allowed(const struct fdt_http_request *req, int status)
{
    return !req->is_head && status != 204 && status != 304;
}

int fdt_http_respond(struct fdt_http_request *req, int status, const char *content_type,
                     const void *body, size_t len)
{
    if (req->status || status < 200 || status > 599 || !valid_content_type(content_type) ||
        (len && !body))
        return FDT_EINVAL;
    bool send_body = body_allowed(req, status);
    req->finished = true;
    req->body_sent = send_body ? len : 0;
    return send_head(req, status, content_type, (long long)len, body, send_body ? len : 0);
}

int fdt_http_respond_file(struct fdt_http_request *req, int status, const char *content_type,
                          int fd, int64_t offset, size_t len)
{
    if (req->status || status < 200 || status > 599 || !valid_content_type(content_type) ||
        fd < 0 || offset < 0)
        return FDT_EINVAL;
    struct fdt__http_session *s = req->s;
    bool send_body = body_allowed(req, status);
    req->finished = true;
    req->body_sent = send_body ? len : 0;
    int rc = send_head(req, status, content_type, (long long)len, NULL, 0);
    if (rc < 0 || !send_body || len == 0)
        return rc;
    bool held = req->txn && fdt__http_txn_open(req);
    if (!held && s->io->sendfile) {
        rc = s->io->sendfile(s->io_ctx, fd, offset, len);
        if (rc < 0)
            req->close_after = true;
        return rc;
    }
    /* Held back, or no sendfile: read and write in blocks. */
    while (len > 0) {
        size_t want = len < sizeof(t_out) ? len : sizeof(t_out);
        ssize_t n = pread(fd, t_out, want, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue; /* GCOVR_EXCL_LINE: unreachable: pread works only on seekable files,
                         which signals do not interrupt */
        if (n <= 0) {
            /* Content-Length promised more: the client must see a cut response. */
            req->close_after = true;
            return n < 0 ? -errno : FDT_EPROTO;
        }
        rc = out_write(req, t_out, (size_t)n);
        if (rc < 0) {
            req->close_after = true;
            return rc;
        }
        offset += n;
        len -= (size_t)n;
    }
    return 0;
}

int fdt_http_begin(struct fdt_http_request *req, int status, const char *content_type)
{
    if (req->status || status < 200 || status > 599 || !valid_content_type(content_type))
        return FDT_EINVAL;
    if (req->txn && fdt__http_txn_open(req)) {
        /* A stream cannot be held back: the transaction ends before the head goes out. */
        req->status = status;
        fdt__http_txn_settle(req, false);
        if (req->finished)
            return req->status == 499 ? FDT_ECLOSED : FDT_ETXNSTATE;
        req->status = 0;
    }
    req->streaming = true;
    if (status == 204 || status == 304) {
        req->chunked = false;
    } else if (req->version >= 11) {
        req->chunked = true;
    } else {
        /* HTTP/1.0 has no chunked coding: the end of the body is the end of the
         * connection. */
        req->close_after = true;
    }
    return send_head(req, status, content_type, -1, NULL, 0);
}

int fdt_http_write_chunk(struct fdt_http_request *req, const void *data, size_t len)
{
    if (!req->streaming || req->finished || (len && !data))
        return FDT_EINVAL;
    if (len == 0 || !body_allowed(req, req->status))
        return 0;
    req->body_sent += len;
    if (!req->chunked)
        return out_write(req, data, len);
    char size_line[24];
    int n = snprintf(size_line, sizeof(size_line), "%zx\r\n", len);
    if (len <= sizeof(t_out) - (size_t)n - 2) {
        memcpy(t_out, size_line, (size_t)n);
        memcpy(t_out + n, data, len);
        memcpy(t_out + (size_t)n + len, "\r\n", 2);
        return out_write(req, t_out, (size_t)n + len + 2);
    }
    int rc = out_write(req, size_line, (size_t)n);
    if (rc == 0)
        rc = out_write(req, data, len);
    if (rc == 0)
        rc = out_write(req, "\r\n", 2);
    return rc;
}

int fdt_http_end(struct fdt_http_request *req)
{
    if (!req->streaming || req->finished)
        return FDT_EINVAL;
    req->finished = true;
    if (!req->chunked || !body_allowed(req, req->status))
        return 0;
    return out_write(req, "0\r\n\r\n", 5);
}

static void send_default_error(struct fdt_http_request *req, int status, const char *msg)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "%d %s\n%s%s", status, fdt_http_reason(status),
                     msg ? msg : "", msg ? "\n" : "");
    if (n < 0)
        n = 0; /* GCOVR_EXCL_LINE: unreachable: snprintf of %d and %s does not fail */
    if ((size_t)n >= sizeof(body))
        n = (int)sizeof(body) - 1;
    fdt_http_respond(req, status, "text/plain; charset=utf-8", body, (size_t)n);
}

void fdt__http_send_error(struct fdt_http_request *req, int status, const char *msg,
                          bool close_after)
{
    if (close_after)
        req->close_after = true;
    if (!req->status)
        req->reason = NULL; /* the framework's answer, with its own phrase */
    if (req->status) {
        /* Too late for an error response: the client sees a cut response. */
        req->close_after = true;
        req->finished = true;
        return;
    }
    const struct fdt_http_app *app = req->s->srv->app;
    if (app && app->error_view && !req->in_error_view) {
        req->in_error_view = true;
        app->error_view(req, status, msg);
        req->in_error_view = false;
        if (req->streaming && !req->finished)
            fdt_http_end(req);
    }
    if (!req->status)
        send_default_error(req, status, msg);
}

int fdt_http_error(struct fdt_http_request *req, int status, const char *message)
{
    if (req->status || status < 400 || status > 599)
        return FDT_EINVAL;
    fdt__http_send_error(req, status, message, false);
    return 0;
}

void fdt__http_response_complete(struct fdt_http_request *req)
{
    if (!req->status) {
        fdt__http_send_error(req, 500, "The view sent no response.", false);
        return;
    }
    if (req->streaming && !req->finished)
        fdt_http_end(req);
}

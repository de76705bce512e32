#include "fdt_config.h"

#include "http/http_int.h"

#include <fdt/error.h>
#include <string.h>

/* Request bodies read by the view (fdt_http_read_body). For a view with
 * FDT_HTTP_VIEW_STREAM_BODY the session runs the view as soon as the head is accepted,
 * from inside fdt__http_session_feed; the body is then parsed on demand, on the view's
 * thread: first from the rest of the input that call was given (s->feed_p), then from
 * the socket (io->read). llhttp decodes it into req->body, which holds what was decoded
 * and not yet handed to the view: at most one read's worth (RAW_MAX), plus the read-ahead
 * of fdt__http_body_settle.
 *
 * No byte beyond the body is ever taken from the socket, so a pipelined request that
 * follows stays there for the connection: a Content-Length body is read for exactly its
 * remaining length, and a chunked body, whose end only the parser can see, is peeked at
 * and then only the bytes the parser consumed are read. */

#define RAW_MAX 65536

/* Read-ahead for a body the view left unread when its response starts. */
#define SETTLE_MAX 65536

static _Thread_local char t_raw[RAW_MAX];

/* The body cannot be read (code): answer with status unless the view has answered, and
 * close the connection after the response. Returns code. */
static int body_fail(struct fdt__http_session *s, int code, int status, const char *msg)
{
    struct fdt_http_request *req = &s->req;
    req->body_error = code;
    if (s->io->linger)
        s->io->linger(s->io_ctx);
    if (!req->status && status)
        fdt__http_send_error(req, status, msg, true);
    req->close_after = true;
    return code;
}

/* The parser refused the body (status chosen by a callback, or from llhttp's error). */
static int parse_fail(struct fdt__http_session *s, llhttp_errno_t e)
{
    int status = s->err_status;
    const char *msg = s->err_msg;
    if (!status) {
        status = 400;
        msg = e == HPE_INVALID_CHUNK_SIZE ? "The chunked body is malformed."
                                          : "The request body is malformed.";
    }
    int code = status == 413 || status == 431 ? FDT_ELIMIT
               : status == 503                ? FDT_ENOMEM
                                              : FDT_EPROTO;
    return body_fail(s, code, status, msg);
}

/* Parse more of the body into req->body. wait: wait for the client until the body's
 * deadline (and send "100 Continue" first if it was asked for); otherwise take only what
 * has arrived. Returns 1 when input was parsed, 0 when none was there (not waiting), or
 * the error (body_fail has run). */
static int pull(struct fdt__http_session *s, bool wait)
{
    struct fdt_http_request *req = &s->req;
    const char *raw;
    size_t n;
    bool from_feed = s->feed_p && s->feed_p < s->feed_end;
    bool peek = false;
    if (from_feed) {
        raw = s->feed_p;
        n = (size_t)(s->feed_end - s->feed_p);
    } else {
        if (!s->io->read)
            return body_fail(s, FDT_ECLOSED, 0, NULL);
        if (wait && req->expect_continue && !req->continue_sent && !req->status) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            req->continue_sent = true;
            if (s->io->write(s->io_ctx, cont, sizeof(cont) - 1) < 0)
                return body_fail(s, FDT_ECLOSED, 0, NULL);
        }
        size_t want = RAW_MAX;
        if (s->parser.flags & F_CHUNKED) {
            peek = true;
        } else if (s->parser.content_length < want) {
            want = (size_t)s->parser.content_length;
        }
        if (want == 0) {
            /* GCOVR_EXCL_START: unreachable: llhttp ends the message with the last byte of a
             * Content-Length body. Peek, so that nothing beyond it is taken. */
            want = RAW_MAX;
            peek = true;
            /* GCOVR_EXCL_STOP */
        }
        long r = s->io->read(s->io_ctx, t_raw, want, peek, wait ? s->body_deadline_ms : 0);
        if (r == FDT_EAGAIN)
            return 0;
        if (r == FDT_ETIMEDOUT)
            return body_fail(s, FDT_ETIMEDOUT, 408,
                             "The client took too long to send its request.");
        if (r <= 0)
            return body_fail(s, FDT_ECLOSED, 0, NULL); /* EOF mid-body, or a failed socket */
        raw = t_raw;
        n = (size_t)r;
    }
    s->pause = FDT__HTTP_PAUSE_NONE;
    llhttp_errno_t e = llhttp_execute(&s->parser, raw, n);
    size_t used = n;
    if (e == HPE_PAUSED && s->pause == FDT__HTTP_PAUSE_MESSAGE) {
        used = (size_t)(llhttp_get_error_pos(&s->parser) - raw);
        llhttp_resume(&s->parser);
        req->body_done = true;
        req->keep_alive = llhttp_should_keep_alive(&s->parser) != 0;
    } else if (e != HPE_OK) {
        return parse_fail(s, e);
    }
    if (from_feed) {
        s->feed_p += used;
    } else if (peek) {
        /* Take from the socket exactly what the parser consumed (it is there: peeked). */
        long r = s->io->read(s->io_ctx, t_raw, used, false, 0);
        if (r != (long)used)
            return body_fail(s, FDT_ECLOSED, 0, NULL); /* GCOVR_EXCL_LINE: unreachable: the
                                                           bytes were just peeked, only this
                                                           thread reads the socket */
    }
    return 1;
}

/* Keep what the view was handed (k bytes at p), so that it can run again after a
 * conflict, as long as the whole fits in replay_max. */
static void keep_for_replay(struct fdt_http_request *req, const void *p, size_t k)
{
    if (req->replay_lost)
        return;
    size_t max = req->s->srv->replay_max;
    if (k > max - req->replay.len || fdt__buf_append(&req->replay, p, k) < 0) {
        req->replay_lost = true;
        fdt__buf_deinit(&req->replay);
    }
    req->replay_off = req->replay.len;
}

bool fdt__http_body_rewind(struct fdt_http_request *req)
{
    if (!req->stream_body) {
        req->body_off = 0;
        return true;
    }
    if (req->replay_lost)
        return false;
    req->replay_off = 0;
    return true;
}

long fdt_http_read_body(struct fdt_http_request *req, void *buf, size_t n)
{
    if (n == 0)
        return 0;
    if (!req->stream_body) {
        size_t len;
        const char *b = fdt_http_body(req, &len);
        if (req->body_off >= len)
            return 0;
        size_t k = len - req->body_off < n ? len - req->body_off : n;
        memcpy(buf, b + req->body_off, k);
        req->body_off += k;
        return (long)k;
    }
    struct fdt__http_session *s = req->s;
    if (req->replay_off < req->replay.len) {
        /* The view runs again: what it was handed before comes first. */
        size_t k = req->replay.len - req->replay_off < n ? req->replay.len - req->replay_off : n;
        memcpy(buf, fdt__buf_head(&req->replay) + req->replay_off, k);
        req->replay_off += k;
        return (long)k;
    }
    for (;;) {
        if (req->body.len > 0) {
            size_t k = req->body.len < n ? req->body.len : n;
            memcpy(buf, fdt__buf_head(&req->body), k);
            fdt__buf_consume(&req->body, k);
            req->body_given += k;
            keep_for_replay(req, buf, k);
            return (long)k;
        }
        if (req->body_error)
            return req->body_error;
        if (req->body_done)
            return 0;
        int rc = pull(s, true);
        if (rc < 0)
            return rc;
    }
}

bool fdt__http_body_settle(struct fdt_http_request *req)
{
    if (!req->stream_body || req->body_done)
        return true;
    while (!req->body_error && !req->body_done && req->body.len < SETTLE_MAX) {
        if (pull(req->s, false) <= 0)
            break;
    }
    return req->body_done;
}

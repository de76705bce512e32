/* Private to the HTTP module: the per-connection session (llhttp glue, limits, state
 * machine), the request object behind the public accessors, and the pure helpers (path
 * decoding, traversal, response heads, dates) that unit tests and the fuzz target drive
 * without a real connection.
 *
 * A session knows nothing of struct fdt_conn: it talks to its connection through a small
 * vtable (struct fdt__http_io), which http_proto.c binds to the real connection and tests
 * bind to a capture buffer. */
#ifndef FDT_SRC_HTTP_INT_H
#define FDT_SRC_HTTP_INT_H

#include "proc/proc.h"
#include "util/buf.h"

#include <fdt/http.h>
#include <llhttp.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* ---- Arena: request-scoped memory, freed all at once. ---- */

struct fdt__http_arena_block;

struct fdt__http_arena {
    struct fdt__http_arena_block *head; /* newest block first */
};

/* size bytes aligned to 16, or NULL when out of memory. */
void *fdt__http_arena_alloc(struct fdt__http_arena *a, size_t size);
/* Free every block. The arena stays usable. */
void fdt__http_arena_clear(struct fdt__http_arena *a);

/* ---- What a worker's HTTP listeners share (read-only once set up). ---- */

struct fdt__http_server {
    const struct fdt_http_app *app;
    size_t max_header_size;
    size_t max_body_size;
    int64_t header_timeout_ms;
    int64_t body_timeout_ms;
    int64_t keepalive_timeout_ms;
    /* Keep-Alive: timeout=N on responses that keep the connection (0: not sent): one second
     * under both keepalive_timeout and graceful_timeout, so that a client that honours it
     * never reuses a connection the server may close, even while the worker drains. */
    int keepalive_advertised_s;
    bool stream_body; /* some view has FDT_HTTP_VIEW_STREAM_BODY: route at the head */
    /* A streamed body's bytes kept, up to this many, to run the view again after a
     * conflict (FDT__HTTP_REPLAY_MAX; tests set less). */
    size_t replay_max;
    size_t max_output;           /* response bytes held back until the request's transaction ends */
    int access_log_fd;           /* -1: no access log */
    const char *access_log_path; /* for reopening (borrowed from the configuration) */
    bool access_log_json;        /* [server] log_format = json */
    const char *health_path;     /* answered by the server itself; NULL: none */
    const char *request_id_header; /* accepted from clients and sent back; NULL: neither */
    /* A metrics listener's server: no application; GET /metrics renders these. */
    const struct fdt_scoreboard *metrics_sb;
};

/* Check an application's HTTP descriptor. Returns 0, or FDT_EINVAL with a reason. */
int fdt__http_app_check(const struct fdt_http_app *app, char *reason, size_t rsize);

/* ---- The connection as a session sees it. ---- */

struct fdt__http_io {
    /* Queue bytes for the client. Returns 0 or a negative code (see fdt_conn_write). */
    int (*write)(void *ctx, const void *buf, size_t len);
    /* Close once the output is flushed. */
    void (*close)(void *ctx);
    /* Arm (monotonic ms) or clear (0) the connection's deadline. */
    void (*set_deadline)(void *ctx, int64_t deadline_ms);
    /* Nonzero while the worker drains (graceful stop or reload). */
    int (*draining)(void *ctx);
    /* Nonzero while the server stops (a drain with no successor: not a reload). May be
     * NULL: then draining() is asked. */
    int (*stopping)(void *ctx);
    /* One request answered with status, duration_us after its first byte (for the
     * scoreboard and the metrics). */
    void (*request_done)(void *ctx, int status, int64_t duration_us);
    /* The client's address for the access log ("-" when unknown). */
    void (*peer)(void *ctx, char *buf, size_t size);
    /* Nonzero when the client has closed its side or reset the connection. */
    int (*peer_gone)(void *ctx);
    /* Close lingering: the rest of a refused request may still be on its way. May be
     * NULL. */
    void (*linger)(void *ctx);
    /* Read up to len bytes of input (peek: leave them to be read again), waiting until
     * deadline_ms (0: not at all). Returns bytes, 0 at EOF, or FDT_EAGAIN, FDT_ETIMEDOUT,
     * FDT_ECLOSED (see fdt__conn_read_wait). Used only while a view streams its body
     * (FDT_HTTP_VIEW_STREAM_BODY); may be NULL (such a body then ends in FDT_ECLOSED). */
    long (*read)(void *ctx, void *buf, size_t len, bool peek, int64_t deadline_ms);
    /* Send len bytes of the file fd from offset after the queued output (sendfile(2)).
     * Returns 0 or a negative code (see fdt__conn_sendfile_wait). May be NULL: the file is
     * then read and written in blocks. */
    int (*sendfile)(void *ctx, int fd, int64_t offset, size_t len);
};

/* ---- Requests. ---- */

/* Bytes of response headers an application may add with fdt_http_set_header(). */
#define FDT__HTTP_RESP_HEADERS_MAX 65536

/* A header line: offsets into the request's head buffer. */
struct fdt__http_header {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
};

struct fdt_http_resource {
    const struct fdt_http_resource_type *type;
    struct fdt_http_resource *parent;
    const char *name;
    size_t name_len;
    void *data;
};

struct fdt__http_session;

struct fdt_http_request {
    struct fdt__http_session *s;
    struct fdt__http_arena arena;

    /* The head as received: the target, header names and values, each NUL-terminated.
     * Offsets stay valid while it grows; pointers are taken once the head is complete. */
    struct fdt_buf head;
    struct fdt_buf headers; /* struct fdt__http_header[] */
    size_t n_headers;
    int part; /* what the parser is inside: see http_parse.c */
    uint32_t target_off, target_len;
    const char *method; /* static string from llhttp, "" before it is known */
    int version;        /* 10, 11, 0 before it is known */
    bool head_complete; /* accessors may read the head */
    bool expect_continue;
    bool upgrade;       /* Upgrade or CONNECT: answered, then the connection closes */
    bool is_head;       /* HEAD: no body in the response */
    bool keep_alive;    /* llhttp's verdict at the end of the message */
    bool read_failed;   /* refused while reading: head and body are not usable */
    const char *target; /* resolved when the head is complete */
    const char *path;   /* in the arena */
    const char *query;

    /* Body. Read whole before the view runs, or, for a view with
     * FDT_HTTP_VIEW_STREAM_BODY (stream_body), read by the view as it arrives: body then
     * holds what was decoded and not yet handed to the view (http_body.c). */
    struct fdt_buf body;
    size_t body_off;       /* fdt_http_read_body's position in a whole body */
    uint64_t body_total;   /* body bytes decoded so far (streamed) */
    uint64_t body_given;   /* body bytes handed to the view (streamed) */
    struct fdt_buf replay; /* what was handed, kept for a run after a conflict (streamed) */
    size_t replay_off;     /* where the view reads in replay on such a run */
    bool replay_lost;      /* more was handed than replay keeps: the view cannot run again */
    int body_error;        /* sticky FDT_E* once a streamed body cannot be read */
    bool stream_body;      /* the view reads the body as it arrives */
    bool body_done;        /* the whole message (body, trailers) has been parsed */
    bool continue_sent;    /* "100 Continue" went out */
    bool routed;           /* traversal and view lookup were done at the head */
    const struct fdt_http_view *view; /* the view found at the head (routed) */
    int route_status;                 /* traversal failed at the head (routed): its status ... */
    const char *route_msg;            /* ... and message, answered by dispatch */

    /* Traversal. */
    struct fdt_http_resource root_storage;
    struct fdt_http_resource *root;
    struct fdt_http_resource *context;
    const char *view_name;
    const char **subpath;
    size_t n_subpath;

    /* Response. */
    struct fdt_buf resp_headers; /* "Name: value\r\n" lines from fdt_http_set_header */
    const char *reason;          /* fdt_http_set_reason (arena), NULL: the framework's */
    int status;                  /* 0 until the head is sent */
    bool streaming;              /* between fdt_http_begin and fdt_http_end */
    bool chunked;                /* streamed with chunked coding */
    bool finished;               /* the response is complete */
    bool close_after;            /* close the connection after this response */
    bool in_error_view;
    uint64_t body_sent; /* body bytes, for the access log */

    /* The request's root transaction (fdt_http_txn), NULL when it has none. While it is
     * open the response is held in the session's held buffer, sent only once the
     * transaction has committed or rolled back. */
    struct fdt_txn *txn;
    bool held_overflow;      /* the held response outgrew max_output: it cannot be sent */
    bool held_nomem;         /* ... or memory ran out while holding it */
    const char *txn_outcome; /* for the access log: NULL (none), "committed", ... */
    char request_id[65];     /* from the client's request_id_header, or generated */
    int attempt;             /* 1, 2, ...: runs of the view (conflicts make it run again) */
};

/* ---- The session: one per connection. ---- */

enum fdt__http_phase {
    FDT__HTTP_IDLE = 0,  /* between requests: nothing of the next one received */
    FDT__HTTP_HEAD = 1,  /* reading the request line and headers */
    FDT__HTTP_BODY = 2,  /* reading the body */
    FDT__HTTP_CLOSED = 3 /* closing: input is ignored */
};

enum fdt__http_pause {
    FDT__HTTP_PAUSE_NONE = 0,
    FDT__HTTP_PAUSE_HEADERS = 1,
    FDT__HTTP_PAUSE_MESSAGE = 2,
};

struct fdt__http_session {
    llhttp_t parser;
    const struct fdt__http_server *srv;
    const struct fdt__http_io *io;
    void *io_ctx;
    struct fdt_conn *conn; /* for fdt_http_conn(); NULL in tests */

    enum fdt__http_phase phase;
    enum fdt__http_pause pause;
    size_t head_bytes;    /* raw bytes of the current request's head so far */
    char version_text[3]; /* the request line's version ("1.1"), as far as it came */
    uint8_t version_len;  /* its length (saturating) */
    bool version_done;    /* llhttp accepted the version (0.9, 1.x, 2.0) */
    int err_status;       /* set by a parser callback that refuses the request */
    const char *err_msg;
    int64_t start_ns; /* first byte of the current request */
    uint64_t requests;
    bool have_peer;
    char peer[64]; /* client address for the access log, fetched once */

    /* While a view streams its body from inside fdt__http_session_feed: the input of that
     * call not parsed yet (read before the socket), and the body's deadline. */
    const char *feed_p, *feed_end;
    int64_t body_deadline_ms;

    struct fdt_http_request req;
    struct fdt_buf held_out; /* response bytes held back until the transaction ends */
};

/* Initialise a session for a new connection; arms the first deadline. */
void fdt__http_session_init(struct fdt__http_session *s, const struct fdt__http_server *srv,
                            const struct fdt__http_io *io, void *io_ctx, struct fdt_conn *conn);
/* Release everything the session holds. */
void fdt__http_session_deinit(struct fdt__http_session *s);
/* Bytes arrived: parse them, answer complete requests (at most one per call, so that
 * pipelined requests are answered in order). Returns the bytes consumed: up to the end of
 * the request just answered, or all of them (an incomplete request is parsed and what is
 * kept of it copied, so nothing is left in the connection's input buffer). */
long fdt__http_session_feed(struct fdt__http_session *s, const char *buf, size_t len);
/* True between requests: no byte of the next request received and no answer being made
 * (or the session is closing). A draining worker closes the connection only then
 * (struct fdt_proto.idle). */
bool fdt__http_session_idle(const struct fdt__http_session *s);
/* The deadline passed: 408 if a request was in progress; then the caller closes. */
void fdt__http_session_timeout(struct fdt__http_session *s);

/* llhttp settings shared by every session (http_parse.c). */
const llhttp_settings_t *fdt__http_parser_settings(void);
/* Forget the current request and release its buffers, keep the connection (http_parse.c). */
void fdt__http_request_reset(struct fdt_http_request *req);
/* Resolve target, path and query once the head is complete. Returns 0 or an HTTP status. */
int fdt__http_request_finish_head(struct fdt_http_request *req);

/* ---- Streamed bodies (http_body.c). ---- */

/* Before a response head goes out for a streamed body not read to its end: read ahead what
 * has already arrived (without waiting, at most 64 KiB more) so that the connection can
 * stay open when the rest of the body is there. Returns true when the whole body has been
 * received (the response may keep the connection). */
bool fdt__http_body_settle(struct fdt_http_request *req);
/* Bytes of a streamed body kept for running the view again (per request). */
#define FDT__HTTP_REPLAY_MAX ((size_t)1 << 20)
/* The view runs again (a conflict): fdt_http_read_body starts over from the body's first
 * byte. Returns false when it cannot (a streamed body of which more than replay_max bytes
 * were handed out: they are gone). */
bool fdt__http_body_rewind(struct fdt_http_request *req);

/* ---- Paths (http_path.c). ---- */

/* Split the raw path (len bytes, starting with '/') into decoded segments. out must hold
 * len + 1 bytes: the segments are decoded into it, each NUL-terminated; segs[i] points at
 * them and seg_lens[i] gives their lengths (both arrays hold max_segs entries; len / 2 + 1
 * is always enough). Empty segments and "." are dropped, ".." removes the segment before
 * it. Returns 0; FDT_EPROTO for a bad %-escape, a decoded NUL or '/', a control character,
 * or ".." above the root; FDT_ELIMIT when there are more than max_segs segments. */
int fdt__http_path_split(const char *path, size_t len, char *out, const char **segs,
                         size_t *seg_lens, size_t max_segs, size_t *n_segs);
/* Percent-encode one segment: everything but ALPHA, DIGIT and "-._~" becomes %XX.
 * Writes up to size bytes of out; returns the encoded length (which may exceed size). */
size_t fdt__http_segment_encode(const char *in, size_t len, char *out, size_t size);

/* ---- Traversal (http_traverse.c). ---- */

/* Traverse req's path from the root. Returns 0, or an HTTP status (400 bad path, 500
 * getitem failed or out of memory) with *msg set. */
int fdt__http_traverse(struct fdt_http_request *req, const struct fdt_http_app *app,
                       const char **msg);
/* The view for (type, name, method), or NULL with *status 404 or 405; for 405 the Allow
 * value ("GET, HEAD") is written to allow (size bytes). */
const struct fdt_http_view *fdt__http_view_find(const struct fdt_http_app *app,
                                                const struct fdt_http_resource_type *type,
                                                const char *name, const char *method,
                                                bool has_subpath, char *allow, size_t size,
                                                int *status);

/* ---- Responses (http_response.c, http_date.c). ---- */

/* Send the error response for status through the application's error view (or the
 * default); close_after closes the connection afterwards. */
void fdt__http_send_error(struct fdt_http_request *req, int status, const char *msg,
                          bool close_after);
/* Complete the response after the view returned: 500 if nothing was sent, end a stream. */
void fdt__http_response_complete(struct fdt_http_request *req);

/* Forget the response made so far (not sent yet: held back by a transaction). */
void fdt__http_response_reset(struct fdt_http_request *req);

/* ---- Request transactions (http_txn.c). ---- */

/* Views run at most this many times when their transaction conflicts. */
#define FDT__HTTP_TXN_ATTEMPTS 5

/* The request's transaction if it is still open (the view may have ended it). */
struct fdt_txn *fdt__http_txn_open(struct fdt_http_request *req);
/* End the request's transaction by the response's status: commit on 1xx-3xx (when the
 * client is still there), else roll back. Returns 1 when the view should run again (a
 * conflict, with attempts left: the response is then forgotten), else 0; a failed commit
 * replaces the held response with an error response. */
int fdt__http_txn_settle(struct fdt_http_request *req, bool may_retry);

/* Format t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"): 29 bytes + NUL. */
void fdt__http_date_format(time_t t, char out[30]);
/* The current date, cached per thread and second. */
const char *fdt__http_date_now(void);

/* ---- Access log (http_access_log.c). ---- */

/* Open path for appending (once per worker). Returns the fd or -errno. */
int fdt__http_access_log_open(const char *path);
/* Format one Common Log Format line plus the duration in µs into out (size bytes); returns
 * its length (with the newline). Pure, for tests. */
size_t fdt__http_access_log_format(char *out, size_t size, const char *peer, time_t when,
                                   const char *method, const char *target, int version, int status,
                                   uint64_t bytes, int64_t duration_us);
/* Write the line for the request just answered (one write(2)). */
void fdt__http_access_log_write(struct fdt__http_session *s);

#endif

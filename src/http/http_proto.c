#include "fdt_config.h"

#include "http/http.h"

#define FDT_LOG_MODULE "http"
#include "http/http_int.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fdt/log.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The HTTP protocol as the connection core sees it: a struct fdt_proto whose callbacks
 * hand each connection's bytes to its session (http_session.c).
 *
 * What the listeners of a worker share (the application, the limits, the access log) is
 * one struct fdt__http_server, the protocol's context, made on the worker's main thread
 * before the application threads start and only read afterwards. */

/* Responses are written by the thread running the view, which may wait for a slow client
 * (backpressure): the connection buffers at most max_output. */
static int io_write(void *ctx, const void *buf, size_t len)
{
    return fdt__conn_write_wait(ctx, buf, len);
}

static void io_close(void *ctx)
{
    fdt_conn_close(ctx);
}

static void io_set_deadline(void *ctx, int64_t deadline_ms)
{
    fdt__conn_set_deadline(ctx, deadline_ms);
}

static int io_draining(void *ctx)
{
    return fdt_conn_draining(ctx);
}

static int io_stopping(void *ctx)
{
    struct fdt_conn *c = ctx;
    return atomic_load(&c->loop->draining) && !atomic_load(&c->loop->retiring);
}

static void io_request_done(void *ctx, int status, int64_t duration_us)
{
    fdt__conn_request_end(ctx, fdt__metric_http_class(status), duration_us);
}

/* The client's address: "192.0.2.1", "2001:db8::1", or "unix" for a unix socket. */
static void io_peer(void *ctx, char *buf, size_t size)
{
    struct fdt_conn *c = ctx;
    const struct sockaddr_storage *local = NULL, *ss = NULL;
    snprintf(buf, size, "-");
    if (fdt__conn_addresses(c, &local, &ss) < 0)
        return;
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, (socklen_t)size);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, (socklen_t)size);
    else if (ss->ss_family == AF_UNIX)
        snprintf(buf, size, "unix");
}

static int io_peer_gone(void *ctx)
{
    struct fdt_conn *c = ctx;
    struct pollfd pfd = {.fd = c->fd, .events = POLLRDHUP};
    if (poll(&pfd, 1, 0) <= 0)
        return 0;
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static void io_linger(void *ctx)
{
    fdt__conn_linger(ctx);
}

static long io_read(void *ctx, void *buf, size_t len, bool peek, int64_t deadline_ms)
{
    return fdt__conn_read_wait(ctx, buf, len, peek, deadline_ms);
}

static int io_sendfile(void *ctx, int fd, int64_t offset, size_t len)
{
    return fdt__conn_sendfile_wait(ctx, fd, offset, len);
}

static const struct fdt__http_io conn_io = {
    .write = io_write,
    .close = io_close,
    .set_deadline = io_set_deadline,
    .draining = io_draining,
    .stopping = io_stopping,
    .request_done = io_request_done,
    .peer = io_peer,
    .peer_gone = io_peer_gone,
    .linger = io_linger,
    .read = io_read,
    .sendfile = io_sendfile,
};

static int http_open(struct fdt_conn *c)
{
    struct fdt__http_session *s = malloc(sizeof(*s));
    if (!s) {
        fdt_log(FDT_LOG_WARN, "conn=%llu out of memory: closed", (unsigned long long)c->id);
        return FDT_ENOMEM;
    }
    fdt__http_session_init(s, c->proto->ctx, &conn_io, c, c);
    c->proto_data = s;
    return 0;
}

static long http_data(struct fdt_conn *c, const char *buf, size_t len)
{
    return fdt__http_session_feed(c->proto_data, buf, len);
}

static bool http_idle(struct fdt_conn *c)
{
    return !c->proto_data || fdt__http_session_idle(c->proto_data);
}

static void http_timeout(struct fdt_conn *c)
{
    fdt__http_session_timeout(c->proto_data);
}

static void http_close(struct fdt_conn *c)
{
    struct fdt__http_session *s = c->proto_data;
    if (!s)
        return;
    fdt__http_session_deinit(s);
    free(s);
    c->proto_data = NULL;
}

/* Sent (with no request read) to a connection refused at max_connections. */
static const char busy_reply[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                 "Server: fdtserver\r\n"
                                 "Content-Type: text/plain; charset=utf-8\r\n"
                                 "Content-Length: 19\r\n"
                                 "Connection: close\r\n"
                                 "\r\n"
                                 "503 Server is busy\n";

/* Sent to a client that spoke plain HTTP to a TLS listener (nginx answers 400 too). */
static const char plain_on_tls_reply[] =
    "HTTP/1.1 400 Bad Request\r\n"
    "Server: fdtserver\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 62\r\n"
    "Connection: close\r\n"
    "\r\n"
    "400 The plain HTTP request was sent to a TLS port: use https.\n";

static int64_t seconds_to_ms(double s)
{
    int64_t ms = (int64_t)(s * 1000.0 + 0.5);
    return ms > 0 ? ms : 1;
}

static struct fdt__http_server *server_new(const struct fdt_cfg *cfg, char *reason, size_t rsize);

struct fdt__http_server *fdt__http_server_new(const struct fdt_app *app, const struct fdt_cfg *cfg,
                                              char *reason, size_t rsize)
{
    if (!app->http) {
        snprintf(reason, rsize,
                 "a listener has protocol http but the application has no HTTP side "
                 "(struct fdt_app.http is NULL)");
        return NULL;
    }
    if (fdt__http_app_check(app->http, reason, rsize) < 0)
        return NULL;
    struct fdt__http_server *srv = server_new(cfg, reason, rsize);
    if (!srv)
        return NULL;
    srv->app = app->http;
    for (size_t i = 0; i < app->http->n_views; i++) {
        if (app->http->views[i].flags & FDT_HTTP_VIEW_STREAM_BODY)
            srv->stream_body = true;
    }
    srv->health_path = cfg->health_path[0] ? cfg->health_path : NULL;
    srv->request_id_header = cfg->request_id_header[0] ? cfg->request_id_header : NULL;
    srv->access_log_json = cfg->log_format == FDT_LOG_FORMAT_JSON;
    if (cfg->access_log[0]) {
        int fd = fdt__http_access_log_open(cfg->access_log);
        if (fd < 0) {
            snprintf(reason, rsize, "access_log %s: %s", cfg->access_log, fdt_strerror(fd));
            free(srv);
            return NULL;
        }
        srv->access_log_fd = fd;
        srv->access_log_path = cfg->access_log;
    }
    return srv;
}

struct fdt__http_server *fdt__http_metrics_server_new(const struct fdt_cfg *cfg,
                                                      const struct fdt_scoreboard *sb, char *reason,
                                                      size_t rsize)
{
    struct fdt__http_server *srv = server_new(cfg, reason, rsize);
    if (srv)
        srv->metrics_sb = sb;
    return srv;
}

/* What every HTTP server takes from the configuration: limits and timeouts. */
static struct fdt__http_server *server_new(const struct fdt_cfg *cfg, char *reason, size_t rsize)
{
    struct fdt__http_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(reason, rsize, "out of memory");
        return NULL;
    }
    srv->replay_max = FDT__HTTP_REPLAY_MAX;
    srv->max_header_size = cfg->max_header_size;
    srv->max_body_size = cfg->max_body_size;
    srv->header_timeout_ms = seconds_to_ms(cfg->header_timeout);
    srv->body_timeout_ms = seconds_to_ms(cfg->body_timeout);
    srv->keepalive_timeout_ms =
        seconds_to_ms(cfg->keepalive_timeout > 0 ? cfg->keepalive_timeout : cfg->idle_timeout);
    double advertised = (double)srv->keepalive_timeout_ms / 1000.0;
    if (cfg->graceful_timeout < advertised)
        advertised = cfg->graceful_timeout;
    srv->keepalive_advertised_s = advertised >= 2.0 ? (int)advertised - 1 : 0;
    srv->max_output = cfg->max_output;
    srv->access_log_fd = -1;
    return srv;
}

void fdt__http_server_free(struct fdt__http_server *srv)
{
    if (!srv)
        return;
    if (srv->access_log_fd >= 0)
        close(srv->access_log_fd);
    free(srv);
}

void fdt__proto_http_init(struct fdt_proto *p, const struct fdt__http_server *srv)
{
    memset(p, 0, sizeof(*p));
    p->name = "http";
    p->ctx = srv;
    p->open = http_open;
    p->data = http_data;
    /* No overflow callback: the session consumes every byte it is offered (what it keeps of
     * a request it copies), so the connection's input buffer holds bytes only once the
     * connection is closing; the request limits answer 431 and 413 themselves. */
    p->close = http_close;
    p->timeout = http_timeout;
    p->idle = http_idle;
    p->counts_requests = true;
    p->metric_proto = srv->metrics_sb ? FDT_MPROTO_METRICS : FDT_MPROTO_HTTP;
    p->drain_keeps_idle = true;
    p->busy_reply = busy_reply;
    p->plain_on_tls_reply = plain_on_tls_reply;
}

int fdt__http_access_log_reopen(const struct fdt__http_server *srv)
{
    if (!srv || srv->access_log_fd < 0)
        return 0;
    int fd = fdt__http_access_log_open(srv->access_log_path);
    if (fd < 0)
        return fd;
    int rc = dup3(fd, srv->access_log_fd, O_CLOEXEC) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

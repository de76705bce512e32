#include "fdt_config.h"

#include "http/http_int.h"
#include "log/log.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The access log: one line per request in the Common Log Format, plus the time taken in
 * microseconds from the request's first byte to its last response byte queued:
 *
 *     127.0.0.1 - - [25/Nov/2025:10:00:00 +0000] "GET /a?b HTTP/1.1" 200 13 152
 *
 * Times are UTC, when the request's first byte arrived. Bytes are those of the response body ("-"
 * for none). Characters of the request line outside printable ASCII, '"' and '\' are written as
 * \xHH, so a client cannot forge lines or fields. Each line is one write(2) on an O_APPEND
 * descriptor, so lines of different threads and workers never interleave. */

int fdt__http_access_log_open(const char *path)
{
    /* Mode 0600 (0640 with a configured group), as the error log: see fdt__log_open_file. */
    return fdt__log_open_file(path, "access log");
}

/* Append s to out[*o..size), escaping what is not safe in a quoted field. */
static void put_escaped(char *out, size_t size, size_t *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            if (*o + 1 < size)
                out[(*o)++] = (char)ch;
            continue;
        }
        if (*o + 4 < size) {
            out[(*o)++] = '\\';
            out[(*o)++] = 'x';
            out[(*o)++] = hex[ch >> 4];
            out[(*o)++] = hex[ch & 15];
        }
    }
}

static void put(char *out, size_t size, size_t *o, const char *s)
{
    size_t n = strlen(s);
    if (n > size - 1 - *o)
        n = size - 1 - *o;
    memcpy(out + *o, s, n);
    *o += n;
}

size_t fdt__http_access_log_format(char *out, size_t size, const char *peer, time_t when,
                                   const char *method, const char *target, int version, int status,
                                   uint64_t bytes, int64_t duration_us)
{
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (size < 2)
        return 0;
    struct tm tm;
    gmtime_r(&when, &tm);
    size_t o = 0;
    char tmp[96];
    put_escaped(out, size, &o, peer && *peer ? peer : "-");
    snprintf(tmp, sizeof(tmp), " - - [%02d/%s/%04d:%02d:%02d:%02d +0000] \"", tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    put(out, size, &o, tmp);
    if (method && *method) {
        put_escaped(out, size, &o, method);
        put(out, size, &o, " ");
        put_escaped(out, size, &o, target && *target ? target : "-");
        snprintf(tmp, sizeof(tmp), " HTTP/%d.%d", version / 10, version % 10);
        put(out, size, &o, tmp);
    } else {
        put(out, size, &o, "-");
    }
    if (bytes)
        snprintf(tmp, sizeof(tmp), "\" %d %llu %lld\n", status, (unsigned long long)bytes,
                 (long long)duration_us);
    else
        snprintf(tmp, sizeof(tmp), "\" %d - %lld\n", status, (long long)duration_us);
    /* The tail always fits: cut the request line instead. */
    size_t tail = strlen(tmp);
    if (o + tail > size - 1)
        o = size - 1 > tail ? size - 1 - tail : 0;
    put(out, size, &o, tmp);
    out[o] = '\0';
    return o;
}

/* The JSON form ([server] log_format = json): one object per line with fixed keys, see
 * docs/operations.md ("Logging"). */
static size_t format_json(char *out, size_t size, const struct fdt__http_session *s, int64_t us)
{
    const struct fdt_http_request *req = &s->req;
    int64_t wall = fdt__wall_ms() - us / 1000; /* when the request's first byte arrived */
    time_t secs = (time_t)(wall / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t o =
        (size_t)snprintf(out, size,
                         "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"info\","
                         "\"pid\":%d,\"generation\":%u,\"request_id\":",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, (int)(wall % 1000), (int)getpid(), fdt__log_generation());
    /* Room for the fixed tail: the numbers and the transaction outcome. */
    size_t lim = size - 160;
    fdt__log_json_string(out, lim, &o, req->request_id);
    o += (size_t)snprintf(out + o, size - o, ",\"remote\":");
    fdt__log_json_string(out, lim, &o, s->peer[0] ? s->peer : "-");
    o += (size_t)snprintf(out + o, size - o, ",\"method\":");
    fdt__log_json_string(out, lim, &o, req->method && *req->method ? req->method : "-");
    o += (size_t)snprintf(out + o, size - o, ",\"path\":");
    fdt__log_json_string(out, lim, &o, req->target && *req->target ? req->target : "-");
    o += (size_t)snprintf(out + o, size - o,
                          ",\"status\":%d,\"bytes\":%llu,\"duration\":%.6f,\"txn\":", req->status,
                          (unsigned long long)req->body_sent, (double)us / 1e6);
    if (req->txn_outcome)
        o += (size_t)snprintf(out + o, size - o, "\"%s\"}\n", req->txn_outcome);
    else
        o += (size_t)snprintf(out + o, size - o, "null}\n");
    return o < size ? o : size - 1;
}

void fdt__http_access_log_write(struct fdt__http_session *s)
{
    const struct fdt_http_request *req = &s->req;
    if (!s->have_peer) {
        s->io->peer(s->io_ctx, s->peer, sizeof(s->peer));
        s->have_peer = true;
    }
    char line[2048];
    int64_t us = (fdt__now_ns() - s->start_ns) / 1000;
    /* The Common Log Format's time is when the request arrived. */
    time_t when = (time_t)((fdt__wall_ms() - us / 1000) / 1000);
    size_t n = s->srv->access_log_json
                   ? format_json(line, sizeof(line), s, us)
                   : fdt__http_access_log_format(line, sizeof(line), s->peer, when, req->method,
                                                 req->target, req->version, req->status,
                                                 req->body_sent, us);
    /* One write per line; a short write to a regular file only happens when the disk is
     * full, and then a cut line is the least of the problems. */
    (void)!write(s->srv->access_log_fd, line, n);
}

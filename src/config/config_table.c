#include "fdt_config.h"

/* The table of settings, and how its values are compared and written out. This file uses
 * only libc, so that the documentation generator (config_doc.c) can be built from it alone. */

#include "config/config_int.h"

#include <fdt/log.h>
#include <stdio.h>
#include <string.h>

#define FIELD_SIZE(type, f) sizeof(((type *)0)->f)
/* The key of these rows is the name of their field. */
#define SERVER(f)                                                                                  \
    .section = FDT__CFG_SERVER, .key = #f, .offset = offsetof(struct fdt_cfg, f),                  \
    .size = FIELD_SIZE(struct fdt_cfg, f)
#define LISTEN(f)                                                                                  \
    .section = FDT__CFG_LISTEN, .key = #f, .offset = offsetof(struct fdt_listen_cfg, f),           \
    .size = FIELD_SIZE(struct fdt_listen_cfg, f)
#define RESOURCE(f)                                                                                \
    .section = FDT__CFG_RESOURCE, .key = #f, .offset = offsetof(struct fdt_resource_cfg, f),       \
    .size = FIELD_SIZE(struct fdt_resource_cfg, f)

#define DAY 86400.0

static const struct fdt__cfg_choice log_levels[] = {
    {"error", FDT_LOG_ERROR}, {"warn", FDT_LOG_WARN},    {"info", FDT_LOG_INFO},
    {"debug", FDT_LOG_DEBUG}, {"warning", FDT_LOG_WARN}, {NULL, 0},
};
static const struct fdt__cfg_choice protocols[] = {{"http", FDT_PROTO_HTTP},
                                                   {"jsonrpc", FDT_PROTO_JSONRPC},
                                                   {"raw", FDT_PROTO_RAW},
                                                   {"metrics", FDT_PROTO_METRICS},
                                                   {NULL, 0}};
static const struct fdt__cfg_choice log_formats[] = {
    {"text", FDT_LOG_FORMAT_TEXT}, {"json", FDT_LOG_FORMAT_JSON}, {NULL, 0}};
static const struct fdt__cfg_choice verify_modes[] = {{"no", FDT_TLS_VERIFY_NO},
                                                      {"optional", FDT_TLS_VERIFY_OPTIONAL},
                                                      {"require", FDT_TLS_VERIFY_REQUIRE},
                                                      {NULL, 0}};
/* Protocol versions as TLS numbers them (0x0303 is TLS 1.2). */
static const struct fdt__cfg_choice tls_versions[] = {
    {"1.2", 0x0303}, {"1.3", 0x0304}, {"TLSv1.2", 0x0303}, {"TLSv1.3", 0x0304}, {NULL, 0}};
static const struct fdt__cfg_choice drivers[] = {{"postgresql", 0}, {"sqlite", 1}, {NULL, 0}};

const struct fdt__cfg_key fdt__cfg_keys[] = {
    /* [server]: processes and threads. */
    {SERVER(workers), .type = FDT__CFG_INT, .min = 0, .max = FDT_MAX_WORKERS, .zero = "one per CPU",
     .def.i = 0, .doc = "Worker processes."},
    {SERVER(threads), .type = FDT__CFG_INT, .min = 1, .max = FDT_MAX_THREADS, .def.i = 8,
     .doc = "Application threads in each worker."},
    {SERVER(pollers), .type = FDT__CFG_INT, .min = 0, .max = FDT_MAX_THREADS, .def.i = 1,
     .doc = "Application threads of a worker that wait for ready connections at once; the "
            "others wait their turn, which comes when one of these blocks (on its client or "
            "a database) or runs one connection for 2 ms. Fewer sleeping pollers: fewer "
            "wake-ups per request. 0: every thread polls."},
    {SERVER(graceful_timeout), .type = FDT__CFG_DOUBLE, .min = 0.001, .max = DAY, .def.d = 30,
     .doc = "A stopping worker waits this long for work in flight, then cuts it off."},
    {SERVER(worker_timeout), .type = FDT__CFG_DOUBLE, .min = 0.001, .max = DAY, .def.d = 30,
     .doc = "A worker that stops heart-beating this long (a thread stuck in application code) "
            "is killed and replaced."},
    {SERVER(ready_timeout), .type = FDT__CFG_DOUBLE, .min = 0.001, .max = DAY, .def.d = 30,
     .doc = "A new worker must load the application and start its threads within this."},
    {SERVER(idle_timeout), .type = FDT__CFG_DOUBLE, .min = 0.001, .max = DAY, .def.d = 60,
     .doc = "A connection silent this long is closed."},
    {SERVER(max_connections), .type = FDT__CFG_INT, .min = 1, .max = 1000000, .def.i = 1024,
     .doc = "Connections per worker; beyond it new connections are refused."},
    {SERVER(max_input), .type = FDT__CFG_SIZE, .min = 64, .max = 1 << 30, .def.z = 64 * 1024,
     .doc = "Bytes buffered per connection before the application consumes them."},
    {SERVER(max_output), .type = FDT__CFG_SIZE, .min = 64, .max = 1 << 30, .def.z = 8 * 1024 * 1024,
     .doc = "Bytes queued per connection for a slow reader; beyond it the connection is closed."},
    /* [server]: HTTP limits (docs/http.md). */
    {SERVER(max_header_size), .type = FDT__CFG_SIZE, .min = 256, .max = 1 << 20, .def.z = 16 * 1024,
     .doc = "HTTP request line and headers (and trailers); larger: 431."},
    {SERVER(max_body_size), .type = FDT__CFG_SIZE, .min = 0, .max = 1 << 30, .def.z = 1024 * 1024,
     .doc = "HTTP request body; larger: 413."},
    {SERVER(header_timeout), .type = FDT__CFG_DOUBLE, .min = 0.001, .max = DAY, .def.d = 10,
     .doc = "From a request's first byte to its last header; then 408."},
    {SERVER(body_timeout), .type = FDT__CFG_DOUBLE, .min = 0.001, .max = DAY, .def.d = 30,
     .doc = "From the end of the headers to the end of the body; then 408."},
    {SERVER(keepalive_timeout), .type = FDT__CFG_DOUBLE, .min = 0.001, .max = DAY, .def.d = 5,
     .doc = "An idle HTTP keep-alive connection is closed after this; responses advertise "
            "one second less (Keep-Alive: timeout=N), at most graceful_timeout - 1."},
    /* [server]: TCP keepalive probes on accepted TCP connections. Linux caps the idle time
     * and the interval at 32767 seconds and the count at 127. */
    {SERVER(tcp_keepalive), .type = FDT__CFG_BOOL, .def.b = true,
     .doc = "Send TCP keepalive probes on accepted TCP connections (SO_KEEPALIVE)."},
    {SERVER(tcp_keepidle), .type = FDT__CFG_INT, .min = 1, .max = 32767, .unit = "whole seconds",
     .def.i = 60, .doc = "Idle time before the first probe (TCP_KEEPIDLE)."},
    {SERVER(tcp_keepintvl), .type = FDT__CFG_INT, .min = 1, .max = 32767, .unit = "whole seconds",
     .def.i = 10, .doc = "Time between unanswered probes (TCP_KEEPINTVL)."},
    {SERVER(tcp_keepcnt), .type = FDT__CFG_INT, .min = 1, .max = 127, .def.i = 6,
     .doc = "Unanswered probes before the connection is dropped (TCP_KEEPCNT)."},
    /* [server]: files, identity, logs. */
    {SERVER(pid_file), .type = FDT__CFG_PATH,
     .doc = "File the master writes its pid to; empty: none."},
    {SERVER(control_socket), .type = FDT__CFG_PATH, .def.s = "fdtserver.ctl",
     .doc = "Unix socket for fdtctl (mode 0600)."},
    {SERVER(user), .type = FDT__CFG_STRING,
     .doc = "Workers drop to this user after fork; empty: stay."},
    {SERVER(group), .type = FDT__CFG_STRING, .doc = "Workers drop to this group after fork."},
    {SERVER(log_level), .type = FDT__CFG_ENUM, .choices = log_levels, .nocase = true,
     .def.i = FDT_LOG_INFO, .doc = "Least severe level logged."},
    {SERVER(error_log), .type = FDT__CFG_PATH, .doc = "Log file (appended); empty: stderr."},
    {SERVER(access_log), .type = FDT__CFG_PATH, .doc = "HTTP access log file; empty: none."},
    {SERVER(log_format), .type = FDT__CFG_ENUM, .choices = log_formats, .nocase = true,
     .def.i = FDT_LOG_FORMAT_TEXT,
     .doc = "Lines of the error log and the access log: text, or json (one JSON object per "
            "line, docs/operations.md)."},
    {SERVER(request_id_header), .type = FDT__CFG_STRING,
     .doc = "HTTP header carrying the request id (e.g. X-Request-Id): a client's value (1 to 64 "
            "letters, digits or -_.:) is used, else one is generated; the response carries it. "
            "Empty: ids are generated and only logged."},
    {SERVER(health_path), .type = FDT__CFG_STRING,
     .doc = "HTTP path (e.g. /healthz) answered by the server itself on every http listener, "
            "never by the application: 200 while serving, 503 once the server stops (a worker "
            "retired by a reload still answers 200: its successor serves). Empty: none."},
    /* [server]: worker recycling (docs/operations.md). */
    {SERVER(max_requests), .type = FDT__CFG_INT, .min = 0, .max = 2000000000, .zero = "never",
     .def.i = 0,
     .doc = "A worker that has served this many requests is replaced: a new worker starts and "
            "the old one drains once it is ready."},
    {SERVER(max_requests_jitter), .type = FDT__CFG_INT, .min = 0, .max = 2000000000, .def.i = 0,
     .doc = "Each worker adds a random 0 to this many to max_requests, so that workers are not "
            "all replaced at once."},
    {SERVER(max_worker_memory), .type = FDT__CFG_SIZE, .min = 0, .max = (size_t)1 << 50,
     .zero = "no limit", .def.z = 0,
     .doc = "A worker whose resident memory (RSS, checked every second) exceeds this is "
            "replaced as for max_requests."},
    /* [server]: transactions (docs/transactions.md). */
    {SERVER(node), .type = FDT__CFG_STRING, .min = 1, .name = true, .def.s = "node1",
     .doc = "Stable name of this host, part of every transaction id."},
    {SERVER(recovery_interval), .type = FDT__CFG_DOUBLE, .min = 0, .max = DAY, .zero = "never",
     .def.d = 30, .doc = "Time between recovery passes over in-doubt transactions."},
    {SERVER(recovery_grace), .type = FDT__CFG_DOUBLE, .min = 0, .max = DAY, .def.d = 10,
     .doc = "A prepared branch younger than this is in flight and left alone by recovery."},
    {SERVER(in_doubt_warn_age), .type = FDT__CFG_DOUBLE, .min = 0, .max = 1e9, .def.d = 3600,
     .doc = "Warn in the log about voted branches older than this."},
    {SERVER(transaction_timeout), .type = FDT__CFG_DOUBLE, .min = 0.001, .max = DAY, .def.d = 60,
     .doc = "An active transaction left idle this long is rolled back."},
    /* [listen.NAME]: one section per listener. */
    {LISTEN(address), .type = FDT__CFG_ADDRESS, .doc = "Where to listen (required)."},
    {LISTEN(protocol), .type = FDT__CFG_ENUM, .choices = protocols, .def.i = FDT_PROTO_HTTP,
     .doc = "Protocol spoken on the connections; raw is the application's own; metrics serves "
            "GET /metrics in the Prometheus text format (bind it to localhost)."},
    {LISTEN(reuseport), .type = FDT__CFG_BOOL,
     .doc = "One SO_REUSEPORT socket per worker instead of one shared socket (TCP only)."},
    {LISTEN(backlog), .type = FDT__CFG_INT, .min = 1, .max = 65535, .def.i = 1024,
     .doc = "Length of the accept queue."},
    {LISTEN(defer_accept), .type = FDT__CFG_INT, .min = 0, .max = 3600, .def.i = 0, .zero = "off",
     .doc = "TCP only: seconds the kernel holds a new connection until its client sends its "
            "first bytes (TCP_DEFER_ACCEPT, nginx's deferred): cheaper connections for "
            "protocols where the client speaks first (HTTP, JSON-RPC, TLS); a client that "
            "sends nothing is accepted only after about that long."},
    {LISTEN(txn_recovery), .type = FDT__CFG_BOOL,
     .doc = "JSON-RPC: answer txn.recover, txn.commit_prepared and txn.rollback_prepared. Off: "
            "whoever can connect could end another coordinator's in-doubt transaction; turn it "
            "on only for a listener that only coordinators reach (a unix socket, loopback)."},
    /* [listen.NAME]: TLS (docs/operations.md). */
    {LISTEN(tls), .type = FDT__CFG_BOOL,
     .doc = "Serve TLS on this listener (needs certificate and private_key)."},
    {LISTEN(certificate), .type = FDT__CFG_PATH,
     .doc = "PEM file: the server certificate followed by its intermediate certificates. Read by "
            "the master (before workers drop privileges) at start and at every reload."},
    {LISTEN(private_key), .type = FDT__CFG_PATH,
     .doc = "PEM file: the certificate's private key (it may be readable by root only). A key "
            "that does not match the certificate refuses the start or the reload."},
    {LISTEN(ca), .type = FDT__CFG_PATH,
     .doc = "PEM file of the CAs that sign client certificates (needed by verify_client)."},
    {LISTEN(verify_client), .type = FDT__CFG_ENUM, .choices = verify_modes, .nocase = true,
     .def.i = FDT_TLS_VERIFY_NO,
     .doc = "Ask for a client certificate: no; optional (verified when given); require."},
    {LISTEN(ciphers), .type = FDT__CFG_STRING,
     .doc = "TLS 1.2 cipher list in OpenSSL's syntax; empty: OpenSSL's default."},
    {LISTEN(ciphersuites), .type = FDT__CFG_STRING,
     .doc = "TLS 1.3 cipher suites in OpenSSL's syntax; empty: OpenSSL's default."},
    {LISTEN(min_version), .type = FDT__CFG_ENUM, .choices = tls_versions, .def.i = 0x0303,
     .doc = "Oldest TLS version accepted."},
    {LISTEN(handshake_timeout), .type = FDT__CFG_DOUBLE, .min = 0.001, .max = DAY, .def.d = 10,
     .doc = "A client that has not finished the TLS handshake this long after it connected is "
            "disconnected."},
    {LISTEN(session_tickets), .type = FDT__CFG_BOOL, .def.b = true,
     .doc = "Resume TLS sessions with tickets; the ticket key is shared by the workers of a "
            "generation and replaced at every reload."},
    /* [app]: module; any other key is free-form and read by the application. */
    {.section = FDT__CFG_APP,
     .key = "module",
     .type = FDT__CFG_PATH,
     .offset = offsetof(struct fdt_cfg, app_module),
     .size = FIELD_SIZE(struct fdt_cfg, app_module),
     .doc = "The application, a shared object (this or wsgi is required)."},
    {.section = FDT__CFG_APP,
     .key = "wsgi",
     .type = FDT__CFG_STRING,
     .offset = offsetof(struct fdt_cfg, app_wsgi),
     .size = FIELD_SIZE(struct fdt_cfg, app_wsgi),
     .doc = "A Python WSGI application, `pkg.module:callable`, served on http listeners "
            "instead of a module (docs/python.md)."},
    {.section = FDT__CFG_APP,
     .key = "jsonrpc",
     .type = FDT__CFG_STRING,
     .offset = offsetof(struct fdt_cfg, app_jsonrpc),
     .size = FIELD_SIZE(struct fdt_cfg, app_jsonrpc),
     .doc = "Python JSON-RPC methods, `pkg.module:mapping` (method name -> callable(params)), "
            "served on jsonrpc listeners instead of a module; may be set beside wsgi "
            "(docs/python.md)."},
    /* [python]: the interpreter of a Python application (docs/python.md). */
    {.section = FDT__CFG_PYTHON,
     .key = "path",
     .type = FDT__CFG_PATH,
     .offset = offsetof(struct fdt_cfg, python_path),
     .size = FIELD_SIZE(struct fdt_cfg, python_path),
     .doc = "Directory put first on `sys.path`, where the application's code is."},
    {.section = FDT__CFG_PYTHON,
     .key = "home",
     .type = FDT__CFG_PATH,
     .offset = offsetof(struct fdt_cfg, python_home),
     .size = FIELD_SIZE(struct fdt_cfg, python_home),
     .doc = "A virtual environment (made with python3 -m venv) whose packages the "
            "application uses; empty: the system's Python."},
    /* [resource.NAME]: one section per transactional resource. */
    {RESOURCE(driver), .type = FDT__CFG_STRING, .choices = drivers,
     .doc = "Kind of resource (required)."},
    {RESOURCE(dsn), .type = FDT__CFG_STRING, .doc = "libpq connection string (postgresql)."},
    {RESOURCE(path), .type = FDT__CFG_PATH, .doc = "Database file (sqlite)."},
    {RESOURCE(log), .type = FDT__CFG_BOOL,
     .doc = "This postgresql resource keeps the transaction decision log."},
    {RESOURCE(group_commit), .type = FDT__CFG_BOOL, .def.b = true,
     .doc = "sqlite: the transactions of a worker's requests commit together, one fsync for "
            "many; each runs in a savepoint of the shared write transaction and is answered "
            "only once the batch is durable (docs/transactions.md, \"SQLite group commit\")."},
    {RESOURCE(group_commit_max), .type = FDT__CFG_INT, .min = 1, .max = 100000, .def.i = 256,
     .doc = "sqlite: at most this many requests in one batch."},
    {RESOURCE(group_commit_window), .type = FDT__CFG_DOUBLE, .min = 0.0001, .max = 10,
     .def.d = 0.01,
     .doc = "sqlite: a batch this old takes no new request: it commits as soon as the request "
            "holding the writer is done."},
};

const size_t fdt__cfg_n_keys = sizeof(fdt__cfg_keys) / sizeof(fdt__cfg_keys[0]);

const char *fdt__cfg_section_title(enum fdt__cfg_section s)
{
    switch (s) {
    case FDT__CFG_SERVER:
        return "server";
    case FDT__CFG_LISTEN:
        return "listen.NAME";
    case FDT__CFG_RESOURCE:
        return "resource.NAME";
    case FDT__CFG_APP:
        return "app";
    case FDT__CFG_PYTHON:
        return "python";
    }
    return "?"; /* GCOVR_EXCL_LINE: unreachable: every section returns above (-Wswitch) */
}

const struct fdt__cfg_key *fdt__cfg_key_find(enum fdt__cfg_section s, const char *key)
{
    for (size_t i = 0; i < fdt__cfg_n_keys; i++) {
        if (fdt__cfg_keys[i].section == s && strcmp(fdt__cfg_keys[i].key, key) == 0)
            return &fdt__cfg_keys[i];
    }
    return NULL;
}

#define DIST_MAXLEN 64

int fdt__cfg_distance(const char *a, const char *b, int cap)
{
    size_t n = strlen(a);
    size_t m = strlen(b);
    if (n >= DIST_MAXLEN || m >= DIST_MAXLEN || (n > m ? n - m : m - n) > (size_t)cap)
        return cap + 1;
    /* Optimal string alignment: three rows of the classic table are enough. */
    int rows[3][DIST_MAXLEN + 1];
    int *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= m; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        int *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[m] > cap ? cap + 1 : prev[m];
}

const char *fdt__cfg_key_suggest(enum fdt__cfg_section s, const char *key)
{
    const char *best = NULL;
    int best_d = 3;
    for (size_t i = 0; i < fdt__cfg_n_keys; i++) {
        if (fdt__cfg_keys[i].section != s)
            continue;
        int d = fdt__cfg_distance(key, fdt__cfg_keys[i].key, 2);
        if (d < best_d) {
            best = fdt__cfg_keys[i].key;
            best_d = d;
        }
    }
    return best;
}

void *fdt__cfg_field(const struct fdt__cfg_key *k, void *base)
{
    return (char *)base + k->offset;
}

void fdt__cfg_value_get(const struct fdt__cfg_key *k, const void *base, union fdt__cfg_value *v)
{
    const char *p = (const char *)base + k->offset;
    int i;
    memset(v, 0, sizeof(*v));
    switch (k->type) {
    case FDT__CFG_INT:
    case FDT__CFG_ENUM:
        memcpy(&i, p, sizeof(i));
        v->i = i;
        break;
    case FDT__CFG_DOUBLE:
        memcpy(&v->d, p, sizeof(v->d));
        break;
    case FDT__CFG_SIZE:
        memcpy(&v->z, p, sizeof(v->z));
        break;
    case FDT__CFG_BOOL:
        memcpy(&v->b, p, sizeof(v->b));
        break;
    case FDT__CFG_STRING:
    case FDT__CFG_PATH:
    case FDT__CFG_ADDRESS:
        v->s = p;
        break;
    }
}

bool fdt__cfg_value_equal(const struct fdt__cfg_key *k, const union fdt__cfg_value *a,
                          const union fdt__cfg_value *b)
{
    switch (k->type) {
    case FDT__CFG_INT:
    case FDT__CFG_ENUM:
        return a->i == b->i;
    case FDT__CFG_DOUBLE:
        return a->d == b->d;
    case FDT__CFG_SIZE:
        return a->z == b->z;
    case FDT__CFG_BOOL:
        return a->b == b->b;
    case FDT__CFG_STRING:
    case FDT__CFG_PATH:
    case FDT__CFG_ADDRESS:
        break;
    }
    return strcmp(a->s ? a->s : "", b->s ? b->s : "") == 0;
}

/* Whole numbers without a fraction or an exponent; others as short as they go. */
static void format_number(double d, char *out, size_t size)
{
    if (d == (double)(long long)d && d < 1e15 && d > -1e15)
        snprintf(out, size, "%lld", (long long)d);
    else
        snprintf(out, size, "%g", d);
}

/* Sizes in the largest unit that divides them: 65536 is "64k". */
static void format_size(size_t z, char *out, size_t size)
{
    static const char units[] = "kmg";
    int u = -1;
    while (u < 2 && z != 0 && z % 1024 == 0) {
        z /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(out, size, "%zu", z);
    else
        snprintf(out, size, "%zu%c", z, units[u]);
}

static const char *choice_name(const struct fdt__cfg_choice *c, long value)
{
    for (; c && c->name; c++) {
        if (c->value == value)
            return c->name;
    }
    return "?"; /* GCOVR_EXCL_LINE: unreachable: values and defaults are among their choices */
}

void fdt__cfg_value_format(const struct fdt__cfg_key *k, const union fdt__cfg_value *v, char *out,
                           size_t size)
{
    switch (k->type) {
    case FDT__CFG_INT:
        snprintf(out, size, "%ld", v->i);
        break;
    case FDT__CFG_ENUM:
        snprintf(out, size, "%s", choice_name(k->choices, v->i));
        break;
    case FDT__CFG_DOUBLE:
        format_number(v->d, out, size);
        break;
    case FDT__CFG_SIZE:
        format_size(v->z, out, size);
        break;
    case FDT__CFG_BOOL:
        snprintf(out, size, "%s", v->b ? "yes" : "no");
        break;
    case FDT__CFG_STRING:
    case FDT__CFG_PATH:
    case FDT__CFG_ADDRESS:
        snprintf(out, size, "%s", v->s ? v->s : "");
        break;
    }
}

void fdt__cfg_default_format(const struct fdt__cfg_key *k, char *out, size_t size)
{
    if (k->zero && k->type == FDT__CFG_INT && k->def.i == 0)
        snprintf(out, size, "0 (%s)", k->zero);
    else
        fdt__cfg_value_format(k, &k->def, out, size);
}

/* "a, b or c" from the choices, aliases left out. */
static void format_choices(const struct fdt__cfg_choice *choices, char *out, size_t size)
{
    size_t n = 0;
    const char *names[16];
    for (const struct fdt__cfg_choice *c = choices; c->name && n < 16; c++) {
        if (strcmp(choice_name(choices, c->value), c->name) == 0)
            names[n++] = c->name;
    }
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && len < size; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        len += (size_t)snprintf(out + len, size - len, "%s%s", sep, names[i]);
    }
}

static void format_range(const struct fdt__cfg_key *k, char *out, size_t size)
{
    char lo[32], hi[32];
    if (k->type == FDT__CFG_SIZE) {
        format_size((size_t)k->min, lo, sizeof(lo));
        format_size((size_t)k->max, hi, sizeof(hi));
        snprintf(out, size, "a size from %s to %s", lo, hi);
        return;
    }
    format_number(k->min, lo, sizeof(lo));
    format_number(k->max, hi, sizeof(hi));
    const char *unit = k->type == FDT__CFG_DOUBLE ? "seconds" : k->unit;
    char zero[64] = "";
    if (k->zero)
        snprintf(zero, sizeof(zero), " (%s)", k->zero); /* "0 (never) to 86400" */
    snprintf(out, size, "%s%s%s%s to %s", unit ? unit : "", unit ? ", " : "", lo, zero, hi);
}

void fdt__cfg_values_format(const struct fdt__cfg_key *k, char *out, size_t size)
{
    switch (k->type) {
    case FDT__CFG_INT:
    case FDT__CFG_DOUBLE:
    case FDT__CFG_SIZE:
        format_range(k, out, size);
        break;
    case FDT__CFG_BOOL:
        snprintf(out, size, "yes or no");
        break;
    case FDT__CFG_ENUM:
        format_choices(k->choices, out, size);
        break;
    case FDT__CFG_STRING:
        if (k->choices)
            format_choices(k->choices, out, size);
        else if (k->name)
            snprintf(out, size, "a name of %.0f to %zu letters, digits, '_' or '-'", k->min,
                     k->size - 1);
        else
            snprintf(out, size, "text of at most %zu bytes", k->size - 1);
        break;
    case FDT__CFG_PATH:
        snprintf(out, size, "a path of at most %zu bytes", k->size - 1);
        break;
    case FDT__CFG_ADDRESS:
        snprintf(out, size, "HOST:PORT, [V6]:PORT or unix:/path");
        break;
    }
}

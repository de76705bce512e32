#include "fdt_config.h"

#include "log/log.h"

#include "util/util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Process-wide log state: every thread and module logs without a context (fdt_log is
 * called from anywhere, as syslog is), so this is the one place it can live. Written by
 * the main thread at start-up and on reopen; read by every thread. Once lines go to a
 * file, the descriptor number never changes: a reopen puts the new file under the same
 * number (dup3), so no thread ever writes to a descriptor that was closed under it and
 * perhaps reused for a socket or a database connection. */
static struct {
    _Atomic int threshold;
    _Atomic int fd;
    char path[4096];
    char role[16];
    unsigned generation;
    unsigned file_mode; /* of the log files the server creates */
    bool json;          /* [server] log_format = json */
} g_log = {.threshold = FDT_LOG_INFO, .fd = STDERR_FILENO, .role = "main", .file_mode = 0600};

static const char *level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
static const char *level_names_json[] = {"error", "warn", "info", "debug"};

/* The request id of the calling thread (see fdt__log_set_request_id). */
static _Thread_local const char *t_request_id;

void fdt__log_set_json(bool json)
{
    g_log.json = json;
}

unsigned fdt__log_generation(void)
{
    return g_log.generation;
}

void fdt__log_set_request_id(const char *id)
{
    t_request_id = id && *id ? id : NULL;
}

/* Length of the valid UTF-8 sequence at p (1 to 4), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0; /* also stops at the terminating NUL */
    }
    /* Overlong forms, surrogates and code points past U+10FFFF. */
    if (n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
        return 0;
    if (n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
        return 0;
    return n;
}

void fdt__log_json_string(char *out, size_t size, size_t *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (*o + 2 > size)
        return;
    size_t end = size - 1; /* room kept for the closing quote */
    out[(*o)++] = '"';
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_len(p);
        if (n == 1 && *p >= 0x20 && *p != '"' && *p != '\\' && *p != 0x7f) {
            if (*o + 1 > end)
                break;
            out[(*o)++] = (char)*p++;
        } else if (n == 1 && (*p == '"' || *p == '\\')) {
            if (*o + 2 > end)
                break;
            out[(*o)++] = '\\';
            out[(*o)++] = (char)*p++;
        } else if (n > 1) {
            if (*o + n > end)
                break;
            memcpy(out + *o, p, n);
            *o += n;
            p += n;
        } else {
            if (*o + 6 > end)
                break;
            memcpy(out + *o, "\\u00", 4);
            out[*o + 4] = hex[*p >> 4];
            out[*o + 5] = hex[*p & 15];
            *o += 6;
            p++;
        }
    }
    out[(*o)++] = '"';
}

int fdt_log_threshold(void)
{
    return atomic_load_explicit(&g_log.threshold, memory_order_relaxed);
}

void fdt__log_set_level(int level)
{
    atomic_store(&g_log.threshold, level);
}

void fdt__log_set_role(const char *role, unsigned generation)
{
    fdt__strlcpy(g_log.role, role, sizeof(g_log.role));
    g_log.generation = generation;
}

int fdt__log_fd(void)
{
    return atomic_load(&g_log.fd);
}

void fdt__log_set_file_mode(bool group_read)
{
    g_log.file_mode = group_read ? 0640 : 0600;
}

/* An existing file keeps its mode: say so when anybody may read it. */
static void warn_if_readable(int fd, const char *path, const char *what)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & S_IROTH))
        fdt_log_write(FDT_LOG_WARN, "log", "%s %s is readable by others (mode %04o)", what, path,
                      (unsigned)(st.st_mode & 07777));
}

static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, g_log.file_mode);
    return fd < 0 ? -errno : fd;
}

int fdt__log_open_file(const char *path, const char *what)
{
    int fd = open_log(path);
    if (fd >= 0)
        warn_if_readable(fd, path, what);
    return fd;
}

/* Make lines go to fd (taken). The first file gets a number of its own; after that the
 * new destination is duplicated onto the same number and the temporary closed, so the
 * number threads may hold stays open throughout. */
static int install(int fd)
{
    int cur = atomic_load(&g_log.fd);
    if (cur == STDERR_FILENO) {
        if (fd != STDERR_FILENO)
            atomic_store(&g_log.fd, fd);
        return 0;
    }
    int rc = dup3(fd, cur, O_CLOEXEC) < 0 ? -errno : 0;
    if (fd != STDERR_FILENO)
        fdt__close(fd);
    return rc;
}

int fdt__log_open(const char *path)
{
    if (!path || !*path) {
        g_log.path[0] = '\0';
        return install(STDERR_FILENO);
    }
    int fd = open_log(path);
    if (fd < 0)
        return fd;
    int rc = install(fd);
    if (rc == 0) {
        fdt__strlcpy(g_log.path, path, sizeof(g_log.path));
        warn_if_readable(atomic_load(&g_log.fd), path, "error log");
    }
    return rc;
}

int fdt__log_reopen(void)
{
    if (!g_log.path[0])
        return 0;
    int fd = open_log(g_log.path);
    if (fd < 0) {
        /* Said in the file still open, which the operator rotating the logs will read. */
        fdt_log_write(FDT_LOG_WARN, "log",
                      "cannot reopen the error log %s: %s: writing on "
                      "to the file open before",
                      g_log.path, fdt_strerror(fd));
        return fd;
    }
    int rc = install(fd);
    if (rc == 0)
        warn_if_readable(atomic_load(&g_log.fd), g_log.path, "error log");
    return rc;
}

/* The JSON form of one event: see log.h. */
static size_t format_json(char *line, size_t size, const char *stamp, int level, const char *module,
                          const char *msg)
{
    size_t o = 0;
    int n = snprintf(line, size, "{\"time\":\"%s\",\"level\":\"%s\",\"pid\":%d,\"role\":", stamp,
                     level_names_json[level], (int)getpid());
    o = (size_t)n;
    fdt__log_json_string(line, size, &o, g_log.role);
    o += (size_t)snprintf(line + o, size - o, ",\"generation\":%u,\"module\":", g_log.generation);
    fdt__log_json_string(line, size, &o, module ? module : "-");
    o += (size_t)snprintf(line + o, size - o, ",\"request_id\":");
    if (t_request_id)
        fdt__log_json_string(line, size, &o, t_request_id);
    else
        o += (size_t)snprintf(line + o, size - o, "null");
    o += (size_t)snprintf(line + o, size - o, ",\"message\":");
    /* The message is cut to leave room for the closing brace and the newline. */
    fdt__log_json_string(line, size - 2, &o, msg);
    line[o++] = '}';
    line[o++] = '\n';
    return o;
}

void fdt_log_write(int level, const char *module, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (level < 0)
        level = 0;
    if (level > FDT_LOG_DEBUG)
        level = FDT_LOG_DEBUG;
    char stamp[40];
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    if (g_log.json) {
        char msg[1536];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        size_t used = format_json(line, sizeof(line), stamp, level, module, msg);
        (void)fdt__write_all(atomic_load(&g_log.fd), line, used);
        return;
    }
    char req[80] = "";
    if (t_request_id)
        snprintf(req, sizeof(req), "req=%s ", t_request_id);
    int n = snprintf(line, sizeof(line), "%s %s %d %s/%u %s: %s", stamp, level_names[level],
                     (int)getpid(), g_log.role, g_log.generation, module ? module : "-", req);
    if (n < 0)
        return; /* GCOVR_EXCL_LINE: unreachable: snprintf fails only on a wide-character conversion,
                   and this format has none */
    size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
    va_end(ap);
    if (m > 0)
        used += (size_t)m < sizeof(line) - used ? (size_t)m : sizeof(line) - used - 1;
    /* Keep each event on one line, whatever the message holds. */
    for (size_t i = 0; i < used; i++) {
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    }
    if (used >= sizeof(line) - 1)
        used = sizeof(line) - 2;
    line[used++] = '\n';
    (void)fdt__write_all(atomic_load(&g_log.fd), line, used);
}

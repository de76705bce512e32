#include "fdt_config.h"

#include "log/log.h"

#include "util/util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
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
} g_log = {.threshold = FDT_LOG_INFO, .fd = STDERR_FILENO, .role = "main"};

static const char *level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

int fdt_log_threshold(void)
{
    return atomic_load_explicit(&g_log.threshold, memory_order_relaxed);
}

void fdt__log_set_level(int level)
{
    atomic_store(&g_log.threshold, level);
}

int fdt__log_level_parse(const char *name, int *level)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < (int)FDT_ARRAY_LEN(names); i++) {
        if (strcasecmp(name, names[i]) == 0) {
            *level = i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *level = FDT_LOG_WARN;
        return 0;
    }
    return FDT_EINVAL;
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

static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
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
    if (rc == 0)
        fdt__strlcpy(g_log.path, path, sizeof(g_log.path));
    return rc;
}

int fdt__log_reopen(void)
{
    if (!g_log.path[0])
        return 0;
    int fd = open_log(g_log.path);
    if (fd < 0)
        return fd;
    return install(fd);
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
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %d %s/%u %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], (int)getpid(), g_log.role,
                     g_log.generation, module ? module : "-");
    if (n < 0)
        return;
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

#include "fdt_config.h"

#define FDT_LOG_MODULE "master"
#include "master/master.h"
#include "util/util.h"

#include <errno.h>
#include <fdt/log.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* systemd's service notification protocol (sd_notify(3), "NOTES"): one datagram of
 * newline-separated VAR=VALUE lines sent to the AF_UNIX socket named by NOTIFY_SOCKET (a
 * path, or an abstract name written with a leading '@'); the watchdog period is
 * WATCHDOG_USEC, for the process WATCHDOG_PID when that is set. The protocol is a stable,
 * documented interface, small enough to speak directly: linking libsystemd would map five
 * more libraries into the master and, through fork, into every worker. */

void fdt__notify_init(struct fdt_notify *n)
{
    memset(n, 0, sizeof(*n));
    n->fd = -1;
    const char *path = getenv("NOTIFY_SOCKET");
    const char *wd = getenv("WATCHDOG_USEC");
    const char *wd_pid = getenv("WATCHDOG_PID");
    long usec = 0, pid = 0;
    if (wd && fdt__parse_long(wd, 1, 1L << 40, &usec) == 0 &&
        (!wd_pid || (fdt__parse_long(wd_pid, 1, 1L << 30, &pid) == 0 && pid == (long)getpid())))
        n->watchdog_usec = usec;
    if (path && (path[0] == '/' || path[0] == '@') && strlen(path) < sizeof(n->addr.sun_path)) {
        n->addr.sun_family = AF_UNIX;
        memcpy(n->addr.sun_path, path, strlen(path));
        n->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
        if (path[0] == '@')
            n->addr.sun_path[0] = '\0'; /* abstract namespace */
        else
            n->len++; /* the terminating NUL of a path */
        n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        fdt__strlcpy(n->socket_env, path, sizeof(n->socket_env));
    } else if (path && path[0]) {
        fdt_log(FDT_LOG_WARN, "NOTIFY_SOCKET=%s: only unix sockets are supported; not notifying",
                path);
    }
    /* The master's own business: an application that execs a program must not make it
     * talk to systemd in the master's name. */
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    if (n->fd < 0)
        n->watchdog_usec = 0;
    n->next_ping_ms = fdt__now_ms();
}

void fdt__notify_deinit(struct fdt_notify *n)
{
    fdt__close(n->fd);
    n->fd = -1;
}

/* Send what waits, oldest first, until systemd's queue is full. */
static void flush(struct fdt_notify *n)
{
    while (n->queued > 0) {
        const char *msg = n->queue[0];
        if (sendto(n->fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL,
                   (const struct sockaddr *)&n->addr, n->len) < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            /* Gone or refused: nothing to resend it to. */
            fdt_log(FDT_LOG_DEBUG, "notify %s: %s", n->socket_env, fdt_strerror(-errno));
        }
        n->queued--;
        memmove(n->queue[0], n->queue[1], (size_t)n->queued * sizeof(n->queue[0]));
    }
}

void fdt__notify(struct fdt_notify *n, const char *fmt, ...)
{
    if (n->fd < 0 || n->muted)
        return;
    if (n->queued == FDT_NOTIFY_QUEUE) {
        fdt_log(FDT_LOG_WARN, "notify %s: systemd reads nothing; a notification is lost",
                n->socket_env);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->queue[n->queued], sizeof(n->queue[0]), fmt, ap);
    va_end(ap);
    n->queued++;
    flush(n);
}

bool fdt__notify_flushed(const struct fdt_notify *n)
{
    return n->queued == 0;
}

int64_t fdt__notify_monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int fdt__notify_tick(struct fdt_notify *n, int64_t now, int timeout_ms)
{
    if (n->fd < 0)
        return timeout_ms;
    flush(n);
    if (n->queued > 0 && timeout_ms > 20)
        timeout_ms = 20; /* try again soon */
    if (!n->watchdog_usec || n->muted)
        return timeout_ms;
    /* Half the period, as sd_watchdog_enabled(3) advises. */
    int64_t half_ms = n->watchdog_usec / 2000;
    if (half_ms < 1)
        half_ms = 1;
    if (now >= n->next_ping_ms) {
        /* Behind waiting messages a ping would only add to the jam: the next one is due
         * soon enough. */
        if (n->queued == 0)
            fdt__notify(n, "WATCHDOG=1");
        n->next_ping_ms = now + half_ms;
    }
    int64_t left = n->next_ping_ms - now;
    return left < timeout_ms ? (int)left : timeout_ms;
}

void fdt__notify_export(const struct fdt_notify *n)
{
    if (!n->socket_env[0])
        return;
    setenv("NOTIFY_SOCKET", n->socket_env, 1);
    if (n->watchdog_usec) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", (long long)n->watchdog_usec);
        setenv("WATCHDOG_USEC", buf, 1);
        snprintf(buf, sizeof(buf), "%d", (int)getpid());
        setenv("WATCHDOG_PID", buf, 1);
    }
}

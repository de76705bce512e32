#include "fdt_config.h"

#include "listen/listen.h"

#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

void fdt__addr_format_fd(int fd, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        snprintf(out, size, "?");
        return;
    }
    char host[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(out, size, "%s:%u", host, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(out, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        snprintf(out, size, "unix:%s", un->sun_path);
    } else {
        snprintf(out, size, "?");
    }
}

int fdt__listener_bind(struct fdt_listener *l, struct fdt_error *err)
{
    struct fdt_addr a;
    l->fd = -1;
    if (fdt__addr_parse(l->cfg.address, &a) < 0)
        return fdt_error_set(err, FDT_ECONFIG, "[listen.%s] bad address %s", l->cfg.name,
                             l->cfg.address);
    int fd = socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fdt_error_set(err, -errno, "[listen.%s] socket: %s", l->cfg.name,
                             fdt_strerror(-errno));
    int one = 1;
    int rc;
    if (a.family != AF_UNIX) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (l->cfg.reuseport)
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (a.family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    } else {
        /* A stale socket file from a previous run would make bind fail; remove it only if
         * it is a socket nobody listens on. */
        struct sockaddr_un *un = (struct sockaddr_un *)&a.ss;
        struct stat st;
        if (stat(un->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (probe >= 0) {
                if (connect(probe, (struct sockaddr *)&a.ss, a.len) < 0 && errno == ECONNREFUSED)
                    unlink(un->sun_path);
                close(probe);
            }
        }
    }
    if (bind(fd, (struct sockaddr *)&a.ss, a.len) < 0) {
        rc = -errno;
        fdt__close(fd);
        return fdt_error_set(err, rc, "[listen.%s] bind %s: %s", l->cfg.name, l->cfg.address,
                             fdt_strerror(rc));
    }
    /* With reuseport the master's socket only reserves the address: it never listens, so
     * the kernel spreads connections over the workers' own sockets alone. */
    if (!l->cfg.reuseport && listen(fd, l->cfg.backlog) < 0) {
        rc = -errno;
        fdt__close(fd);
        return fdt_error_set(err, rc, "[listen.%s] listen %s: %s", l->cfg.name, l->cfg.address,
                             fdt_strerror(rc));
    }
    l->fd = fd;
    l->origin = FDT_LISTEN_BOUND;
    return 0;
}

int fdt__listener_open_member(const struct fdt_listener *anchor, int *fd_out, struct fdt_error *err)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    *fd_out = -1;
    if (getsockname(anchor->fd, (struct sockaddr *)&ss, &len) < 0)
        return fdt_error_set(err, -errno, "[listen.%s] getsockname: %s", anchor->cfg.name,
                             fdt_strerror(-errno));
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fdt_error_set(err, -errno, "[listen.%s] socket: %s", anchor->cfg.name,
                             fdt_strerror(-errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, anchor->cfg.backlog) < 0) {
        int rc = -errno;
        fdt__close(fd);
        return fdt_error_set(err, rc, "[listen.%s] reuseport socket for %s: %s", anchor->cfg.name,
                             anchor->cfg.address, fdt_strerror(rc));
    }
    *fd_out = fd;
    return 0;
}

void fdt__listener_close(struct fdt_listener *l, bool unlink_path)
{
    if (l->fd < 0)
        return;
    if (l->origin == FDT_LISTEN_SYSTEMD) {
        l->fd = -1;
        return;
    }
    if (unlink_path && l->origin == FDT_LISTEN_BOUND && strncmp(l->cfg.address, "unix:", 5) == 0)
        unlink(l->cfg.address + 5);
    fdt__close(l->fd);
    l->fd = -1;
}

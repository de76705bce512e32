#include "fdt_config.h"

#include "listen/listen.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Sockets handed to a master when it starts. systemd's protocol (sd_listen_fds(3)) is
 * small and stable, so it is read here rather than through libsystemd, which would map
 * libgcrypt, liblz4, libzstd, liblzma and libcap into the master and every worker. */

#define SD_LISTEN_FDS_START 3

const char *fdt__listen_origin_name(enum fdt_listen_origin o)
{
    switch (o) {
    case FDT_LISTEN_BOUND:
        return "bound";
    case FDT_LISTEN_SYSTEMD:
        return "systemd";
    case FDT_LISTEN_UPGRADE:
        return "upgrade";
    }
    return "?";
}

static char origin_code(enum fdt_listen_origin o)
{
    return o == FDT_LISTEN_SYSTEMD ? 's' : 'u';
}

/* Check that fd is a stream socket of a family we serve, make it close-on-exec and
 * non-blocking, and add it to the set. */
static int take(struct fdt_inherit *set, int fd, enum fdt_listen_origin origin, const char *name,
                struct fdt_error *err)
{
    const char *from = origin == FDT_LISTEN_SYSTEMD ? "systemd" : "the old master";
    if (set->n >= FDT_INHERIT_MAX)
        return fdt_error_set(err, FDT_ECONFIG, "more than %d sockets passed by %s", FDT_INHERIT_MAX,
                             from);
    if (fcntl(fd, F_GETFD) < 0)
        return fdt_error_set(err, FDT_ECONFIG, "descriptor %d passed by %s is not open", fd, from);
    int type = 0, domain = 0, acc = 0;
    socklen_t len = sizeof(int);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return fdt_error_set(err, FDT_ECONFIG, "descriptor %d (%s) passed by %s is not a socket",
                             fd, name[0] ? name : "unnamed", from);
    len = sizeof(int);
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
    len = sizeof(int);
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len);
    if (type != SOCK_STREAM || (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX))
        return fdt_error_set(err, FDT_ECONFIG,
                             "descriptor %d (%s) passed by %s is not a TCP or unix stream socket",
                             fd, name[0] ? name : "unnamed", from);
    if (origin == FDT_LISTEN_SYSTEMD && !acc)
        return fdt_error_set(err, FDT_ECONFIG,
                             "descriptor %d (%s) passed by systemd is not listening", fd,
                             name[0] ? name : "unnamed");
    fdt__fd_cloexec(fd, true);
    fdt__fd_nonblock(fd, true);
    struct fdt_inherited *e = &set->fds[set->n++];
    memset(e, 0, sizeof(*e));
    e->fd = fd;
    e->origin = origin;
    fdt__strlcpy(e->name, name, sizeof(e->name));
    fdt__addr_format_fd(fd, e->addr, sizeof(e->addr));
    e->listening = acc != 0;
    return 0;
}

int fdt__inherit_systemd(struct fdt_inherit *set, struct fdt_error *err)
{
    const char *pid_s = getenv("LISTEN_PID");
    const char *n_s = getenv("LISTEN_FDS");
    const char *names_s = getenv("LISTEN_FDNAMES");
    char names[4096] = "";
    long pid = 0, n = 0;
    bool mine = pid_s && n_s && fdt__parse_long(pid_s, 1, 1L << 30, &pid) == 0 &&
                pid == (long)getpid() && fdt__parse_long(n_s, 0, 1L << 20, &n) == 0;
    if (mine && names_s)
        fdt__strlcpy(names, names_s, sizeof(names));
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (!mine)
        return 0;
    if (n > FDT_INHERIT_MAX)
        return fdt_error_set(err, FDT_ECONFIG, "systemd passed %ld sockets; at most %d are served",
                             n, FDT_INHERIT_MAX);
    char *p = names;
    for (long i = 0; i < n; i++) {
        /* Names are colon-separated; systemd calls a socket without one "unknown". */
        const char *name = "";
        if (p) {
            name = p;
            char *colon = strchr(p, ':');
            if (colon)
                *colon = '\0';
            p = colon ? colon + 1 : NULL;
        }
        if (strcmp(name, "unknown") == 0)
            name = "";
        int rc = take(set, SD_LISTEN_FDS_START + (int)i, FDT_LISTEN_SYSTEMD, name, err);
        if (rc < 0)
            return rc;
    }
    return (int)n;
}

int fdt__inherit_parse(struct fdt_inherit *set, const char *spec, struct fdt_error *err)
{
    char buf[8192];
    if (fdt__strlcpy(buf, spec, sizeof(buf)) < 0)
        return fdt_error_set(err, FDT_ECONFIG, "list of inherited sockets too long");
    int n = 0;
    char *save = buf;
    while (save && *save) {
        char *entry = save;
        char *colon = strchr(entry, ':');
        if (colon)
            *colon = '\0';
        save = colon ? colon + 1 : NULL;
        /* FD=ORIGIN=NAME */
        char *eq1 = strchr(entry, '=');
        char *eq2 = eq1 ? strchr(eq1 + 1, '=') : NULL;
        long fd;
        if (!eq2 || eq2 != eq1 + 2)
            return fdt_error_set(err, FDT_ECONFIG, "bad inherited socket entry %s", entry);
        *eq1 = '\0';
        if (fdt__parse_long(entry, 0, 1 << 20, &fd) < 0 || (eq1[1] != 's' && eq1[1] != 'u'))
            return fdt_error_set(err, FDT_ECONFIG, "bad inherited socket entry %s", entry);
        enum fdt_listen_origin o = eq1[1] == 's' ? FDT_LISTEN_SYSTEMD : FDT_LISTEN_UPGRADE;
        int rc = take(set, (int)fd, o, eq2 + 1, err);
        if (rc < 0)
            return rc;
        n++;
    }
    return n;
}

int fdt__inherit_format(char *out, size_t size, int fd, enum fdt_listen_origin origin,
                        const char *name)
{
    size_t used = strlen(out);
    /* A name with ':' cannot be carried (systemd allows none); it is not needed to match a
     * socket by address. */
    const char *n = strchr(name, ':') ? "" : name;
    int w = snprintf(out + used, size - used, "%s%d=%c=%s", used ? ":" : "", fd,
                     origin_code(origin), n);
    if (w < 0 || (size_t)w >= size - used) {
        out[used] = '\0';
        return FDT_ELIMIT;
    }
    return 0;
}

/* Whether fd is bound to the address of the configuration text addr. */
static bool same_address(int fd, const char *addr)
{
    struct fdt_addr a;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (fdt__addr_parse(addr, &a) < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return false;
    if (ss.ss_family != a.family)
        return false;
    if (a.family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)&ss;
        const struct sockaddr_in *y = (const struct sockaddr_in *)&a.ss;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a.family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&ss;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&a.ss;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    const struct sockaddr_un *x = (const struct sockaddr_un *)&ss;
    const struct sockaddr_un *y = (const struct sockaddr_un *)&a.ss;
    return strncmp(x->sun_path, y->sun_path, sizeof(x->sun_path)) == 0;
}

/* Whether a socket fits a listener that asks for (or not) reuseport: a reuseport listener's
 * socket only reserves the address (it does not listen), the others listen. */
static int check_fit(const struct fdt_inherited *e, const struct fdt_listen_cfg *l,
                     struct fdt_error *err)
{
    if (e->origin == FDT_LISTEN_SYSTEMD && l->reuseport)
        return fdt_error_set(err, FDT_ECONFIG,
                             "[listen.%s] reuseport cannot be used with a socket passed by "
                             "systemd (%s): the workers' sockets are bound by fdtserver",
                             l->name, e->addr);
    if (e->listening == l->reuseport)
        return fdt_error_set(err, FDT_ECONFIG,
                             "[listen.%s] reuseport cannot change on a binary upgrade of %s: "
                             "restart the server to change it",
                             l->name, l->address);
    return 0;
}

int fdt__inherit_assign(struct fdt_inherit *set, const struct fdt_cfg *cfg, struct fdt_listener *ls,
                        struct fdt_error *err)
{
    for (int i = 0; i < cfg->n_listeners; i++) {
        ls[i].cfg = cfg->listeners[i];
        ls[i].fd = -1;
        ls[i].keep = false;
        ls[i].origin = FDT_LISTEN_BOUND;
    }
    for (int k = 0; k < set->n; k++)
        set->fds[k].used = false;
    /* First by name: systemd's FileDescriptorName= is [listen.NAME]. */
    for (int k = 0; k < set->n; k++) {
        struct fdt_inherited *e = &set->fds[k];
        if (e->origin != FDT_LISTEN_SYSTEMD || !e->name[0])
            continue;
        for (int i = 0; i < cfg->n_listeners; i++) {
            if (strcmp(cfg->listeners[i].name, e->name) != 0)
                continue;
            if (!same_address(e->fd, ls[i].cfg.address))
                return fdt_error_set(err, FDT_ECONFIG,
                                     "[listen.%s] the socket systemd passed as %s is bound to "
                                     "%s, not to address %s",
                                     ls[i].cfg.name, e->name, e->addr, ls[i].cfg.address);
            int rc = check_fit(e, &ls[i].cfg, err);
            if (rc < 0)
                return rc;
            ls[i].fd = e->fd;
            ls[i].origin = e->origin;
            e->used = true;
        }
    }
    /* Then by address, for sockets without the name of a listener (one that has it was
     * taken above, or refused). */
    for (int k = 0; k < set->n; k++) {
        struct fdt_inherited *e = &set->fds[k];
        if (e->used)
            continue;
        for (int i = 0; i < cfg->n_listeners && !e->used; i++) {
            if (ls[i].fd >= 0 || !same_address(e->fd, ls[i].cfg.address))
                continue;
            int rc = check_fit(e, &ls[i].cfg, err);
            if (rc < 0)
                return rc;
            ls[i].fd = e->fd;
            ls[i].origin = e->origin;
            e->used = true;
        }
    }
    return 0;
}

bool fdt__inherit_has(const struct fdt_inherit *set, int fd)
{
    for (int k = 0; fd >= 0 && k < set->n; k++) {
        if (set->fds[k].fd == fd)
            return true;
    }
    return false;
}

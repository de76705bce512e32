/* Listening sockets: binding, address formatting, and keeping sockets across reloads. */
#ifndef FDT_SRC_LISTEN_H
#define FDT_SRC_LISTEN_H

#include "config/config.h"

#include <fdt/error.h>
#include <stdbool.h>
#include <sys/socket.h>

/* Format the bound address of fd ("127.0.0.1:8080"). */
void fdt__addr_format_fd(int fd, char *out, size_t size);

struct fdt_tls_ctx;

/* Where a listening socket came from. */
enum fdt_listen_origin {
    FDT_LISTEN_BOUND = 0, /* bound by this master */
    FDT_LISTEN_SYSTEMD,   /* passed by systemd (socket activation, LISTEN_FDS) */
    FDT_LISTEN_UPGRADE,   /* bound by the master this one replaced (binary upgrade, SIGUSR2) */
};

/* "bound", "systemd" or "upgrade". */
const char *fdt__listen_origin_name(enum fdt_listen_origin o);

struct fdt_listener {
    struct fdt_listen_cfg cfg;
    int fd;
    /* cfg.tls: the generation's TLS context, made and freed by the master (workers inherit it
     * across fork). NULL otherwise. */
    struct fdt_tls_ctx *tls;
    bool keep; /* scratch flag for reloads */
    enum fdt_listen_origin origin;
};

/* Bind and listen. On error, err says which address and why; l->fd stays -1. */
int fdt__listener_bind(struct fdt_listener *l, struct fdt_error *err);
/* For a reuseport listener: open one more listening socket on the anchor's address (one
 * per worker; the kernel spreads connections over them). */
int fdt__listener_open_member(const struct fdt_listener *anchor, int *fd_out,
                              struct fdt_error *err);
/* Close the socket and, for a unix socket, remove its file when unlink_path is set and the
 * socket was bound by this master (FDT_LISTEN_BOUND): a file made by systemd or by an older
 * master is never removed here. A socket passed by systemd is only forgotten (fd = -1), not
 * closed: it belongs to the master's struct fdt_inherit, which keeps it for later reloads. */
void fdt__listener_close(struct fdt_listener *l, bool unlink_path);

/* Listening sockets a master received when it started: from systemd (LISTEN_FDS) or from
 * the master it replaces in a binary upgrade. Thread: main (the master). */
#define FDT_INHERIT_MAX (2 * FDT_CFG_MAX_LISTENERS)

struct fdt_inherited {
    int fd;
    enum fdt_listen_origin origin;
    char name[FDT_CFG_NAME_MAX]; /* systemd's FileDescriptorName; "" when unnamed */
    char addr[256];              /* the bound address, formatted */
    bool listening;              /* SO_ACCEPTCONN (a reuseport anchor does not listen) */
    bool used;                   /* by the configuration of the last fdt__inherit_assign */
};

struct fdt_inherit {
    struct fdt_inherited fds[FDT_INHERIT_MAX];
    int n;
};

/* Take the sockets systemd passed (sd_listen_fds(3): LISTEN_PID must be this process,
 * LISTEN_FDS counts descriptors from 3, LISTEN_FDNAMES names them, colon-separated) and
 * unset the three variables, so no child sees them. Each must be a listening stream socket
 * (TCP or unix); it is made close-on-exec and non-blocking. Returns the number taken (0
 * when the variables are absent or name another process), or FDT_ECONFIG with err filled
 * when a descriptor is not a listening stream socket. */
int fdt__inherit_systemd(struct fdt_inherit *set, struct fdt_error *err);

/* The descriptors of a binary upgrade, as fdt__inherit_format wrote them. Same checks and
 * return values as fdt__inherit_systemd. */
int fdt__inherit_parse(struct fdt_inherit *set, const char *spec, struct fdt_error *err);

/* Append the entry "FD=ORIGIN=NAME" (ORIGIN b, s or u) to out, ':'-separated, for the
 * variable a new master reads with fdt__inherit_parse. Returns 0 or FDT_ELIMIT. */
int fdt__inherit_format(char *out, size_t size, int fd, enum fdt_listen_origin origin,
                        const char *name);

/* Give the listeners of cfg their inherited sockets: ls[i] (i < cfg->n_listeners) gets cfg
 * and either an inherited fd with its origin, or fd -1 (to be bound or kept by the caller).
 * A socket systemd named after a listener goes to that listener and must be bound to its
 * address; the others go to the listener with their address. Marks `used` on the set.
 * Returns 0, or FDT_ECONFIG with err filled when a named socket does not fit its listener
 * (other address, not listening, or reuseport asked for). */
int fdt__inherit_assign(struct fdt_inherit *set, const struct fdt_cfg *cfg, struct fdt_listener *ls,
                        struct fdt_error *err);

/* Whether fd is one of the set's sockets. */
bool fdt__inherit_has(const struct fdt_inherit *set, int fd);

#endif

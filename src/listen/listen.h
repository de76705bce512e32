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

struct fdt_listener {
    struct fdt_listen_cfg cfg;
    int fd;
    /* cfg.tls: the generation's TLS context, made and freed by the master (workers inherit it
     * across fork). NULL otherwise. */
    struct fdt_tls_ctx *tls;
    bool keep; /* scratch flag for reloads */
};

/* Bind and listen. On error, err says which address and why; l->fd stays -1. */
int fdt__listener_bind(struct fdt_listener *l, struct fdt_error *err);
/* For a reuseport listener: open one more listening socket on the anchor's address (one
 * per worker; the kernel spreads connections over them). */
int fdt__listener_open_member(const struct fdt_listener *anchor, int *fd_out,
                              struct fdt_error *err);
/* Close the socket and, for a unix socket, remove its file. */
void fdt__listener_close(struct fdt_listener *l, bool unlink_path);

#endif

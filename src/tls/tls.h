/* TLS over OpenSSL: a listener's settings of one generation (struct fdt_tls_ctx, made by the
 * master, which reads the certificate and key files before workers drop privileges, and
 * inherited by the workers across fork), and one connection's session (struct fdt_tls, made
 * and driven by conn on non-blocking sockets). See docs/internals/tls.md.
 *
 * Threads: a context is read-only once made and may be used by any thread of the process
 * that made or inherited it. A session is used by one thread at a time: conn holds the
 * connection's lock around every call. */
#ifndef FDT_SRC_TLS_H
#define FDT_SRC_TLS_H

#include "config/config.h"

#include <fdt/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes of a session ticket key: name (16), HMAC secret (32), AES key (32). */
#define FDT_TLS_TICKET_KEY_LEN 80
/* Plaintext bytes of one TLS record at most: fdt__tls_write takes no more at once. */
#define FDT_TLS_RECORD_MAX 16384

struct fdt_tls_ctx;
struct fdt_tls;

/* Fill key with a fresh random ticket key (the master, once per generation). Returns 0 or
 * FDT_ERANDOM. */
int fdt__tls_ticket_key_new(unsigned char key[FDT_TLS_TICKET_KEY_LEN]);

/* Make the context of listener l (l->tls must be set): read and check its certificate, key
 * and CA files, and set versions, ciphers, client verification, ALPN (http/1.1 for http
 * listeners) and the ticket key (copied; ignored without session_tickets). On success *out is
 * owned by the caller (fdt__tls_ctx_free). On error err says which file and why; no key
 * material is ever put in a message. Expired certificates are accepted with a warning in the
 * log (the client decides). Thread: main (the master). */
int fdt__tls_ctx_new(const struct fdt_listen_cfg *l, const unsigned char *ticket_key,
                     struct fdt_tls_ctx **out, struct fdt_error *err);
/* Free a context (NULL: nothing). Sessions made from it hold their own reference, so this may
 * come first. */
void fdt__tls_ctx_free(struct fdt_tls_ctx *ctx);
/* The listener's handshake_timeout in milliseconds. */
int64_t fdt__tls_ctx_handshake_timeout_ms(const struct fdt_tls_ctx *ctx);

/* A session on the accepted, non-blocking socket fd (not taken: the caller closes fd after
 * fdt__tls_free). NULL on ENOMEM. */
struct fdt_tls *fdt__tls_new(const struct fdt_tls_ctx *ctx, int fd);
/* Free a session (NULL: nothing). Sends nothing: see fdt__tls_close_notify. */
void fdt__tls_free(struct fdt_tls *t);

/* Advance the handshake. Returns 0 once done, FDT_EAGAIN when it waits for the socket
 * (fdt__tls_wants_write says for which direction), or FDT_EPROTO when it failed: why then
 * holds the reason (OpenSSL's, one line), and fdt__tls_plain_http says whether the client
 * spoke plain HTTP. */
int fdt__tls_handshake(struct fdt_tls *t, char *why, size_t why_size);
/* Whether the handshake, or the last read that returned FDT_EAGAIN, waits for the socket
 * to be writable (else readable). A write that returned FDT_EAGAIN always waits for it. */
bool fdt__tls_wants_write(const struct fdt_tls *t);
/* Whether the handshake failed because the client sent a plain HTTP request. */
bool fdt__tls_plain_http(const struct fdt_tls *t);

/* Read decrypted bytes: > 0 bytes, 0 the peer closed (close_notify or EOF), FDT_EAGAIN
 * nothing now, FDT_ECLOSED a broken connection or protocol error. */
ssize_t fdt__tls_read(struct fdt_tls *t, void *buf, size_t len);
/* The same, leaving the bytes to be read again (SSL_peek). */
ssize_t fdt__tls_peek(struct fdt_tls *t, void *buf, size_t len);
/* Whether decrypted or received bytes wait inside the session (epoll cannot see them). */
bool fdt__tls_has_pending(const struct fdt_tls *t);
/* Write: > 0 bytes taken (at most one record), FDT_EAGAIN none now, FDT_ECLOSED broken.
 * After FDT_EAGAIN the next call must offer at least the same bytes again (they may move:
 * a buffer that grows is fine). */
ssize_t fdt__tls_write(struct fdt_tls *t, const void *buf, size_t len);
/* Send close_notify if the session is sound, without waiting for the peer's. */
void fdt__tls_close_notify(struct fdt_tls *t);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384 resumed" for logs. */
void fdt__tls_describe(const struct fdt_tls *t, char *out, size_t size);

#endif

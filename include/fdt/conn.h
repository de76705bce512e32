/* Client connections as the application sees them. */
#ifndef FDT_CONN_H
#define FDT_CONN_H

#include <fdt/common.h>
#include <stdbool.h>
#include <sys/types.h>

/* A client connection. Opaque; owned by the worker's event loop. A pointer handed to an
 * application callback stays valid until on_close returns, or longer while the
 * application holds a reference taken with fdt_conn_ref(). */
struct fdt_conn;

/* Queue len bytes for the client. Never blocks: what the socket does not take at once is
 * buffered (bounded by [server] max_output) and sent by the event loop.
 * Returns 0, FDT_ECLOSED when the connection is closed or closing, FDT_ELIMIT when the
 * output buffer is full (the connection is then closed), FDT_ENOMEM.
 * Thread: any. */
FDT_API int fdt_conn_write(struct fdt_conn *c, const void *buf, size_t len);

/* Close the connection once everything queued so far has been sent. Idempotent.
 * Thread: any. */
FDT_API void fdt_conn_close(struct fdt_conn *c);

/* Keep the connection object alive beyond on_close. Thread: any. */
FDT_API void fdt_conn_ref(struct fdt_conn *c);
/* Drop a reference taken with fdt_conn_ref(). Thread: any. */
FDT_API void fdt_conn_unref(struct fdt_conn *c);

/* Per-connection application pointer (NULL at first). Thread: the one running a
 * callback for this connection. */
FDT_API void fdt_conn_set_data(struct fdt_conn *c, void *data);
FDT_API void *fdt_conn_data(const struct fdt_conn *c);

/* Worker-unique connection number, for logs. Thread: any. */
FDT_API uint64_t fdt_conn_id(const struct fdt_conn *c);

/* Name of the listener the connection came in on ([listen.NAME]). Borrowed. Thread: any. */
FDT_API const char *fdt_conn_listener(const struct fdt_conn *c);

/* True when the connection speaks TLS (its listener has tls = yes). Thread: any. */
FDT_API bool fdt_conn_tls(const struct fdt_conn *c);

/* True once the worker is draining (graceful stop or reload): a protocol should finish
 * the current exchange and close. Thread: any. */
FDT_API bool fdt_conn_draining(const struct fdt_conn *c);

#endif

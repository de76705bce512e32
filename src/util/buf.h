/* A growable byte buffer with a hard maximum (curl's dynbuf "toobig" idea).
 * Data lives in [data + off, data + off + len); consumed bytes are reclaimed lazily. */
#ifndef FDT_SRC_UTIL_BUF_H
#define FDT_SRC_UTIL_BUF_H

#include <stddef.h>

struct fdt_buf {
    char *data;
    size_t off; /* start of unconsumed data */
    size_t len; /* bytes of unconsumed data */
    size_t cap; /* allocated bytes */
    size_t max; /* never grow beyond this many bytes of data */
};

void fdt__buf_init(struct fdt_buf *b, size_t max);
void fdt__buf_deinit(struct fdt_buf *b);

/* Pointer to the unconsumed data. */
static inline char *fdt__buf_head(const struct fdt_buf *b)
{
    return b->data ? b->data + b->off : NULL; /* NULL + 0 is undefined behaviour in C */
}

/* Make room for at least want more bytes (capped by max); returns the write pointer and
 * stores the room available in *room, or returns NULL with FDT_ELIMIT / FDT_ENOMEM in *rc. */
char *fdt__buf_reserve(struct fdt_buf *b, size_t want, size_t *room, int *rc);
/* Mark n bytes written after fdt__buf_reserve. */
void fdt__buf_commit(struct fdt_buf *b, size_t n);
/* Append bytes. Returns 0, FDT_ELIMIT (nothing appended) or FDT_ENOMEM. */
int fdt__buf_append(struct fdt_buf *b, const void *p, size_t n);
/* Drop n bytes from the front. */
void fdt__buf_consume(struct fdt_buf *b, size_t n);
/* Release memory beyond small_cap when the buffer is empty (idle connections stay small). */
void fdt__buf_shrink(struct fdt_buf *b, size_t small_cap);

#endif

#include "fdt_config.h"

#include "util/buf.h"

#include "util/util.h"

#include <string.h>

void fdt__buf_init(struct fdt_buf *b, size_t max)
{
    b->data = NULL;
    b->off = 0;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void fdt__buf_deinit(struct fdt_buf *b)
{
    free(b->data);
    fdt__buf_init(b, b->max);
}

char *fdt__buf_reserve(struct fdt_buf *b, size_t want, size_t *room, int *rc)
{
    if (b->len >= b->max) {
        *rc = FDT_ELIMIT;
        return NULL;
    }
    if (want > b->max - b->len)
        want = b->max - b->len;
    if (b->off > 0 && b->off + b->len + want > b->cap) {
        /* Move the live bytes to the front before growing. */
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
    }
    if (b->len + want > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + want)
            ncap *= 2;
        if (ncap > b->max)
            ncap = b->max;
        char *p = realloc(b->data, ncap);
        if (!p) {
            *rc = FDT_ENOMEM;
            return NULL;
        }
        b->data = p;
        b->cap = ncap;
    }
    *room = b->cap - b->off - b->len;
    *rc = 0;
    return b->data + b->off + b->len;
}

void fdt__buf_commit(struct fdt_buf *b, size_t n)
{
    FDT_ASSERT(b->off + b->len + n <= b->cap);
    b->len += n;
}

int fdt__buf_append(struct fdt_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n > b->max - b->len)
        return FDT_ELIMIT;
    size_t room;
    int rc;
    char *w = fdt__buf_reserve(b, n, &room, &rc);
    if (!w)
        return rc;
    FDT_ASSERT(room >= n);
    memcpy(w, p, n);
    b->len += n;
    return 0;
}

void fdt__buf_consume(struct fdt_buf *b, size_t n)
{
    FDT_ASSERT(n <= b->len);
    b->off += n;
    b->len -= n;
    if (b->len == 0)
        b->off = 0;
}

void fdt__buf_shrink(struct fdt_buf *b, size_t small_cap)
{
    if (b->len == 0 && b->cap > small_cap) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
        b->off = 0;
    }
}

#include "fdt_config.h"

#include "http/http_int.h"

#include <stdlib.h>

/* Blocks of at least BLOCK_SIZE bytes; a bigger allocation gets a block of its own size. */
#define BLOCK_SIZE 4096
#define ALIGN      16

struct fdt__http_arena_block {
    struct fdt__http_arena_block *next;
    size_t used;
    size_t cap;
    _Alignas(ALIGN) unsigned char data[];
};

void *fdt__http_arena_alloc(struct fdt__http_arena *a, size_t size)
{
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    struct fdt__http_arena_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > BLOCK_SIZE - sizeof(*b) ? size : BLOCK_SIZE - sizeof(*b);
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

void fdt__http_arena_clear(struct fdt__http_arena *a)
{
    struct fdt__http_arena_block *b = a->head;
    while (b) {
        struct fdt__http_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

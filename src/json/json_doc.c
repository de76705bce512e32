#include "fdt_config.h"

#include "json/json.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* The inline region of a document: enough for a typical JSON-RPC request and response. */
#define DOC_INLINE_SIZE 2048
/* Regular blocks start at this size and double up to BLOCK_MAX. */
#define BLOCK_MIN 8192
#define BLOCK_MAX (1024 * 1024)
/* Scratch arrays larger than this are released by fdt_json_doc_clear. */
#define SCRATCH_KEEP (64 * 1024)

void fdt_json_limits_default(struct fdt_json_limits *limits)
{
    if (!limits)
        return;
    limits->max_size = FDT_JSON_DEFAULT_MAX_SIZE;
    limits->max_depth = FDT_JSON_DEFAULT_MAX_DEPTH;
    limits->max_values = FDT_JSON_DEFAULT_MAX_VALUES;
    limits->max_string = FDT_JSON_DEFAULT_MAX_STRING;
}

static uint64_t make_seed(const struct fdt_json_doc *doc)
{
    uint64_t seed = 0;
    ssize_t n = getrandom(&seed, sizeof(seed), GRND_NONBLOCK);
    if (n == (ssize_t)sizeof(seed))
        return seed;
    /* Without kernel randomness (very early boot) fall back to what varies between runs:
     * the heap address (ASLR) and the clock. The index still works; it is only easier to
     * attack with colliding keys.
     * GCOVR_EXCL_START: unreachable: getrandom(GRND_NONBLOCK) fails only before the kernel's
     * pool is initialised, in very early boot */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    seed = (uint64_t)(uintptr_t)doc ^ ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec;
    return fdt__json_mum(seed ^ 0x2d358dccaa6c78a5ull, 0x8bb84b93962eacc9ull);
    /* GCOVR_EXCL_STOP */
}

struct fdt_json_doc *fdt_json_doc_new(void)
{
    struct fdt_json_doc *doc = malloc(sizeof(*doc) + DOC_INLINE_SIZE);
    if (!doc)
        return NULL;
    memset(doc, 0, sizeof(*doc));
    doc->inline_size = DOC_INLINE_SIZE;
    doc->cur = (char *)doc->inline_data;
    doc->lim = doc->cur + DOC_INLINE_SIZE;
    doc->next_size = BLOCK_MIN;
    doc->seed = make_seed(doc);
    return doc;
}

static void free_blocks(struct fdt_json_doc *doc)
{
    struct fdt__json_block *b = doc->blocks;
    while (b) {
        struct fdt__json_block *next = b->next;
        free(b);
        b = next;
    }
    doc->blocks = NULL;
    doc->bytes = 0;
}

void fdt_json_doc_free(struct fdt_json_doc *doc)
{
    if (!doc)
        return;
    free_blocks(doc);
    fdt__json_scratch_free(doc->members);
    fdt__json_scratch_free(doc->items);
    fdt__json_scratch_free(doc->frames);
    free(doc);
}

void fdt_json_doc_clear(struct fdt_json_doc *doc)
{
    if (!doc)
        return;
    free_blocks(doc);
    doc->cur = (char *)doc->inline_data;
    doc->lim = doc->cur + doc->inline_size;
    doc->next_size = BLOCK_MIN;
    if (doc->members_cap * sizeof(*doc->members) > SCRATCH_KEEP) {
        fdt__json_scratch_free(doc->members);
        doc->members = NULL;
        doc->members_cap = 0;
    }
    if (doc->items_cap * sizeof(*doc->items) > SCRATCH_KEEP) {
        fdt__json_scratch_free(doc->items);
        doc->items = NULL;
        doc->items_cap = 0;
    }
    if (doc->frames_cap * sizeof(*doc->frames) > SCRATCH_KEEP) {
        /* GCOVR_EXCL_START: unreachable: nesting is capped at FDT_JSON_DEPTH_MAX (1024), so
         * frames_cap is at most 2048 frames of 24 bytes, under SCRATCH_KEEP; kept in case
         * either changes */
        fdt__json_scratch_free(doc->frames);
        doc->frames = NULL;
        doc->frames_cap = 0;
        /* GCOVR_EXCL_STOP */
    }
}

size_t fdt_json_doc_memory(const struct fdt_json_doc *doc)
{
    if (!doc)
        return 0;
    return sizeof(*doc) + doc->inline_size + doc->bytes + doc->members_cap * sizeof(*doc->members) +
           doc->items_cap * sizeof(*doc->items) + doc->frames_cap * sizeof(*doc->frames);
}

void *fdt__json_alloc_slow(struct fdt_json_doc *doc, size_t n)
{
    if (n == 0)
        n = 8;
    if (n > SIZE_MAX / 4)
        return NULL;
    /* A large request gets a block of its own, linked behind the newest one, so the bump
     * region of the current regular block stays in use. */
    if (n > doc->next_size / 4) {
        struct fdt__json_block *b = malloc(sizeof(*b) + n);
        if (!b)
            return NULL;
        b->size = n;
        if (doc->blocks) {
            b->next = doc->blocks->next;
            doc->blocks->next = b;
        } else {
            b->next = NULL;
            doc->blocks = b;
        }
        doc->bytes += sizeof(*b) + n;
        return b->data;
    }
    size_t size = doc->next_size;
    struct fdt__json_block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->size = size;
    b->next = doc->blocks;
    doc->blocks = b;
    doc->bytes += sizeof(*b) + size;
    if (doc->next_size < BLOCK_MAX)
        doc->next_size *= 2;
    doc->cur = (char *)b->data + n;
    doc->lim = (char *)b->data + size;
    return b->data;
}

int fdt__json_scratch_reserve(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2; /* callers ask for one element more at a time (test_json_api_cov asks more) */
    if (n > (SIZE_MAX - sizeof(struct fdt__json_block)) / size)
        return FDT_ENOMEM; /* need is bounded by the input, far below this (test_json_api_cov) */
    struct fdt__json_block *b = realloc(fdt__json_scratch_block(*arr), sizeof(*b) + n * size);
    if (!b)
        return FDT_ENOMEM;
    b->next = NULL;
    b->size = n * size;
    *arr = b->data;
    *cap = n;
    return 0;
}

void fdt__json_scratch_free(void *arr)
{
    free(fdt__json_scratch_block(arr));
}

void *fdt__json_adopt(struct fdt_json_doc *doc, void *arr, size_t used)
{
    struct fdt__json_block *b = fdt__json_scratch_block(arr);
    /* Give back the unused tail when it is worth a call. */
    if (b->size - used > 4096) {
        struct fdt__json_block *s = realloc(b, sizeof(*b) + used);
        if (s) {
            b = s;
            b->size = used;
        }
    }
    /* Link it behind the newest block, whose bump region stays in use. */
    if (doc->blocks) {
        b->next = doc->blocks->next;
        doc->blocks->next = b;
    } else {
        b->next = NULL;
        doc->blocks = b;
    }
    doc->bytes += sizeof(*b) + b->size;
    return b->data;
}

int fdt__json_index_build(struct fdt_json_doc *doc, struct fdt__json_body *obj, size_t want,
                          size_t *dup)
{
    size_t slots = 16;
    while (slots < want * 2)
        slots *= 2;
    if (slots > (size_t)UINT32_MAX + 1)
        return FDT_ENOMEM; /* GCOVR_EXCL_LINE: unreachable in tests: over 2^30 members (tens
                              of GiB) */
    struct fdt__json_index *ix = fdt__json_alloc(doc, sizeof(*ix) + slots * sizeof(uint32_t));
    if (!ix)
        return FDT_ENOMEM;
    ix->seed = doc->seed;
    ix->mask = (uint32_t)(slots - 1);
    ix->pad = 0;
    memset(ix->slot, 0, slots * sizeof(uint32_t));
    const struct fdt__json_member *m = obj->u.members;
    for (uint32_t i = 0; i < obj->len; i++) {
        uint32_t h = m[i].hash, pos = h & ix->mask;
        while (ix->slot[pos] != 0) {
            const struct fdt__json_member *o = &m[ix->slot[pos] - 1];
            if (dup && o->hash == h && o->klen == m[i].klen &&
                memcmp(o->key, m[i].key, m[i].klen) == 0) {
                *dup = i;
                return 1;
            }
            pos = (pos + 1) & ix->mask;
        }
        ix->slot[pos] = i + 1;
    }
    obj->index = ix;
    return 0;
}

ptrdiff_t fdt__json_object_find(const struct fdt__json_body *obj, const char *key, size_t len,
                                uint32_t hash)
{
    const struct fdt__json_member *m = obj->u.members;
    const struct fdt__json_index *ix = obj->index;
    if (!ix) {
        for (uint32_t i = 0; i < obj->len; i++) {
            if (m[i].klen == len && memcmp(m[i].key, key, len) == 0)
                return (ptrdiff_t)i;
        }
        return -1;
    }
    uint32_t pos = hash & ix->mask;
    while (ix->slot[pos] != 0) {
        const struct fdt__json_member *o = &m[ix->slot[pos] - 1];
        if (o->hash == hash && o->klen == len && memcmp(o->key, key, len) == 0)
            return (ptrdiff_t)(ix->slot[pos] - 1);
        pos = (pos + 1) & ix->mask;
    }
    return -1;
}

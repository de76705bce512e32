/* Internal interface of the JSON module: the layout of values and documents, the arena, the
 * keyed hash and the text helpers shared by the parser, the builder and the writer. Other
 * modules use the public API in include/fdt/json.h; docs/json.md explains the design. */
#ifndef FDT_SRC_JSON_H
#define FDT_SRC_JSON_H

#include <fdt/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Objects with more members than this get a hash index; smaller ones are scanned. */
#define FDT__JSON_INDEX_MIN 8

/* No string, key or container is longer than this (keys keep a flag in the top bit). */
#define FDT__JSON_LEN_MAX INT32_MAX

/* struct fdt_json.flags: a string with no byte that needs escaping on output. */
#define FDT__JSON_CLEAN 0x01

/* The open-addressing index of a large object. slot[i] is 0 when empty, else the member's
 * position + 1. The seed is the document's, kept here so lookups need no document. */
struct fdt__json_index {
    uint64_t seed;
    uint32_t mask;
    uint32_t pad;
    uint32_t slot[];
};

/* The body of an array or object: its children (held inline, see struct fdt_json) and, for a
 * large object, the index. */
struct fdt__json_body {
    union {
        struct fdt_json *items;
        struct fdt__json_member *members;
    } u;
    uint32_t len;                  /* elements or members */
    uint32_t cap;                  /* slots allocated (built containers grow) */
    struct fdt__json_index *index; /* objects with more than FDT__JSON_INDEX_MIN members */
};

/*
 * A value: 16 bytes, immutable once made. Arrays and objects hold their children inline (an
 * array of values, an array of members), so a parsed document has no allocation per value and
 * a lookup follows no extra pointer. Copying a value copies a scalar, or a reference to the
 * shared body of a container; that is what linking a value into a container does.
 */
struct fdt_json {
    uint8_t type;  /* enum fdt_json_type */
    uint8_t flags; /* FDT__JSON_CLEAN for strings */
    uint32_t len;  /* string bytes */
    union {
        bool b;
        int64_t i;
        double d;
        char *s;
        struct fdt__json_body *c; /* arrays and objects */
    } u;
};

/* One member of an object: the key (NUL-terminated, length klen; key_clean when no byte of it
 * needs escaping on output), its keyed hash and its value. */
struct fdt__json_member {
    char *key;
    uint32_t klen : 31;
    uint32_t key_clean : 1;
    uint32_t hash;
    struct fdt_json val;
};

/* An arena block. Regular blocks hold many allocations; a large allocation gets its own. */
struct fdt__json_block {
    struct fdt__json_block *next;
    size_t size; /* bytes of data[] */
    max_align_t data[];
};

/* An open container while parsing: its value and where its children start in the scratch. */
struct fdt__json_frame {
    struct fdt_json v;
    size_t start;
};

struct fdt_json_doc {
    char *cur; /* bump region of the current regular block */
    char *lim;
    struct fdt__json_block *blocks; /* every heap block, newest first */
    size_t next_size;               /* size of the next regular block */
    size_t bytes;                   /* bytes held in blocks, for fdt_json_doc_memory */
    uint64_t seed;                  /* hash seed, random per document */
    /* Parser scratch space, kept across parses of the same document. */
    struct fdt__json_member *members;
    size_t members_cap;
    struct fdt_json *items;
    size_t items_cap;
    struct fdt__json_frame *frames;
    size_t frames_cap;
    /* The first allocations come from here, so a small request needs no further malloc. */
    size_t inline_size;
    max_align_t inline_data[];
};

/* Parser scratch arrays are allocated with a block header in front, so that a full one can be
 * handed over to the document (fdt__json_adopt) instead of copied. */
static inline struct fdt__json_block *fdt__json_scratch_block(void *arr)
{
    return arr ? (struct fdt__json_block *)((char *)arr - offsetof(struct fdt__json_block, data))
               : NULL;
}

/* Grow the scratch array *arr (capacity *cap entries of size bytes) to hold need entries. */
int fdt__json_scratch_reserve(void **arr, size_t *cap, size_t need, size_t size);

/* Release a scratch array. */
void fdt__json_scratch_free(void *arr);

/* Make the scratch array arr (holding used bytes) part of the document's memory. Returns
 * where the array is now (it may move when its unused tail is given back). */
void *fdt__json_adopt(struct fdt_json_doc *doc, void *arr, size_t used);

/* Allocate n bytes (rounded up to 8) from the document; NULL when memory ran out. */
void *fdt__json_alloc_slow(struct fdt_json_doc *doc, size_t n);

static inline void *fdt__json_alloc(struct fdt_json_doc *doc, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n != 0 && (size_t)(doc->lim - doc->cur) >= n) {
        void *p = doc->cur;
        doc->cur += n;
        return p;
    }
    return fdt__json_alloc_slow(doc, n);
}

/* A new scalar value of the given type, zeroed. */
static inline struct fdt_json *fdt__json_new(struct fdt_json_doc *doc, enum fdt_json_type type)
{
    struct fdt_json *v = (struct fdt_json *)fdt__json_alloc(doc, sizeof(*v));
    if (v) {
        v->type = (uint8_t)type;
        v->flags = 0;
        v->len = 0;
        v->u.i = 0;
    }
    return v;
}

/* A new empty array or object: the value and its body in one allocation. */
static inline struct fdt_json *fdt__json_new_container(struct fdt_json_doc *doc,
                                                       enum fdt_json_type type)
{
    struct fdt_json *v = (struct fdt_json *)fdt__json_alloc(doc, sizeof(struct fdt_json) +
                                                                     sizeof(struct fdt__json_body));
    if (v) {
        struct fdt__json_body *c = (struct fdt__json_body *)(v + 1);
        c->u.items = NULL;
        c->len = 0;
        c->cap = 0;
        c->index = NULL;
        v->type = (uint8_t)type;
        v->flags = 0;
        v->len = 0;
        v->u.c = c;
    }
    return v;
}

/* Keyed hash of a key (a wyhash-style multiply-fold; the seed is random per document so
 * clients cannot precompute colliding keys). */
__extension__ typedef unsigned __int128 fdt__json_u128;

static inline uint64_t fdt__json_mum(uint64_t a, uint64_t b)
{
    fdt__json_u128 r = (fdt__json_u128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint32_t fdt__json_hash(const char *s, size_t n, uint64_t seed)
{
    const uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull;
    const uint64_t k2 = 0x8ebc6af09c88c6e3ull;
    const unsigned char *p = (const unsigned char *)s;
    uint64_t h = seed ^ k0 ^ ((uint64_t)n * k2);
    size_t left = n;
    while (left > 8) {
        uint64_t w;
        __builtin_memcpy(&w, p, 8);
        h = fdt__json_mum(h ^ w, k1);
        p += 8;
        left -= 8;
    }
    uint64_t a = 0, b = 0;
    if (left >= 4) {
        uint32_t x, y;
        __builtin_memcpy(&x, p, 4);
        __builtin_memcpy(&y, p + left - 4, 4);
        a = x;
        b = y;
    } else if (left > 0) {
        a = ((uint64_t)p[0] << 16) | ((uint64_t)p[left >> 1] << 8) | p[left - 1];
    }
    h = fdt__json_mum(h ^ a ^ k1, b ^ seed ^ k2);
    return (uint32_t)(h ^ (h >> 32));
}

/* Build the index of obj (more than FDT__JSON_INDEX_MIN members, hashes already set) with room
 * for at least `want` members. If dup is not NULL, a key seen twice stops the build and its
 * later position is stored in *dup (return 1). Returns 0, 1 or FDT_ENOMEM. */
int fdt__json_index_build(struct fdt_json_doc *doc, struct fdt__json_body *obj, size_t want,
                          size_t *dup);

/* Position of key in obj's members, or -1. */
ptrdiff_t fdt__json_object_find(const struct fdt__json_body *obj, const char *key, size_t len,
                                uint32_t hash);

/* Length of the valid UTF-8 sequence starting a non-ASCII byte at p (2 to 4), or 0 when it is
 * invalid (bad lead byte, bad or missing continuation, overlong, surrogate, above U+10FFFF).
 * Never reads at or beyond end. */
static inline size_t fdt__json_utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t avail = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF) {
        if (avail >= 2 && (p[1] & 0xC0) == 0x80)
            return 2;
        return 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3)
            return 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
        if (p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80)
            return 3;
        return 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4)
            return 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
        if (p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80)
            return 4;
        return 0;
    }
    return 0;
}

/* Byte classes inside strings, shared by the parser and the writer. */
enum {
    FDT__JSON_CH_PLAIN = 0,  /* printable ASCII other than '"' and '\\' */
    FDT__JSON_CH_QUOTE = 1,  /* '"' */
    FDT__JSON_CH_BSLASH = 2, /* '\\' */
    FDT__JSON_CH_CTRL = 3,   /* 0x00 to 0x1F */
    FDT__JSON_CH_HIGH = 4,   /* 0x80 to 0xFF: part of a UTF-8 sequence */
};
extern const uint8_t fdt__json_char_class[256];

/* Whether s[0, len) is valid UTF-8. */
bool fdt__json_utf8_valid(const char *s, size_t len);

/* Whether no byte of s[0, len) needs escaping in JSON output (control characters, '"', '\\'). */
bool fdt__json_is_clean(const char *s, size_t len);

/* Parse a decimal number text (JSON grammar already checked, followed by a non-number byte)
 * into a double in the C locale, whatever the process locale. Returns 0, or FDT_EPROTO when
 * the magnitude is too large for a double. */
int fdt__json_strtod(const char *s, size_t len, double *out);

/* Format d as the shortest text that parses back to d, with '.' or 'e' always present.
 * out must hold 32 bytes. Returns the length, or 0 for NaN and infinities. */
size_t fdt__json_format_double(double d, char *out);

/* Format i in decimal into out (at least 20 bytes). Returns the length. */
size_t fdt__json_format_int(int64_t i, char *out);

#endif

#include "fdt_config.h"

#include "json/json.h"

#include <math.h>
#include <string.h>

/* ---- Reading ---------------------------------------------------------------------------- */

enum fdt_json_type fdt_json_type(const struct fdt_json *v)
{
    return v ? (enum fdt_json_type)v->type : FDT_JSON_NONE;
}

bool fdt_json_bool_value(const struct fdt_json *v)
{
    return v && v->type == FDT_JSON_BOOL && v->u.b;
}

int64_t fdt_json_int_value(const struct fdt_json *v)
{
    return v && v->type == FDT_JSON_INT ? v->u.i : 0;
}

double fdt_json_number_value(const struct fdt_json *v)
{
    if (!v)
        return 0.0;
    if (v->type == FDT_JSON_DOUBLE)
        return v->u.d;
    if (v->type == FDT_JSON_INT)
        return (double)v->u.i;
    return 0.0;
}

const char *fdt_json_string_value(const struct fdt_json *v, size_t *len)
{
    if (!v || v->type != FDT_JSON_STRING) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = v->len;
    return v->u.s;
}

size_t fdt_json_size(const struct fdt_json *v)
{
    if (!v || (v->type != FDT_JSON_ARRAY && v->type != FDT_JSON_OBJECT))
        return 0;
    return v->u.c->len;
}

struct fdt_json *fdt_json_array_get(const struct fdt_json *v, size_t i)
{
    if (!v || v->type != FDT_JSON_ARRAY || i >= v->u.c->len)
        return NULL;
    return &v->u.c->u.items[i];
}

struct fdt_json *fdt_json_object_getn(const struct fdt_json *v, const char *key, size_t key_len)
{
    if (!v || v->type != FDT_JSON_OBJECT || !key || key_len > FDT__JSON_LEN_MAX)
        return NULL;
    const struct fdt__json_body *c = v->u.c;
    uint32_t h = c->index ? fdt__json_hash(key, key_len, c->index->seed) : 0;
    ptrdiff_t pos = fdt__json_object_find(c, key, key_len, h);
    return pos < 0 ? NULL : &c->u.members[pos].val;
}

struct fdt_json *fdt_json_object_get(const struct fdt_json *v, const char *key)
{
    if (!key)
        return NULL;
    return fdt_json_object_getn(v, key, strlen(key));
}

const char *fdt_json_object_key_at(const struct fdt_json *v, size_t i, size_t *key_len)
{
    if (!v || v->type != FDT_JSON_OBJECT || i >= v->u.c->len) {
        if (key_len)
            *key_len = 0;
        return NULL;
    }
    if (key_len)
        *key_len = v->u.c->u.members[i].klen;
    return v->u.c->u.members[i].key;
}

struct fdt_json *fdt_json_object_value_at(const struct fdt_json *v, size_t i)
{
    if (!v || v->type != FDT_JSON_OBJECT || i >= v->u.c->len)
        return NULL;
    return &v->u.c->u.members[i].val;
}

int fdt_json_get_int(const struct fdt_json *v, int64_t *out)
{
    if (!v || v->type != FDT_JSON_INT || !out)
        return FDT_EINVAL;
    *out = v->u.i;
    return 0;
}

int fdt_json_get_bool(const struct fdt_json *v, bool *out)
{
    if (!v || v->type != FDT_JSON_BOOL || !out)
        return FDT_EINVAL;
    *out = v->u.b;
    return 0;
}

int fdt_json_get_string(const struct fdt_json *v, const char **out, size_t *len)
{
    if (!v || v->type != FDT_JSON_STRING || !out)
        return FDT_EINVAL;
    *out = v->u.s;
    if (len)
        *len = v->len;
    return 0;
}

static bool equal_at(const struct fdt_json *a, const struct fdt_json *b, unsigned depth)
{
    if (a == b)
        return true;
    if (!a || !b || a->type != b->type)
        return false;
    switch ((enum fdt_json_type)a->type) {
    case FDT_JSON_NONE:
    case FDT_JSON_NULL:
        return true;
    case FDT_JSON_BOOL:
        return a->u.b == b->u.b;
    case FDT_JSON_INT:
        return a->u.i == b->u.i;
    case FDT_JSON_DOUBLE:
        return a->u.d == b->u.d && signbit(a->u.d) == signbit(b->u.d);
    case FDT_JSON_STRING:
        return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
    case FDT_JSON_ARRAY:
        if (a->u.c->len != b->u.c->len || depth >= FDT_JSON_DEPTH_MAX)
            return false;
        for (uint32_t i = 0; i < a->u.c->len; i++) {
            if (!equal_at(&a->u.c->u.items[i], &b->u.c->u.items[i], depth + 1))
                return false;
        }
        return true;
    case FDT_JSON_OBJECT:
        if (a->u.c->len != b->u.c->len || depth >= FDT_JSON_DEPTH_MAX)
            return false;
        for (uint32_t i = 0; i < a->u.c->len; i++) {
            const struct fdt__json_member *m = &a->u.c->u.members[i];
            const struct fdt_json *other = fdt_json_object_getn(b, m->key, m->klen);
            if (!other || !equal_at(&m->val, other, depth + 1))
                return false;
        }
        return true;
    }
    return false; /* GCOVR_EXCL_LINE: unreachable: the switch returns for every type */
}

bool fdt_json_equal(const struct fdt_json *a, const struct fdt_json *b)
{
    return equal_at(a, b, 0);
}

/* ---- Building --------------------------------------------------------------------------- */

struct fdt_json *fdt_json_null(struct fdt_json_doc *doc)
{
    return doc ? fdt__json_new(doc, FDT_JSON_NULL) : NULL;
}

struct fdt_json *fdt_json_bool(struct fdt_json_doc *doc, bool b)
{
    struct fdt_json *v = doc ? fdt__json_new(doc, FDT_JSON_BOOL) : NULL;
    if (v)
        v->u.b = b;
    return v;
}

struct fdt_json *fdt_json_int(struct fdt_json_doc *doc, int64_t i)
{
    struct fdt_json *v = doc ? fdt__json_new(doc, FDT_JSON_INT) : NULL;
    if (v)
        v->u.i = i;
    return v;
}

struct fdt_json *fdt_json_double(struct fdt_json_doc *doc, double d)
{
    if (!doc || !isfinite(d))
        return NULL;
    struct fdt_json *v = fdt__json_new(doc, FDT_JSON_DOUBLE);
    if (v)
        v->u.d = d;
    return v;
}

/* A NUL-terminated copy of s in the document, or NULL. */
static char *copy_text(struct fdt_json_doc *doc, const char *s, size_t len)
{
    char *c = fdt__json_alloc(doc, len + 1);
    if (!c)
        return NULL;
    if (len)
        memcpy(c, s, len);
    c[len] = '\0';
    return c;
}

struct fdt_json *fdt_json_stringn(struct fdt_json_doc *doc, const char *s, size_t len)
{
    if (!doc || (!s && len) || len > FDT__JSON_LEN_MAX || !fdt__json_utf8_valid(s, len))
        return NULL;
    struct fdt_json *v = fdt__json_new(doc, FDT_JSON_STRING);
    if (!v)
        return NULL;
    v->u.s = copy_text(doc, s ? s : "", len);
    if (!v->u.s)
        return NULL;
    v->len = (uint32_t)len;
    v->flags = fdt__json_is_clean(v->u.s, len) ? FDT__JSON_CLEAN : 0;
    return v;
}

struct fdt_json *fdt_json_string(struct fdt_json_doc *doc, const char *s)
{
    if (!s)
        return NULL;
    return fdt_json_stringn(doc, s, strlen(s));
}

struct fdt_json *fdt_json_array(struct fdt_json_doc *doc)
{
    return doc ? fdt__json_new_container(doc, FDT_JSON_ARRAY) : NULL;
}

struct fdt_json *fdt_json_object(struct fdt_json_doc *doc)
{
    return doc ? fdt__json_new_container(doc, FDT_JSON_OBJECT) : NULL;
}

/* Make room for one more slot of `size` bytes in a container, doubling its capacity. The old
 * array stays in the arena: the total waste is at most the final size. */
static int grow(struct fdt_json_doc *doc, struct fdt__json_body *c, void **slots, size_t size)
{
    if (c->len < c->cap)
        return 0;
    size_t cap = c->cap ? (size_t)c->cap * 2 : 4;
    /* GCOVR_EXCL_START: unreachable in tests: a container of over 2^30 elements (16 GiB of
     * slots) */
    if (cap > FDT__JSON_LEN_MAX)
        cap = FDT__JSON_LEN_MAX;
    if (cap <= c->len)
        return FDT_ENOMEM;
    /* GCOVR_EXCL_STOP */
    void *n = fdt__json_alloc(doc, cap * size);
    if (!n)
        return FDT_ENOMEM;
    if (c->len)
        memcpy(n, *slots, (size_t)c->len * size);
    *slots = n;
    c->cap = (uint32_t)cap;
    return 0;
}

int fdt_json_array_append(struct fdt_json_doc *doc, struct fdt_json *arr, struct fdt_json *val)
{
    if (!doc || !arr || arr->type != FDT_JSON_ARRAY || !val)
        return FDT_EINVAL;
    struct fdt__json_body *c = arr->u.c;
    void *slots = c->u.items;
    int rc = grow(doc, c, &slots, sizeof(struct fdt_json));
    if (rc != 0)
        return rc;
    c->u.items = slots;
    c->u.items[c->len++] = *val;
    return 0;
}

int fdt_json_object_setn(struct fdt_json_doc *doc, struct fdt_json *obj, const char *key,
                         size_t key_len, struct fdt_json *val)
{
    if (!doc || !obj || obj->type != FDT_JSON_OBJECT || !val || !key)
        return FDT_EINVAL;
    if (key_len > FDT__JSON_LEN_MAX || !fdt__json_utf8_valid(key, key_len))
        return FDT_EINVAL;
    struct fdt__json_body *c = obj->u.c;
    uint64_t seed = c->index ? c->index->seed : doc->seed;
    uint32_t h = fdt__json_hash(key, key_len, seed);
    ptrdiff_t pos = fdt__json_object_find(c, key, key_len, h);
    if (pos >= 0) {
        c->u.members[pos].val = *val;
        return 0;
    }
    char *k = copy_text(doc, key, key_len);
    if (!k)
        return FDT_ENOMEM;
    void *slots = c->u.members;
    int rc = grow(doc, c, &slots, sizeof(struct fdt__json_member));
    if (rc != 0)
        return rc;
    c->u.members = slots;
    uint32_t i = c->len++;
    c->u.members[i] = (struct fdt__json_member){.key = k,
                                                .klen = (uint32_t)key_len,
                                                .key_clean = fdt__json_is_clean(k, key_len),
                                                .hash = h,
                                                .val = *val};
    if (c->len <= FDT__JSON_INDEX_MIN)
        return 0;
    struct fdt__json_index *ix = c->index;
    if (ix && ((size_t)c->len * 2 <= (size_t)ix->mask + 1)) {
        uint32_t p = h & ix->mask;
        while (ix->slot[p] != 0)
            p = (p + 1) & ix->mask;
        ix->slot[p] = i + 1;
        return 0;
    }
    /* Without an index (or with a full one) build one with room to grow. An index made with
     * another seed (an object moved in from another document, which the API forbids) is
     * rebuilt with this document's seed, as every member hash must match it. */
    bool rehashed = false;
    if (ix && ix->seed != doc->seed) {
        /* GCOVR_EXCL_START: unreachable through the API, which forbids moving values between
         * documents */
        for (uint32_t j = 0; j < c->len; j++) {
            struct fdt__json_member *m = &c->u.members[j];
            m->hash = fdt__json_hash(m->key, m->klen, doc->seed);
        }
        rehashed = true;
        /* GCOVR_EXCL_STOP */
    }
    c->index = NULL;
    rc = fdt__json_index_build(doc, c, (size_t)c->len * 2, NULL);
    if (rc != 0) {
        /* Undo the append. Without an index, lookups scan the members, which stays correct. */
        c->len--;
        c->index = rehashed ? NULL : ix;
        return rc;
    }
    return 0;
}

int fdt_json_object_set(struct fdt_json_doc *doc, struct fdt_json *obj, const char *key,
                        struct fdt_json *val)
{
    if (!key)
        return FDT_EINVAL;
    return fdt_json_object_setn(doc, obj, key, strlen(key), val);
}

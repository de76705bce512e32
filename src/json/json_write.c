#include "fdt_config.h"

#include "json/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * The streaming writer. Text goes straight into one growable buffer with a hard maximum; the
 * structure is tracked with one bit per nesting level (object or array) plus three flags for
 * the current level, which is all that comma placement and misuse detection need. Encoding a
 * document walks it with an explicit stack, so a deep (or, by mistake, cyclic) value cannot
 * overflow the C stack: nesting beyond FDT_JSON_DEPTH_MAX is FDT_ELIMIT.
 */

static int set_err(struct fdt_json_writer *w, int code)
{
    if (w->_err == 0)
        w->_err = code;
    return w->_err;
}

/* Make room for n more bytes plus a terminating NUL. */
static int grow(struct fdt_json_writer *w, size_t n)
{
    if (n > w->_max || w->_len > w->_max - n)
        return set_err(w, FDT_ELIMIT);
    size_t need = w->_len + n + 1;
    size_t cap = w->_cap ? w->_cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > w->_max + 1)
        cap = w->_max + 1;
    char *b = realloc(w->_buf, cap);
    if (!b)
        return set_err(w, FDT_ENOMEM);
    w->_buf = b;
    w->_cap = cap;
    return 0;
}

static inline int reserve(struct fdt_json_writer *w, size_t n)
{
    if (w->_cap - w->_len > n)
        return 0;
    return grow(w, n);
}

static inline int put(struct fdt_json_writer *w, const char *s, size_t n)
{
    int rc = reserve(w, n);
    if (rc != 0)
        return rc;
    memcpy(w->_buf + w->_len, s, n);
    w->_len += n;
    return 0;
}

static inline int put_char(struct fdt_json_writer *w, char c)
{
    int rc = reserve(w, 1);
    if (rc != 0)
        return rc;
    w->_buf[w->_len++] = c;
    return 0;
}

/* Whether any of the eight bytes in w needs a look: a control character, '"', '\\', or (when
 * UTF-8 must be checked) a byte of a multi-byte sequence. False positives only cost time. */
static inline bool word_special(uint64_t w, bool check)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t hit = ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b);
    if (check)
        hit |= w;
    return (hit & highs) != 0;
}

/* Write the escape sequence for the byte c (a control character, '"' or '\\') at o. */
static inline char *put_escape(char *o, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    *o++ = '\\';
    switch (c) {
    case '"':
        *o++ = '"';
        break;
    case '\\':
        *o++ = '\\';
        break;
    case '\b':
        *o++ = 'b';
        break;
    case '\f':
        *o++ = 'f';
        break;
    case '\n':
        *o++ = 'n';
        break;
    case '\r':
        *o++ = 'r';
        break;
    case '\t':
        *o++ = 't';
        break;
    default:
        o[0] = 'u';
        o[1] = '0';
        o[2] = '0';
        o[3] = hex[c >> 4];
        o[4] = hex[c & 15];
        o += 5;
        break;
    }
    return o;
}

/* Escape [p, end) into o, which has room for six bytes per input byte. Returns the new end of
 * the output, or NULL when check is set and the input is not valid UTF-8. Without check the
 * input comes from a document, where every string was validated when it was made. */
__attribute__((always_inline)) static inline char *escape_into(char *o, const unsigned char *p,
                                                               const unsigned char *end, bool check)
{
    const uint8_t *cls = fdt__json_char_class;
    const uint8_t high_ok = check ? FDT__JSON_CH_PLAIN : FDT__JSON_CH_HIGH;
    while (p < end) {
        if (end - p >= 8) {
            uint64_t word;
            memcpy(&word, p, 8);
            if (!word_special(word, check)) {
                memcpy(o, &word, 8);
                o += 8;
                p += 8;
                continue;
            }
        }
        uint8_t c = cls[*p];
        if (c == FDT__JSON_CH_PLAIN || c == high_ok) {
            *o++ = (char)*p++;
        } else if (c == FDT__JSON_CH_HIGH) {
            size_t n = fdt__json_utf8_seq(p, end);
            if (n == 0)
                return NULL;
            while (n--)
                *o++ = (char)*p++;
        } else {
            o = put_escape(o, *p++);
        }
    }
    return o;
}

/* The exact escaped size of [p, end) without quotes, or SIZE_MAX for invalid UTF-8. */
static size_t escaped_size(const unsigned char *p, const unsigned char *end, bool check)
{
    const uint8_t *cls = fdt__json_char_class;
    size_t n = 0;
    while (p < end) {
        uint8_t c = cls[*p];
        if (c == FDT__JSON_CH_PLAIN) {
            n++;
            p++;
        } else if (c == FDT__JSON_CH_HIGH) {
            size_t k = check ? fdt__json_utf8_seq(p, end) : 1;
            if (k == 0)
                return SIZE_MAX;
            n += k;
            p += k;
        } else {
            n += (c == FDT__JSON_CH_CTRL && *p != '\b' && *p != '\f' && *p != '\n' && *p != '\r' &&
                  *p != '\t')
                     ? 6
                     : 2;
            p++;
        }
    }
    return n;
}

/* Whether n more bytes fit under the maximum. */
static inline bool fits(const struct fdt_json_writer *w, size_t n)
{
    return n <= w->_max - w->_len;
}

/* Append s as a quoted, escaped JSON string; with check, s must be valid UTF-8. */
static int put_string(struct fdt_json_writer *w, const char *s, size_t len, bool check)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    int rc;
    char *o;
    if (len <= 65536 && fits(w, len * 6 + 2)) {
        /* One pass into worst-case room. */
        rc = reserve(w, len * 6 + 2);
        if (rc != 0)
            return rc;
        o = w->_buf + w->_len;
    } else {
        /* A long string, or one near the maximum: measure it first and reserve exactly. */
        size_t n = escaped_size(p, end, check);
        if (n == SIZE_MAX)
            return set_err(w, FDT_EINVAL);
        if (n > SIZE_MAX / 2)
            return set_err(w, FDT_ELIMIT); /* GCOVR_EXCL_LINE: unreachable: n <= 6 * len, and len
                                              bytes are in memory */
        rc = reserve(w, n + 2);
        if (rc != 0)
            return rc;
        /* The input was validated by escaped_size, so this pass only copies and escapes. */
        o = w->_buf + w->_len;
        char *start = o;
        *o++ = '"';
        const uint8_t *cls = fdt__json_char_class;
        while (p < end) {
            uint8_t c = cls[*p];
            if (c == FDT__JSON_CH_PLAIN || c == FDT__JSON_CH_HIGH)
                *o++ = (char)*p++;
            else
                o = put_escape(o, *p++);
        }
        *o++ = '"';
        w->_len += (size_t)(o - start);
        return 0;
    }
    *o++ = '"';
    o = escape_into(o, p, end, check);
    if (!o)
        return set_err(w, FDT_EINVAL);
    *o++ = '"';
    w->_len = (size_t)(o - w->_buf);
    return 0;
}

/* Copy n bytes (at most 16) without a call and without reading or writing past either end. */
static inline void copy_small(char *o, const char *s, size_t n)
{
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(o, &a, 8);
        memcpy(o + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(o, &a, 4);
        memcpy(o + n - 4, &b, 4);
    } else if (n > 0) {
        o[0] = s[0];
        o[n >> 1] = s[n >> 1];
        o[n - 1] = s[n - 1];
    }
}

/* Write a string from a document that needs no escaping, quoted, at o (room checked). */
static inline char *put_clean_at(char *o, const char *s, size_t n)
{
    *o++ = '"';
    if (n <= 16)
        copy_small(o, s, n);
    else
        memcpy(o, s, n);
    o += n;
    *o++ = '"';
    return o;
}

static int put_clean(struct fdt_json_writer *w, const char *s, size_t n)
{
    int rc = reserve(w, n + 2);
    if (rc != 0)
        return rc;
    w->_len = (size_t)(put_clean_at(w->_buf + w->_len, s, n) - w->_buf);
    return 0;
}

/* Write a short string from outside a document, quoted, at o (room for six bytes per input
 * byte checked): one pass over a table decides whether it can be copied as it is. Returns
 * the new end, or NULL when it is not valid UTF-8. */
static inline char *put_short_at(char *o, const char *s, size_t n)
{
    unsigned bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= fdt__json_char_class[(unsigned char)s[i]];
    if (bad == 0)
        return put_clean_at(o, s, n);
    *o++ = '"';
    o = escape_into(o, (const unsigned char *)s, (const unsigned char *)s + n, true);
    if (o)
        *o++ = '"';
    return o;
}

/* Children are "simple" when they can be written with one room check: an int, bool or null,
 * or a clean string of at most SIMPLE_MAX bytes, under a clean key of at most SIMPLE_MAX. */
#define SIMPLE_MAX 64

/* The worst-case size of a simple value, or 0 if v is not simple. */
static inline size_t simple_size(const struct fdt_json *v)
{
    switch ((enum fdt_json_type)v->type) {
    case FDT_JSON_INT:
        return 20;
    case FDT_JSON_BOOL:
    case FDT_JSON_NULL:
        return 5;
    case FDT_JSON_STRING:
        if ((v->flags & FDT__JSON_CLEAN) && v->len <= SIMPLE_MAX)
            return (size_t)v->len + 2;
        return 0;
    default:
        return 0;
    }
}

/* Make room for n bytes if that fits under the maximum; false leaves the general path to
 * report the error exactly where it happens. */
static inline bool room_for(struct fdt_json_writer *w, size_t n)
{
    if (w->_cap - w->_len > n)
        return true;
    return fits(w, n) && grow(w, n) == 0;
}

static int put_int(struct fdt_json_writer *w, int64_t i)
{
    if (w->_cap - w->_len > 20) {
        w->_len += fdt__json_format_int(i, w->_buf + w->_len);
        return 0;
    }
    /* Near the end of the buffer (or of the maximum): format aside, append exactly. */
    char tmp[24];
    return put(w, tmp, fdt__json_format_int(i, tmp));
}

static int put_double(struct fdt_json_writer *w, double d)
{
    char tmp[32];
    size_t n = fdt__json_format_double(d, tmp);
    if (n == 0)
        return set_err(w, FDT_EINVAL);
    return put(w, tmp, n);
}

static inline bool level_is_object(const struct fdt_json_writer *w)
{
    uint32_t l = w->_depth - 1;
    return (w->_kinds[l / 8] >> (l % 8)) & 1;
}

/* Check that a value may come now and write the comma before it. */
static int before_value(struct fdt_json_writer *w)
{
    if (w->_err)
        return w->_err;
    if (w->_depth == 0)
        return w->_done ? set_err(w, FDT_EINVAL) : 0;
    if (level_is_object(w))
        return w->_after_key ? 0 : set_err(w, FDT_EINVAL);
    return w->_first ? 0 : put_char(w, ',');
}

static int after_value(struct fdt_json_writer *w, int rc)
{
    if (rc != 0)
        return set_err(w, rc);
    if (w->_depth == 0) {
        w->_done = true;
    } else {
        w->_first = false;
        w->_after_key = false;
    }
    return 0;
}

void fdt_json_writer_init(struct fdt_json_writer *w, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->_max = max ? max : FDT_JSON_WRITER_DEFAULT_MAX;
    if (w->_max > SIZE_MAX / 2)
        w->_max = SIZE_MAX / 2;
    w->_first = true;
}

void fdt_json_writer_deinit(struct fdt_json_writer *w)
{
    if (!w)
        return;
    free(w->_buf);
    w->_buf = NULL;
    w->_cap = 0;
    w->_len = 0;
}

void fdt_json_writer_reset(struct fdt_json_writer *w)
{
    w->_len = 0;
    w->_err = 0;
    w->_depth = 0;
    w->_first = true;
    w->_after_key = false;
    w->_done = false;
}

static int begin(struct fdt_json_writer *w, bool object)
{
    int rc = before_value(w);
    if (rc != 0)
        return rc;
    if (w->_depth >= FDT_JSON_DEPTH_MAX)
        return set_err(w, FDT_ELIMIT);
    rc = put_char(w, object ? '{' : '[');
    if (rc != 0)
        return rc;
    uint32_t l = w->_depth++;
    if (object)
        w->_kinds[l / 8] |= (unsigned char)(1u << (l % 8));
    else
        w->_kinds[l / 8] &= (unsigned char)~(1u << (l % 8));
    w->_first = true;
    w->_after_key = false;
    return 0;
}

static int end(struct fdt_json_writer *w, bool object)
{
    if (w->_err)
        return w->_err;
    if (w->_depth == 0 || level_is_object(w) != object || w->_after_key)
        return set_err(w, FDT_EINVAL);
    int rc = put_char(w, object ? '}' : ']');
    if (rc != 0)
        return rc;
    w->_depth--;
    return after_value(w, 0);
}

int fdt_json_writer_begin_object(struct fdt_json_writer *w)
{
    return begin(w, true);
}

int fdt_json_writer_end_object(struct fdt_json_writer *w)
{
    return end(w, true);
}

int fdt_json_writer_begin_array(struct fdt_json_writer *w)
{
    return begin(w, false);
}

int fdt_json_writer_end_array(struct fdt_json_writer *w)
{
    return end(w, false);
}

int fdt_json_writer_keyn(struct fdt_json_writer *w, const char *key, size_t len)
{
    if (w->_err)
        return w->_err;
    if (w->_depth == 0 || !level_is_object(w) || w->_after_key || (!key && len))
        return set_err(w, FDT_EINVAL);
    if (len <= SIMPLE_MAX && room_for(w, len * 6 + 4)) {
        /* A short key: comma, quoted key and colon with one room check. */
        char *o = w->_buf + w->_len;
        *o = ',';
        o += !w->_first;
        o = put_short_at(o, key, len);
        if (!o)
            return set_err(w, FDT_EINVAL);
        *o++ = ':';
        w->_len = (size_t)(o - w->_buf);
        w->_after_key = true;
        return 0;
    }
    if (w->_err)
        return w->_err; /* room_for may have run out of memory */
    int rc = w->_first ? 0 : put_char(w, ',');
    if (rc == 0)
        rc = put_string(w, key ? key : "", len, true);
    if (rc == 0)
        rc = put_char(w, ':');
    if (rc != 0)
        return set_err(w, rc);
    w->_after_key = true;
    return 0;
}

int fdt_json_writer_key(struct fdt_json_writer *w, const char *key)
{
    if (!key)
        return set_err(w, FDT_EINVAL);
    return fdt_json_writer_keyn(w, key, strlen(key));
}

int fdt_json_writer_stringn(struct fdt_json_writer *w, const char *s, size_t len)
{
    int rc = before_value(w);
    if (rc != 0)
        return rc;
    if (!s && len)
        return set_err(w, FDT_EINVAL);
    if (len <= SIMPLE_MAX && room_for(w, len * 6 + 2)) {
        char *o = put_short_at(w->_buf + w->_len, s ? s : "", len);
        if (!o)
            return set_err(w, FDT_EINVAL);
        w->_len = (size_t)(o - w->_buf);
        return after_value(w, 0);
    }
    return after_value(w, put_string(w, s ? s : "", len, true));
}

int fdt_json_writer_string(struct fdt_json_writer *w, const char *s)
{
    if (!s)
        return set_err(w, FDT_EINVAL);
    return fdt_json_writer_stringn(w, s, strlen(s));
}

int fdt_json_writer_int(struct fdt_json_writer *w, int64_t i)
{
    int rc = before_value(w);
    if (rc != 0)
        return rc;
    return after_value(w, put_int(w, i));
}

int fdt_json_writer_double(struct fdt_json_writer *w, double d)
{
    int rc = before_value(w);
    if (rc != 0)
        return rc;
    return after_value(w, put_double(w, d));
}

int fdt_json_writer_bool(struct fdt_json_writer *w, bool b)
{
    int rc = before_value(w);
    if (rc != 0)
        return rc;
    return after_value(w, b ? put(w, "true", 4) : put(w, "false", 5));
}

int fdt_json_writer_null(struct fdt_json_writer *w)
{
    int rc = before_value(w);
    if (rc != 0)
        return rc;
    return after_value(w, put(w, "null", 4));
}

int fdt_json_writer_raw(struct fdt_json_writer *w, const char *json, size_t len)
{
    int rc = before_value(w);
    if (rc != 0)
        return rc;
    if (!json || len == 0)
        return set_err(w, FDT_EINVAL);
    return after_value(w, put(w, json, len));
}

/* Write a scalar, or an empty container; for a non-empty container write its opening byte
 * and return 1 so the caller descends into it. */
static int put_value_start(struct fdt_json_writer *w, const struct fdt_json *v)
{
    switch ((enum fdt_json_type)v->type) {
    case FDT_JSON_NULL:
        return put(w, "null", 4);
    case FDT_JSON_BOOL:
        return v->u.b ? put(w, "true", 4) : put(w, "false", 5);
    case FDT_JSON_INT:
        return put_int(w, v->u.i);
    case FDT_JSON_DOUBLE:
        return put_double(w, v->u.d);
    case FDT_JSON_STRING:
        if (v->flags & FDT__JSON_CLEAN)
            return put_clean(w, v->u.s, v->len);
        return put_string(w, v->u.s, v->len, false);
    case FDT_JSON_ARRAY:
        if (v->u.c->len == 0)
            return put(w, "[]", 2);
        return put_char(w, '[') != 0 ? w->_err : 1;
    case FDT_JSON_OBJECT:
        if (v->u.c->len == 0)
            return put(w, "{}", 2);
        return put_char(w, '{') != 0 ? w->_err : 1;
    case FDT_JSON_NONE:
        break;
    }
    return set_err(w, FDT_EINVAL);
}

/* Write a simple value at o (room checked). */
static inline char *put_simple_at(char *o, const struct fdt_json *v)
{
    switch ((enum fdt_json_type)v->type) {
    case FDT_JSON_INT:
        return o + fdt__json_format_int(v->u.i, o);
    case FDT_JSON_BOOL:
        if (v->u.b) {
            memcpy(o, "true", 4);
            return o + 4;
        }
        memcpy(o, "false", 5);
        return o + 5;
    case FDT_JSON_STRING:
        return put_clean_at(o, v->u.s, v->len);
    default:
        memcpy(o, "null", 4);
        return o + 4;
    }
}

/* Write the simple children of container c from *pi on, with their commas and keys; stop at
 * the first child that is not simple. This is the hot loop of encoding. */
static void put_simple_run(struct fdt_json_writer *w, const struct fdt__json_body *c, bool object,
                           uint32_t *pi)
{
    uint32_t i = *pi;
    if (object) {
        for (; i < c->len; i++) {
            const struct fdt__json_member *m = &c->u.members[i];
            size_t vs = simple_size(&m->val);
            if (vs == 0 || !m->key_clean || m->klen > SIMPLE_MAX ||
                !room_for(w, (size_t)m->klen + 4 + vs))
                break;
            char *o = w->_buf + w->_len;
            *o = ',';
            o += i > 0;
            o = put_clean_at(o, m->key, m->klen);
            *o++ = ':';
            o = put_simple_at(o, &m->val);
            w->_len = (size_t)(o - w->_buf);
        }
    } else {
        for (; i < c->len; i++) {
            const struct fdt_json *v = &c->u.items[i];
            size_t vs = simple_size(v);
            if (vs == 0 || !room_for(w, vs + 1))
                break;
            char *o = w->_buf + w->_len;
            *o = ',';
            o += i > 0;
            o = put_simple_at(o, v);
            w->_len = (size_t)(o - w->_buf);
        }
    }
    *pi = i;
}

/* Move to child i of container c by the general path: the comma (unless first) and, for an
 * object, the key and ':'; *child is the value to write next. */
static int put_child(struct fdt_json_writer *w, const struct fdt_json *c, uint32_t i,
                     const struct fdt_json **child)
{
    int rc = i > 0 ? put_char(w, ',') : 0;
    if (c->type == FDT_JSON_ARRAY) {
        *child = &c->u.c->u.items[i];
        return rc;
    }
    const struct fdt__json_member *m = &c->u.c->u.members[i];
    if (rc == 0)
        rc = m->key_clean ? put_clean(w, m->key, m->klen) : put_string(w, m->key, m->klen, false);
    if (rc == 0)
        rc = put_char(w, ':');
    *child = &m->val;
    return rc;
}

struct wframe {
    const struct fdt_json *c;
    uint32_t i;
};

/* Write v and everything in it. max_depth is how many more levels may be opened. */
static int put_tree(struct fdt_json_writer *w, const struct fdt_json *v, uint32_t max_depth)
{
    struct wframe small[32];
    struct wframe *stack = small;
    size_t depth = 0;
    int rc = 0;
    for (;;) {
        rc = put_value_start(w, v);
        if (rc < 0)
            goto out;
        if (rc == 1) {
            /* Descend: the container's children are visited from the frame below. */
            if (depth >= max_depth) {
                rc = set_err(w, FDT_ELIMIT);
                goto out;
            }
            if (depth == 32) {
                stack = malloc(FDT_JSON_DEPTH_MAX * sizeof(*stack));
                if (!stack) {
                    stack = small;
                    rc = set_err(w, FDT_ENOMEM);
                    goto out;
                }
                memcpy(stack, small, sizeof(small));
            }
            stack[depth].c = v;
            stack[depth].i = 0;
            depth++;
        }
        /* Find the next child that needs the general path, closing finished containers. */
        v = NULL;
        while (!v) {
            if (depth == 0) {
                rc = 0;
                goto out;
            }
            struct wframe *f = &stack[depth - 1];
            put_simple_run(w, f->c->u.c, f->c->type == FDT_JSON_OBJECT, &f->i);
            if (w->_err) {
                rc = w->_err;
                goto out;
            }
            if (f->i < f->c->u.c->len) {
                rc = put_child(w, f->c, f->i++, &v);
                if (rc != 0)
                    goto out;
                continue;
            }
            rc = put_char(w, f->c->type == FDT_JSON_OBJECT ? '}' : ']');
            if (rc != 0)
                goto out;
            depth--;
        }
    }
out:
    if (stack != small)
        free(stack);
    return rc;
}

int fdt_json_writer_value(struct fdt_json_writer *w, const struct fdt_json *v)
{
    int rc = before_value(w);
    if (rc != 0)
        return rc;
    if (!v)
        return set_err(w, FDT_EINVAL);
    return after_value(w, put_tree(w, v, FDT_JSON_DEPTH_MAX - w->_depth));
}

int fdt_json_writer_finish(struct fdt_json_writer *w, const char **data, size_t *len)
{
    if (w->_err)
        return w->_err;
    if (!w->_done)
        return set_err(w, FDT_EINVAL);
    w->_buf[w->_len] = '\0';
    if (data)
        *data = w->_buf;
    if (len)
        *len = w->_len;
    return 0;
}

int fdt_json_writer_take(struct fdt_json_writer *w, char **data, size_t *len)
{
    const char *text;
    size_t n;
    int rc = fdt_json_writer_finish(w, &text, &n);
    if (rc != 0)
        return rc;
    /* Give back no more memory than the text needs when the buffer is much larger. */
    char *buf = w->_buf;
    if (w->_cap > 4096 && w->_cap / 2 > n + 1) {
        char *shrunk = realloc(buf, n + 1);
        if (shrunk)
            buf = shrunk;
    }
    size_t max = w->_max;
    fdt_json_writer_init(w, max);
    if (data)
        *data = buf;
    else
        free(buf);
    if (len)
        *len = n;
    return 0;
}

int fdt_json_encode(const struct fdt_json *v, size_t max, char **out, size_t *len)
{
    if (out)
        *out = NULL;
    if (!out)
        return FDT_EINVAL;
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, max);
    int rc = fdt_json_writer_value(&w, v);
    if (rc == 0)
        rc = fdt_json_writer_take(&w, out, len);
    fdt_json_writer_deinit(&w);
    return rc;
}

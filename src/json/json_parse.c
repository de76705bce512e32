#include "fdt_config.h"

#include "json/json.h"

#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A single-pass parser with an explicit stack (it never recurses, so nesting is bounded by the
 * limits and never by the C stack). The input is first copied into the document's arena with
 * eight NUL bytes after it; strings are then unescaped in place inside that copy (an escape is
 * never shorter than what it stands for) and NUL-terminated where their closing quote was, so
 * no string needs an allocation of its own. Children of open containers wait in scratch arrays
 * kept in the document and are copied into the arena, exactly sized, when the container
 * closes; an object with more than FDT__JSON_INDEX_MIN members gets its hash index then, which
 * is also where duplicate keys are found.
 */

/* Bytes of NUL padding after the copy: literals and \u escapes may read a few bytes ahead. */
#define PAD 8

struct parser {
    struct fdt_json_doc *doc;
    const char *text; /* the caller's input, for line and column numbers */
    char *base;       /* the copy in the arena */
    char *end;        /* base + len; *end == '\0' */
    size_t max_depth;
    size_t max_values;
    size_t max_string;
    size_t nvalues;
    size_t nmembers; /* used entries of doc->members */
    size_t nitems;   /* used entries of doc->items */
    struct fdt_error *err;
};

/* Report an error at `at` (a pointer into the copy) and return code. */
FDT_PRINTF(4, 5)
static int fail(struct parser *ps, int code, const char *at, const char *fmt, ...)
{
    if (!ps->err)
        return code;
    size_t off = (size_t)(at - ps->base), line = 1, line_start = 0;
    for (size_t i = 0; i < off; i++) {
        if (ps->text[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    }
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    ps->err->code = code;
    ps->err->file = NULL;
    ps->err->line = line > (size_t)INT32_MAX ? INT32_MAX : (int)line;
    snprintf(ps->err->msg, sizeof(ps->err->msg), "line %zu col %zu (byte %zu): %s", line,
             off - line_start + 1, off, what);
    return code;
}

static int fail_unexpected(struct parser *ps, const char *at, const char *expected)
{
    unsigned char c = (unsigned char)*at;
    if (at >= ps->end)
        return fail(ps, FDT_EPROTO, at, "unexpected end of input, %s", expected);
    if (c > 0x20 && c < 0x7F)
        return fail(ps, FDT_EPROTO, at, "unexpected character '%c', %s", c, expected);
    return fail(ps, FDT_EPROTO, at, "unexpected byte 0x%02X, %s", c, expected);
}

static inline char *skip_ws(char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    return p;
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t put_utf8(unsigned cp, unsigned char *d)
{
    if (cp < 0x80) {
        d[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (unsigned char)(0xC0 | (cp >> 6));
        d[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (unsigned char)(0xE0 | (cp >> 12));
        d[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (unsigned char)(0xF0 | (cp >> 18));
    d[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode the escape at *pp (pointing at the backslash) into *dp; advance both. Clear *clean
 * when the decoded byte will need escaping again on output. */
static int unescape(struct parser *ps, unsigned char **pp, unsigned char **dp, bool *clean)
{
    unsigned char *p = *pp, *d = *dp;
    if (p[1] != '/' && p[1] != 'u')
        *clean = false;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
        *d++ = p[1];
        break;
    case 'b':
        *d++ = '\b';
        break;
    case 'f':
        *d++ = '\f';
        break;
    case 'n':
        *d++ = '\n';
        break;
    case 'r':
        *d++ = '\r';
        break;
    case 't':
        *d++ = '\t';
        break;
    case 'u': {
        int cp = hex4((const char *)p + 2);
        if (cp < 0)
            return fail(ps, FDT_EPROTO, (char *)p, "invalid \\u escape (four hex digits needed)");
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return fail(ps, FDT_EPROTO, (char *)p, "lone low surrogate in \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            int lo = -1;
            if (p[6] == '\\' && p[7] == 'u')
                lo = hex4((const char *)p + 8);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return fail(ps, FDT_EPROTO, (char *)p, "lone high surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        if (cp < 0x20 || cp == '"' || cp == '\\')
            *clean = false;
        d += put_utf8((unsigned)cp, d);
        p += 6;
        *pp = p;
        *dp = d;
        return 0;
    }
    default:
        if (p + 1 >= (unsigned char *)ps->end)
            return fail(ps, FDT_EPROTO, (char *)p, "unterminated string");
        return fail(ps, FDT_EPROTO, (char *)p, "invalid escape");
    }
    *pp = p + 2;
    *dp = d;
    return 0;
}

/* The error for a byte of class FDT__JSON_CH_CTRL at p inside the string opened at q. */
static int fail_ctrl(struct parser *ps, const char *q, const unsigned char *p)
{
    if ((const char *)p >= ps->end)
        return fail(ps, FDT_EPROTO, q, "unterminated string");
    return fail(ps, FDT_EPROTO, (const char *)p,
                "control character 0x%02X in string (must be escaped)", *p);
}

/* Parse the string whose opening quote is at *pp, in place. On success *s is its first byte,
 * *len its length after unescaping, *clean whether it can be written out unescaped, and *pp
 * points after the closing quote. */
static int parse_string(struct parser *ps, char **pp, char **s, size_t *len, bool *clean)
{
    const uint8_t *cls = fdt__json_char_class;
    const unsigned char *end = (const unsigned char *)ps->end;
    char *q = *pp;
    unsigned char *start = (unsigned char *)q + 1, *p = start, *d;
    *clean = true;
    /* Until the first escape, bytes stay where they are. */
    for (;;) {
        uint8_t c = cls[*p];
        if (c == FDT__JSON_CH_PLAIN) {
            p++;
        } else if (c == FDT__JSON_CH_QUOTE) {
            *len = (size_t)(p - start);
            *p = '\0';
            p++;
            goto done;
        } else if (c == FDT__JSON_CH_HIGH) {
            size_t n = fdt__json_utf8_seq(p, end);
            if (n == 0)
                return fail(ps, FDT_EPROTO, (char *)p, "invalid UTF-8 in string");
            p += n;
        } else if (c == FDT__JSON_CH_BSLASH) {
            break;
        } else {
            return fail_ctrl(ps, q, p);
        }
    }
    /* After an escape, bytes move down to d. */
    d = p;
    for (;;) {
        uint8_t c = cls[*p];
        if (c == FDT__JSON_CH_PLAIN) {
            *d++ = *p++;
        } else if (c == FDT__JSON_CH_QUOTE) {
            *len = (size_t)(d - start);
            *d = '\0';
            p++;
            goto done;
        } else if (c == FDT__JSON_CH_BSLASH) {
            int rc = unescape(ps, &p, &d, clean);
            if (rc != 0)
                return rc;
        } else if (c == FDT__JSON_CH_HIGH) {
            size_t n = fdt__json_utf8_seq(p, end);
            if (n == 0)
                return fail(ps, FDT_EPROTO, (char *)p, "invalid UTF-8 in string");
            memmove(d, p, n);
            d += n;
            p += n;
        } else {
            return fail_ctrl(ps, q, p);
        }
    }
done:
    if (*len > ps->max_string)
        return fail(ps, FDT_ELIMIT, q, "string too long (limit %zu bytes)", ps->max_string);
    *s = (char *)start;
    *pp = (char *)p;
    return 0;
}

/* Powers of ten that are exact in a double. */
static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Parse the number at *pp into v (type and value); advance *pp. */
static int parse_number(struct parser *ps, char **pp, struct fdt_json *v)
{
    char *start = *pp, *p = start;
    bool neg = false, is_double = false, dropped = false;
    uint64_t m = 0;
    int nd = 0;       /* significant digits in m */
    int64_t dexp = 0; /* decimal exponent adjustment for m */
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (*p == '0') {
        p++;
        if (is_digit(*p))
            return fail(ps, FDT_EPROTO, start, "invalid number (leading zeros are not allowed)");
    } else if (is_digit(*p)) {
        while (is_digit(*p)) {
            if (nd < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                nd++;
            } else {
                dropped = true;
                dexp++;
            }
            p++;
        }
    } else {
        return fail(ps, FDT_EPROTO, start, "invalid number");
    }
    if (*p == '.') {
        is_double = true;
        p++;
        if (!is_digit(*p))
            return fail(ps, FDT_EPROTO, start, "invalid number (digit expected after '.')");
        while (is_digit(*p)) {
            if (nd < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                if (m != 0)
                    nd++;
                dexp--;
            } else if (*p != '0') {
                dropped = true;
            }
            p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        is_double = true;
        p++;
        bool eneg = false;
        if (*p == '+' || *p == '-') {
            eneg = *p == '-';
            p++;
        }
        if (!is_digit(*p))
            return fail(ps, FDT_EPROTO, start, "invalid number (digit expected in exponent)");
        int64_t e = 0;
        while (is_digit(*p)) {
            if (e < 1000000)
                e = e * 10 + (*p - '0');
            p++;
        }
        dexp += eneg ? -e : e;
    }
    *pp = p;
    if (!is_double) {
        /* An integer literal: int64_t or an error, never a silent double. */
        if (dropped || (neg && m > (uint64_t)INT64_MAX + 1) || (!neg && m > (uint64_t)INT64_MAX))
            return fail(ps, FDT_EPROTO, start, "number out of range (integers must fit int64)");
        v->type = FDT_JSON_INT;
        v->u.i = neg ? (m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m) : (int64_t)m;
        return 0;
    }
    v->type = FDT_JSON_DOUBLE;
#if FLT_EVAL_METHOD == 0
    /* Clinger's fast path: both operands are exact, so one rounding gives the right double. */
    if (!dropped && m <= (1ull << 53) && dexp >= -22 && dexp <= 22) {
        double d = (double)m;
        d = dexp < 0 ? d / pow10_exact[-dexp] : d * pow10_exact[dexp];
        v->u.d = neg ? -d : d;
        return 0;
    }
#endif
    if (m == 0 && !dropped) {
        v->u.d = neg ? -0.0 : 0.0;
        return 0;
    }
    int rc = fdt__json_strtod(start, (size_t)(p - start), &v->u.d);
    if (rc != 0)
        return fail(ps, FDT_EPROTO, start, "number out of range (too large for a double)");
    return 0;
}

/* Parse a scalar (string, number, literal) at *pp into *v. */
static int parse_scalar(struct parser *ps, char **pp, struct fdt_json *v)
{
    char *p = *pp;
    int rc = 0;
    v->flags = 0;
    v->len = 0;
    v->u.i = 0;
    switch (*p) {
    case '"': {
        size_t len;
        bool clean;
        rc = parse_string(ps, &p, &v->u.s, &len, &clean);
        v->type = FDT_JSON_STRING;
        v->flags = clean ? FDT__JSON_CLEAN : 0;
        v->len = (uint32_t)len;
        break;
    }
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        rc = parse_number(ps, &p, v);
        break;
    case 't':
        if (memcmp(p, "true", 4) != 0)
            return fail(ps, FDT_EPROTO, p, "invalid literal (expected true)");
        v->type = FDT_JSON_BOOL;
        v->u.b = true;
        p += 4;
        break;
    case 'f':
        if (memcmp(p, "false", 5) != 0)
            return fail(ps, FDT_EPROTO, p, "invalid literal (expected false)");
        v->type = FDT_JSON_BOOL;
        p += 5;
        break;
    case 'n':
        if (memcmp(p, "null", 4) != 0)
            return fail(ps, FDT_EPROTO, p, "invalid literal (expected null)");
        v->type = FDT_JSON_NULL;
        p += 4;
        break;
    default:
        return fail_unexpected(ps, p, "a value expected");
    }
    *pp = p;
    return rc;
}

/* Open a container at p: check the depth, create its body, push a frame. */
static int open_container(struct parser *ps, const char *p, size_t depth, enum fdt_json_type type)
{
    struct fdt_json_doc *doc = ps->doc;
    if (depth >= ps->max_depth)
        return fail(ps, FDT_ELIMIT, p, "nesting too deep (limit %zu)", ps->max_depth);
    if (fdt__json_scratch_reserve((void **)&doc->frames, &doc->frames_cap, depth + 1,
                                  sizeof(*doc->frames)) != 0)
        return fail(ps, FDT_ENOMEM, p, "out of memory");
    struct fdt__json_body *c = fdt__json_alloc(doc, sizeof(*c));
    if (!c)
        return fail(ps, FDT_ENOMEM, p, "out of memory");
    c->u.items = NULL;
    c->len = 0;
    c->cap = 0;
    c->index = NULL;
    struct fdt__json_frame *f = &doc->frames[depth];
    f->v.type = (uint8_t)type;
    f->v.flags = 0;
    f->v.len = 0;
    f->v.u.c = c;
    f->start = type == FDT_JSON_OBJECT ? ps->nmembers : ps->nitems;
    return 0;
}

/* Containers with at least this many children, open at the bottom of the scratch array, take
 * the scratch array itself instead of a copy. */
#define ADOPT_MIN 256

static int close_array(struct parser *ps, struct fdt__json_frame *f, const char *p)
{
    struct fdt_json_doc *doc = ps->doc;
    struct fdt__json_body *arr = f->v.u.c;
    size_t n = ps->nitems - f->start;
    if (n > FDT__JSON_LEN_MAX)
        return fail(ps, FDT_ELIMIT, p, "array too long"); /* GCOVR_EXCL_LINE: unreachable in tests:
                                                             needs over 4 GiB of input */
    if (n >= ADOPT_MIN && f->start == 0) {
        arr->u.items = fdt__json_adopt(doc, doc->items, n * sizeof(*doc->items));
        doc->items = NULL;
        doc->items_cap = 0;
    } else if (n) {
        struct fdt_json *items = fdt__json_alloc(doc, n * sizeof(*items));
        if (!items)
            return fail(ps, FDT_ENOMEM, p, "out of memory");
        memcpy(items, doc->items + f->start, n * sizeof(*items));
        arr->u.items = items;
    }
    arr->len = arr->cap = (uint32_t)n;
    ps->nitems = f->start;
    return 0;
}

/* Find a key that appears twice among the n members m: 1 and its later position in *dup, 0
 * when all keys differ, or FDT_ENOMEM. A large object gets its index on the way. */
static int find_duplicate(struct fdt_json_doc *doc, struct fdt__json_body *obj, size_t *dup)
{
    const struct fdt__json_member *m = obj->u.members;
    size_t n = obj->len;
    if (n > FDT__JSON_INDEX_MIN)
        return fdt__json_index_build(doc, obj, n, dup);
    for (size_t i = 1; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (m[i].hash == m[j].hash && m[i].klen == m[j].klen &&
                memcmp(m[i].key, m[j].key, m[i].klen) == 0) {
                *dup = i;
                return 1;
            }
        }
    }
    return 0;
}

static int close_object(struct parser *ps, struct fdt__json_frame *f, const char *p)
{
    struct fdt_json_doc *doc = ps->doc;
    struct fdt__json_body *obj = f->v.u.c;
    size_t n = ps->nmembers - f->start;
    if (n > FDT__JSON_LEN_MAX)
        return fail(ps, FDT_ELIMIT, p, "object too long"); /* GCOVR_EXCL_LINE: unreachable in tests:
                                                              needs over 4 GiB of input */
    if (n == 0)
        return 0;
    if (n >= ADOPT_MIN && f->start == 0) {
        obj->u.members = fdt__json_adopt(doc, doc->members, n * sizeof(*doc->members));
        doc->members = NULL;
        doc->members_cap = 0;
    } else {
        struct fdt__json_member *m = fdt__json_alloc(doc, n * sizeof(*m));
        if (!m)
            return fail(ps, FDT_ENOMEM, p, "out of memory");
        memcpy(m, doc->members + f->start, n * sizeof(*m));
        obj->u.members = m;
    }
    obj->len = obj->cap = (uint32_t)n;
    ps->nmembers = f->start;
    size_t dup = 0;
    int rc = find_duplicate(doc, obj, &dup);
    if (rc < 0)
        return fail(ps, rc, p, "out of memory");
    if (rc > 0)
        return fail(ps, FDT_EPROTO, obj->u.members[dup].key - 1, "duplicate key in object");
    return 0;
}

/* Parse the key at p (whitespace skipped) and the ':' after it; push the member. */
static int parse_key(struct parser *ps, char **pp)
{
    struct fdt_json_doc *doc = ps->doc;
    char *p = *pp;
    if (*p != '"')
        return fail_unexpected(ps, p, "a string key expected");
    char *key;
    size_t klen;
    bool clean;
    int rc = parse_string(ps, &p, &key, &klen, &clean);
    if (rc != 0)
        return rc;
    p = skip_ws(p);
    if (*p != ':')
        return fail_unexpected(ps, p, "':' expected after the key");
    if (fdt__json_scratch_reserve((void **)&doc->members, &doc->members_cap, ps->nmembers + 1,
                                  sizeof(*doc->members)) != 0)
        return fail(ps, FDT_ENOMEM, p, "out of memory");
    struct fdt__json_member *m = &doc->members[ps->nmembers++];
    m->key = key;
    m->klen = (uint32_t)klen & FDT__JSON_LEN_MAX;
    m->key_clean = clean;
    m->hash = fdt__json_hash(key, klen, doc->seed);
    *pp = p + 1;
    return 0;
}

/* Where the next value goes: the member pushed by parse_key, a new array slot, or the root. */
static struct fdt_json *next_slot(struct parser *ps, size_t depth, struct fdt_json *root)
{
    struct fdt_json_doc *doc = ps->doc;
    if (depth == 0)
        return root;
    if (doc->frames[depth - 1].v.type == FDT_JSON_OBJECT)
        return &doc->members[ps->nmembers - 1].val;
    if (fdt__json_scratch_reserve((void **)&doc->items, &doc->items_cap, ps->nitems + 1,
                                  sizeof(*doc->items)) != 0)
        return NULL;
    return &doc->items[ps->nitems++];
}

/* The parse loop. Each iteration reads one value into its slot; a container pushes a frame
 * and goes on with its first child; after a complete value, the enclosing frames decide what
 * comes next, closing the containers that end here. */
static int parse_text(struct parser *ps, struct fdt_json *root)
{
    struct fdt_json_doc *doc = ps->doc;
    char *p = ps->base;
    size_t depth = 0;
    int rc;
    for (;;) {
        p = skip_ws(p);
        if (++ps->nvalues > ps->max_values)
            return fail(ps, FDT_ELIMIT, p, "too many values (limit %zu)", ps->max_values);
        if (*p == '{' || *p == '[') {
            enum fdt_json_type t = *p == '{' ? FDT_JSON_OBJECT : FDT_JSON_ARRAY;
            rc = open_container(ps, p, depth, t);
            if (rc != 0)
                return rc;
            depth++;
            p = skip_ws(p + 1);
            if (*p != (t == FDT_JSON_OBJECT ? '}' : ']')) {
                if (t == FDT_JSON_OBJECT) {
                    rc = parse_key(ps, &p);
                    if (rc != 0)
                        return rc;
                }
                continue;
            }
            /* An empty container is complete at once: close it below. */
        } else {
            struct fdt_json *slot = next_slot(ps, depth, root);
            if (!slot)
                return fail(ps, FDT_ENOMEM, p, "out of memory");
            rc = parse_scalar(ps, &p, slot);
            if (rc != 0)
                return rc;
            if (depth == 0)
                goto end;
            p = skip_ws(p);
            if (*p == ',')
                goto comma;
        }
        /* At p should be the end of the innermost container: close it and every container
         * that ends right after it. */
        for (;;) {
            struct fdt__json_frame *f = &doc->frames[depth - 1];
            bool is_obj = f->v.type == FDT_JSON_OBJECT;
            if (*p != (is_obj ? '}' : ']'))
                return fail_unexpected(ps, p,
                                       is_obj ? "',' or '}' expected" : "',' or ']' expected");
            rc = is_obj ? close_object(ps, f, p) : close_array(ps, f, p);
            if (rc != 0)
                return rc;
            p++;
            depth--;
            struct fdt_json *slot = next_slot(ps, depth, root);
            if (!slot)
                return fail(ps, FDT_ENOMEM, p, "out of memory");
            *slot = f->v;
            if (depth == 0)
                goto end;
            p = skip_ws(p);
            if (*p == ',')
                goto comma;
        }
    comma:
        p = skip_ws(p + 1);
        if (doc->frames[depth - 1].v.type == FDT_JSON_OBJECT) {
            rc = parse_key(ps, &p);
            if (rc != 0)
                return rc;
        }
    }
end:
    p = skip_ws(p);
    if (p != ps->end)
        return fail_unexpected(ps, p, "nothing expected after the JSON value");
    return 0;
}

int fdt_json_parse(struct fdt_json_doc *doc, const char *text, size_t len,
                   const struct fdt_json_limits *limits, struct fdt_json **out,
                   struct fdt_error *err)
{
    if (out)
        *out = NULL;
    if (!doc || !out || (!text && len))
        return FDT_EINVAL;
    struct fdt_json_limits lim;
    fdt_json_limits_default(&lim);
    if (limits) {
        if (limits->max_size)
            lim.max_size = limits->max_size;
        if (limits->max_depth)
            lim.max_depth = limits->max_depth;
        if (limits->max_values)
            lim.max_values = limits->max_values;
        if (limits->max_string)
            lim.max_string = limits->max_string;
    }
    if (lim.max_depth > FDT_JSON_DEPTH_MAX)
        lim.max_depth = FDT_JSON_DEPTH_MAX;
    if (lim.max_string > FDT__JSON_LEN_MAX)
        lim.max_string = FDT__JSON_LEN_MAX;
    struct parser ps = {.doc = doc,
                        .text = text ? text : "",
                        .err = err,
                        .max_depth = lim.max_depth,
                        .max_values = lim.max_values,
                        .max_string = lim.max_string};
    char empty[PAD] = {0};
    if (len > lim.max_size) {
        /* Report it at the first byte past the limit; line counting reads the caller's text. */
        ps.base = (char *)text;
        return fail(&ps, FDT_ELIMIT, text + lim.max_size, "input too large (limit %zu bytes)",
                    lim.max_size);
    }
    ps.base = empty;
    if (len) {
        ps.base = len <= SIZE_MAX - PAD ? fdt__json_alloc(doc, len + PAD) : NULL;
        if (!ps.base) {
            if (err) {
                err->code = FDT_ENOMEM;
                err->file = NULL;
                err->line = 0;
                snprintf(err->msg, sizeof(err->msg), "out of memory copying %zu bytes of input",
                         len);
            }
            return FDT_ENOMEM;
        }
        memcpy(ps.base, text, len);
        memset(ps.base + len, 0, PAD);
    }
    ps.end = ps.base + len;
    struct fdt_json *root = fdt__json_new(doc, FDT_JSON_NULL);
    if (!root)
        return fail(&ps, FDT_ENOMEM, ps.base, "out of memory");
    int rc = parse_text(&ps, root);
    if (rc != 0)
        return rc;
    *out = root;
    return 0;
}

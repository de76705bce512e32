/* Unit tests of the JSON parser: valid and invalid corpora, numbers, UTF-8, limits. */
#include "fdt_config.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <fdt/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- Helpers ------------------------------------------------------------------------------ */

/* A copy of the input placed right before a PROT_NONE page, so reading past it faults. */
struct guarded {
    char *map;
    size_t map_len;
    char *data;
};

static void guarded_init(struct guarded *g, const char *s, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page + 1;
    g->map_len = pages * page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g->map != MAP_FAILED);
    assert_int_equal(mprotect(g->map + (pages - 1) * page, page, PROT_NONE), 0);
    g->data = g->map + (pages - 1) * page - len;
    if (len)
        memcpy(g->data, s, len);
}

static void guarded_deinit(struct guarded *g)
{
    munmap(g->map, g->map_len);
}

/* Parse s (len bytes) against a guard page with the given limits (NULL: defaults). */
static int parse_with(struct fdt_json_doc *doc, const char *s, size_t len,
                      const struct fdt_json_limits *lim, struct fdt_json **root,
                      struct fdt_error *err)
{
    struct guarded g;
    guarded_init(&g, s, len);
    memset(err, 0, sizeof(*err));
    int rc = fdt_json_parse(doc, g.data, len, lim, root, err);
    guarded_deinit(&g);
    return rc;
}

/* Encode v to a NUL-terminated string owned by the caller. */
static char *encode(const struct fdt_json *v)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(fdt_json_encode(v, 0, &out, &len), 0);
    assert_int_equal(strlen(out), len);
    return out;
}

/* ---- Valid input: parse, then the compact encoding is exactly `expect`. --------------------- */

struct valid_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    const char *expect;
};

static const struct valid_case valid_cases[] = {
    {"null", 0, "null"},
    {"true", 0, "true"},
    {"false", 0, "false"},
    {" \t\r\n0 \t\r\n", 0, "0"},
    {"-0", 0, "0"},
    {"-0.0", 0, "-0.0"},
    {"0.0", 0, "0.0"},
    {"1.5", 0, "1.5"},
    {"1.0", 0, "1.0"},
    {"1e2", 0, "100.0"},
    {"1E+2", 0, "100.0"},
    {"1e-2", 0, "0.01"},
    {"0.1", 0, "0.1"},
    {"-12.5e-1", 0, "-1.25"},
    {"123456789", 0, "123456789"},
    {"9223372036854775807", 0, "9223372036854775807"},
    {"-9223372036854775808", 0, "-9223372036854775808"},
    {"1.7976931348623157e308", 0, "1.7976931348623157e+308"},
    {"2.2250738585072014e-308", 0, "2.2250738585072014e-308"},
    {"1e-320", 0, "1e-320"},
    {"5e-324", 0, "5e-324"},
    {"1e-400", 0, "0.0"},
    {"-1e-400", 0, "-0.0"},
    {"0e99999999999999999999", 0, "0.0"},
    {"123456789012345678901234567890.0", 0, "1.2345678901234568e+29"},
    {"0.30000000000000004", 0, "0.30000000000000004"},
    {"3.141592653589793", 0, "3.141592653589793"},
    {"[]", 0, "[]"},
    {"{}", 0, "{}"},
    {"[ ]", 0, "[]"},
    {"{ }", 0, "{}"},
    {"[1, [2, [3, []]], {}]", 0, "[1,[2,[3,[]]],{}]"},
    {"{\"a\": {\"b\": [true, false, null]}}", 0, "{\"a\":{\"b\":[true,false,null]}}"},
    {"{\"z\":1,\"a\":2,\"m\":3}", 0, "{\"z\":1,\"a\":2,\"m\":3}"},
    {"\"\"", 0, "\"\""},
    {"\"abc\"", 0, "\"abc\""},
    {"\"\\u00e9\"", 0, "\"\xc3\xa9\""},
    {"\"\\u20AC\"", 0, "\"\xe2\x82\xac\""},
    {"\"\\ud83d\\ude00\"", 0, "\"\xf0\x9f\x98\x80\""},
    {"\"\xf0\x9f\x98\x80\"", 0, "\"\xf0\x9f\x98\x80\""},
    {"\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"", 0, "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\""},
    {"\"\\u0000\"", 0, "\"\\u0000\""},
    {"\"a\\/b\"", 0, "\"a/b\""},
    {"\"\\b\\f\\n\\r\\t\\\"\\\\\"", 0, "\"\\b\\f\\n\\r\\t\\\"\\\\\""},
    {"\"\\u001f\\u0001\"", 0, "\"\\u001f\\u0001\""},
    {"\"\x7f\"", 0, "\"\x7f\""},
    {"\"x\\u0041y\\n\"", 0, "\"xAy\\n\""},
    {"{\"\\u0061\":1,\"b\":2}", 0, "{\"a\":1,\"b\":2}"},
    {"\"\\u0022\"", 0, "\"\\\"\""},
    {"{\"\\n\":1,\"\\/\":\"\\u005c\"}", 0, "{\"\\n\":1,\"/\":\"\\\\\"}"},
    {"[1,\"a\",[2],\"b\\n\",true,null,{\"k\":[]},\"x\",-1.5,false]", 0,
     "[1,\"a\",[2],\"b\\n\",true,null,{\"k\":[]},\"x\",-1.5,false]"},
    {"{\"a\":\"s\",\"b\":\"t\\t\",\"c\":null,\"d\":2.5,\"e\":{},\"f\":true}", 0,
     "{\"a\":\"s\",\"b\":\"t\\t\",\"c\":null,\"d\":2.5,\"e\":{},\"f\":true}"},
    {"{\"a key that is longer than sixty-four bytes, so it takes the general path\":"
     "\"and a value that is also longer than sixty-four bytes, for the same reason\"}",
     0,
     "{\"a key that is longer than sixty-four bytes, so it takes the general path\":"
     "\"and a value that is also longer than sixty-four bytes, for the same reason\"}"},
    {"[\"a very long string that is longer than eight bytes, with \\\"quotes\\\"\"]", 0,
     "[\"a very long string that is longer than eight bytes, with \\\"quotes\\\"\"]"},
};

static void test_valid_corpus(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct valid_case *c = &valid_cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        struct fdt_json_doc *doc = fdt_json_doc_new();
        struct fdt_json *root = NULL;
        struct fdt_error err;
        int rc = parse_with(doc, c->in, len, NULL, &root, &err);
        if (rc != 0)
            fail_msg("case %zu (%s): %s", i, c->in, err.msg);
        char *out = encode(root);
        if (strcmp(out, c->expect) != 0)
            fail_msg("case %zu (%s): got %s, want %s", i, c->in, out, c->expect);
        /* The encoding parses back to an equal value, which encodes the same way. */
        struct fdt_json *again = NULL;
        assert_int_equal(fdt_json_parse(doc, out, strlen(out), NULL, &again, &err), 0);
        assert_true(fdt_json_equal(root, again));
        char *out2 = encode(again);
        assert_string_equal(out, out2);
        free(out2);
        free(out);
        fdt_json_doc_free(doc);
    }
}

/* ---- Invalid input: the code, the byte offset and a word of the message. ------------------- */

struct invalid_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    int code;
    size_t offset;
    const char *msg;
};

static const struct invalid_case invalid_cases[] = {
    {"", 0, FDT_EPROTO, 0, "unexpected end of input"},
    {"   ", 0, FDT_EPROTO, 3, "unexpected end of input"},
    {"[", 0, FDT_EPROTO, 1, "unexpected end of input"},
    {"[1", 0, FDT_EPROTO, 2, "unexpected end of input"},
    {"{\"a\":", 0, FDT_EPROTO, 5, "unexpected end of input"},
    {"nul", 0, FDT_EPROTO, 0, "invalid literal"},
    {"tru", 0, FDT_EPROTO, 0, "invalid literal"},
    {"True", 0, FDT_EPROTO, 0, "unexpected character 'T'"},
    {"[1,]", 0, FDT_EPROTO, 3, "a value expected"},
    {"[,1]", 0, FDT_EPROTO, 1, "a value expected"},
    {"[1 2]", 0, FDT_EPROTO, 3, "',' or ']' expected"},
    {"[1}", 0, FDT_EPROTO, 2, "',' or ']' expected"},
    {"{\"a\":1]", 0, FDT_EPROTO, 6, "',' or '}' expected"},
    {"{\"a\" 1}", 0, FDT_EPROTO, 5, "':' expected"},
    {"{1:2}", 0, FDT_EPROTO, 1, "a string key expected"},
    {"{\"a\":1,}", 0, FDT_EPROTO, 7, "a string key expected"},
    {"{\"a\":1,\"a\":2}", 0, FDT_EPROTO, 7, "duplicate key"},
    {"{\"a\":1,\"\\u0061\":2}", 0, FDT_EPROTO, 7, "duplicate key"},
    {"{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,"
     "\"k3\":10}",
     0, FDT_EPROTO, 71, "duplicate key"},
    {"[{\"a\":1},{\"a\":1,\"b\":2,\"b\":3}]", 0, FDT_EPROTO, 22, "duplicate key"},
    {"\"abc", 0, FDT_EPROTO, 0, "unterminated string"},
    {"\"abc\\", 0, FDT_EPROTO, 4, "unterminated string"},
    {"\"a\\x\"", 0, FDT_EPROTO, 2, "invalid escape"},
    {"\"a\\U0041\"", 0, FDT_EPROTO, 2, "invalid escape"},
    {"\"\\u12\"", 0, FDT_EPROTO, 1, "invalid \\u escape"},
    {"\"\\u12", 0, FDT_EPROTO, 1, "invalid \\u escape"},
    {"\"\\uZZZZ\"", 0, FDT_EPROTO, 1, "invalid \\u escape"},
    {"\"\\ud800\"", 0, FDT_EPROTO, 1, "lone high surrogate"},
    {"\"\\ud800\\u0041\"", 0, FDT_EPROTO, 1, "lone high surrogate"},
    {"\"\\ud800\\ud800\"", 0, FDT_EPROTO, 1, "lone high surrogate"},
    {"\"\\udc00\"", 0, FDT_EPROTO, 1, "lone low surrogate"},
    {"\"\\ude00\\ud83d\"", 0, FDT_EPROTO, 1, "lone low surrogate"},
    {"\"a\x01\"", 0, FDT_EPROTO, 2, "control character 0x01"},
    {"\"a\nb\"", 0, FDT_EPROTO, 2, "control character 0x0A"},
    {"\"a\0b\"", 5, FDT_EPROTO, 2, "control character 0x00"},
    {"\"\xff\"", 0, FDT_EPROTO, 1, "invalid UTF-8"},
    {"\"ab\x80\"", 0, FDT_EPROTO, 3, "invalid UTF-8"},
    {"\"\xc0\xaf\"", 0, FDT_EPROTO, 1, "invalid UTF-8"},
    {"\"\xc1\xbf\"", 0, FDT_EPROTO, 1, "invalid UTF-8"},
    {"\"\xe0\x80\xaf\"", 0, FDT_EPROTO, 1, "invalid UTF-8"},
    {"\"\xed\xa0\x80\"", 0, FDT_EPROTO, 1, "invalid UTF-8"},
    {"\"\xf0\x80\x80\xaf\"", 0, FDT_EPROTO, 1, "invalid UTF-8"},
    {"\"\xf4\x90\x80\x80\"", 0, FDT_EPROTO, 1, "invalid UTF-8"},
    {"\"\xf5\x80\x80\x80\"", 0, FDT_EPROTO, 1, "invalid UTF-8"},
    {"\"\xe2\x82\"", 0, FDT_EPROTO, 1, "invalid UTF-8"},
    {"\"\xe2\x82", 0, FDT_EPROTO, 1, "invalid UTF-8"},
    {"\"\\n\xc3\"", 0, FDT_EPROTO, 3, "invalid UTF-8"},
    {"\xef\xbb\xbf[]", 0, FDT_EPROTO, 0, "unexpected byte 0xEF"},
    {"01", 0, FDT_EPROTO, 0, "leading zeros"},
    {"-01", 0, FDT_EPROTO, 0, "leading zeros"},
    {"1.", 0, FDT_EPROTO, 0, "digit expected after '.'"},
    {"1.e5", 0, FDT_EPROTO, 0, "digit expected after '.'"},
    {".5", 0, FDT_EPROTO, 0, "unexpected character '.'"},
    {"+1", 0, FDT_EPROTO, 0, "unexpected character '+'"},
    {"1e", 0, FDT_EPROTO, 0, "digit expected in exponent"},
    {"1e+", 0, FDT_EPROTO, 0, "digit expected in exponent"},
    {"-", 0, FDT_EPROTO, 0, "invalid number"},
    {"-a", 0, FDT_EPROTO, 0, "invalid number"},
    {"NaN", 0, FDT_EPROTO, 0, "unexpected character 'N'"},
    {"Infinity", 0, FDT_EPROTO, 0, "unexpected character 'I'"},
    {"-Infinity", 0, FDT_EPROTO, 0, "invalid number"},
    {"0x10", 0, FDT_EPROTO, 1, "nothing expected after"},
    {"9223372036854775808", 0, FDT_EPROTO, 0, "number out of range"},
    {"-9223372036854775809", 0, FDT_EPROTO, 0, "number out of range"},
    {"18446744073709551616", 0, FDT_EPROTO, 0, "number out of range"},
    {"[123456789012345678901234567890]", 0, FDT_EPROTO, 1, "number out of range"},
    {"1e400", 0, FDT_EPROTO, 0, "number out of range"},
    {"-1e400", 0, FDT_EPROTO, 0, "number out of range"},
    {"[1.7976931348623159e308]", 0, FDT_EPROTO, 1, "number out of range"},
    {"1 2", 0, FDT_EPROTO, 2, "nothing expected after"},
    {"[1]x", 0, FDT_EPROTO, 3, "nothing expected after"},
    {"{} {}", 0, FDT_EPROTO, 3, "nothing expected after"},
    {"[1]\0", 4, FDT_EPROTO, 3, "unexpected byte 0x00"},
    {"'a'", 0, FDT_EPROTO, 0, "unexpected character '''"},
    {"[1,\n 2,\n x]", 0, FDT_EPROTO, 9, "line 3 col 2 (byte 9)"},
    {"/* c */ 1", 0, FDT_EPROTO, 0, "unexpected character '/'"},
};

static void check_invalid(const struct invalid_case *c, size_t i)
{
    size_t len = c->len ? c->len : strlen(c->in);
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *root = (struct fdt_json *)1;
    struct fdt_error err;
    int rc = parse_with(doc, c->in, len, NULL, &root, &err);
    if (rc != c->code)
        fail_msg("case %zu (%s): rc %d, want %d (%s)", i, c->in, rc, c->code, err.msg);
    assert_null(root);
    assert_int_equal(err.code, c->code);
    assert_null(err.file);
    char where[64];
    snprintf(where, sizeof(where), "(byte %zu): ", c->offset);
    if (!strstr(err.msg, where) || !strstr(err.msg, c->msg))
        fail_msg("case %zu (%s): message \"%s\", want \"%s\" and \"%s\"", i, c->in, err.msg, where,
                 c->msg);
    assert_true(err.line >= 1);
    fdt_json_doc_free(doc);
}

static void test_invalid_corpus(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++)
        check_invalid(&invalid_cases[i], i);
}

static void test_error_position(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *root;
    struct fdt_error err;
    const char *in = "{\n  \"a\": 1,\n  \"b\": \"\\q\"\n}";
    assert_int_equal(parse_with(doc, in, strlen(in), NULL, &root, &err), FDT_EPROTO);
    assert_int_equal(err.line, 3);
    assert_string_equal(err.msg, "line 3 col 9 (byte 20): invalid escape");
    /* A NULL error pointer is allowed. */
    assert_int_equal(fdt_json_parse(doc, in, strlen(in), NULL, &root, NULL), FDT_EPROTO);
    fdt_json_doc_free(doc);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *root;
    assert_int_equal(fdt_json_parse(NULL, "1", 1, NULL, &root, NULL), FDT_EINVAL);
    assert_int_equal(fdt_json_parse(doc, "1", 1, NULL, NULL, NULL), FDT_EINVAL);
    assert_int_equal(fdt_json_parse(doc, NULL, 1, NULL, &root, NULL), FDT_EINVAL);
    struct fdt_error err;
    assert_int_equal(fdt_json_parse(doc, NULL, 0, NULL, &root, &err), FDT_EPROTO);
    fdt_json_doc_free(doc);
}

/* ---- Values as parsed ---------------------------------------------------------------------- */

static void test_numbers(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_error err;
    assert_int_equal(fdt_json_parse(doc, "-0", 2, NULL, &v, &err), 0);
    assert_int_equal(fdt_json_type(v), FDT_JSON_INT);
    assert_int_equal(fdt_json_int_value(v), 0);
    assert_int_equal(fdt_json_parse(doc, "-0.0", 4, NULL, &v, &err), 0);
    assert_int_equal(fdt_json_type(v), FDT_JSON_DOUBLE);
    assert_true(fdt_json_number_value(v) == 0.0);
    assert_true(__builtin_signbit(fdt_json_number_value(v)));
    assert_int_equal(fdt_json_parse(doc, "9223372036854775807", 19, NULL, &v, &err), 0);
    assert_true(fdt_json_int_value(v) == INT64_MAX);
    assert_int_equal(fdt_json_parse(doc, "-9223372036854775808", 20, NULL, &v, &err), 0);
    assert_true(fdt_json_int_value(v) == INT64_MIN);
    assert_int_equal(fdt_json_parse(doc, "1e-320", 6, NULL, &v, &err), 0);
    assert_true(fdt_json_number_value(v) == 1e-320);
    assert_true(fdt_json_number_value(v) > 0.0);
    assert_int_equal(fdt_json_parse(doc, "0.1", 3, NULL, &v, &err), 0);
    assert_true(fdt_json_number_value(v) == 0.1);
    assert_int_equal(fdt_json_parse(doc, "123456789.123456789e-5", 22, NULL, &v, &err), 0);
    assert_true(fdt_json_number_value(v) == 123456789.123456789e-5);
    assert_int_equal(fdt_json_parse(doc, "17", 2, NULL, &v, &err), 0);
    assert_true(fdt_json_number_value(v) == 17.0);
    fdt_json_doc_free(doc);
}

static void test_long_number(void **state)
{
    (void)state;
    /* A 100,000-digit double is read correctly (and quickly); the same as an integer is out
     * of range. */
    size_t n = 100000;
    char *s = malloc(n + 3);
    assert_non_null(s);
    s[0] = '0';
    s[1] = '.';
    memset(s + 2, '0', n - 1);
    s[n + 1] = '5';
    s[n + 2] = '\0';
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_error err;
    assert_int_equal(fdt_json_parse(doc, s, n + 2, NULL, &v, &err), 0);
    assert_true(fdt_json_number_value(v) == 0.0);
    memset(s, '7', n);
    assert_int_equal(fdt_json_parse(doc, s, n, NULL, &v, &err), FDT_EPROTO);
    assert_non_null(strstr(err.msg, "number out of range"));
    fdt_json_doc_free(doc);
    free(s);
}

static void test_strings_with_nul(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_error err;
    const char *in = "{\"a\\u0000b\":\"x\\u0000y\"}";
    assert_int_equal(fdt_json_parse(doc, in, strlen(in), NULL, &v, &err), 0);
    assert_null(fdt_json_object_get(v, "a"));
    struct fdt_json *s = fdt_json_object_getn(v, "a\0b", 3);
    assert_non_null(s);
    size_t len;
    const char *p = fdt_json_string_value(s, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "x\0y", 4); /* NUL-terminated as well */
    size_t klen;
    assert_memory_equal(fdt_json_object_key_at(v, 0, &klen), "a\0b", 4);
    assert_int_equal(klen, 3);
    fdt_json_doc_free(doc);
}

static void test_input_not_referenced(void **state)
{
    (void)state;
    /* The document keeps its own copy: the input can be overwritten after the parse. */
    char in[] = "{\"key\":\"value\",\"esc\":\"a\\nb\"}";
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_error err;
    assert_int_equal(fdt_json_parse(doc, in, strlen(in), NULL, &v, &err), 0);
    memset(in, 'X', strlen(in));
    assert_string_equal(fdt_json_string_value(fdt_json_object_get(v, "key"), NULL), "value");
    assert_string_equal(fdt_json_string_value(fdt_json_object_get(v, "esc"), NULL), "a\nb");
    fdt_json_doc_free(doc);
}

static void test_big_object(void **state)
{
    (void)state;
    /* The benchmark's mapping: 100,000 entries str(k) -> -k, every key findable. */
    long n = 100000;
    size_t cap = (size_t)n * 24 + 2, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    s[len++] = '{';
    for (long k = 0; k < n; k++)
        len += (size_t)snprintf(s + len, cap - len, "%s\"%ld\":%ld", k ? "," : "", k, -k);
    s[len++] = '}';
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_error err;
    assert_int_equal(fdt_json_parse(doc, s, len, NULL, &v, &err), 0);
    assert_int_equal(fdt_json_size(v), (size_t)n);
    char key[24];
    for (long k = 0; k < n; k++) {
        snprintf(key, sizeof(key), "%ld", k);
        struct fdt_json *x = fdt_json_object_get(v, key);
        if (!x || fdt_json_int_value(x) != -k)
            fail_msg("key %s not found", key);
        size_t klen;
        assert_string_equal(fdt_json_object_key_at(v, (size_t)k, &klen), key); /* in order */
    }
    assert_null(fdt_json_object_get(v, "100000"));
    assert_null(fdt_json_object_get(v, "-1"));
    assert_null(fdt_json_object_get(v, ""));
    /* It encodes back to the same text. */
    char *out = encode(v);
    assert_int_equal(strlen(out), len);
    assert_memory_equal(out, s, len);
    free(out);
    /* A duplicate at the very end of a big object is found. */
    memcpy(s + len - 1, ",\"77\":1}", 9);
    assert_int_equal(fdt_json_parse(doc, s, len + 7, NULL, &v, &err), FDT_EPROTO);
    assert_non_null(strstr(err.msg, "duplicate key"));
    fdt_json_doc_free(doc);
    free(s);
}

static void test_doc_reuse(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_error err;
    for (int i = 0; i < 100; i++) {
        char in[64];
        int n = snprintf(in, sizeof(in), "{\"id\":%d,\"method\":\"m\",\"params\":[%d]}", i, i);
        assert_int_equal(fdt_json_parse(doc, in, (size_t)n, NULL, &v, &err), 0);
        assert_int_equal(fdt_json_int_value(fdt_json_object_get(v, "id")), i);
        assert_int_equal(
            fdt_json_int_value(fdt_json_array_get(fdt_json_object_get(v, "params"), 0)), i);
        fdt_json_doc_clear(doc);
    }
    /* After a big parse, clear gives back the big memory. */
    size_t small = fdt_json_doc_memory(doc);
    char *big = malloc(200004);
    assert_non_null(big);
    big[0] = '[';
    for (int i = 0; i < 100000; i++) {
        big[1 + 2 * i] = '1';
        big[2 + 2 * i] = ',';
    }
    big[200001] = '1';
    big[200002] = ']';
    assert_int_equal(fdt_json_parse(doc, big, 200003, NULL, &v, &err), 0);
    assert_int_equal(fdt_json_size(v), 100001);
    assert_true(fdt_json_doc_memory(doc) > small + 1000000);
    fdt_json_doc_clear(doc);
    assert_true(fdt_json_doc_memory(doc) <= small + 65536);
    free(big);
    fdt_json_doc_free(doc);
    fdt_json_doc_free(NULL);
    fdt_json_doc_clear(NULL);
}

/* ---- Limits -------------------------------------------------------------------------------- */

static char *repeat(const char *unit, size_t n, const char *tail)
{
    size_t u = strlen(unit), t = strlen(tail);
    char *s = malloc(u * n + t + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    memcpy(s + u * n, tail, t + 1);
    return s;
}

static void test_limit_depth(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_error err;
    /* 100,000 levels of '[' are refused at the 65th, with no stack overflow. */
    char *deep = repeat("[", 100000, "");
    assert_int_equal(parse_with(doc, deep, 100000, NULL, &v, &err), FDT_ELIMIT);
    assert_int_equal(err.code, FDT_ELIMIT);
    assert_non_null(strstr(err.msg, "(byte 64): nesting too deep (limit 64)"));
    /* A limit above FDT_JSON_DEPTH_MAX is capped. */
    struct fdt_json_limits lim;
    fdt_json_limits_default(&lim);
    lim.max_depth = 1000000;
    assert_int_equal(parse_with(doc, deep, 100000, &lim, &v, &err), FDT_ELIMIT);
    assert_non_null(strstr(err.msg, "(byte 1024): nesting too deep (limit 1024)"));
    free(deep);
    /* Objects count too. */
    deep = repeat("{\"a\":", 100000, "");
    assert_int_equal(parse_with(doc, deep, strlen(deep), NULL, &v, &err), FDT_ELIMIT);
    assert_non_null(strstr(err.msg, "nesting too deep"));
    free(deep);
    /* Exactly the limit is fine, one more is not. */
    char ok[200];
    memset(ok, '[', 64);
    memset(ok + 64, ']', 64);
    assert_int_equal(parse_with(doc, ok, 128, NULL, &v, &err), 0);
    memset(ok, '[', 65);
    memset(ok + 65, ']', 65);
    assert_int_equal(parse_with(doc, ok, 130, NULL, &v, &err), FDT_ELIMIT);
    lim.max_depth = 2;
    assert_int_equal(parse_with(doc, "[[1]]", 5, &lim, &v, &err), 0);
    assert_int_equal(parse_with(doc, "[[[]]]", 6, &lim, &v, &err), FDT_ELIMIT);
    assert_int_equal(parse_with(doc, "[{\"a\":{}}]", 10, &lim, &v, &err), FDT_ELIMIT);
    /* The deepest allowed document encodes and compares without recursion trouble. */
    lim.max_depth = FDT_JSON_DEPTH_MAX;
    char *max = malloc(2 * FDT_JSON_DEPTH_MAX);
    assert_non_null(max);
    memset(max, '[', FDT_JSON_DEPTH_MAX);
    memset(max + FDT_JSON_DEPTH_MAX, ']', FDT_JSON_DEPTH_MAX);
    assert_int_equal(parse_with(doc, max, 2 * FDT_JSON_DEPTH_MAX, &lim, &v, &err), 0);
    char *out = encode(v);
    assert_memory_equal(out, max, 2 * FDT_JSON_DEPTH_MAX);
    assert_true(fdt_json_equal(v, v));
    free(out);
    free(max);
    fdt_json_doc_free(doc);
}

static void test_limit_values_string_size(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_error err;
    struct fdt_json_limits lim;
    fdt_json_limits_default(&lim);
    assert_int_equal(lim.max_depth, 64);
    assert_int_equal(lim.max_size, FDT_JSON_DEFAULT_MAX_SIZE);
    assert_int_equal(lim.max_values, FDT_JSON_DEFAULT_MAX_VALUES);
    assert_int_equal(lim.max_string, FDT_JSON_DEFAULT_MAX_STRING);

    lim.max_values = 3;
    assert_int_equal(parse_with(doc, "[1,2]", 5, &lim, &v, &err), 0);
    assert_int_equal(parse_with(doc, "{\"a\":[]}", 8, &lim, &v, &err), 0);
    assert_int_equal(parse_with(doc, "[1,2,3]", 7, &lim, &v, &err), FDT_ELIMIT);
    assert_non_null(strstr(err.msg, "(byte 5): too many values (limit 3)"));
    assert_int_equal(parse_with(doc, "{\"a\":1,\"b\":2,\"c\":3}", 19, &lim, &v, &err), FDT_ELIMIT);

    fdt_json_limits_default(&lim);
    lim.max_string = 3;
    assert_int_equal(parse_with(doc, "\"abc\"", 5, &lim, &v, &err), 0);
    assert_int_equal(parse_with(doc, "\"\\u0041\\u0042\\u0043\"", 20, &lim, &v, &err), 0);
    assert_int_equal(parse_with(doc, "[\"abcd\"]", 8, &lim, &v, &err), FDT_ELIMIT);
    assert_non_null(strstr(err.msg, "(byte 1): string too long (limit 3 bytes)"));
    assert_int_equal(parse_with(doc, "{\"abcd\":1}", 10, &lim, &v, &err), FDT_ELIMIT);

    fdt_json_limits_default(&lim);
    lim.max_size = 4;
    assert_int_equal(parse_with(doc, "[10]", 4, &lim, &v, &err), 0);
    assert_int_equal(parse_with(doc, "[1,2]", 5, &lim, &v, &err), FDT_ELIMIT);
    assert_non_null(strstr(err.msg, "(byte 4): input too large (limit 4 bytes)"));

    /* Zero fields mean the defaults. */
    memset(&lim, 0, sizeof(lim));
    char *deep = repeat("[", 65, "");
    assert_int_equal(parse_with(doc, deep, 65, &lim, &v, &err), FDT_ELIMIT);
    free(deep);
    fdt_json_limits_default(NULL);
    fdt_json_doc_free(doc);
}

static void test_many_small_values(void **state)
{
    (void)state;
    /* A wide array of empty containers and a wide object: scratch space grows and is reused. */
    char *s = repeat("[],{},", 50000, "0]");
    char *arr = malloc(strlen(s) + 2);
    assert_non_null(arr);
    arr[0] = '[';
    strcpy(arr + 1, s);
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_error err;
    assert_int_equal(fdt_json_parse(doc, arr, strlen(arr), NULL, &v, &err), 0);
    assert_int_equal(fdt_json_size(v), 100001);
    assert_int_equal(fdt_json_type(fdt_json_array_get(v, 1)), FDT_JSON_OBJECT);
    assert_int_equal(fdt_json_type(fdt_json_array_get(v, 100000)), FDT_JSON_INT);
    struct fdt_json_limits lim;
    fdt_json_limits_default(&lim);
    lim.max_values = 100001;
    assert_int_equal(fdt_json_parse(doc, arr, strlen(arr), &lim, &v, &err), FDT_ELIMIT);
    free(arr);
    free(s);
    fdt_json_doc_free(doc);
}

/* ---- Refusals and memory outside the common paths ------------------------------------------ */

/* Each refusal names what is wrong, as a client reads it in a JSON-RPC parse error. */
static void test_more_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *msg;
    } cases[] = {
        {"fals", "invalid literal (expected false)"},
        {"[true,fals]", "invalid literal (expected false)"},
        {"\"a\\n\x01\"", "control character 0x01 in string (must be escaped)"},
        {"\"a\\n", "unterminated string"},
    };
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_error err;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(fdt_json_parse(doc, cases[i].in, strlen(cases[i].in), NULL, &v, &err),
                         FDT_EPROTO);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("%s: %s", cases[i].in, err.msg);
    }
    fdt_json_doc_free(doc);
}

/* More significant digits after the point than a double holds: read as strtod reads them. */
static void test_long_fraction(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "1.2345678901234567890123456789",
        "0.10000000000000000000000000001",
        "9.99999999999999999999999",
    };
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_error err;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(fdt_json_parse(doc, cases[i], strlen(cases[i]), NULL, &v, &err), 0);
        assert_true(fdt_json_number_value(v) == strtod(cases[i], NULL));
    }
    fdt_json_doc_free(doc);
}

/* A string limit above what a length can hold is capped; parsing works. */
static void test_huge_string_limit(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_json_limits lim;
    fdt_json_limits_default(&lim);
    lim.max_string = SIZE_MAX;
    assert_int_equal(fdt_json_parse(doc, "\"abc\"", 5, &lim, &v, NULL), 0);
    assert_string_equal(fdt_json_string_value(v, NULL), "abc");
    fdt_json_doc_free(doc);
}

/* A big array or object nested after a sibling is copied out of the parser's scratch
 * arrays, which stay big until the document is cleared; clearing gives them back. A first
 * big array in a fresh document becomes its first heap block. */
static void test_scratch_memory(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_error err;
    size_t small = fdt_json_doc_memory(doc);

    char *arr = repeat("1,", 5000, "1]]");
    char *in = malloc(strlen(arr) + 5);
    assert_non_null(in);
    memcpy(in, "[0,[", 4);
    memcpy(in + 4, arr, strlen(arr) + 1);
    assert_int_equal(fdt_json_parse(doc, in, strlen(in), NULL, &v, &err), 0);
    assert_int_equal(fdt_json_size(fdt_json_array_get(v, 1)), 5001);
    assert_true(fdt_json_doc_memory(doc) > small + 65536);
    fdt_json_doc_clear(doc);
    assert_true(fdt_json_doc_memory(doc) <= small + 65536);
    free(in);
    free(arr);

    size_t n = 5000;
    char *obj = malloc(n * 16 + 32);
    assert_non_null(obj);
    size_t at = (size_t)snprintf(obj, 32, "{\"a\":0,\"b\":{");
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(obj + at, 16, "%s\"k%zu\":1", i ? "," : "", i);
    memcpy(obj + at, "}}", 3);
    assert_int_equal(fdt_json_parse(doc, obj, at + 2, NULL, &v, &err), 0);
    assert_int_equal(fdt_json_size(fdt_json_object_get(v, "b")), n);
    assert_int_equal(fdt_json_int_value(fdt_json_object_get(fdt_json_object_get(v, "b"), "k4999")),
                     1);
    assert_true(fdt_json_doc_memory(doc) > small + 65536);
    fdt_json_doc_clear(doc);
    assert_true(fdt_json_doc_memory(doc) <= small + 65536);
    free(obj);
    fdt_json_doc_free(doc);

    doc = fdt_json_doc_new();
    arr = repeat("2,", 499, "2]");
    in = malloc(strlen(arr) + 2);
    assert_non_null(in);
    in[0] = '[';
    memcpy(in + 1, arr, strlen(arr) + 1);
    assert_int_equal(fdt_json_parse(doc, in, strlen(in), NULL, &v, &err), 0);
    assert_int_equal(fdt_json_size(v), 500);
    assert_int_equal(fdt_json_int_value(fdt_json_array_get(v, 499)), 2);
    free(in);
    free(arr);
    fdt_json_doc_free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_corpus),      cmocka_unit_test(test_invalid_corpus),
        cmocka_unit_test(test_error_position),    cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_numbers),           cmocka_unit_test(test_long_number),
        cmocka_unit_test(test_strings_with_nul),  cmocka_unit_test(test_input_not_referenced),
        cmocka_unit_test(test_big_object),        cmocka_unit_test(test_doc_reuse),
        cmocka_unit_test(test_limit_depth),       cmocka_unit_test(test_limit_values_string_size),
        cmocka_unit_test(test_many_small_values), cmocka_unit_test(test_more_refusals),
        cmocka_unit_test(test_long_fraction),     cmocka_unit_test(test_huge_string_limit),
        cmocka_unit_test(test_scratch_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests of the streaming JSON writer: structure checks, escaping, numbers, limits. */
#include "fdt_config.h"

#include "json/json.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <fdt/json.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Finish w and compare its text with want. */
static void assert_text(struct fdt_json_writer *w, const char *want)
{
    const char *data = NULL;
    size_t len = 0;
    int rc = fdt_json_writer_finish(w, &data, &len);
    if (rc != 0)
        fail_msg("finish failed: %d (want %s)", rc, want);
    assert_string_equal(data, want);
    assert_int_equal(len, strlen(want));
}

static void test_structure(void **state)
{
    (void)state;
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    assert_int_equal(fdt_json_writer_begin_object(&w), 0);
    assert_int_equal(fdt_json_writer_key(&w, "jsonrpc"), 0);
    assert_int_equal(fdt_json_writer_string(&w, "2.0"), 0);
    assert_int_equal(fdt_json_writer_key(&w, "result"), 0);
    assert_int_equal(fdt_json_writer_begin_array(&w), 0);
    assert_int_equal(fdt_json_writer_int(&w, 1), 0);
    assert_int_equal(fdt_json_writer_bool(&w, true), 0);
    assert_int_equal(fdt_json_writer_bool(&w, false), 0);
    assert_int_equal(fdt_json_writer_null(&w), 0);
    assert_int_equal(fdt_json_writer_double(&w, 0.5), 0);
    assert_int_equal(fdt_json_writer_begin_object(&w), 0);
    assert_int_equal(fdt_json_writer_end_object(&w), 0);
    assert_int_equal(fdt_json_writer_begin_array(&w), 0);
    assert_int_equal(fdt_json_writer_end_array(&w), 0);
    assert_int_equal(fdt_json_writer_raw(&w, "{\"cached\":1}", 12), 0);
    assert_int_equal(fdt_json_writer_end_array(&w), 0);
    assert_int_equal(fdt_json_writer_keyn(&w, "id", 2), 0);
    assert_int_equal(fdt_json_writer_int(&w, 7), 0);
    assert_int_equal(fdt_json_writer_end_object(&w), 0);
    assert_text(&w, "{\"jsonrpc\":\"2.0\",\"result\":[1,true,false,null,0.5,{},[],{\"cached\":1}],"
                    "\"id\":7}");

    /* reset() keeps the buffer and starts over. */
    fdt_json_writer_reset(&w);
    assert_int_equal(fdt_json_writer_int(&w, 42), 0);
    assert_text(&w, "42");
    fdt_json_writer_reset(&w);
    assert_int_equal(fdt_json_writer_string(&w, ""), 0);
    assert_text(&w, "\"\"");
    fdt_json_writer_deinit(&w);
    fdt_json_writer_deinit(NULL);
}

/* Each misuse gives FDT_EINVAL, which then sticks. */
typedef int (*step_fn)(struct fdt_json_writer *w);

static int s_begin_obj(struct fdt_json_writer *w)
{
    return fdt_json_writer_begin_object(w);
}
static int s_end_obj(struct fdt_json_writer *w)
{
    return fdt_json_writer_end_object(w);
}
static int s_begin_arr(struct fdt_json_writer *w)
{
    return fdt_json_writer_begin_array(w);
}
static int s_end_arr(struct fdt_json_writer *w)
{
    return fdt_json_writer_end_array(w);
}
static int s_key(struct fdt_json_writer *w)
{
    return fdt_json_writer_key(w, "k");
}
static int s_int(struct fdt_json_writer *w)
{
    return fdt_json_writer_int(w, 1);
}

struct misuse_case {
    const char *name;
    step_fn steps[6]; /* the last one fails */
};

static const struct misuse_case misuse_cases[] = {
    {"key at top level", {s_key}},
    {"key in an array", {s_begin_arr, s_key}},
    {"two keys", {s_begin_obj, s_key, s_key}},
    {"value without key", {s_begin_obj, s_int}},
    {"end object after key", {s_begin_obj, s_key, s_end_obj}},
    {"end array in object", {s_begin_obj, s_end_arr}},
    {"end object in array", {s_begin_arr, s_end_obj}},
    {"end at top level", {s_end_arr}},
    {"second top-level value", {s_int, s_int}},
    {"value after closed root", {s_begin_arr, s_end_arr, s_begin_obj}},
};

static void test_misuse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(misuse_cases) / sizeof(misuse_cases[0]); i++) {
        const struct misuse_case *c = &misuse_cases[i];
        struct fdt_json_writer w;
        fdt_json_writer_init(&w, 0);
        size_t n = 0;
        while (n < 6 && c->steps[n])
            n++;
        for (size_t j = 0; j + 1 < n; j++) {
            if (c->steps[j](&w) != 0)
                fail_msg("%s: step %zu failed", c->name, j);
        }
        if (c->steps[n - 1](&w) != FDT_EINVAL)
            fail_msg("%s: last step did not fail", c->name);
        /* Sticky: later calls fail the same way and finish reports it. */
        assert_int_equal(fdt_json_writer_int(&w, 5), FDT_EINVAL);
        assert_int_equal(fdt_json_writer_finish(&w, NULL, NULL), FDT_EINVAL);
        fdt_json_writer_deinit(&w);
    }

    /* An incomplete value cannot be finished, and neither can nothing at all. */
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    const char *data;
    size_t len;
    assert_int_equal(fdt_json_writer_finish(&w, &data, &len), FDT_EINVAL);
    fdt_json_writer_reset(&w);
    assert_int_equal(fdt_json_writer_begin_object(&w), 0);
    assert_int_equal(fdt_json_writer_finish(&w, &data, &len), FDT_EINVAL);
    fdt_json_writer_reset(&w);
    assert_int_equal(fdt_json_writer_raw(&w, "", 0), FDT_EINVAL);
    fdt_json_writer_reset(&w);
    /* Raw text where a key is needed. */
    assert_int_equal(fdt_json_writer_begin_object(&w), 0);
    assert_int_equal(fdt_json_writer_raw(&w, "1", 1), FDT_EINVAL);
    fdt_json_writer_reset(&w);
    assert_int_equal(fdt_json_writer_string(&w, NULL), FDT_EINVAL);
    fdt_json_writer_reset(&w);
    assert_int_equal(fdt_json_writer_value(&w, NULL), FDT_EINVAL);
    fdt_json_writer_deinit(&w);
}

struct escape_case {
    const char *in;
    size_t len;
    const char *out; /* NULL: refused */
};

static const struct escape_case escape_cases[] = {
    {"plain", 5, "\"plain\""},
    {"", 0, "\"\""},
    {"q\"b\\s/", 6, "\"q\\\"b\\\\s/\""},
    {"\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\""},
    {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\""},
    {"a\0b", 3, "\"a\\u0000b\""},
    {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
    {"0123456789abcdef\"0123456789abcdef\n", 34, "\"0123456789abcdef\\\"0123456789abcdef\\n\""},
    {"\xff", 1, NULL},
    {"abcdefgh\x80", 9, NULL},
    {"\xc0\x80", 2, NULL},
    {"\xed\xb0\x80", 3, NULL},
    {"\xf4\x90\x80\x80", 4, NULL},
    {"\xe2\x82", 2, NULL},
};

static void test_escaping(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(escape_cases) / sizeof(escape_cases[0]); i++) {
        const struct escape_case *c = &escape_cases[i];
        for (int as_key = 0; as_key < 2; as_key++) {
            struct fdt_json_writer w;
            fdt_json_writer_init(&w, 0);
            int rc;
            if (as_key) {
                fdt_json_writer_begin_object(&w);
                rc = fdt_json_writer_keyn(&w, c->in, c->len);
                if (rc == 0)
                    rc = fdt_json_writer_null(&w);
                if (rc == 0)
                    rc = fdt_json_writer_end_object(&w);
            } else {
                rc = fdt_json_writer_stringn(&w, c->in, c->len);
            }
            if (!c->out) {
                if (rc != FDT_EINVAL)
                    fail_msg("case %zu: invalid UTF-8 accepted", i);
                fdt_json_writer_deinit(&w);
                continue;
            }
            assert_int_equal(rc, 0);
            char want[128];
            if (as_key)
                snprintf(want, sizeof(want), "{%s:null}", c->out);
            else
                snprintf(want, sizeof(want), "%s", c->out);
            assert_text(&w, want);
            fdt_json_writer_deinit(&w);
        }
    }
}

static void test_long_strings(void **state)
{
    (void)state;
    /* Long strings take the measuring path; the result parses back to the same bytes. */
    size_t n = 200000;
    char *s = malloc(n);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(i % 97 == 0 ? '\n' : i % 89 == 0 ? '"' : 'a' + (char)(i % 26));
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    assert_int_equal(fdt_json_writer_stringn(&w, s, n), 0);
    const char *data;
    size_t len;
    assert_int_equal(fdt_json_writer_finish(&w, &data, &len), 0);
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_json_limits lim;
    fdt_json_limits_default(&lim);
    struct fdt_error err;
    assert_int_equal(fdt_json_parse(doc, data, len, &lim, &v, &err), 0);
    size_t got;
    assert_memory_equal(fdt_json_string_value(v, &got), s, n);
    assert_int_equal(got, n);
    fdt_json_writer_deinit(&w);
    fdt_json_doc_free(doc);

    /* Invalid UTF-8 deep inside a long string is found too. */
    s[n - 3] = (char)0xC3;
    fdt_json_writer_init(&w, 0);
    assert_int_equal(fdt_json_writer_stringn(&w, s, n), FDT_EINVAL);
    fdt_json_writer_deinit(&w);
    free(s);
}

static void test_numbers(void **state)
{
    (void)state;
    static const struct {
        int64_t i;
        const char *out;
    } ints[] = {
        {0, "0"},
        {-1, "-1"},
        {9, "9"},
        {10, "10"},
        {-99, "-99"},
        {100, "100"},
        {1234567890123, "1234567890123"},
        {INT64_MAX, "9223372036854775807"},
        {INT64_MIN, "-9223372036854775808"},
        {INT64_MIN + 1, "-9223372036854775807"},
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        struct fdt_json_writer w;
        fdt_json_writer_init(&w, 0);
        assert_int_equal(fdt_json_writer_int(&w, ints[i].i), 0);
        assert_text(&w, ints[i].out);
        fdt_json_writer_deinit(&w);
    }
    static const struct {
        double d;
        const char *out;
    } dbls[] = {
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {1.0, "1.0"},
        {-2.0, "-2.0"},
        {0.1, "0.1"},
        {1.0 / 3.0, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1e300, "1e+300"},
        {1e21, "1e+21"},
        {123456789.0, "123456789.0"},
        {1e-7, "1e-07"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {DBL_MIN, "2.2250738585072014e-308"},
        {5e-324, "5e-324"},
        {1e-320, "1e-320"},
    };
    for (size_t i = 0; i < sizeof(dbls) / sizeof(dbls[0]); i++) {
        struct fdt_json_writer w;
        fdt_json_writer_init(&w, 0);
        assert_int_equal(fdt_json_writer_double(&w, dbls[i].d), 0);
        assert_text(&w, dbls[i].out);
        fdt_json_writer_deinit(&w);
    }
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    assert_int_equal(fdt_json_writer_double(&w, NAN), FDT_EINVAL);
    fdt_json_writer_reset(&w);
    assert_int_equal(fdt_json_writer_double(&w, INFINITY), FDT_EINVAL);
    fdt_json_writer_deinit(&w);
}

static void test_double_round_trip(void **state)
{
    (void)state;
    /* Doubles from all over the range (a fixed pseudo-random sequence of bit patterns) come
     * back bit for bit, and are never longer than 17 significant digits. */
    struct fdt_json_doc *doc = fdt_json_doc_new();
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof(d));
        if (!isfinite(d))
            continue;
        struct fdt_json_writer w;
        fdt_json_writer_init(&w, 0);
        assert_int_equal(fdt_json_writer_double(&w, d), 0);
        const char *text;
        size_t len;
        assert_int_equal(fdt_json_writer_finish(&w, &text, &len), 0);
        assert_true(len <= 24);
        struct fdt_json *v;
        struct fdt_error err;
        if (fdt_json_parse(doc, text, len, NULL, &v, &err) != 0)
            fail_msg("%s: %s", text, err.msg);
        double back = fdt_json_number_value(v);
        if (memcmp(&back, &d, sizeof(d)) != 0)
            fail_msg("%s came back as %.17g", text, back);
        assert_int_equal(fdt_json_type(v), FDT_JSON_DOUBLE);
        fdt_json_writer_deinit(&w);
        if (i % 1000 == 0)
            fdt_json_doc_clear(doc);
    }
    fdt_json_doc_free(doc);
}

static void test_limits(void **state)
{
    (void)state;
    /* The output maximum: exactly full is fine, one byte more is FDT_ELIMIT and sticks. */
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 7);
    assert_int_equal(fdt_json_writer_string(&w, "abcde"), 0);
    assert_text(&w, "\"abcde\"");
    fdt_json_writer_reset(&w);
    assert_int_equal(fdt_json_writer_string(&w, "abcdef"), FDT_ELIMIT);
    assert_int_equal(fdt_json_writer_finish(&w, NULL, NULL), FDT_ELIMIT);
    fdt_json_writer_reset(&w);
    assert_int_equal(fdt_json_writer_begin_array(&w), 0);
    assert_int_equal(fdt_json_writer_int(&w, 12345), 0);
    assert_int_equal(fdt_json_writer_end_array(&w), 0);
    assert_text(&w, "[12345]");
    fdt_json_writer_reset(&w);
    assert_int_equal(fdt_json_writer_string(&w, "\n\n\n"), FDT_ELIMIT); /* 8 bytes */
    fdt_json_writer_deinit(&w);

    /* Nesting stops at FDT_JSON_DEPTH_MAX. */
    fdt_json_writer_init(&w, 0);
    for (int i = 0; i < FDT_JSON_DEPTH_MAX; i++)
        assert_int_equal(fdt_json_writer_begin_array(&w), 0);
    assert_int_equal(fdt_json_writer_begin_array(&w), FDT_ELIMIT);
    fdt_json_writer_deinit(&w);

    /* The same maximum applies to encoding a document. */
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *o = fdt_json_object(doc);
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(fdt_json_object_set(doc, o, key, fdt_json_int(doc, i)), 0);
    }
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(fdt_json_encode(o, 100, &out, &len), FDT_ELIMIT);
    assert_null(out);
    assert_int_equal(fdt_json_encode(o, 0, &out, &len), 0);
    size_t full = len;
    free(out);
    assert_int_equal(fdt_json_encode(o, full, &out, &len), 0);
    assert_int_equal(len, full);
    free(out);
    assert_int_equal(fdt_json_encode(o, full - 1, &out, &len), FDT_ELIMIT);
    assert_int_equal(fdt_json_encode(o, 0, NULL, &len), FDT_EINVAL);
    fdt_json_doc_free(doc);
}

static void test_value_and_take(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    struct fdt_error err;
    const char *in = "{\"a\":[1,{\"b\":\"c\\n\"},[]],\"d\":-0.5,\"e\":{}}";
    assert_int_equal(fdt_json_parse(doc, in, strlen(in), NULL, &v, &err), 0);

    /* A document value inside a response being written. */
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    fdt_json_writer_begin_object(&w);
    fdt_json_writer_key(&w, "result");
    assert_int_equal(fdt_json_writer_value(&w, v), 0);
    fdt_json_writer_key(&w, "also");
    assert_int_equal(fdt_json_writer_value(&w, fdt_json_object_get(v, "a")), 0);
    fdt_json_writer_end_object(&w);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(fdt_json_writer_take(&w, &text, &len), 0);
    assert_string_equal(text, "{\"result\":{\"a\":[1,{\"b\":\"c\\n\"},[]],\"d\":-0.5,\"e\":{}},"
                              "\"also\":[1,{\"b\":\"c\\n\"},[]]}");
    assert_int_equal(len, strlen(text));
    free(text);
    /* After take the writer is empty and usable. */
    assert_int_equal(fdt_json_writer_finish(&w, NULL, NULL), FDT_EINVAL);
    fdt_json_writer_reset(&w);
    assert_int_equal(fdt_json_writer_null(&w), 0);
    assert_text(&w, "null");
    fdt_json_writer_deinit(&w);
    fdt_json_doc_free(doc);
}

/* The refusals a caller sees outside the common paths: NULL arguments, invalid UTF-8 in
 * strings too long for the one-pass path, a value with no type, and the output maximum hit
 * inside a document value. */
static void test_refusals(void **state)
{
    (void)state;
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    assert_int_equal(fdt_json_writer_begin_object(&w), 0);
    assert_int_equal(fdt_json_writer_key(&w, NULL), FDT_EINVAL);
    fdt_json_writer_reset(&w);
    assert_int_equal(fdt_json_writer_stringn(&w, NULL, 3), FDT_EINVAL);
    fdt_json_writer_reset(&w);

    /* Invalid UTF-8 at the end of a string longer than SIMPLE_MAX (64), and of one longer
     * than the one-pass limit (64 KiB), where it is measured first. */
    static const size_t lens[] = {100, 70000};
    for (size_t i = 0; i < 2; i++) {
        char *s = malloc(lens[i]);
        assert_non_null(s);
        memset(s, 'a', lens[i]);
        s[lens[i] - 1] = '\xff';
        assert_int_equal(fdt_json_writer_stringn(&w, s, lens[i]), FDT_EINVAL);
        fdt_json_writer_reset(&w);
        s[lens[i] - 1] = 'z';
        assert_int_equal(fdt_json_writer_stringn(&w, s, lens[i]), 0);
        const char *data;
        size_t len;
        assert_int_equal(fdt_json_writer_finish(&w, &data, &len), 0);
        assert_int_equal(len, lens[i] + 2);
        fdt_json_writer_reset(&w);
        free(s);
    }

    /* A long string with multi-byte characters, measured first: kept as they are. */
    size_t big = 70000;
    char *u = malloc(big);
    assert_non_null(u);
    for (size_t i = 0; i + 1 < big; i += 2)
        memcpy(u + i, "\xc3\xa9", 2);
    assert_int_equal(fdt_json_writer_stringn(&w, u, big), 0);
    const char *text;
    size_t tlen;
    assert_int_equal(fdt_json_writer_finish(&w, &text, &tlen), 0);
    assert_int_equal(tlen, big + 2);
    assert_memory_equal(text + 1, u, big);
    fdt_json_writer_reset(&w);
    free(u);

    /* A key longer than SIMPLE_MAX takes the general path: written, or refused when it is
     * not UTF-8. */
    char key[101];
    memset(key, 'k', 100);
    key[100] = '\0';
    assert_int_equal(fdt_json_writer_begin_object(&w), 0);
    assert_int_equal(fdt_json_writer_key(&w, "a"), 0);
    assert_int_equal(fdt_json_writer_int(&w, 1), 0);
    assert_int_equal(fdt_json_writer_key(&w, key), 0);
    assert_int_equal(fdt_json_writer_int(&w, 2), 0);
    assert_int_equal(fdt_json_writer_end_object(&w), 0);
    assert_int_equal(fdt_json_writer_finish(&w, &text, &tlen), 0);
    assert_int_equal(tlen, strlen("{\"a\":1,\"\":2}") + 100);
    assert_memory_equal(text, "{\"a\":1,\"kkk", 11);
    fdt_json_writer_reset(&w);
    key[99] = '\xff';
    assert_int_equal(fdt_json_writer_begin_object(&w), 0);
    assert_int_equal(fdt_json_writer_key(&w, key), FDT_EINVAL);
    fdt_json_writer_reset(&w);

    /* A value whose type is NONE (zeroed memory, not a parsed or built value). */
    struct fdt_json none;
    memset(&none, 0, sizeof(none));
    assert_int_equal(fdt_json_writer_value(&w, &none), FDT_EINVAL);
    fdt_json_writer_deinit(&w);

    /* The maximum reached while opening a nested container, and inside a run of scalars. */
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *v;
    const char *in = "{\"a\":{\"b\":1}}";
    assert_int_equal(fdt_json_parse(doc, in, strlen(in), NULL, &v, NULL), 0);
    fdt_json_writer_init(&w, 5); /* {"a": fits, the inner { does not */
    assert_int_equal(fdt_json_writer_value(&w, v), FDT_ELIMIT);
    assert_int_equal(fdt_json_writer_finish(&w, NULL, NULL), FDT_ELIMIT);
    fdt_json_writer_deinit(&w);
    in = "[[1,2,3,4,5,6,7,8]]";
    assert_int_equal(fdt_json_parse(doc, in, strlen(in), NULL, &v, NULL), 0);
    fdt_json_writer_init(&w, 8);
    assert_int_equal(fdt_json_writer_value(&w, v), FDT_ELIMIT);
    fdt_json_writer_deinit(&w);
    fdt_json_doc_free(doc);

    /* A maximum beyond what a size can double to is capped, and writing works. */
    fdt_json_writer_init(&w, SIZE_MAX);
    assert_int_equal(fdt_json_writer_int(&w, 7), 0);
    assert_text(&w, "7");
    fdt_json_writer_deinit(&w);
}

/* take: a buffer much larger than the text is shrunk to fit, and a caller that wants only
 * the length gets it (the text is freed). */
static void test_take_shrinks(void **state)
{
    (void)state;
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    /* A string of 1000 bytes gets worst-case room (6 bytes each): 8 KiB for 1002. */
    char s[1000];
    memset(s, 'x', sizeof(s));
    assert_int_equal(fdt_json_writer_stringn(&w, s, sizeof(s)), 0);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(fdt_json_writer_take(&w, &text, &len), 0);
    assert_int_equal(len, 1002);
    assert_int_equal(strlen(text), len);
    assert_memory_equal(text, "\"xxxx", 5);
    assert_int_equal(text[1001], '"');
    free(text);

    assert_int_equal(fdt_json_writer_int(&w, 42), 0);
    len = 0;
    assert_int_equal(fdt_json_writer_take(&w, NULL, &len), 0);
    assert_int_equal(len, 2);
    fdt_json_writer_deinit(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure), cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_escaping),  cmocka_unit_test(test_long_strings),
        cmocka_unit_test(test_numbers),   cmocka_unit_test(test_double_round_trip),
        cmocka_unit_test(test_limits),    cmocka_unit_test(test_value_and_take),
        cmocka_unit_test(test_refusals),  cmocka_unit_test(test_take_shrinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests of JSON documents and values: building, reading, lookup and equality. */
#include "fdt_config.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <fdt/json.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *encode(const struct fdt_json *v)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(fdt_json_encode(v, 0, &out, &len), 0);
    return out;
}

static void assert_encodes(const struct fdt_json *v, const char *want)
{
    char *out = encode(v);
    assert_string_equal(out, want);
    free(out);
}

static void test_scalars(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    assert_non_null(doc);
    struct fdt_json *n = fdt_json_null(doc), *t = fdt_json_bool(doc, true);
    struct fdt_json *i = fdt_json_int(doc, -42), *d = fdt_json_double(doc, 2.5);
    struct fdt_json *s = fdt_json_string(doc, "h\xc3\xa9llo");
    assert_int_equal(fdt_json_type(n), FDT_JSON_NULL);
    assert_int_equal(fdt_json_type(t), FDT_JSON_BOOL);
    assert_true(fdt_json_bool_value(t));
    assert_int_equal(fdt_json_int_value(i), -42);
    assert_true(fdt_json_number_value(i) == -42.0);
    assert_true(fdt_json_number_value(d) == 2.5);
    assert_int_equal(fdt_json_int_value(d), 0);
    size_t len;
    assert_string_equal(fdt_json_string_value(s, &len), "h\xc3\xa9llo");
    assert_int_equal(len, 6);
    assert_encodes(s, "\"h\xc3\xa9llo\"");
    assert_encodes(d, "2.5");
    assert_encodes(n, "null");

    /* Refused arguments give NULL. */
    assert_null(fdt_json_double(doc, NAN));
    assert_null(fdt_json_double(doc, INFINITY));
    assert_null(fdt_json_double(doc, -INFINITY));
    assert_null(fdt_json_string(doc, "\xff"));
    assert_null(fdt_json_string(doc, "\xed\xa0\x80")); /* an encoded surrogate */
    assert_null(fdt_json_stringn(doc, "\xc3", 1));     /* cut in the middle */
    assert_null(fdt_json_string(doc, NULL));
    assert_null(fdt_json_stringn(doc, NULL, 1));
    assert_null(fdt_json_int(NULL, 1));
    assert_null(fdt_json_object(NULL));

    /* An empty string and one with NUL inside. */
    struct fdt_json *e = fdt_json_stringn(doc, NULL, 0);
    assert_non_null(e);
    assert_string_equal(fdt_json_string_value(e, &len), "");
    struct fdt_json *z = fdt_json_stringn(doc, "a\0b", 3);
    assert_encodes(z, "\"a\\u0000b\"");
    fdt_json_doc_free(doc);
}

static void test_getters_tolerate_null_and_wrong_types(void **state)
{
    (void)state;
    assert_int_equal(fdt_json_type(NULL), FDT_JSON_NONE);
    assert_false(fdt_json_bool_value(NULL));
    assert_int_equal(fdt_json_int_value(NULL), 0);
    assert_true(fdt_json_number_value(NULL) == 0.0);
    size_t len = 99;
    assert_null(fdt_json_string_value(NULL, &len));
    assert_int_equal(len, 0);
    assert_int_equal(fdt_json_size(NULL), 0);
    assert_null(fdt_json_array_get(NULL, 0));
    assert_null(fdt_json_object_get(NULL, "a"));
    assert_null(fdt_json_object_get(fdt_json_object_get(NULL, "a"), "b"));
    assert_null(fdt_json_object_key_at(NULL, 0, &len));
    assert_null(fdt_json_object_value_at(NULL, 0));

    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *i = fdt_json_int(doc, 7), *s = fdt_json_string(doc, "x");
    assert_null(fdt_json_string_value(i, NULL));
    assert_int_equal(fdt_json_size(i), 0);
    assert_null(fdt_json_array_get(i, 0));
    assert_null(fdt_json_object_get(s, "x"));
    assert_null(fdt_json_object_get(fdt_json_object(doc), NULL));
    assert_false(fdt_json_bool_value(i));
    assert_true(fdt_json_number_value(s) == 0.0);

    int64_t iv = 0;
    bool bv = false;
    const char *sv = NULL;
    assert_int_equal(fdt_json_get_int(i, &iv), 0);
    assert_int_equal(iv, 7);
    assert_int_equal(fdt_json_get_int(s, &iv), FDT_EINVAL);
    assert_int_equal(fdt_json_get_int(NULL, &iv), FDT_EINVAL);
    assert_int_equal(iv, 7);
    assert_int_equal(fdt_json_get_bool(fdt_json_bool(doc, true), &bv), 0);
    assert_true(bv);
    assert_int_equal(fdt_json_get_bool(i, &bv), FDT_EINVAL);
    assert_int_equal(fdt_json_get_string(s, &sv, &len), 0);
    assert_string_equal(sv, "x");
    assert_int_equal(len, 1);
    assert_int_equal(fdt_json_get_string(i, &sv, &len), FDT_EINVAL);
    fdt_json_doc_free(doc);
}

static void test_build_object_and_array(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *o = fdt_json_object(doc), *a = fdt_json_array(doc);
    assert_int_equal(fdt_json_array_append(doc, a, fdt_json_int(doc, 1)), 0);
    assert_int_equal(fdt_json_array_append(doc, a, fdt_json_string(doc, "two")), 0);
    assert_int_equal(fdt_json_array_append(doc, a, fdt_json_null(doc)), 0);
    assert_int_equal(fdt_json_object_set(doc, o, "jsonrpc", fdt_json_string(doc, "2.0")), 0);
    assert_int_equal(fdt_json_object_set(doc, o, "result", a), 0);
    assert_int_equal(fdt_json_object_set(doc, o, "id", fdt_json_int(doc, 9)), 0);
    assert_encodes(o, "{\"jsonrpc\":\"2.0\",\"result\":[1,\"two\",null],\"id\":9}");

    /* Setting an existing key replaces the value in place, keeping the order. */
    assert_int_equal(fdt_json_object_set(doc, o, "jsonrpc", fdt_json_bool(doc, false)), 0);
    assert_encodes(o, "{\"jsonrpc\":false,\"result\":[1,\"two\",null],\"id\":9}");
    assert_int_equal(fdt_json_size(o), 3);

    /* A container is linked by reference: later appends show through. */
    assert_int_equal(fdt_json_array_append(doc, a, fdt_json_bool(doc, true)), 0);
    assert_encodes(o, "{\"jsonrpc\":false,\"result\":[1,\"two\",null,true],\"id\":9}");

    /* Failed constructors and wrong types are refused with FDT_EINVAL. */
    assert_int_equal(fdt_json_array_append(doc, a, fdt_json_double(doc, NAN)), FDT_EINVAL);
    assert_int_equal(fdt_json_object_set(doc, o, "k", fdt_json_string(doc, "\xff")), FDT_EINVAL);
    assert_int_equal(fdt_json_object_set(doc, o, "\xff", fdt_json_null(doc)), FDT_EINVAL);
    assert_int_equal(fdt_json_object_set(doc, o, NULL, fdt_json_null(doc)), FDT_EINVAL);
    assert_int_equal(fdt_json_object_set(doc, a, "k", fdt_json_null(doc)), FDT_EINVAL);
    assert_int_equal(fdt_json_array_append(doc, o, fdt_json_null(doc)), FDT_EINVAL);
    assert_int_equal(fdt_json_array_append(NULL, a, fdt_json_null(doc)), FDT_EINVAL);
    assert_int_equal(fdt_json_size(a), 4);
    assert_int_equal(fdt_json_size(o), 3);

    /* Keys with NUL and keys that are escaped on output. */
    assert_int_equal(fdt_json_object_setn(doc, o, "a\0b", 3, fdt_json_int(doc, 1)), 0);
    assert_int_equal(fdt_json_object_set(doc, o, "q\"\n", fdt_json_int(doc, 2)), 0);
    assert_int_equal(fdt_json_int_value(fdt_json_object_getn(o, "a\0b", 3)), 1);
    assert_int_equal(fdt_json_int_value(fdt_json_object_get(o, "q\"\n")), 2);
    assert_encodes(o, "{\"jsonrpc\":false,\"result\":[1,\"two\",null,true],\"id\":9,"
                      "\"a\\u0000b\":1,\"q\\\"\\n\":2}");
    fdt_json_doc_free(doc);
}

static void test_big_built_object(void **state)
{
    (void)state;
    /* Growing past the index threshold, many times over; every key stays findable and the
     * order is kept. */
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *o = fdt_json_object(doc);
    char key[32];
    int n = 20000;
    for (int k = 0; k < n; k++) {
        snprintf(key, sizeof(key), "key-%d", k);
        assert_int_equal(fdt_json_object_set(doc, o, key, fdt_json_int(doc, k)), 0);
        if (k % 997 == 0) {
            for (int j = 0; j <= k; j += 97) {
                snprintf(key, sizeof(key), "key-%d", j);
                assert_int_equal(fdt_json_int_value(fdt_json_object_get(o, key)), j);
            }
        }
    }
    assert_int_equal(fdt_json_size(o), (size_t)n);
    for (int k = 0; k < n; k++) {
        snprintf(key, sizeof(key), "key-%d", k);
        assert_int_equal(fdt_json_int_value(fdt_json_object_get(o, key)), k);
        assert_string_equal(fdt_json_object_key_at(o, (size_t)k, NULL), key);
        assert_int_equal(fdt_json_int_value(fdt_json_object_value_at(o, (size_t)k)), k);
    }
    /* Replacing keeps the size. */
    assert_int_equal(fdt_json_object_set(doc, o, "key-5", fdt_json_int(doc, -5)), 0);
    assert_int_equal(fdt_json_size(o), (size_t)n);
    assert_int_equal(fdt_json_int_value(fdt_json_object_get(o, "key-5")), -5);
    assert_null(fdt_json_object_get(o, "key-20000"));
    assert_null(fdt_json_object_key_at(o, (size_t)n, NULL));

    /* A parsed copy is equal, and a parsed object grows with object_set too. */
    char *text = encode(o);
    struct fdt_json *p;
    struct fdt_error err;
    assert_int_equal(fdt_json_parse(doc, text, strlen(text), NULL, &p, &err), 0);
    assert_true(fdt_json_equal(o, p));
    assert_int_equal(fdt_json_object_set(doc, p, "extra", fdt_json_null(doc)), 0);
    assert_false(fdt_json_equal(o, p));
    assert_int_equal(fdt_json_type(fdt_json_object_get(p, "extra")), FDT_JSON_NULL);
    assert_int_equal(fdt_json_int_value(fdt_json_object_get(p, "key-19999")), 19999);
    free(text);
    fdt_json_doc_free(doc);
}

static void test_equal(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *a, *b;
    struct fdt_error err;
    const char *x = "{\"a\":[1,2.5,\"s\",null,true],\"b\":{\"c\":{}}}";
    const char *y = "{\"b\":{\"c\":{}},\"a\":[1,2.5,\"s\",null,true]}";
    assert_int_equal(fdt_json_parse(doc, x, strlen(x), NULL, &a, &err), 0);
    assert_int_equal(fdt_json_parse(doc, y, strlen(y), NULL, &b, &err), 0);
    assert_true(fdt_json_equal(a, b)); /* member order does not matter */
    assert_true(fdt_json_equal(NULL, NULL));
    assert_false(fdt_json_equal(a, NULL));

    static const char *const pairs[][2] = {
        {"1", "1.0"},
        {"0.0", "-0.0"},
        {"[1,2]", "[2,1]"},
        {"[1]", "[1,1]"},
        {"{\"a\":1}", "{\"b\":1}"},
        {"{\"a\":1}", "{\"a\":1,\"b\":2}"},
        {"\"a\"", "\"a\\u0000\""},
        {"true", "false"},
        {"null", "false"},
        {"\"1\"", "1"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        assert_int_equal(fdt_json_parse(doc, pairs[i][0], strlen(pairs[i][0]), NULL, &a, &err), 0);
        assert_int_equal(fdt_json_parse(doc, pairs[i][1], strlen(pairs[i][1]), NULL, &b, &err), 0);
        if (fdt_json_equal(a, b) || fdt_json_equal(b, a))
            fail_msg("%s should differ from %s", pairs[i][0], pairs[i][1]);
        assert_true(fdt_json_equal(a, a));
    }
    fdt_json_doc_free(doc);
}

static void test_cycle_is_refused_on_encode(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *a = fdt_json_array(doc);
    assert_int_equal(fdt_json_array_append(doc, a, fdt_json_int(doc, 1)), 0);
    assert_int_equal(fdt_json_array_append(doc, a, a), 0); /* forbidden, but must not crash */
    char *out = (char *)1;
    size_t len;
    assert_int_equal(fdt_json_encode(a, 0, &out, &len), FDT_ELIMIT);
    assert_null(out);
    fdt_json_doc_free(doc);
}

static void test_clear_and_memory(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    size_t base = fdt_json_doc_memory(doc);
    assert_true(base > 0);
    struct fdt_json *a = fdt_json_array(doc);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(fdt_json_array_append(doc, a, fdt_json_string(doc, "some text")), 0);
    assert_true(fdt_json_doc_memory(doc) > base + 1000000);
    fdt_json_doc_clear(doc);
    assert_int_equal(fdt_json_doc_memory(doc), base);
    /* The document is usable after a clear. */
    a = fdt_json_array(doc);
    assert_int_equal(fdt_json_array_append(doc, a, fdt_json_int(doc, 3)), 0);
    assert_encodes(a, "[3]");
    assert_int_equal(fdt_json_doc_memory(NULL), 0);
    fdt_json_doc_free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_getters_tolerate_null_and_wrong_types),
        cmocka_unit_test(test_build_object_and_array),
        cmocka_unit_test(test_big_built_object),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_cycle_is_refused_on_encode),
        cmocka_unit_test(test_clear_and_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* JSON parsing and writing when memory runs out: every allocation of a parse and of an
 * encode is made to fail in turn (tests/unit/alloc_fault.h); each such run must fail with
 * FDT_ENOMEM and nothing else, and leave the document usable (ASan checks for leaks). */
#include "alloc_fault.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <fdt/error.h>
#include <fdt/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char text[] =
    "{\"name\":\"wingcash\",\"list\":[1,2.5,true,null,\"a\\u00e9\\n\"],"
    "\"nested\":{\"deep\":[[[{\"k\":\"v\"}]]],\"big\":\"0123456789012345678901234567890123456789"
    "0123456789012345678901234567890123456789012345678901234567890123456789\"}}";

static void test_parse_every_allocation_fails_cleanly(void **state)
{
    (void)state;
    unsigned failures = 0;
    for (unsigned n = 1; n < 1000; n++) {
        struct fdt_json_doc *doc = NULL;
        alloc_fault_arm(n, false);
        doc = fdt_json_doc_new();
        struct fdt_json *root = NULL;
        int rc = doc ? fdt_json_parse(doc, text, sizeof text - 1, NULL, &root, NULL) : FDT_ENOMEM;
        bool hit = alloc_fault_hit();
        alloc_fault_disarm();
        if (!hit) {
            assert_int_equal(rc, 0);
            assert_string_equal(fdt_json_string_value(fdt_json_object_get(root, "name"), NULL),
                                "wingcash");
            fdt_json_doc_free(doc);
            break;
        }
        failures++;
        assert_int_equal(rc, FDT_ENOMEM);
        assert_null(root);
        if (doc) {
            /* the document is still usable after the failure */
            assert_int_equal(fdt_json_parse(doc, "[1]", 3, NULL, &root, NULL), 0);
            assert_int_equal(fdt_json_size(root), 1);
        }
        fdt_json_doc_free(doc);
    }
    assert_true(failures >= 2); /* the document and at least one block of values */
}

static void test_encode_every_allocation_fails_cleanly(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    assert_non_null(doc);
    struct fdt_json *root = NULL;
    assert_int_equal(fdt_json_parse(doc, text, sizeof text - 1, NULL, &root, NULL), 0);
    unsigned failures = 0;
    for (unsigned n = 1; n < 1000; n++) {
        char *out = NULL;
        size_t len = 0;
        alloc_fault_arm(n, true);
        int rc = fdt_json_encode(root, 0, &out, &len);
        bool hit = alloc_fault_hit();
        alloc_fault_disarm();
        if (!hit) {
            assert_int_equal(rc, 0);
            assert_int_equal(len, sizeof text - 1 - strlen("\\u00e9") + strlen("\xc3\xa9"));
            free(out);
            break;
        }
        failures++;
        assert_int_equal(rc, FDT_ENOMEM);
        assert_null(out);
    }
    assert_true(failures >= 1);
    fdt_json_doc_free(doc);
}

/* Fill the document's arena with `fill` bytes (a string value), so that the parse that
 * follows runs out of its current region at another place for each fill. */
static void fill_arena(struct fdt_json_doc *doc, size_t fill)
{
    static char junk[4096];
    if (fill)
        assert_non_null(fdt_json_stringn(doc, junk, fill));
}

/* The arena runs out at every point of a parse in turn: with its scratch arrays already
 * grown by an earlier parse, the first block the arena asks for fails, wherever it falls
 * (the copy of the input, the root, a container, an array's or object's members, an
 * object's index). Each run fails with FDT_ENOMEM and an error message, or succeeds. */
static void test_parse_arena_runs_out_anywhere(void **state)
{
    (void)state;
    static const char big[] =
        "{\"o\":{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,"
        "\"k10\":10},\"a\":[1,2,3,[4,5],{\"x\":\"yy\",\"z\":[]}],\"s\":\"a string long enough to "
        "take some room\",\"e\":{},\"t\":[true,false,null]}";
    struct fdt_json_doc *doc = fdt_json_doc_new();
    assert_non_null(doc);
    struct fdt_json *root = NULL;
    assert_int_equal(fdt_json_parse(doc, big, sizeof big - 1, NULL, &root, NULL), 0);
    unsigned failures = 0, successes = 0;
    for (size_t fill = 0; fill <= 2100; fill += 4) {
        fdt_json_doc_clear(doc);
        fill_arena(doc, fill);
        struct fdt_error err = {0};
        root = NULL;
        alloc_fault_arm(1, true);
        int rc = fdt_json_parse(doc, big, sizeof big - 1, NULL, &root, &err);
        bool hit = alloc_fault_hit();
        alloc_fault_disarm();
        if (!hit) {
            assert_int_equal(rc, 0);
            assert_int_equal(
                fdt_json_int_value(fdt_json_object_get(fdt_json_object_get(root, "o"), "k10")), 10);
            successes++;
            continue;
        }
        failures++;
        assert_int_equal(rc, FDT_ENOMEM);
        assert_int_equal(err.code, FDT_ENOMEM);
        assert_non_null(strstr(err.msg, "out of memory"));
        assert_null(root);
    }
    assert_true(failures >= 10);
    assert_true(successes >= 1); /* small fills leave the inline region room for all of it */
    fdt_json_doc_free(doc);
}

/* The scratch arrays grow for the first time where a container closes into its parent:
 * each allocation of these parses fails in turn. */
static void test_parse_nested_containers_every_allocation(void **state)
{
    (void)state;
    static const char *const texts[] = {"[[]]", "{\"a\":{}}", "[[1],{\"b\":[2]}]"};
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        unsigned failures = 0;
        for (unsigned n = 1; n < 100; n++) {
            alloc_fault_arm(n, false);
            struct fdt_json_doc *doc = fdt_json_doc_new();
            struct fdt_json *root = NULL;
            int rc = doc ? fdt_json_parse(doc, texts[t], strlen(texts[t]), NULL, &root, NULL)
                         : FDT_ENOMEM;
            bool hit = alloc_fault_hit();
            alloc_fault_disarm();
            fdt_json_doc_free(doc);
            if (!hit) {
                assert_int_equal(rc, 0);
                break;
            }
            failures++;
            assert_int_equal(rc, FDT_ENOMEM);
            assert_null(root);
        }
        assert_true(failures >= 3); /* the document, the frames, the items or members */
    }
}

/* Adding the member that makes an object big enough for a hash index, when the index
 * cannot be allocated: the add fails, the object keeps its members and lookups work. */
static void test_object_index_cannot_be_built(void **state)
{
    (void)state;
    unsigned index_failures = 0;
    for (size_t fill = 0; fill <= 2100; fill += 8) {
        struct fdt_json_doc *doc = fdt_json_doc_new();
        assert_non_null(doc);
        struct fdt_json *obj = fdt_json_object(doc);
        assert_non_null(obj);
        char key[8];
        for (int i = 0; i < 8; i++) {
            snprintf(key, sizeof key, "k%d", i);
            assert_int_equal(fdt_json_object_set(doc, obj, key, fdt_json_int(doc, i)), 0);
        }
        struct fdt_json *nine = fdt_json_int(doc, 8);
        assert_non_null(nine);
        fill_arena(doc, fill);
        alloc_fault_arm(1, true);
        int rc = fdt_json_object_set(doc, obj, "k8", nine);
        bool hit = alloc_fault_hit();
        alloc_fault_disarm();
        if (hit) {
            assert_int_equal(rc, FDT_ENOMEM);
            assert_int_equal(fdt_json_size(obj), 8);
            assert_null(fdt_json_object_get(obj, "k8"));
            assert_int_equal(fdt_json_int_value(fdt_json_object_get(obj, "k7")), 7);
            index_failures++;
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(fdt_json_int_value(fdt_json_object_get(obj, "k8")), 8);
        }
        /* with memory back, the add works and the object is indexed */
        if (hit) {
            assert_int_equal(fdt_json_object_set(doc, obj, "k8", nine), 0);
            assert_int_equal(fdt_json_int_value(fdt_json_object_get(obj, "k8")), 8);
        }
        fdt_json_doc_free(doc);
    }
    assert_true(index_failures >= 1);
}

/* Encoding a value nested deeper than the writer's stack of 32 levels and a long run of
 * simple values: each allocation (the output buffer as it grows, the deeper stack) fails
 * in turn. */
static void test_encode_deep_and_long_every_allocation(void **state)
{
    (void)state;
    char deep[8192];
    size_t o = 0;
    for (int i = 0; i < 40; i++)
        deep[o++] = '[';
    for (int i = 0; i < 1500; i++)
        o += (size_t)snprintf(deep + o, sizeof deep - o, "%s%d", i ? "," : "", i % 10);
    for (int i = 0; i < 40; i++)
        deep[o++] = ']';
    struct fdt_json_doc *doc = fdt_json_doc_new();
    assert_non_null(doc);
    struct fdt_json *root = NULL;
    assert_int_equal(fdt_json_parse(doc, deep, o, NULL, &root, NULL), 0);
    unsigned failures = 0;
    for (unsigned n = 1; n < 1000; n++) {
        char *out = NULL;
        size_t len = 0;
        alloc_fault_arm(n, false);
        int rc = fdt_json_encode(root, 0, &out, &len);
        bool hit = alloc_fault_hit();
        alloc_fault_disarm();
        if (!hit) {
            assert_int_equal(rc, 0);
            assert_int_equal(len, o);
            assert_memory_equal(out, deep, o);
            free(out);
            break;
        }
        failures++;
        assert_int_equal(rc, FDT_ENOMEM);
        assert_null(out);
    }
    assert_true(failures >= 2); /* the buffer and the deeper stack */
    fdt_json_doc_free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_every_allocation_fails_cleanly),
        cmocka_unit_test(test_encode_every_allocation_fails_cleanly),
        cmocka_unit_test(test_parse_arena_runs_out_anywhere),
        cmocka_unit_test(test_parse_nested_containers_every_allocation),
        cmocka_unit_test(test_object_index_cannot_be_built),
        cmocka_unit_test(test_encode_deep_and_long_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

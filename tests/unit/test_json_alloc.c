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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_every_allocation_fails_cleanly),
        cmocka_unit_test(test_encode_every_allocation_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

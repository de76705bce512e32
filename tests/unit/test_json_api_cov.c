/* The JSON module's refusals and out-of-memory returns that the other tests pass by: writer
 * calls in the wrong place (a value where a key is due, taking an unfinished text), a
 * closing bracket over the maximum, a string or key whose room cannot be had, a long string
 * with control characters (the counting pass), a document whose arena cannot grow under
 * values, strings and array slots, a large block that cannot be allocated, a 4-byte UTF-8
 * sequence cut short, and number text the JSON grammar would not have passed. Linked with
 * the allocation hook (tests/unit/alloc_fault.h). */
#include "alloc_fault.h"
#include "json/json.h"

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

static void test_writer_values_where_a_key_is_due(void **state)
{
    (void)state;
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    assert_int_equal(fdt_json_writer_begin_object(&w), 0);
    assert_int_equal(fdt_json_writer_double(&w, 1.5), FDT_EINVAL);
    fdt_json_writer_deinit(&w);
    fdt_json_writer_init(&w, 0);
    assert_int_equal(fdt_json_writer_begin_object(&w), 0);
    assert_int_equal(fdt_json_writer_bool(&w, true), FDT_EINVAL);
    fdt_json_writer_deinit(&w);
    fdt_json_writer_init(&w, 0);
    assert_int_equal(fdt_json_writer_begin_object(&w), 0);
    assert_int_equal(fdt_json_writer_null(&w), FDT_EINVAL);
    fdt_json_writer_deinit(&w);
}

static void test_take_an_unfinished_text(void **state)
{
    (void)state;
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    assert_int_equal(fdt_json_writer_begin_array(&w), 0);
    char *text = (char *)"unchanged";
    size_t len = 0;
    assert_int_equal(fdt_json_writer_take(&w, &text, &len), FDT_EINVAL);
    fdt_json_writer_deinit(&w);
}

static void test_closing_bracket_over_the_maximum(void **state)
{
    (void)state;
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 1);
    assert_int_equal(fdt_json_writer_begin_array(&w), 0);
    assert_int_equal(fdt_json_writer_end_array(&w), FDT_ELIMIT);
    fdt_json_writer_deinit(&w);
}

static void test_string_and_key_without_memory(void **state)
{
    (void)state;
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    alloc_fault_arm(1, true);
    assert_int_equal(fdt_json_writer_string(&w, "no room for this"), FDT_ENOMEM);
    alloc_fault_disarm();
    fdt_json_writer_deinit(&w);
    /* A key longer than what the buffer holds after "{": room_for cannot grow it. */
    char key[5000];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    fdt_json_writer_init(&w, 0);
    assert_int_equal(fdt_json_writer_begin_object(&w), 0);
    alloc_fault_arm(1, true);
    assert_int_equal(fdt_json_writer_key(&w, key), FDT_ENOMEM);
    alloc_fault_disarm();
    fdt_json_writer_deinit(&w);
}

static void test_long_string_with_control_characters(void **state)
{
    (void)state;
    size_t n = 70000;
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, 'a', n);
    s[10] = '\t';
    s[20] = '\x01';
    s[n] = '\0';
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    assert_int_equal(fdt_json_writer_string(&w, s), 0);
    const char *text;
    size_t len;
    assert_int_equal(fdt_json_writer_finish(&w, &text, &len), 0);
    assert_int_equal(len, n + 2 + 1 + 5); /* quotes, \t and \u0001 */
    assert_memory_equal(text + 11, "\\t", 2);
    assert_memory_equal(text + 22, "\\u0001", 6);
    fdt_json_writer_deinit(&w);
    free(s);
}

static void test_document_without_memory(void **state)
{
    (void)state;
    /* Empty strings until a value cannot be had; then long strings until the text cannot. */
    struct fdt_json_doc *doc = fdt_json_doc_new();
    assert_non_null(doc);
    alloc_fault_arm(1, true);
    int i = 0;
    while (fdt_json_stringn(doc, "", 0) && i < 100000)
        i++;
    assert_true(i < 100000);
    alloc_fault_disarm();
    fdt_json_doc_free(doc);
    /* A text too long for the current block gets one of its own, which cannot be had. */
    doc = fdt_json_doc_new();
    assert_non_null(doc);
    char text[3000];
    memset(text, 't', sizeof(text));
    alloc_fault_arm(1, true);
    assert_null(fdt_json_stringn(doc, text, sizeof(text)));
    alloc_fault_disarm();
    fdt_json_doc_free(doc);
    /* An array whose slots cannot grow any more. */
    doc = fdt_json_doc_new();
    struct fdt_json *arr = fdt_json_array(doc);
    struct fdt_json *one = fdt_json_int(doc, 1);
    assert_non_null(arr);
    assert_non_null(one);
    alloc_fault_arm(1, true);
    int rc = 0;
    for (i = 0; i < 100000 && rc == 0; i++)
        rc = fdt_json_array_append(doc, arr, one);
    alloc_fault_disarm();
    assert_int_equal(rc, FDT_ENOMEM);
    fdt_json_doc_free(doc);
    /* Objects growing under a failing arena, from each size on: their member slots or
     * their index cannot be had. */
    for (int start = 0; start < 64; start++) {
        doc = fdt_json_doc_new();
        struct fdt_json *obj = fdt_json_object(doc);
        one = fdt_json_int(doc, 1);
        assert_non_null(obj);
        assert_non_null(one);
        char key[16];
        rc = 0;
        for (i = 0; i < start && rc == 0; i++) {
            snprintf(key, sizeof(key), "k%d", i);
            rc = fdt_json_object_set(doc, obj, key, one);
        }
        alloc_fault_arm(1, true);
        for (; i < 100000 && rc == 0; i++) {
            snprintf(key, sizeof(key), "k%d", i);
            rc = fdt_json_object_set(doc, obj, key, one);
        }
        alloc_fault_disarm();
        assert_int_equal(rc, FDT_ENOMEM);
        fdt_json_doc_free(doc);
    }
}

static void test_arena_edges(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    assert_non_null(doc);
    assert_non_null(fdt__json_alloc_slow(doc, 0));
    assert_null(fdt__json_alloc_slow(doc, SIZE_MAX / 2));
    alloc_fault_arm(1, true);
    assert_null(fdt__json_alloc_slow(doc, 1 << 20)); /* a block of its own */
    alloc_fault_disarm();
    fdt_json_doc_free(doc);
}

static void test_key_where_the_buffer_cannot_grow(void **state)
{
    (void)state;
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    assert_int_equal(fdt_json_writer_begin_object(&w), 0);
    alloc_fault_arm(1, true);
    int rc = 0;
    for (int i = 0; i < 100000 && rc == 0; i++) {
        rc = fdt_json_writer_key(&w, "kkkkkkkk");
        if (rc == 0)
            assert_int_equal(fdt_json_writer_int(&w, 1), 0);
    }
    alloc_fault_disarm();
    assert_int_equal(rc, FDT_ENOMEM);
    fdt_json_writer_deinit(&w);
}

/* The scratch arrays' size check, given a need no parse can make. */
static void test_scratch_beyond_the_address_space(void **state)
{
    (void)state;
    void *arr = NULL;
    size_t cap = 0;
    assert_int_equal(fdt__json_scratch_reserve(&arr, &cap, SIZE_MAX / 8, 16), FDT_ENOMEM);
    assert_null(arr);
    assert_int_equal(cap, 0);
}

static void test_utf8_cut_short(void **state)
{
    (void)state;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    assert_null(fdt_json_stringn(doc, "\xF0\x9F\x98", 3));
    assert_non_null(fdt_json_stringn(doc, "\xF0\x9F\x98\x80", 4));
    fdt_json_doc_free(doc);
}

static void test_number_text_the_grammar_refuses(void **state)
{
    (void)state;
    double d = 0;
    assert_int_equal(fdt__json_strtod("1.5", 2, &d), FDT_EPROTO);
    assert_int_equal(fdt__json_strtod("1.5", 3, &d), 0);
    assert_true(d == 1.5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_values_where_a_key_is_due),
        cmocka_unit_test(test_take_an_unfinished_text),
        cmocka_unit_test(test_closing_bracket_over_the_maximum),
        cmocka_unit_test(test_string_and_key_without_memory),
        cmocka_unit_test(test_long_string_with_control_characters),
        cmocka_unit_test(test_document_without_memory),
        cmocka_unit_test(test_arena_edges),
        cmocka_unit_test(test_key_where_the_buffer_cannot_grow),
        cmocka_unit_test(test_scratch_beyond_the_address_space),
        cmocka_unit_test(test_utf8_cut_short),
        cmocka_unit_test(test_number_text_the_grammar_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

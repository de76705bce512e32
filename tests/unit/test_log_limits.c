#include "fdt_config.h"

#include "log/log.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <fdt/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The edges of a log line: a JSON string cut where the buffer ends (never in the middle of
 * an escape or of a UTF-8 sequence, and always closed), a byte that starts a UTF-8 sequence
 * the next byte does not continue, and a level outside the four that fdt_log_write (public:
 * an application may call it) clamps instead of reading past its name table. */

static void json_in(size_t size, const char *in, const char *want)
{
    char out[64];
    memset(out, 'X', sizeof(out));
    size_t o = 0;
    fdt__log_json_string(out, size, &o, in);
    assert_int_equal(o, strlen(want));
    assert_true(o <= size);
    assert_memory_equal(out, want, o);
}

static void test_json_string_is_cut_whole(void **state)
{
    (void)state;
    json_in(4, "abcdef", "\"ab\"");      /* a plain byte that does not fit */
    json_in(4, "a\"b", "\"a\"");         /* the escape \" would not fit: left out */
    json_in(4, "a\xc3\xa9", "\"a\"");    /* neither would the two bytes of U+00E9 */
    json_in(6, "a\x01", "\"a\"");        /* nor \u0001 */
    json_in(9, "a\x01", "\"a\\u0001\""); /* ... which fits in 9 */
}

static void test_json_string_without_room_writes_nothing(void **state)
{
    (void)state;
    char out[4] = "XXX";
    size_t o = 3;
    fdt__log_json_string(out, sizeof(out), &o, "abc"); /* not even the two quotes fit */
    assert_int_equal(o, 3);
    assert_string_equal(out, "XXX");
}

static void test_json_string_broken_sequence_is_escaped(void **state)
{
    (void)state;
    /* 0xc3 starts a two-byte sequence, '(' does not continue it. */
    json_in(64, "\xc3(", "\"\\u00c3(\"");
    /* A sequence cut by the end of the string. */
    json_in(64, "x\xe2\x82", "\"x\\u00e2\\u0082\"");
}

static void test_level_out_of_range_is_clamped(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-log-limits-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/x.log", dir);
    assert_int_equal(fdt__log_open(path), 0);
    fdt_log_write(-3, "t", "below");
    fdt_log_write(42, "t", "above");
    fdt__log_open(NULL);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    assert_non_null(fgets(line, sizeof(line), f));
    assert_non_null(strstr(line, " ERROR "));
    assert_non_null(strstr(line, "below"));
    assert_non_null(fgets(line, sizeof(line), f));
    assert_non_null(strstr(line, " DEBUG "));
    assert_non_null(strstr(line, "above"));
    fclose(f);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_string_is_cut_whole),
        cmocka_unit_test(test_json_string_without_room_writes_nothing),
        cmocka_unit_test(test_json_string_broken_sequence_is_escaped),
        cmocka_unit_test(test_level_out_of_range_is_clamped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

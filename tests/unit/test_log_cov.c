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

/* Log lines as a reader of the log sees them: one event a line whatever the message holds,
 * and JSON strings without bytes that are not UTF-8 (overlong forms and surrogates
 * included), escaped instead. */

static void test_message_stays_on_one_line(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdt-log-cov-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/x.log", dir);
    assert_int_equal(fdt__log_open(path), 0);
    fdt_log(FDT_LOG_WARN, "first\nsecond\rthird");
    fdt__log_open(NULL);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    assert_non_null(fgets(line, sizeof(line), f));
    assert_non_null(strstr(line, " WARN "));
    assert_non_null(strstr(line, "first second third\n"));
    assert_null(fgets(line, sizeof(line), f)); /* nothing on a second line */
    fclose(f);
    unlink(path);
    rmdir(dir);
}

static void json(const char *in, const char *want)
{
    char out[128];
    size_t o = 0;
    fdt__log_json_string(out, sizeof(out), &o, in);
    assert_int_equal(o, strlen(want));
    out[o] = '\0';
    assert_string_equal(out, want);
}

static void test_json_string_escapes_what_is_not_utf8(void **state)
{
    (void)state;
    json("caf\xc3\xa9", "\"caf\xc3\xa9\"");                       /* valid: kept */
    json("\xe0\x80\xaf", "\"\\u00e0\\u0080\\u00af\"");            /* overlong '/' */
    json("\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\"");            /* a UTF-16 surrogate */
    json("\xf4\x90\x80\x80", "\"\\u00f4\\u0090\\u0080\\u0080\""); /* past U+10FFFF */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_stays_on_one_line),
        cmocka_unit_test(test_json_string_escapes_what_is_not_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

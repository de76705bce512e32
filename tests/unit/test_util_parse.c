#include "fdt_config.h"

#include "util/util.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

static void test_parse_long(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        long min, max;
        int rc;
        long out;
    } cases[] = {
        {"0", 0, 10, 0, 0},           {"10", 0, 10, 0, 10},
        {"11", 0, 10, FDT_EINVAL, 0}, {"-1", 0, 10, FDT_EINVAL, 0},
        {"", 0, 10, FDT_EINVAL, 0},   {"3x", 0, 10, FDT_EINVAL, 0},
        {" 3", 0, 10, 0, 3},          {"99999999999999999999", 0, 10, FDT_EINVAL, 0},
    };
    for (size_t i = 0; i < FDT_ARRAY_LEN(cases); i++) {
        long v = -42;
        int rc = fdt__parse_long(cases[i].in, cases[i].min, cases[i].max, &v);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0)
            assert_int_equal(v, cases[i].out);
    }
}

static void test_parse_size(void **state)
{
    (void)state;
    size_t z;
    assert_int_equal(fdt__parse_size("64k", 1, 1 << 30, &z), 0);
    assert_int_equal(z, 65536);
    assert_int_equal(fdt__parse_size("2M", 1, 1 << 30, &z), 0);
    assert_int_equal(z, 2 * 1024 * 1024);
    assert_int_equal(fdt__parse_size("100", 1, 1 << 30, &z), 0);
    assert_int_equal(z, 100);
    assert_int_equal(fdt__parse_size("-1", 1, 1 << 30, &z), FDT_EINVAL);
    assert_int_equal(fdt__parse_size("5q", 1, 1 << 30, &z), FDT_EINVAL);
    assert_int_equal(fdt__parse_size("2g", 1, 1 << 30, &z), FDT_EINVAL);
}

static void test_parse_bool_double(void **state)
{
    (void)state;
    bool b;
    assert_int_equal(fdt__parse_bool("yes", &b), 0);
    assert_true(b);
    assert_int_equal(fdt__parse_bool("Off", &b), 0);
    assert_false(b);
    assert_int_equal(fdt__parse_bool("maybe", &b), FDT_EINVAL);
    double d;
    assert_int_equal(fdt__parse_double("1.5", 0, 10, &d), 0);
    assert_true(d == 1.5);
    assert_int_equal(fdt__parse_double("nan", 0, 10, &d), FDT_EINVAL);
    assert_int_equal(fdt__parse_double("11", 0, 10, &d), FDT_EINVAL);
    assert_int_equal(fdt__parse_double("", 0, 10, &d), FDT_EINVAL);
    assert_int_equal(fdt__parse_double(NULL, 0, 10, &d), FDT_EINVAL);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(fdt_strerror(0), "success");
    assert_string_equal(fdt_strerror(FDT_ECONFIG), "configuration error");
    assert_non_null(fdt_strerror(-ENOENT));
    assert_string_equal(fdt_strerror(-123456), "unknown error");
    char small[4];
    assert_int_equal(fdt__strlcpy(small, "abcdef", sizeof(small)), FDT_ELIMIT);
    assert_string_equal(small, "abc");
    /* No room at all: nothing written. */
    small[0] = 'z';
    assert_int_equal(fdt__strlcpy(small, "abc", 0), FDT_ELIMIT);
    assert_int_equal(small[0], 'z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_long),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_bool_double),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

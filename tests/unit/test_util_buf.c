#include "fdt_config.h"

#include "util/buf.h"
#include "util/util.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <string.h>

static void test_append_consume(void **state)
{
    (void)state;
    struct fdt_buf b;
    fdt__buf_init(&b, 1000);
    for (int i = 0; i < 100; i++)
        assert_int_equal(fdt__buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 1000);
    /* Full: nothing more fits, and nothing is half-appended. */
    assert_int_equal(fdt__buf_append(&b, "x", 1), FDT_ELIMIT);
    assert_int_equal(b.len, 1000);
    fdt__buf_consume(&b, 995);
    assert_memory_equal(fdt__buf_head(&b), "56789", 5);
    /* Room is reclaimed by moving the live bytes to the front. */
    assert_int_equal(fdt__buf_append(&b, "abcdefghij", 10), 0);
    assert_memory_equal(fdt__buf_head(&b), "56789abcdefghij", 15);
    fdt__buf_consume(&b, 15);
    assert_int_equal(b.len, 0);
    fdt__buf_shrink(&b, 16);
    assert_null(b.data);
    fdt__buf_deinit(&b);
}

static void test_reserve_commit(void **state)
{
    (void)state;
    struct fdt_buf b;
    fdt__buf_init(&b, 300);
    size_t room;
    int rc;
    char *p = fdt__buf_reserve(&b, 1000, &room, &rc);
    assert_non_null(p);
    assert_int_equal(rc, 0);
    assert_true(room <= 300 && room > 0);
    memset(p, 'a', room);
    fdt__buf_commit(&b, room);
    if (b.len == 300) {
        assert_null(fdt__buf_reserve(&b, 1, &room, &rc));
        assert_int_equal(rc, FDT_ELIMIT);
    }
    fdt__buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_consume),
        cmocka_unit_test(test_reserve_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

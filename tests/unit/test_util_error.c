#include "fdt_config.h"

#include "util/util.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <errno.h>
#include <fcntl.h>
#include <fdt/fdt.h>
#include <string.h>
#include <unistd.h>

/* The texts people read in logs and error answers: one per code of our own, the system's
 * text for an errno, "unknown error" for anything else. */
static void test_strerror(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *text;
    } cases[] = {
        {0, "success"},
        {FDT_ECONFIG, "configuration error"},
        {FDT_EPROTO, "protocol error"},
        {FDT_ELIMIT, "limit reached"},
        {FDT_ETXNSTATE, "operation not valid in this transaction state"},
        {FDT_EAPP, "application failed"},
        {FDT_ERANDOM, "random source failed"},
        {FDT_EOUTCOME, "outcome unknown"},
        {FDT_ERETRY, "conflict, try again"},
        {FDT_EDB, "database error"},
        {FDT_EDOWN, "database unavailable"},
        {FDT_ENOENT, "No such file or directory"},
        {FDT_EINVAL, "Invalid argument"},
        {FDT_EBASE - 8, "unknown error"},
        {-9999, "unknown error"},
        {1, "unknown error"},
    };
    for (size_t i = 0; i < FDT_ARRAY_LEN(cases); i++)
        assert_string_equal(fdt_strerror(cases[i].code), cases[i].text);
}

/* fdt_error_set: one line whatever the message holds, and the code passed through. */
static void test_error_set(void **state)
{
    (void)state;
    struct fdt_error err;
    assert_int_equal(fdt_error_set(&err, FDT_EDB, "%s", "ERROR: x\nDETAIL:\ty\r\n \n"), FDT_EDB);
    assert_int_equal(err.code, FDT_EDB);
    assert_string_equal(err.msg, "ERROR: x DETAIL: y");
    assert_int_equal(fdt_error_set(NULL, FDT_ECONFIG, "ignored"), FDT_ECONFIG);
}

/* The version the library reports is the one it was built as. */
static void test_version(void **state)
{
    (void)state;
    assert_string_equal(fdt_version(), FDT_VERSION);
}

/* A write that fails returns the error; it does not loop. */
static void test_write_all_error(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(fdt__write_all(fds[1], "abc", 3), 0);
    char buf[4] = {0};
    assert_int_equal(read(fds[0], buf, sizeof(buf)), 3);
    assert_string_equal(buf, "abc");
    fdt__close(fds[1]);
    fdt__close(fds[0]);
    /* The descriptor is closed now. */
    assert_int_equal(fdt__write_all(fds[1], "abc", 3), -EBADF);
}

/* O_NONBLOCK set and cleared; a closed descriptor is an error, not a crash. */
static void test_fd_nonblock(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(fdt__fd_nonblock(fds[0], true), 0);
    assert_true(fcntl(fds[0], F_GETFL) & O_NONBLOCK);
    assert_int_equal(fdt__fd_nonblock(fds[0], false), 0);
    assert_false(fcntl(fds[0], F_GETFL) & O_NONBLOCK);
    fdt__close(fds[0]);
    fdt__close(fds[1]);
    assert_int_equal(fdt__fd_nonblock(fds[0], true), -EBADF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),    cmocka_unit_test(test_error_set),
        cmocka_unit_test(test_version),     cmocka_unit_test(test_write_all_error),
        cmocka_unit_test(test_fd_nonblock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

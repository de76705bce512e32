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
#include <unistd.h>

/* fdt__fd_cloexec sets and clears FD_CLOEXEC (a binary upgrade hands its listening sockets
 * to the new master through exec with it cleared), and reports a bad descriptor. */
static void test_fd_cloexec(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fdt__fd_cloexec(p[0], true), 0);
    assert_true(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
    assert_int_equal(fdt__fd_cloexec(p[0], false), 0);
    assert_false(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
    close(p[0]);
    close(p[1]);
    assert_int_equal(fdt__fd_cloexec(p[0], true), -EBADF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_cloexec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

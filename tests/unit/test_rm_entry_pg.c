#include "fdt_config.h"

#include "txn/rm.h"
#include "txn/txn_gid.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <stdint.h>
#include <string.h>

/* The PostgreSQL driver's entry point refuses a host it was not built for (no host, another
 * ABI version, a host structure smaller than its own), as a module loaded by another
 * fdtserver must; and the GID helpers' base64url refuses a buffer too small and an
 * impossible length. No server needed. */
static void test_entry_refuses_other_hosts(void **state)
{
    (void)state;
    assert_null(fdt_rm_driver_v1(NULL));
    struct fdt_rm_host other = fdt__rm_host;
    other.abi_version = FDT_RM_ABI_VERSION + 1;
    assert_null(fdt_rm_driver_v1(&other));
    other = fdt__rm_host;
    other.size = sizeof(other) - 1;
    assert_null(fdt_rm_driver_v1(&other));
    const struct fdt_rm_driver *drv = fdt_rm_driver_v1(&fdt__rm_host);
    assert_non_null(drv);
    assert_string_equal(drv->name, "postgresql");
}

static void test_b64url_limits(void **state)
{
    (void)state;
    const uint8_t in[3] = {1, 2, 3};
    char out[8];
    assert_int_equal(fdt__b64url_encode(out, 4, in, 3), -1); /* 4 characters and the NUL */
    assert_int_equal(fdt__b64url_encode(out, 5, in, 3), 4);
    assert_string_equal(out, "AQID");
    uint8_t dec[8];
    assert_int_equal(fdt__b64url_decode(dec, sizeof(dec), "AQIDB", 5), -1); /* 5 % 4 == 1 */
    assert_int_equal(fdt__b64url_decode(dec, sizeof(dec), "AQID", 4), 3);
    assert_memory_equal(dec, in, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_refuses_other_hosts),
        cmocka_unit_test(test_b64url_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

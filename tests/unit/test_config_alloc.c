/* [app] keys when memory runs out (tests/unit/alloc_fault.h): each copy a new key or a new
 * value needs fails in turn; the assignment is refused with "out of memory" and the
 * configuration keeps what it had. */
#include "alloc_fault.h"
#include "config/config.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <fdt/error.h>
#include <stdlib.h>
#include <string.h>

static void walk(struct fdt_cfg *cfg, const char *assignment, const char *key, const char *before,
                 const char *after)
{
    unsigned failures = 0;
    for (unsigned n = 1; n < 20; n++) {
        struct fdt_error err = {0};
        alloc_fault_arm(n, false);
        int rc = fdt__cfg_set(cfg, assignment, &err);
        bool hit = alloc_fault_hit();
        alloc_fault_disarm();
        if (!hit) {
            assert_int_equal(rc, 0);
            assert_string_equal(fdt__cfg_app_get(cfg, key), after);
            break;
        }
        failures++;
        assert_int_equal(rc, FDT_ENOMEM);
        assert_non_null(strstr(err.msg, "out of memory"));
        if (before)
            assert_string_equal(fdt__cfg_app_get(cfg, key), before);
        else
            assert_null(fdt__cfg_app_get(cfg, key));
    }
    assert_true(failures >= 1);
}

static void test_app_keys_out_of_memory(void **state)
{
    (void)state;
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    assert_non_null(cfg);
    fdt__cfg_init(cfg);
    walk(cfg, "app.colour=blue", "colour", NULL, "blue");     /* key and value copied */
    walk(cfg, "app.colour=green", "colour", "blue", "green"); /* only the value */
    fdt__cfg_deinit(cfg);
    free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_keys_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

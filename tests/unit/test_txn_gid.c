#include "fdt_config.h"

#include "txn/txn_gid.h"
#include "util/util.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <stdio.h>
#include <string.h>

static void test_round_trip(void **state)
{
    (void)state;
    struct fdt_xid x = {.format_id = 4660, .gtrid_len = 16, .bqual_len = 3};
    for (int i = 0; i < 16; i++)
        x.gtrid[i] = (uint8_t)(i * 37 + 250);
    memcpy(x.bqual, "\x00\xff\x10", 3);
    char gid[FDT_GID_MAX + 1];
    assert_int_equal(fdt__gid_format(gid, sizeof(gid), "host-a", "ledger", &x), 0);
    assert_true(strncmp(gid, "fdt1:host-a:ledger:4660:", 24) == 0);
    struct fdt_gid g;
    assert_int_equal(fdt__gid_parse(gid, &g), 0);
    assert_string_equal(g.node, "host-a");
    assert_string_equal(g.resource, "ledger");
    assert_true(fdt__xid_equal(&g.xid, &x));
    char prefix[80];
    assert_int_equal(fdt__gid_node_prefix(prefix, sizeof(prefix), "host-a"), 0);
    assert_true(strncmp(gid, prefix, strlen(prefix)) == 0);
}

static void test_every_part_length(void **state)
{
    (void)state;
    for (size_t gl = 1; gl <= FDT_XID_PART_MAX; gl++) {
        for (size_t bl = 0; bl <= FDT_XID_PART_MAX; bl += 7) {
            struct fdt_xid x = {.format_id = -1, .gtrid_len = gl, .bqual_len = bl};
            memset(x.gtrid, (int)gl, gl);
            memset(x.bqual, (int)bl + 1, bl);
            char gid[FDT_GID_MAX + 1];
            int rc = fdt__gid_format(gid, sizeof(gid), "n", "r", &x);
            size_t expect = strlen("fdt1:n:r:-1::") + (gl * 4 + 2) / 3 + (bl * 4 + 2) / 3;
            if (expect > FDT_GID_MAX) {
                /* Too long for PostgreSQL: refused, never cut. */
                assert_int_equal(rc, FDT_ELIMIT);
                continue;
            }
            assert_int_equal(rc, 0);
            assert_int_equal(strlen(gid), expect);
            struct fdt_gid g;
            assert_int_equal(fdt__gid_parse(gid, &g), 0);
            assert_true(fdt__xid_equal(&g.xid, &x));
        }
    }
}

static void test_refused(void **state)
{
    (void)state;
    struct fdt_xid x = {.format_id = 1, .gtrid_len = 1, .gtrid = {7}};
    char gid[FDT_GID_MAX + 1];
    assert_int_equal(fdt__gid_format(gid, sizeof(gid), "bad:node", "r", &x), FDT_EINVAL);
    assert_int_equal(fdt__gid_format(gid, sizeof(gid), "", "r", &x), FDT_EINVAL);
    assert_int_equal(fdt__gid_format(gid, sizeof(gid), "n", "r r", &x), FDT_EINVAL);
    x.gtrid_len = 0;
    assert_int_equal(fdt__gid_format(gid, sizeof(gid), "n", "r", &x), FDT_EINVAL);
    static const char *bad[] = {
        "",
        "fdt1:",
        "fdt2:n:r:1:Bw:",
        "fdt1:n:r:1:Bw",        /* missing bqual field */
        "fdt1:n:r:x:Bw:",       /* format not a number */
        "fdt1:n:r:1::",         /* empty gtrid */
        "fdt1:n:r:1:B*:",       /* not base64url */
        "fdt1:n:r:1:Bx:",       /* non-canonical: low bits set */
        "fdt1::r:1:Bw:",        /* empty node */
        "fdt1:n:r:01:Bw:",      /* non-canonical number */
        "fdt1:n:r:1:Bw::extra", /* too many fields */
        "fdt1:n:r:99999999999:Bw:",
        "fdt1:n:r r:1:Bw:",              /* a resource name no configuration takes */
        "fdt1:n!:r:1:Bw:",               /* the same for the node */
        "fdt1:n:r::Bw:",                 /* empty format */
        "fdt1:n:r:1234567890123456:Bw:", /* format longer than any int32 */
    };
    for (size_t i = 0; i < FDT_ARRAY_LEN(bad); i++) {
        struct fdt_gid g;
        if (fdt__gid_parse(bad[i], &g) != FDT_EINVAL)
            fail_msg("accepted %s", bad[i]);
    }
    struct fdt_gid g;
    assert_int_equal(fdt__gid_parse("fdt1:n:r:1:Bw:", &g), 0);
    assert_int_equal(g.xid.gtrid_len, 1);
    assert_int_equal(g.xid.gtrid[0], 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_part_length),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

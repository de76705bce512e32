/* The HTTP and JSON-RPC protocols' set-up when it cannot be done: an application without
 * the side a listener needs or of another ABI (the worker's start fails with that reason),
 * and every allocation of a server and of a connection's state failing in turn
 * (tests/unit/alloc_fault.h): a reason "out of memory", or the connection refused. */
#include "alloc_fault.h"
#include "config/config.h"
#include "conn/conn.h"
#include "http/http.h"
#include "jsonrpc/jsonrpc.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <fdt/app.h>
#include <fdt/error.h>
#include <fdt/jsonrpc.h>
#include <stdlib.h>
#include <string.h>

static struct fdt_cfg cfg;

static int setup(void **state)
{
    (void)state;
    fdt__cfg_init(&cfg);
    return 0;
}

static void test_http_listener_needs_an_http_side(void **state)
{
    (void)state;
    const struct fdt_app app = {
        .abi_version = FDT_APP_ABI_VERSION, .size = sizeof(struct fdt_app), .name = "no-http"};
    char reason[256] = "";
    assert_null(fdt__http_server_new(&app, &cfg, reason, sizeof reason));
    assert_non_null(strstr(reason, "the application has no HTTP side"));
}

static void test_http_server_out_of_memory(void **state)
{
    (void)state;
    char reason[256] = "";
    alloc_fault_arm(1, true);
    struct fdt__http_server *srv = fdt__http_metrics_server_new(&cfg, NULL, reason, sizeof reason);
    bool hit = alloc_fault_hit();
    alloc_fault_disarm();
    assert_true(hit);
    assert_null(srv);
    assert_string_equal(reason, "out of memory");
}

/* A connection whose session cannot be allocated is refused (closed at once). */
static void test_http_connection_out_of_memory(void **state)
{
    (void)state;
    char reason[256] = "";
    struct fdt__http_server *srv = fdt__http_metrics_server_new(&cfg, NULL, reason, sizeof reason);
    assert_non_null(srv);
    struct fdt_proto p;
    fdt__proto_http_init(&p, srv);
    struct fdt_conn c;
    memset(&c, 0, sizeof c);
    c.id = 7;
    c.proto = &p;
    alloc_fault_arm(1, true);
    int rc = p.open(&c);
    alloc_fault_disarm();
    assert_int_equal(rc, FDT_ENOMEM);
    assert_null(c.proto_data);
    p.close(&c); /* nothing to free */
    assert_int_equal(p.open(&c), 0);
    assert_non_null(c.proto_data);
    p.close(&c);
    assert_null(c.proto_data);
    fdt__http_server_free(srv);
}

static const struct fdt_jsonrpc_app old_rpc = {.abi_version = FDT_JSONRPC_ABI_VERSION + 1,
                                               .size = sizeof(struct fdt_jsonrpc_app)};

static void test_jsonrpc_app_of_another_abi(void **state)
{
    (void)state;
    const struct fdt_app app = {.abi_version = FDT_APP_ABI_VERSION,
                                .size = sizeof(struct fdt_app),
                                .name = "old",
                                .jsonrpc = &old_rpc};
    struct fdt_listen_cfg l;
    memset(&l, 0, sizeof l);
    char reason[256] = "";
    assert_null(fdt__jsonrpc_server_new(&app, &cfg, &l, reason, sizeof reason));
    assert_non_null(strstr(reason, "struct fdt_jsonrpc_app has abi_version"));
}

static void test_jsonrpc_server_and_connection_out_of_memory(void **state)
{
    (void)state;
    const struct fdt_app app = {
        .abi_version = FDT_APP_ABI_VERSION, .size = sizeof(struct fdt_app), .name = "none"};
    struct fdt_listen_cfg l;
    memset(&l, 0, sizeof l);
    char reason[256] = "";
    alloc_fault_arm(1, true);
    struct fdt__jsonrpc_server *srv =
        fdt__jsonrpc_server_new(&app, &cfg, &l, reason, sizeof reason);
    alloc_fault_disarm();
    assert_null(srv);
    assert_string_equal(reason, "out of memory");
    srv = fdt__jsonrpc_server_new(&app, &cfg, &l, reason, sizeof reason);
    assert_non_null(srv);
    struct fdt_proto p;
    fdt__proto_jsonrpc_init(&p, srv);
    struct fdt_conn c;
    memset(&c, 0, sizeof c);
    c.proto = &p;
    /* Each allocation of a connection's state (its record, its JSON document, its two
     * writers' first buffers) fails in turn: the connection is refused, with nothing left
     * allocated (ASan). */
    unsigned failures = 0;
    for (unsigned n = 1; n < 20; n++) {
        alloc_fault_arm(n, false);
        int rc = p.open(&c);
        bool hit = alloc_fault_hit();
        alloc_fault_disarm();
        if (!hit) {
            assert_int_equal(rc, 0);
            assert_non_null(c.proto_data);
            p.close(&c);
            break;
        }
        failures++;
        assert_true(rc < 0);
        assert_null(c.proto_data);
    }
    assert_int_equal(failures, 4);
    fdt__jsonrpc_server_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_listener_needs_an_http_side),
        cmocka_unit_test(test_http_server_out_of_memory),
        cmocka_unit_test(test_http_connection_out_of_memory),
        cmocka_unit_test(test_jsonrpc_app_of_another_abi),
        cmocka_unit_test(test_jsonrpc_server_and_connection_out_of_memory),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

/* The HTTP API's refusals and out-of-memory returns that no application of the e2e suite
 * takes: a reason over 256 bytes or one that cannot be copied, a header index past the
 * end, fdt_http_begin with a 1xx status, fdt_http_alloc of 0 or of more than half the
 * address space, a read of 0 bytes, a response head too big for the stack buffer whose heap
 * copy cannot be made (the request was left unanswered: now a 500); and the session's
 * edges: a request id header with characters it does not echo, OPTIONS * with a body and a
 * streaming view configured, an Allow list that names a method twice or does not fit its
 * buffer, an error message longer than the default body, an absolute https:// target, a
 * server refused for its descriptor or for memory, an access log line in a buffer of 1
 * byte. Linked with the allocation hook (tests/unit/alloc_fault.h). */
#include "alloc_fault.h"
#include "config/config.h"
#include "http/http.h"
#include "http_harness.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

static char g_result[512]; /* what the view found, checked by the test */

static int v_api(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    char reason[300];
    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    const char *name, *value;
    void *zero = fdt_http_alloc(req, 0);
    char buf[4];
    snprintf(g_result, sizeof(g_result),
             "reason=%d header_at=%d begin=%d alloc0=%d allocmax=%d read0=%ld",
             fdt_http_set_reason(req, reason), fdt_http_header_at(req, 1000, &name, &value),
             fdt_http_begin(req, 100, "text/plain"), zero != NULL,
             fdt_http_alloc(req, SIZE_MAX) != NULL, fdt_http_read_body(req, buf, 0));
    return fdt_http_respond(req, 200, "text/plain", "api", 3);
}

/* A reason copied into the arena until its block is full and the next one cannot be had. */
static int v_reason_nomem(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    char reason[257];
    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    alloc_fault_arm(1, true);
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = fdt_http_set_reason(req, reason);
    alloc_fault_disarm();
    snprintf(g_result, sizeof(g_result), "reason=%d", rc);
    return fdt_http_respond(req, 200, "text/plain", "reason", 6);
}

/* Headers that make the head larger than the 16 KiB stack buffer; its heap copy fails. */
static int v_big_head(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    char value[1001];
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof(name), "X-Big-%d", i);
        assert_int_equal(fdt_http_set_header(req, name, value), 0);
    }
    alloc_fault_arm(1, true);
    int rc = fdt_http_respond(req, 200, "text/plain", "big", 3);
    alloc_fault_disarm();
    snprintf(g_result, sizeof(g_result), "respond=%d", rc);
    return rc;
}

/* An error message longer than the framework's 512-byte body: cut. */
static int v_long_error(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    char msg[700];
    memset(msg, 'm', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    return fdt_http_error(req, 500, msg);
}

/* The same big head with no body: the body's write is of 0 bytes. */
static int v_big_head_no_body(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    char value[1001];
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof(name), "X-Big-%d", i);
        assert_int_equal(fdt_http_set_header(req, name, value), 0);
    }
    return fdt_http_respond(req, 204, NULL, NULL, 0);
}

static int v_plain(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    return fdt_http_respond(req, 200, "text/plain", "plain", 5);
}

#define LONG_METHOD(n) "LONG-METHOD-NAME-" #n
static const struct fdt_http_view api_views[] = {
    {.type = &t_root, .name = "api", .method = "GET", .fn = v_api},
    {.type = &t_root, .name = "reason", .method = "GET", .fn = v_reason_nomem},
    {.type = &t_root, .name = "big", .method = "GET", .fn = v_big_head},
    {.type = &t_root, .name = "big204", .method = "GET", .fn = v_big_head_no_body},
    {.type = &t_root, .name = "longerror", .method = "GET", .fn = v_long_error},
    {.type = &t_root,
     .name = "stream",
     .method = "POST",
     .fn = v_plain,
     .flags = FDT_HTTP_VIEW_STREAM_BODY},
    /* GET brings HEAD along: the HEAD view's method is then in the list already. */
    {.type = &t_root, .name = "twice", .method = "GET", .fn = v_plain},
    {.type = &t_root, .name = "twice", .method = "HEAD", .fn = v_plain},
    /* More methods than the 256 bytes of the Allow list hold. */
    {.type = &t_root, .name = "many", .method = LONG_METHOD(01), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(02), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(03), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(04), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(05), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(06), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(07), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(08), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(09), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(10), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(11), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(12), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(13), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(14), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(15), .fn = v_plain},
    {.type = &t_root, .name = "many", .method = LONG_METHOD(16), .fn = v_plain},
};

static const struct fdt_http_app api_app = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(struct fdt_http_app),
    .root_type = &t_root,
    .views = api_views,
    .n_views = sizeof(api_views) / sizeof(api_views[0]),
};

static const char *run(struct harness *h, const char *request)
{
    harness_init(h, 8192, 1 << 20);
    h->srv.app = &api_app;
    harness_send_str(h, request);
    return harness_out(h);
}

static void test_api_refusals(void **state)
{
    (void)state;
    struct harness h;
    const char *out = run(&h, "GET /api HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    char want[256];
    snprintf(want, sizeof(want), "reason=%d header_at=%d begin=%d alloc0=1 allocmax=0 read0=0",
             FDT_EINVAL, FDT_EINVAL, FDT_EINVAL);
    assert_string_equal(g_result, want);
    harness_deinit(&h);
}

static void test_reason_out_of_memory(void **state)
{
    (void)state;
    struct harness h;
    const char *out = run(&h, "GET /reason HTTP/1.1\r\nHost: a\r\n\r\n");
    char want[64];
    snprintf(want, sizeof(want), "reason=%d", FDT_ENOMEM);
    assert_string_equal(g_result, want);
    /* The reasons copied before are kept: the last one names the status. */
    assert_non_null(strstr(out, "HTTP/1.1 200 rrrr"));
    harness_deinit(&h);
}

static void test_big_head_out_of_memory(void **state)
{
    (void)state;
    struct harness h;
    const char *out = run(&h, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
    char want[64];
    snprintf(want, sizeof(want), "respond=%d", FDT_ENOMEM);
    assert_string_equal(g_result, want);
    /* Nothing went out; the framework answers for the view (it was nothing at all, and the
     * client waited for an answer that never came). */
    assert_int_equal(strncmp(out, "HTTP/1.1 500 ", 13), 0);
    assert_non_null(strstr(out, "HTTP/1.1 500 Internal Server Error\r\n"));
    assert_non_null(strstr(out, "The view failed."));
    harness_deinit(&h);
}

static void test_request_id_not_echoed(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, 8192, 1 << 20);
    h.srv.app = &api_app;
    h.srv.request_id_header = "X-Request-Id";
    harness_send_str(&h, "GET /twice HTTP/1.1\r\nHost: a\r\nX-Request-Id: a<b\r\n\r\n");
    const char *out = harness_out(&h);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    /* A made-up id is sent back instead of the client's. */
    assert_non_null(strstr(out, "X-Request-Id: "));
    assert_null(strstr(out, "a<b"));
    harness_deinit(&h);
}

static void test_options_star_with_streaming_views(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, 8192, 1 << 20);
    h.srv.app = &api_app;
    h.srv.stream_body = true;
    harness_send_str(&h, "OPTIONS * HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
    assert_non_null(strstr(harness_out(&h), "HTTP/1.1 204 No Content\r\n"));
    harness_deinit(&h);
}

static void test_allow_lists(void **state)
{
    (void)state;
    struct harness h;
    const char *out = run(&h, "POST /twice HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 405 "));
    assert_non_null(strstr(out, "Allow: GET, HEAD\r\n"));
    harness_deinit(&h);
    out = run(&h, "POST /many HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 405 "));
    /* As many as fit, whole. */
    const char *allow = strstr(out, "Allow: " LONG_METHOD(01) ", " LONG_METHOD(02));
    assert_non_null(allow);
    const char *eol = strstr(allow, "\r\n");
    assert_true(eol - allow - 7 < 256);
    assert_null(strstr(out, LONG_METHOD(16)));
    harness_deinit(&h);
}

static void test_long_error_message_is_cut(void **state)
{
    (void)state;
    struct harness h;
    const char *out = run(&h, "GET /longerror HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 500 Internal Server Error\r\n"));
    assert_non_null(strstr(out, "Content-Length: 511\r\n"));
    const char *body = strstr(out, "\r\n\r\n") + 4;
    assert_int_equal(strlen(body), 511);
    assert_int_equal(strncmp(body, "500 Internal Server Error\nmmm", 29), 0);
    harness_deinit(&h);
}

static void test_absolute_https_target(void **state)
{
    (void)state;
    struct harness h;
    const char *out = run(&h, "GET https://example.com/twice?x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "plain"));
    harness_deinit(&h);
}

static void test_big_head_without_body(void **state)
{
    (void)state;
    struct harness h;
    const char *out = run(&h, "GET /big204 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(strncmp(out, "HTTP/1.1 204 No Content\r\n", 25), 0);
    assert_non_null(strstr(out, "X-Big-19: vvv"));
    assert_int_equal(strcmp(out + strlen(out) - 4, "\r\n\r\n"), 0);
    harness_deinit(&h);
}

/* llhttp refuses these before the head is finished (http_parse.c keeps its own checks). */
static void test_control_bytes_in_the_target(void **state)
{
    (void)state;
    static const char *const reqs[] = {
        "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET  HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        struct harness h;
        assert_int_equal(strncmp(run(&h, reqs[i]), "HTTP/1.1 400 Bad Request\r\n", 26), 0);
        harness_deinit(&h);
    }
}

/* Header values of every length with each allocation failing in turn: among them the one
 * where the head buffer is full just before a value's terminating NUL. */
static void test_header_value_end_out_of_memory(void **state)
{
    (void)state;
    char req[1024], value[600];
    for (size_t len = 1; len < sizeof(value); len++) {
        memset(value, 'v', len);
        value[len] = '\0';
        snprintf(req, sizeof(req), "GET /twice HTTP/1.1\r\nHost: a\r\nX-V: %s\r\n\r\n", value);
        for (unsigned n = 1;; n++) {
            struct harness h;
            harness_init(&h, 8192, 1 << 20);
            h.srv.app = &api_app;
            size_t room;
            int rc;
            assert_non_null(fdt__buf_reserve(&h.out, 65536, &room, &rc));
            assert_non_null(fdt__buf_reserve(&h.in, 8192, &room, &rc));
            alloc_fault_arm(n, false);
            harness_send_str(&h, req);
            bool hit = alloc_fault_hit();
            alloc_fault_disarm();
            const char *out = harness_out(&h);
            if (!hit) {
                assert_int_equal(strncmp(out, "HTTP/1.1 200 ", 13), 0);
                harness_deinit(&h);
                break;
            }
            assert_int_equal(strncmp(out, "HTTP/1.1 503 ", 13), 0);
            harness_deinit(&h);
        }
    }
}

static void test_server_new_refusals(void **state)
{
    (void)state;
    static struct fdt_cfg cfg;
    fdt__cfg_init(&cfg);
    struct fdt_http_app bad = api_app;
    bad.root_type = NULL;
    const struct fdt_app app = {.abi_version = FDT_APP_ABI_VERSION,
                                .size = sizeof(struct fdt_app),
                                .name = "bad",
                                .http = &bad};
    char reason[256] = "";
    assert_null(fdt__http_server_new(&app, &cfg, reason, sizeof reason));
    assert_string_equal(reason, "the application's HTTP descriptor has no root_type");
    const struct fdt_app good = {.abi_version = FDT_APP_ABI_VERSION,
                                 .size = sizeof(struct fdt_app),
                                 .name = "good",
                                 .http = &api_app};
    alloc_fault_arm(1, true);
    struct fdt__http_server *srv = fdt__http_server_new(&good, &cfg, reason, sizeof reason);
    alloc_fault_disarm();
    assert_null(srv);
    assert_string_equal(reason, "out of memory");
}

static void test_access_log_line_in_one_byte(void **state)
{
    (void)state;
    char out[1] = {'x'};
    assert_int_equal(
        fdt__http_access_log_format(out, sizeof(out), "1.2.3.4", 0, "GET", "/", 11, 200, 0, 0), 0);
    assert_int_equal(out[0], 'x');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_refusals),
        cmocka_unit_test(test_reason_out_of_memory),
        cmocka_unit_test(test_big_head_out_of_memory),
        cmocka_unit_test(test_request_id_not_echoed),
        cmocka_unit_test(test_options_star_with_streaming_views),
        cmocka_unit_test(test_allow_lists),
        cmocka_unit_test(test_long_error_message_is_cut),
        cmocka_unit_test(test_absolute_https_target),
        cmocka_unit_test(test_server_new_refusals),
        cmocka_unit_test(test_big_head_without_body),
        cmocka_unit_test(test_control_bytes_in_the_target),
        cmocka_unit_test(test_header_value_end_out_of_memory),
        cmocka_unit_test(test_access_log_line_in_one_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

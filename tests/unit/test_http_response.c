#include "fdt_config.h"

#include "http/http_int.h"
#include "http_harness.h"
#include "util/util.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <string.h>

/* What the client reads: status lines and reason phrases, response heads too big for the
 * coalescing buffer, streams whose status forbids a body, errors raised after the head went
 * out, and the checks made on an application's HTTP descriptor when it is loaded. */

#define H_MAX_HEADER 1024
#define H_MAX_BODY   64

/* Every status the framework names has its own phrase; others are "Unknown". */
static void test_reason_phrases(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *reason;
    } cases[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {402, "Payment Required"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {412, "Precondition Failed"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {417, "Expectation Failed"},
        {418, "I'm a Teapot"},
        {422, "Unprocessable Content"},
        {425, "Too Early"},
        {426, "Upgrade Required"},
        {428, "Precondition Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
        {299, "Unknown"},
        {599, "Unknown"},
    };
    for (size_t i = 0; i < FDT_ARRAY_LEN(cases); i++) {
        assert_string_equal(fdt_http_reason(cases[i].status), cases[i].reason);
        if (cases[i].status < 200)
            continue;
        /* The same phrase is on the status line the client reads. */
        struct harness h;
        harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
        struct fdt_http_request *req = &h.s.req;
        req->keep_alive = true;
        req->version = 11;
        assert_int_equal(fdt_http_respond(req, cases[i].status, NULL, NULL, 0), 0);
        char line[80];
        snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", cases[i].status, cases[i].reason);
        const char *out = harness_out(&h);
        if (strncmp(out, line, strlen(line)) != 0)
            fail_msg("status %d: %s", cases[i].status, out);
        harness_deinit(&h);
    }
}

/* A head bigger than the coalescing buffer (16 KiB) is written whole, then the body. */
static void test_big_head(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    struct fdt_http_request *req = &h.s.req;
    req->keep_alive = true;
    req->version = 11;
    size_t vlen = 20000;
    char *value = malloc(vlen + 1);
    assert_non_null(value);
    memset(value, 'v', vlen);
    value[vlen] = '\0';
    assert_int_equal(fdt_http_set_header(req, "X-Big", value), 0);
    assert_int_equal(fdt_http_respond(req, 200, "text/plain", "body", 4), 0);
    const char *out = harness_out(&h);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    const char *hdr = strstr(out, "X-Big: ");
    assert_non_null(hdr);
    assert_int_equal(strspn(hdr + 7, "v"), vlen);
    const char *body = strstr(out, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, "body");
    free(value);
    harness_deinit(&h);
}

/* A stream with status 204 or 304 has no body: chunks are accepted and dropped, and the end
 * writes no terminating chunk. */
static void test_stream_without_body(void **state)
{
    (void)state;
    static const int statuses[] = {204, 304};
    for (size_t i = 0; i < FDT_ARRAY_LEN(statuses); i++) {
        struct harness h;
        harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
        struct fdt_http_request *req = &h.s.req;
        req->keep_alive = true;
        req->version = 11;
        assert_int_equal(fdt_http_begin(req, statuses[i], NULL), 0);
        size_t head_len = h.out.len;
        assert_int_equal(fdt_http_write_chunk(req, "data", 4), 0);
        assert_int_equal(fdt_http_write_chunk(req, "", 0), 0);
        assert_int_equal(fdt_http_end(req), 0);
        const char *out = harness_out(&h);
        assert_null(strstr(out, "Transfer-Encoding"));
        assert_null(strstr(out, "Content-Length"));
        assert_int_equal(h.out.len, head_len);
        harness_deinit(&h);
    }
}

/* An error after the head went out cannot become an error response: the client gets the
 * cut response and the connection closes. */
static void test_error_after_head(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    struct fdt_http_request *req = &h.s.req;
    req->keep_alive = true;
    req->version = 11;
    assert_int_equal(fdt_http_begin(req, 200, "text/plain"), 0);
    assert_int_equal(fdt_http_write_chunk(req, "part", 4), 0);
    size_t before = h.out.len;
    fdt__http_send_error(req, 500, "late", false);
    assert_true(req->close_after);
    assert_true(req->finished);
    assert_int_equal(h.out.len, before);
    assert_null(strstr(harness_out(&h), "500"));
    harness_deinit(&h);
}

/* An error view that starts a stream and returns without ending it: the framework ends
 * the stream for it, so the client reads a complete chunked body. */
static void stream_error_view(struct fdt_http_request *req, int status, const char *message)
{
    (void)message;
    fdt_http_begin(req, status, "text/plain");
    fdt_http_write_chunk(req, "oops", 4);
}

static void test_error_view_stream(void **state)
{
    (void)state;
    struct fdt_http_app app = t_app;
    app.error_view = stream_error_view;
    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    h.srv.app = &app;
    struct fdt_http_request *req = &h.s.req;
    req->keep_alive = true;
    req->version = 11;
    fdt__http_send_error(req, 404, "no such thing", false);
    assert_true(req->finished);
    const char *out = harness_out(&h);
    assert_non_null(strstr(out, "HTTP/1.1 404 Not Found\r\n"));
    assert_non_null(strstr(out, "Transfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(out, "\r\n4\r\noops\r\n0\r\n\r\n"));
    harness_deinit(&h);
}

/* The descriptor checks made when an application is loaded: each names what is wrong. */
static int dummy_view(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)req;
    (void)ctx;
    return 0;
}

static void test_app_check(void **state)
{
    (void)state;
    char reason[256];
    assert_int_equal(fdt__http_app_check(&t_app, reason, sizeof(reason)), 0);

    struct fdt_http_app app = t_app;
    app.abi_version = 99;
    assert_int_equal(fdt__http_app_check(&app, reason, sizeof(reason)), FDT_EINVAL);
    assert_non_null(strstr(reason, "abi_version 99"));

    app = t_app;
    app.root_type = NULL;
    assert_int_equal(fdt__http_app_check(&app, reason, sizeof(reason)), FDT_EINVAL);
    assert_non_null(strstr(reason, "no root_type"));

    app = t_app;
    app.views = NULL;
    assert_int_equal(fdt__http_app_check(&app, reason, sizeof(reason)), FDT_EINVAL);
    assert_non_null(strstr(reason, "n_views but no views"));

    struct fdt_http_resource_type bad_type = t_root;
    bad_type.abi_version = 7;
    bad_type.name = NULL;
    app = t_app;
    app.root_type = &bad_type;
    assert_int_equal(fdt__http_app_check(&app, reason, sizeof(reason)), FDT_EINVAL);
    assert_string_equal(reason, "resource type (root): wrong abi_version or size");

    bad_type.name = "thing";
    struct fdt_http_view views[] = {
        {.type = &bad_type, .name = "v", .method = "GET", .fn = dummy_view},
    };
    app = t_app;
    app.views = views;
    app.n_views = 1;
    assert_int_equal(fdt__http_app_check(&app, reason, sizeof(reason)), FDT_EINVAL);
    assert_string_equal(reason, "view 0: resource type thing: wrong abi_version or size");

    views[0].type = NULL;
    views[0].fn = NULL;
    assert_int_equal(fdt__http_app_check(&app, reason, sizeof(reason)), FDT_EINVAL);
    assert_string_equal(reason, "view 0 (v) has no function");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_phrases),      cmocka_unit_test(test_big_head),
        cmocka_unit_test(test_stream_without_body), cmocka_unit_test(test_error_after_head),
        cmocka_unit_test(test_error_view_stream),   cmocka_unit_test(test_app_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The HTTP session when memory runs out (tests/unit/alloc_fault.h): each allocation a
 * request needs (the head buffer, the header table, the request arena, the body buffer)
 * fails in turn; the client gets a 503 "out of memory" answer, after which the connection
 * closes or (the request read whole) serves the next request; with no allocation failing,
 * the normal answer. */
#include "alloc_fault.h"
#include "http_harness.h"
#include "proc/proc.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

static const struct fdt_scoreboard *metrics_sb; /* set: the server is a metrics listener's */

/* Walk one request through every allocation; returns how many runs failed. */
static unsigned walk(const char *request, const char *ok_status, const char *ok_body)
{
    unsigned failures = 0;
    for (unsigned n = 1; n < 500; n++) {
        struct harness h;
        harness_init(&h, 8192, 1 << 20);
        h.srv.metrics_sb = metrics_sb;
        /* The harness's own buffers get their memory first: only the session's fail. */
        size_t room;
        int rc;
        assert_non_null(fdt__buf_reserve(&h.out, 65536, &room, &rc));
        assert_non_null(fdt__buf_reserve(&h.in, 8192, &room, &rc));
        alloc_fault_arm(n, false);
        harness_send_str(&h, request);
        bool hit = alloc_fault_hit();
        alloc_fault_disarm();
        const char *out = harness_out(&h);
        if (!hit) {
            assert_non_null(strstr(out, ok_status));
            assert_non_null(strstr(out, ok_body));
            harness_deinit(&h);
            break;
        }
        failures++;
        /* A resource the application's getitem could not make is its error: a 500
         * (include/fdt/http.h); every other allocation is the server's. */
        bool app = strncmp(out, "HTTP/1.1 500 ", 13) == 0 &&
                   (strstr(out, "The application failed to resolve the path.") ||
                    (metrics_sb && strstr(out, "The metrics could not be rendered.")));
        if (!app && (strncmp(out, "HTTP/1.1 503 ", 13) != 0 || !strstr(out, "out of memory"))) {
            fprintf(stderr, "allocation %u: %s\n", n, out);
            fail();
        }
        if (!h.closed) {
            /* the request was read whole: the connection serves the next one */
            harness_clear_out(&h);
            harness_send_str(&h, metrics_sb ? "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
                                            : "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
            out = harness_out(&h);
            assert_non_null(strstr(out, "HTTP/1.1 200 "));
            assert_non_null(strstr(out, metrics_sb ? "fdt_workers" : "root"));
        }
        harness_deinit(&h);
    }
    return failures;
}

static void test_get_every_allocation(void **state)
{
    (void)state;
    assert_true(
        walk("GET /x/y HTTP/1.1\r\nHost: a\r\nX-Test: 1\r\n\r\n", "HTTP/1.1 200 ", "/x/y") >= 2);
}

static void test_post_every_allocation(void **state)
{
    (void)state;
    assert_true(walk("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
                     "HTTP/1.1 200 ", "hello") >= 3);
}

static void test_chunked_post_every_allocation(void **state)
{
    (void)state;
    assert_true(walk("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                     "HTTP/1.1 200 ", "abcde") >= 3);
}

/* A body that fills its buffer exactly (256 bytes) needs more room for the NUL kept after
 * it when the request is complete. */
static void test_chunked_body_of_a_full_buffer(void **state)
{
    (void)state;
    char req[1024];
    char body[257];
    memset(body, 'b', 256);
    body[256] = '\0';
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
             "100\r\n%s\r\n0\r\n\r\n",
             body);
    assert_true(walk(req, "HTTP/1.1 200 ", body) >= 3);
}

/* A long path with many segments: traversal's own arrays need a block of their own. */
static void test_long_path(void **state)
{
    (void)state;
    char req[2048];
    size_t o = (size_t)snprintf(req, sizeof req, "GET ");
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(req + o, sizeof req - o, "/x");
    snprintf(req + o, sizeof req - o, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(walk(req, "HTTP/1.1 200 ", "/x/x/x/x/x") >= 3);
}

/* The metrics of a `protocol = metrics` listener: their buffer cannot grow, a 500. */
static void test_metrics_every_allocation(void **state)
{
    (void)state;
    struct fdt_scoreboard *sb = fdt__scoreboard_new();
    assert_non_null(sb);
    metrics_sb = sb;
    assert_true(walk("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 ",
                     "fdt_workers{state=\"ready\"} 0") >= 2);
    metrics_sb = NULL;
    fdt__scoreboard_free(sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_every_allocation),
        cmocka_unit_test(test_post_every_allocation),
        cmocka_unit_test(test_chunked_post_every_allocation),
        cmocka_unit_test(test_chunked_body_of_a_full_buffer),
        cmocka_unit_test(test_long_path),
        cmocka_unit_test(test_metrics_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

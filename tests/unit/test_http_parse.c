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

/* Request heads at the edges of what the parser glue keeps: trailers over the header
 * limit, a header with an empty value, a head of many tiny headers. What the client reads
 * is checked: the status, the reason in the body, and whether the connection closes. */

#define H_MAX_HEADER 1024
#define H_MAX_BODY   64

static char *run(const char *in, size_t len, int *closed)
{
    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    harness_send(&h, in, len);
    char *out = strdup(harness_out(&h));
    *closed = h.closed;
    harness_deinit(&h);
    return out;
}

/* Trailers count against max_header_size like the head: past it, 431 and a close. */
static void test_trailers_too_large(void **state)
{
    (void)state;
    char in[2048];
    int n = snprintf(in, sizeof(in),
                     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "2\r\nhi\r\n0\r\nX-Trailer: ");
    memset(in + n, 'v', 1100);
    n += 1100;
    n += snprintf(in + n, sizeof(in) - (size_t)n, "\r\n\r\n");
    int closed;
    char *out = run(in, (size_t)n, &closed);
    assert_non_null(strstr(out, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    assert_non_null(strstr(out, "The request trailers are too large."));
    assert_true(closed);
    free(out);

    /* Small trailers are read and dropped; the body is answered. */
    const char *ok = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "2\r\nhi\r\n0\r\nX-Trailer: t\r\n\r\n";
    out = run(ok, strlen(ok), &closed);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "\r\n\r\nhi"));
    assert_false(closed);
    free(out);
}

/* A header with an empty value is kept, with "" as its value; one with an empty name is
 * refused. */
static void test_empty_header_value(void **state)
{
    (void)state;
    const char *in = "GET /hdr HTTP/1.1\r\nHost: x\r\nX-Test:\r\n\r\n";
    int closed;
    char *out = run(in, strlen(in), &closed);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "\r\n\r\n[] 2 /hdr "));
    free(out);

    /* A header without a name: 400 saying so, and the connection closes. */
    in = "GET /hdr HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n";
    out = run(in, strlen(in), &closed);
    assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
    assert_non_null(strstr(out, "A header has an empty name."));
    assert_true(closed);
    free(out);
}

/* A head of the shortest headers there are ("a:" and CRLF, 4 bytes; an empty Host is allowed): as
 * many as fit in max_header_size are accepted (the header table, max_header_size / 4 + 1 entries,
 * never fills first), one more and the head is too large. */
static char *tiny_headers(size_t count, size_t *len)
{
    char *in = malloc(64 + 4 * count);
    assert_non_null(in);
    size_t n = (size_t)snprintf(in, 64, "GET / HTTP/1.1\r\nHost:\r\n");
    for (size_t i = 0; i < count; i++) {
        memcpy(in + n, "a:\r\n", 4);
        n += 4;
    }
    memcpy(in + n, "\r\n", 2);
    *len = n + 2;
    return in;
}

static void test_many_tiny_headers(void **state)
{
    (void)state;
    size_t fit = (H_MAX_HEADER - 23 - 2) / 4; /* request line and Host, final CRLF */
    size_t len;
    int closed;
    char *in = tiny_headers(fit, &len);
    char *out = run(in, len, &closed);
    if (!strstr(out, "HTTP/1.1 200 OK\r\n"))
        fail_msg("%zu headers: %s", fit, out);
    assert_false(closed);
    free(out);
    free(in);
    in = tiny_headers(fit + 1, &len);
    out = run(in, len, &closed);
    assert_non_null(strstr(out, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    assert_null(strstr(out, "too many headers"));
    assert_true(closed);
    free(out);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trailers_too_large),
        cmocka_unit_test(test_empty_header_value),
        cmocka_unit_test(test_many_tiny_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The session end to end, without sockets: bytes in, bytes out, and whether the
 * connection closes. Each case runs twice: all bytes at once, and one byte at a time (the
 * answer must not depend on how the client's bytes are cut). */

#define H_MAX_HEADER 1024
#define H_MAX_BODY   64

struct session_case {
    const char *name;
    const char *in;
    const char *expect[6]; /* substrings of the output, in this order */
    const char *absent;    /* must not appear in the output */
    int closed;
    int requests;
};

/* The output with every Date header's value blanked (it changes every second). */
static char *without_dates(const char *s)
{
    char *out = strdup(s);
    for (char *p = strstr(out, "\r\nDate: "); p; p = strstr(p + 1, "\r\nDate: "))
        memset(p + 8, 'D', 29);
    return out;
}

static char *run_case(const struct session_case *c, bool bytewise)
{
    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    size_t len = strlen(c->in);
    if (bytewise) {
        for (size_t i = 0; i < len; i++)
            harness_send(&h, c->in + i, 1);
    } else {
        harness_send(&h, c->in, len);
    }
    const char *out = harness_out(&h);
    size_t from = 0;
    for (int k = 0; k < 6 && c->expect[k]; k++) {
        const char *hit = strstr(out + from, c->expect[k]);
        if (!hit)
            fail_msg("%s (%s): expected \"%s\" in:\n%s", c->name, bytewise ? "bytewise" : "whole",
                     c->expect[k], out + from);
        from = (size_t)(hit - out) + strlen(c->expect[k]);
    }
    if (c->absent && strstr(out, c->absent))
        fail_msg("%s: unexpected \"%s\" in:\n%s", c->name, c->absent, out);
    if (h.closed != c->closed)
        fail_msg("%s (%s): closed=%d, expected %d\n%s", c->name, bytewise ? "bytewise" : "whole",
                 h.closed, c->closed, out);
    if (h.requests != c->requests)
        fail_msg("%s: %d requests answered, expected %d", c->name, h.requests, c->requests);
    /* Nothing stays buffered, also while a request is incomplete: the session copies what
     * it keeps (harness_send checks it after every send). */
    assert_int_equal(h.in.len, 0);
    char *copy = without_dates(out);
    harness_deinit(&h);
    return copy;
}

#define OK200 "HTTP/1.1 200 OK\r\n"

static const struct session_case cases[] = {
    {"simple GET",
     "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
     {OK200, "\r\nServer: fdtserver\r\n", "Content-Length: 4\r\n",
      "Content-Type: text/plain\r\n\r\nroot"},
     "Connection:",
     0,
     1},
    {"pipelined in order",
     "GET /sub/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /sub/2 HTTP/1.1\r\nHost: a\r\n\r\n"
     "GET /sub/3 HTTP/1.1\r\nHost: a\r\n\r\n",
     {"\r\n\r\n1", "\r\n\r\n2", "\r\n\r\n3"},
     NULL,
     0,
     3},
    {"1.0 closes by default",
     "GET / HTTP/1.0\r\n\r\n",
     {OK200, "Connection: close\r\n", "root"},
     NULL,
     1,
     1},
    {"1.0 keep-alive",
     "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
     {"Connection: keep-alive\r\n", "root", "Connection: close\r\n", "root"},
     NULL,
     1,
     2},
    {"Connection: close",
     "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n",
     {"Connection: close\r\n", "root"},
     NULL,
     1,
     1},
    {"HEAD",
     "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
     {OK200, "Content-Length: 4\r\n", "\r\n\r\n"},
     "root",
     0,
     1},
    {"POST Content-Length",
     "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
     {"Content-Length: 5\r\n", "\r\n\r\nhello"},
     NULL,
     0,
     1},
    {"POST chunked",
     "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n",
     {"Content-Length: 5\r\n", "\r\n\r\nabcde"},
     NULL,
     0,
     1},
    {"Expect 100-continue",
     "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
     {"HTTP/1.1 100 Continue\r\n\r\n", OK200, "\r\n\r\nhi"},
     NULL,
     0,
     1},
    {"Expect 100-continue, too large",
     "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 65\r\n\r\n",
     {"HTTP/1.1 413 Content Too Large\r\n", "Connection: close\r\n"},
     "100 Continue",
     1,
     1},
    {"Expect something else",
     "GET / HTTP/1.1\r\nHost: a\r\nExpect: tea\r\n\r\n",
     {"HTTP/1.1 417 Expectation Failed\r\n"},
     NULL,
     1,
     1},
    {"Content-Length too large",
     "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 65\r\n\r\n" /* no body sent */,
     {"HTTP/1.1 413 ", "Connection: close\r\n", "The request body is too large."},
     NULL,
     1,
     1},
    {"chunked too large",
     "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "40\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n1\r\nx\r\n",
     {"HTTP/1.1 413 "},
     NULL,
     1,
     1},
    {"CL and TE",
     "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: "
     "chunked\r\n\r\n0\r\n\r\n",
     {"HTTP/1.1 400 Bad Request\r\n", "Connection: close\r\n"},
     "HTTP/1.1 200",
     1,
     1},
    {"TE and CL",
     "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: "
     "3\r\n\r\n0\r\n\r\n",
     {"HTTP/1.1 400 Bad Request\r\n"},
     "HTTP/1.1 200",
     1,
     1},
    {"duplicate CL",
     "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
     {"HTTP/1.1 400 Bad Request\r\n"},
     "HTTP/1.1 200",
     1,
     1},
    {"bad CL",
     "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\nx",
     {"HTTP/1.1 400 Bad Request\r\n"},
     NULL,
     1,
     1},
    {"CL list",
     "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx",
     {"HTTP/1.1 400 Bad Request\r\n"},
     NULL,
     1,
     1},
    {"TE gzip",
     "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
     {"HTTP/1.1 501 Not Implemented\r\n"},
     NULL,
     1,
     1},
    {"TE gzip, chunked",
     "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
     {"HTTP/1.1 501 Not Implemented\r\n"},
     NULL,
     1,
     1},
    {"TE in two headers",
     "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
     "chunked\r\n\r\n0\r\n\r\n",
     {"HTTP/1.1 501 Not Implemented\r\n"},
     NULL,
     1,
     1},
    {"TE chunked twice",
     "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
     {"HTTP/1.1 400 Bad Request\r\n"},
     NULL,
     1,
     1},
    /* Empty list elements and spaces around codings are skipped (RFC 9110 5.6.1). */
    {"TE with empty elements",
     "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\nTransfer-Encoding: , "
     "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
     {"HTTP/1.1 200 OK\r\n", "\r\n\r\nabc"},
     NULL,
     0,
     1},
    {"TE chunked in two headers",
     "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
     "chunked\r\n\r\n0\r\n\r\n",
     {"HTTP/1.1 400 Bad Request\r\n", "The Transfer-Encoding header is invalid."},
     NULL,
     1,
     1},
    {"TE chunked with spaces, twice",
     "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked \t, \r\nTransfer-Encoding: "
     "chunked\r\n\r\n0\r\n\r\n",
     {"HTTP/1.1 400 Bad Request\r\n", "The Transfer-Encoding header is invalid."},
     NULL,
     1,
     1},
    {"bad chunk size",
     "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     {"HTTP/1.1 400 Bad Request\r\n"},
     NULL,
     1,
     1},
    {"malformed request line",
     "GET/ HTTP/1.1\r\n\r\n",
     {"HTTP/1.1 400 Bad Request\r\n"},
     NULL,
     1,
     1},
    {"lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", {"HTTP/1.1 400 "}, NULL, 1, 1},
    {"space in header name",
     "GET / HTTP/1.1\r\nHost: a\r\nX Y: 1\r\n\r\n",
     {"HTTP/1.1 400 "},
     NULL,
     1,
     1},
    {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", {"HTTP/1.1 400 "}, NULL, 1, 1},
    {"bare LF", "GET / HTTP/1.1\nHost: a\n\n", {"HTTP/1.1 400 "}, NULL, 1, 1},
    {"no Host in 1.1", "GET / HTTP/1.1\r\n\r\n", {"HTTP/1.1 400 ", "Host"}, NULL, 1, 1},
    {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", {"HTTP/1.1 400 "}, NULL, 1, 1},
    {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", {"HTTP/1.1 505 "}, NULL, 1, 1},
    {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {"HTTP/1.1 505 "}, NULL, 1, 1},
    /* Issue 14: a malformed request line is 400; 505 is for a well-formed version only. */
    {"junk after the version",
     "GET / HTTP/1.1 junk\r\nHost: a\r\n\r\n",
     {"HTTP/1.1 400 "},
     NULL,
     1,
     1},
    {"junk after HTTP/2.0", "GET / HTTP/2.0 x\r\nHost: a\r\n\r\n", {"HTTP/1.1 400 "}, NULL, 1, 1},
    {"letter as minor version", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", {"HTTP/1.1 400 "}, NULL, 1, 1},
    {"no dot in the version", "GET / HTTP/11\r\nHost: a\r\n\r\n", {"HTTP/1.1 400 "}, NULL, 1, 1},
    {"two-digit major", "GET / HTTP/10.1\r\nHost: a\r\n\r\n", {"HTTP/1.1 400 "}, NULL, 1, 1},
    {"HTTP/3.0", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", {"HTTP/1.1 505 "}, NULL, 1, 1},
    {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", {"HTTP/1.1 505 "}, NULL, 1, 1},
    {"HTTP/1.2 after a good request",
     "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.2\r\nHost: a\r\n\r\n",
     {OK200, "HTTP/1.1 505 "},
     NULL,
     1,
     2},
    {"404 keeps the connection",
     "GET /nope HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
     {"HTTP/1.1 404 Not Found\r\n", OK200, "root"},
     "Connection: close",
     0,
     2},
    {"405 with Allow",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
     {"HTTP/1.1 405 Method Not Allowed\r\n", "Allow: GET, HEAD\r\n"},
     NULL,
     0,
     1},
    {"405 on a node view",
     "GET /x/edit HTTP/1.1\r\nHost: a\r\n\r\n",
     {"HTTP/1.1 405 ", "Allow: PUT, DELETE\r\n"},
     NULL,
     0,
     1},
    {"PUT on a node view",
     "PUT /x/edit HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
     {"HTTP/1.1 204 No Content\r\n"},
     "Content-Length",
     0,
     1},
    {"traversal", "GET /x/y HTTP/1.1\r\nHost: a\r\n\r\n", {OK200, "\r\n\r\n/x/y/"}, NULL, 0, 1},
    {"traversal: escapes, dots, empty segments",
     "GET //x/./q/../%7a//a%20b/ HTTP/1.1\r\nHost: a\r\n\r\n",
     {OK200, "\r\n\r\n/x/z/a%20b/"},
     NULL,
     0,
     1},
    {"traversal: dotdot above the root",
     "GET /x/../.. HTTP/1.1\r\nHost: a\r\n\r\n",
     {"HTTP/1.1 400 "},
     NULL,
     0,
     1},
    {"traversal: encoded slash",
     "GET /x/a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n",
     {"HTTP/1.1 400 "},
     NULL,
     0,
     1},
    {"traversal: encoded NUL",
     "GET /x%00 HTTP/1.1\r\nHost: a\r\n\r\n",
     {"HTTP/1.1 400 "},
     NULL,
     0,
     1},
    {"traversal: bad escape",
     "GET /x%zz HTTP/1.1\r\nHost: a\r\n\r\n",
     {"HTTP/1.1 400 "},
     NULL,
     0,
     1},
    {"traversal: missing key",
     "GET /x/long/more HTTP/1.1\r\nHost: a\r\n\r\n",
     {"HTTP/1.1 404 "},
     NULL,
     0,
     1},
    {"@@ names a view", "GET /x/@@edit HTTP/1.1\r\nHost: a\r\n\r\n", {"HTTP/1.1 405 "}, NULL, 0, 1},
    {"subpath", "GET /sub/a/b%20c?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", {"\r\n\r\na|b c"}, NULL, 0, 1},
    {"no subpath for others",
     "POST /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
     {"HTTP/1.1 404 "},
     NULL,
     0,
     1},
    {"view for any type and method",
     "PATCH /x/any HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
     {"HTTP/1.1 204 "},
     NULL,
     0,
     1},
    {"getitem fails", "GET /fail HTTP/1.1\r\nHost: a\r\n\r\n", {"HTTP/1.1 500 "}, NULL, 0, 1},
    {"view answers nothing",
     "GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n",
     {"HTTP/1.1 500 "},
     NULL,
     0,
     1},
    {"view fails", "GET /boom HTTP/1.1\r\nHost: a\r\n\r\n", {"HTTP/1.1 500 "}, NULL, 0, 1},
    {"fdt_http_error",
     "GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n",
     {"HTTP/1.1 418 I'm a Teapot\r\n", "I am a teapot."},
     NULL,
     0,
     1},
    {"headers and query",
     "GET /hdr?a=%20b HTTP/1.1\r\nHost: a\r\nX-TEST:  v 1 \r\n\r\n",
     {"\r\n\r\n[v 1] 2 /hdr a=%20b"},
     NULL,
     0,
     1},
    {"absolute form",
     "GET http://example.com/hdr?z HTTP/1.1\r\nHost: a\r\n\r\n",
     {"\r\n\r\n[none] 1 /hdr z"},
     NULL,
     0,
     1},
    {"bad target", "GET x HTTP/1.1\r\nHost: a\r\n\r\n", {"HTTP/1.1 400 "}, NULL, 1, 1},
    {"streamed",
     "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n",
     {"Transfer-Encoding: chunked\r\n", "\r\n\r\n2\r\nab\r\n2\r\ncd\r\n2\r\nef\r\n0\r\n\r\n"},
     "Content-Length",
     0,
     1},
    {"streamed to 1.0",
     "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
     {"Connection: close\r\n", "\r\n\r\nabcdef"},
     "chunked",
     1,
     1},
    {"streamed HEAD",
     "HEAD /stream HTTP/1.1\r\nHost: a\r\n\r\n",
     {"Transfer-Encoding: chunked\r\n"},
     "ab",
     0,
     1},
    {"upgrade is answered, then closed",
     "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nxx",
     {OK200, "Connection: close\r\n", "root"},
     NULL,
     1,
     1},
    {"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", {"HTTP/1.1 204 "}, NULL, 0, 1},
    {"* for GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", {"HTTP/1.1 400 "}, NULL, 1, 1},
    {"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", {OK200}, NULL, 0, 1},
    {"input after an error is ignored",
     "GET/ HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
     {"HTTP/1.1 400 "},
     "200 OK",
     1,
     1},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < FDT_ARRAY_LEN(cases); i++) {
        char *whole = run_case(&cases[i], false);
        char *bytewise = run_case(&cases[i], true);
        if (strcmp(whole, bytewise) != 0)
            fail_msg("%s: output differs when fed byte by byte:\n%s\n---\n%s", cases[i].name, whole,
                     bytewise);
        free(whole);
        free(bytewise);
    }
}

/* Request line and headers over max_header_size: 431, whether the bytes come at once or
 * one by one, and whether one header or many make the excess. */
static void test_header_limit(void **state)
{
    (void)state;
    char big[4096];
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %0*d\r\n\r\n", 1100, 0);
    char many[4096] = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (int i = 0; i < 200; i++)
        strcat(many, "X: 1\r\n");
    strcat(many, "\r\n");
    char longurl[4096] = "GET /";
    memset(longurl + 5, 'a', 1100);
    strcpy(longurl + 1105, " HTTP/1.1\r\nHost: a\r\n\r\n");
    const char *inputs[] = {big, many, longurl};
    for (size_t i = 0; i < FDT_ARRAY_LEN(inputs); i++) {
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            struct harness h;
            harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
            size_t len = strlen(inputs[i]);
            if (bytewise) {
                for (size_t k = 0; k < len; k++)
                    harness_send(&h, inputs[i] + k, 1);
            } else {
                harness_send(&h, inputs[i], len);
            }
            const char *out = harness_out(&h);
            static const char want[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n";
            if (strncmp(out, want, sizeof(want) - 1) != 0)
                fail_msg("input %zu bytewise=%d: %s", i, bytewise, out);
            assert_true(h.closed);
            harness_deinit(&h);
        }
    }
    /* Just under the limit is fine. */
    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    char fits[2048];
    int n = snprintf(fits, sizeof(fits), "GET / HTTP/1.1\r\nHost: a\r\nX: %0*d\r\n\r\n",
                     H_MAX_HEADER - 32, 0);
    assert_int_equal(n, H_MAX_HEADER);
    harness_send(&h, fits, (size_t)n);
    assert_non_null(strstr(harness_out(&h), OK200));
    harness_deinit(&h);
}

/* Deadlines: header_timeout from a request's first byte, body_timeout once the headers
 * are in, none while the view runs, keepalive_timeout between requests; the timeout sends
 * 408 only when a request was in progress. */
static void test_deadlines_and_timeout(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    int64_t now = fdt__now_ms();
    assert_true(h.deadline >= now + 9000 && h.deadline <= now + 10000);
    /* Idle timeout: closed quietly. */
    fdt__http_session_timeout(&h.s);
    assert_int_equal(h.out.len, 0);
    harness_deinit(&h);

    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    harness_send_str(&h, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab");
    now = fdt__now_ms();
    assert_true(h.deadline >= now + 29000 && h.deadline <= now + 30000);
    harness_send_str(&h, "cd");
    assert_non_null(strstr(harness_out(&h), "\r\n\r\nabcd"));
    now = fdt__now_ms();
    assert_true(h.deadline >= now + 59000 && h.deadline <= now + 60000);
    harness_clear_out(&h);
    harness_send_str(&h, "GET / HTTP/1.1\r\n");
    now = fdt__now_ms();
    assert_true(h.deadline >= now + 9000 && h.deadline <= now + 10000);
    fdt__http_session_timeout(&h.s);
    assert_non_null(strstr(harness_out(&h), "HTTP/1.1 408 Request Timeout\r\n"));
    assert_non_null(strstr(harness_out(&h), "Connection: close\r\n"));
    assert_true(h.closed);
    assert_int_equal(h.deadline, 0);
    harness_deinit(&h);
}

/* A draining worker answers the request in progress with Connection: close. */
static void test_draining(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    harness_send_str(&h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_null(strstr(harness_out(&h), "Connection"));
    h.draining = 1;
    harness_send_str(&h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_non_null(strstr(harness_out(&h), "Connection: close\r\n"));
    assert_true(h.closed);
    harness_deinit(&h);
}

/* Issue 14: the session consumes every byte it parses (no byte kept back in the
 * connection's input buffer to look busy) and says itself whether it is between requests,
 * which is what a draining worker asks before closing a connection. */
static void test_idle_between_requests(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "G", "ET / HTTP/1.1\r\nHo", "st: a\r\n", "Content-", "Length: 4\r\n\r\n", "ab", "c"};
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        struct harness h;
        harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
        assert_true(fdt__http_session_idle(&h.s));
        for (size_t i = 0; i < FDT_ARRAY_LEN(pieces); i++) {
            size_t len = strlen(pieces[i]);
            for (size_t k = 0; k < len; k += bytewise ? 1 : len)
                harness_send(&h, pieces[i] + k, bytewise ? 1 : len);
            if (h.in.len != 0)
                fail_msg("after \"%s\": %zu bytes left unconsumed", pieces[i], h.in.len);
            assert_false(fdt__http_session_idle(&h.s));
        }
        assert_int_equal(h.out.len, 0);
        harness_send_str(&h, "d");
        assert_non_null(strstr(harness_out(&h), "\r\n\r\n"));
        assert_true(fdt__http_session_idle(&h.s));
        assert_int_equal(h.in.len, 0);
        assert_false(h.closed);
        harness_deinit(&h);
    }
}

/* The application's error view renders the framework's errors, parse errors included. */
static void test_error_view(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *status;
        const char *json;
    } errs[] = {
        {"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", "404 Not Found", "{\"status\":404,"},
        {"DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", "405 ", "{\"status\":405,"},
        {"GET/ HTTP/1.1\r\n\r\n", "400 ", "{\"status\":400,"},
        {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99\r\n\r\n", "413 ",
         "{\"status\":413,"},
        {"GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n", "500 ", "{\"status\":500,"},
    };
    t_json_errors = 1;
    for (size_t i = 0; i < FDT_ARRAY_LEN(errs); i++) {
        struct harness h;
        harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
        harness_send_str(&h, errs[i].in);
        const char *out = harness_out(&h);
        if (!strstr(out, errs[i].status) || !strstr(out, "Content-Type: application/json\r\n") ||
            !strstr(out, errs[i].json))
            fail_msg("case %zu: %s", i, out);
        harness_deinit(&h);
    }
    t_json_errors = 0;
}

/* Responses: misuse is refused, headers are checked, the framework's headers are its own. */
static void test_response_api(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    struct fdt_http_request *req = &h.s.req;
    req->keep_alive = true;
    req->version = 11;
    assert_int_equal(fdt_http_set_header(req, "X-Ok", "fine"), 0);
    assert_int_equal(fdt_http_set_header(req, "X-Bad", "a\r\nb"), FDT_EINVAL);
    assert_int_equal(fdt_http_set_header(req, "Bad Name", "x"), FDT_EINVAL);
    assert_int_equal(fdt_http_set_header(req, "", "x"), FDT_EINVAL);
    assert_int_equal(fdt_http_set_header(req, "content-length", "1"), FDT_EINVAL);
    assert_int_equal(fdt_http_set_header(req, "Date", "x"), FDT_EINVAL);
    assert_int_equal(fdt_http_set_header(req, "Connection", "keep-alive"), FDT_EINVAL);
    assert_int_equal(fdt_http_respond(req, 99, NULL, NULL, 0), FDT_EINVAL);
    assert_int_equal(fdt_http_respond(req, 600, NULL, NULL, 0), FDT_EINVAL);
    assert_int_equal(fdt_http_respond(req, 200, "text/plain\r\nX: y", "", 0), FDT_EINVAL);
    assert_int_equal(fdt_http_write_chunk(req, "x", 1), FDT_EINVAL);
    assert_int_equal(fdt_http_end(req), FDT_EINVAL);
    assert_int_equal(fdt_http_set_header(req, "Connection", "close"), 0);
    assert_int_equal(fdt_http_set_reason(req, "Made\r\nX-Injected: 1"), FDT_EINVAL);
    assert_int_equal(fdt_http_set_reason(req, "Made\x7f"), FDT_EINVAL);
    assert_int_equal(fdt_http_set_reason(req, "Made it\tnow \xe9"), 0);
    assert_int_equal(fdt_http_respond(req, 201, "text/plain", "ok", 2), 0);
    assert_int_equal(fdt_http_set_reason(req, "Late"), FDT_EINVAL);
    assert_int_equal(fdt_http_respond(req, 200, NULL, NULL, 0), FDT_EINVAL);
    assert_int_equal(fdt_http_set_header(req, "X-Late", "x"), FDT_EINVAL);
    assert_int_equal(fdt_http_error(req, 404, "x"), FDT_EINVAL);
    const char *out = harness_out(&h);
    assert_non_null(strstr(out, "HTTP/1.1 201 Made it\tnow \xe9\r\n"));
    assert_null(strstr(out, "Injected"));
    assert_non_null(strstr(out, "X-Ok: fine\r\n"));
    assert_non_null(strstr(out, "Connection: close\r\n"));
    assert_null(strstr(out, "X-Bad"));
    harness_deinit(&h);

    /* A big body goes out whole, after the head. */
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    req = &h.s.req;
    req->keep_alive = true;
    req->version = 11;
    size_t n = 100000;
    char *body = malloc(n);
    memset(body, 'z', n);
    assert_int_equal(fdt_http_respond(req, 200, NULL, body, n), 0);
    out = harness_out(&h);
    assert_non_null(strstr(out, "Content-Length: 100000\r\n"));
    const char *b = strstr(out, "\r\n\r\n") + 4;
    assert_int_equal(h.out.len - (size_t)(b - out), n);
    free(body);
    harness_deinit(&h);
}

/* With views that stream their body, the session routes a request that has a body at its
 * head; the application's traversal still runs once per request when it fails there, or
 * when no view matches. */
static void test_route_early_traverses_once(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        const char *expect;
        int getitems;
    } rcases[] = {
        {"POST /fail HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", "HTTP/1.1 500 ", 1},
        {"POST /x/fail HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", "HTTP/1.1 500 ", 2},
        {"POST /x/edit HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", "HTTP/1.1 405 ", 2},
        {"PUT /x/edit HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", "HTTP/1.1 204 ", 2},
    };
    for (size_t i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
        struct harness h;
        harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
        h.srv.stream_body = true;
        t_getitem_calls = 0;
        harness_send_str(&h, rcases[i].req);
        const char *out = harness_out(&h);
        if (strncmp(out, rcases[i].expect, strlen(rcases[i].expect)) != 0)
            fail_msg("%s: expected \"%s\", got:\n%s", rcases[i].req, rcases[i].expect, out);
        if (t_getitem_calls != rcases[i].getitems)
            fail_msg("%s: getitem ran %d times, expected %d", rcases[i].req, t_getitem_calls,
                     rcases[i].getitems);
        harness_deinit(&h);
    }
}

/* A view with FDT_HTTP_VIEW_STREAM_BODY reads its body as it arrives (fdt_http_read_body):
 * from the rest of the input the session was given, then from the socket, never taking a
 * byte of the next request. */
struct stream_case {
    const char *name;
    const char *fed;    /* handed to the session (the head, maybe part of the body) */
    const char *sock;   /* still in the socket when the view reads */
    int sock_eof;       /* the client closed after sock */
    const char *expect; /* in the output */
    int closed;
    const char *left; /* what must be left in the socket (NULL: nothing asked) */
};

/* A streaming view that reads its body until it fails, then once more. */
static long twice_first, twice_second;

static int v_twice(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    char buf[16];
    long n;
    while ((n = fdt_http_read_body(req, buf, sizeof(buf))) > 0)
        ;
    twice_first = n;
    twice_second = fdt_http_read_body(req, buf, sizeof(buf));
    return n < 0 ? (int)n : fdt_http_respond(req, 200, "text/plain", "read", 4);
}

static const struct fdt_http_view twice_views[] = {
    {.type = &t_root,
     .name = "twice",
     .method = "POST",
     .fn = v_twice,
     .flags = FDT_HTTP_VIEW_STREAM_BODY},
};

static const struct fdt_http_app twice_app = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(struct fdt_http_app),
    .root_type = &t_root,
    .views = twice_views,
    .n_views = 1,
};

static void test_streamed_body(void **state)
{
    (void)state;
    static const struct stream_case scases[] = {
        {"length, all in the socket",
         "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n",
         "0123456789GET / HTTP/1.1\r\n", 0, "\r\n\r\n10:0123456789", 0, "GET / HTTP/1.1\r\n"},
        {"length, part fed", "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123",
         "456789", 0, "10:0123456789", 0, ""},
        {"chunked, pipelined request after it",
         "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
         "a\r\n0123456789\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 0, "13:abc0123456789", 0,
         "GET / HTTP/1.1\r\n"},
        {"chunked, over max_body_size",
         "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
         "40\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n1\r\nx\r\n", 0,
         "413 Content Too Large", 1, NULL},
        {"chunked, malformed",
         "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "zz\r\n", 0,
         "400 Bad Request", 1, NULL},
        {"stalls: body_timeout", "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n",
         "0123", 0, "408 Request Timeout", 1, NULL},
        {"closes mid-body", "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n",
         "0123", 1, "500 Internal Server Error", 1, NULL},
        {"unread, all there: kept",
         "POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", "0123456789GET", 0,
         "Keep-Alive", 0, "GET"},
        {"unread, still coming: closed",
         "POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", "0123", 0,
         "Connection: close\r\n", 1, NULL},
        {"100-continue on the first read",
         "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
         "hi", 0, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", 0, ""},
        {"run again: the body from its start",
         "POST /reread HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n",
         "6\r\nefghij\r\n0\r\n\r\n", 0, "10/10/1/1", 0, ""},
        {"run again: more than replay_max was read",
         "POST /reread HTTP/1.1\r\nHost: a\r\nContent-Length: 60\r\n\r\n",
         "0123456789012345678901234567890123456789012345678901234567890", 0, "60/0/0/0", 0, "0"},
        {"100-continue: none when unread",
         "POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
         "", 0, "HTTP/1.1 200 OK", 1, NULL},
    };
    for (size_t i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
        const struct stream_case *c = &scases[i];
        struct harness h;
        harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
        h.srv.stream_body = true;
        h.srv.keepalive_advertised_s = 4;
        fdt__buf_append(&h.sock, c->sock, strlen(c->sock));
        h.sock_eof = c->sock_eof;
        harness_send_str(&h, c->fed);
        const char *out = harness_out(&h);
        if (!strstr(out, c->expect))
            fail_msg("%s: expected \"%s\" in:\n%s", c->name, c->expect, out);
        if (strstr(c->name, "none when unread") && strstr(out, "100 Continue"))
            fail_msg("%s: 100 Continue sent:\n%s", c->name, out);
        if (h.closed != c->closed)
            fail_msg("%s: closed=%d, expected %d\n%s", c->name, h.closed, c->closed, out);
        if (c->left) {
            size_t n = strlen(c->left);
            if (h.sock.len != n || memcmp(fdt__buf_head(&h.sock), c->left, n) != 0)
                fail_msg("%s: %zu bytes left in the socket, expected \"%s\"", c->name, h.sock.len,
                         c->left);
        }
        harness_deinit(&h);
    }

    /* A view without the flag reads the body the framework read whole, the same way. */
    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    harness_send_str(&h,
                     "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789");
    assert_non_null(strstr(harness_out(&h), "10:0123456789"));
    assert_int_equal(h.closed, 0);
    harness_send_str(&h, "POST /reread HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nwxyz");
    assert_non_null(strstr(harness_out(&h), "4/4/1/1"));
    harness_deinit(&h);

    /* A connection that cannot be read from (its io has no read): the body stops at what
     * came with the head, the view's read fails, and reading again gives the same error. */
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    h.srv.stream_body = true;
    h.srv.app = &twice_app;
    struct fdt__http_io no_read = h_io;
    no_read.read = NULL;
    h.s.io = &no_read;
    twice_first = twice_second = 1;
    harness_send_str(&h, "POST /twice HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123");
    assert_int_equal(twice_first, FDT_ECLOSED);
    assert_int_equal(twice_second, FDT_ECLOSED);
    assert_non_null(strstr(harness_out(&h), "500 Internal Server Error"));
    assert_int_equal(h.closed, 1);
    harness_deinit(&h);

    /* The client is gone before "100 Continue" can be sent: the read fails, nothing is
     * answered. */
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    h.srv.stream_body = true;
    h.srv.app = &twice_app;
    h.write_limit = 1;
    fdt__buf_append(&h.sock, "hi", 2);
    twice_first = twice_second = 1;
    harness_send_str(
        &h, "POST /twice HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    assert_int_equal(twice_first, FDT_ECLOSED);
    assert_int_equal(twice_second, FDT_ECLOSED);
    assert_int_equal(h.out.len, 0);
    assert_int_equal(h.sock.len, 2); /* the body was never read */
    harness_deinit(&h);
}

/* fdt_http_respond_file: the harness has no sendfile, so the bytes are read in blocks (the
 * sendfile path is tested end to end, tests/e2e/test_40_python.py). */
static void test_respond_file(void **state)
{
    (void)state;
    char path[] = "/tmp/fdt-test-respond-file-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    size_t n = 40000;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)('a' + i % 26);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    struct fdt_http_request *req = &h.s.req;
    req->keep_alive = true;
    req->version = 11;
    assert_int_equal(fdt_http_respond_file(req, 200, "text/plain", -1, 0, 1), FDT_EINVAL);
    assert_int_equal(fdt_http_respond_file(req, 200, "text/plain", fd, 100, 30000), 0);
    const char *out = harness_out(&h);
    assert_non_null(strstr(out, "Content-Length: 30000\r\n"));
    const char *b = strstr(out, "\r\n\r\n") + 4;
    assert_int_equal(h.out.len - (size_t)(b - out), 30000);
    assert_memory_equal(b, data + 100, 30000);
    assert_false(req->close_after);
    harness_deinit(&h);

    /* The file is shorter than said: the response is cut and the connection closes. */
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    req = &h.s.req;
    req->keep_alive = true;
    req->version = 11;
    assert_int_equal(fdt_http_respond_file(req, 200, NULL, fd, 39000, 5000), FDT_EPROTO);
    assert_true(req->close_after);
    harness_deinit(&h);
    close(fd);
    free(data);
}

/* The request's accessors as a view sees them: GET /a/acc?x=1 reaches the view "acc" of
 * the node "a", whose parent is the root. */
static struct fdt_conn *acc_conn; /* what fdt_http_conn should return */

static int v_accessors(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    struct fdt_error err = {0};
    char out[512];
    size_t o = 0;
    o += (size_t)snprintf(out + o, sizeof(out) - o, "target=%s version=%d", fdt_http_target(req),
                          fdt_http_version(req));
    size_t nlen = 0;
    const char *name = fdt_http_resource_name(ctx, &nlen);
    o += (size_t)snprintf(out + o, sizeof(out) - o, " context=%.*s:%s", (int)nlen, name,
                          fdt_http_resource_type(ctx)->name);
    o += (size_t)snprintf(out + o, sizeof(out) - o, " context-is-ctx=%d parent-is-root=%d",
                          fdt_http_context(req) == ctx,
                          fdt_http_resource_parent(ctx) == fdt_http_root(req));
    o += (size_t)snprintf(out + o, sizeof(out) - o, " root-parent=%p conn-ok=%d",
                          (void *)fdt_http_resource_parent(fdt_http_root(req)),
                          fdt_http_conn(req) == acc_conn);
    if (!acc_conn) {
        /* No connection: no transaction can be begun for the request. */
        struct fdt_txn *t = fdt_http_txn(req, &err);
        o += (size_t)snprintf(out + o, sizeof(out) - o, " txn=%p (%s)", (void *)t, err.msg);
        return fdt_http_respond(req, 200, "text/plain", out, o);
    }
    /* With a connection, but once the response has started: too late for a transaction. */
    fdt_http_begin(req, 200, "text/plain");
    struct fdt_txn *t = fdt_http_txn(req, &err);
    o += (size_t)snprintf(out + o, sizeof(out) - o, " txn=%p (%s %d)", (void *)t, err.msg,
                          err.code == FDT_ETXNSTATE);
    fdt_http_write_chunk(req, out, o);
    return fdt_http_end(req);
}

static const struct fdt_http_view acc_views[] = {
    {.type = &t_node, .name = "acc", .method = "GET", .fn = v_accessors},
};

static const struct fdt_http_app acc_app = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(struct fdt_http_app),
    .root_type = &t_root,
    .views = acc_views,
    .n_views = 1,
};

static void test_request_accessors(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    h.srv.app = &acc_app;
    acc_conn = NULL;
    harness_send_str(&h, "GET /a/acc?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    const char *out = harness_out(&h);
    assert_non_null(strstr(out, "HTTP/1.1 200 "));
    assert_non_null(strstr(out, "target=/a/acc?x=1 version=11 context=a:node context-is-ctx=1 "
                                "parent-is-root=1 root-parent=(nil) conn-ok=1 txn=(nil) (the "
                                "request has no connection)"));
    harness_deinit(&h);

    /* A session on a connection (never used here but by address). */
    struct fdt_conn *fake = (struct fdt_conn *)&h; /* only compared, never dereferenced */
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    h.srv.app = &acc_app;
    h.s.conn = fake;
    acc_conn = fake;
    harness_send_str(&h, "GET /a/acc HTTP/1.1\r\nHost: h\r\n\r\n");
    out = harness_out(&h);
    assert_non_null(strstr(out, "HTTP/1.1 200 "));
    assert_non_null(strstr(out, "conn-ok=1 txn=(nil) (the response has already started 1)"));
    harness_deinit(&h);
}

/* fdt_http_respond_file when the client goes away: through sendfile (the connection's
 * io) and through the copy loop (no sendfile), the response is cut and the connection
 * closes after it. */
static int failing_sendfile(void *ctx, int fd, int64_t offset, size_t len)
{
    (void)ctx;
    (void)fd;
    (void)offset;
    (void)len;
    return FDT_ECLOSED;
}

static void test_respond_file_client_gone(void **state)
{
    (void)state;
    char path[] = "/tmp/fdt-test-respond-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    static char data[100000];
    memset(data, 'f', sizeof(data));
    assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));

    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    struct fdt__http_io io = h_io;
    io.sendfile = failing_sendfile;
    h.s.io = &io;
    struct fdt_http_request *req = &h.s.req;
    req->keep_alive = true;
    req->version = 11;
    assert_int_equal(fdt_http_respond_file(req, 200, "text/plain", fd, 0, 1000), FDT_ECLOSED);
    assert_true(req->close_after);
    assert_non_null(strstr(harness_out(&h), "Content-Length: 1000\r\n"));
    harness_deinit(&h);

    /* No sendfile: the head goes out, then a block of the file cannot be written. */
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    h.write_limit = 1000;
    req = &h.s.req;
    req->keep_alive = true;
    req->version = 11;
    assert_int_equal(fdt_http_respond_file(req, 200, "text/plain", fd, 0, sizeof(data)),
                     FDT_ECLOSED);
    assert_true(req->close_after);
    assert_non_null(strstr(harness_out(&h), "Content-Length: 100000\r\n"));
    assert_true(h.out.len < 1000);
    harness_deinit(&h);
    close(fd);
}

/* Nothing offered is nothing consumed; once the session has closed, whatever still comes
 * is dropped (consumed, never answered). */
static void test_feed_nothing_and_after_close(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, H_MAX_HEADER, H_MAX_BODY);
    assert_int_equal(fdt__http_session_feed(&h.s, "", 0), 0);
    harness_send_str(&h, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(harness_out(&h), "root"));
    assert_int_equal(h.closed, 1);
    size_t before = h.out.len;
    static const char more[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(fdt__http_session_feed(&h.s, more, sizeof(more) - 1), (long)sizeof(more) - 1);
    assert_int_equal(h.out.len, before);
    assert_int_equal(h.requests, 1);
    harness_deinit(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_header_limit),
        cmocka_unit_test(test_deadlines_and_timeout),
        cmocka_unit_test(test_draining),
        cmocka_unit_test(test_idle_between_requests),
        cmocka_unit_test(test_error_view),
        cmocka_unit_test(test_response_api),
        cmocka_unit_test(test_route_early_traverses_once),
        cmocka_unit_test(test_streamed_body),
        cmocka_unit_test(test_respond_file),
        cmocka_unit_test(test_request_accessors),
        cmocka_unit_test(test_feed_nothing_and_after_close),
        cmocka_unit_test(test_respond_file_client_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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
#include <sys/mman.h>
#include <unistd.h>

/* Path decoding, traversal, view lookup, resource URLs, dates and access-log lines: the
 * pure parts of the HTTP module. */

/* Put s against a PROT_NONE page, so that reading one byte past it faults. */
static char *guarded(const char *s, size_t len, void **map, size_t *map_len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page + 1;
    char *m = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    assert_int_equal(mprotect(m + (pages - 1) * page, page, PROT_NONE), 0);
    char *p = m + (pages - 1) * page - len;
    memcpy(p, s, len);
    *map = m;
    *map_len = pages * page;
    return p;
}

static void test_path_split(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        int rc;
        const char *joined; /* segments joined with '|' */
    } cases[] = {
        {"/", 0, ""},
        {"/a", 0, "a"},
        {"/a/b/c", 0, "a|b|c"},
        {"//a///b//", 0, "a|b"},
        {"/a/./b/.", 0, "a|b"},
        {"/a/b/../c", 0, "a|c"},
        {"/a/b/../../c", 0, "c"},
        {"/a/..", 0, ""},
        {"/..", FDT_EPROTO, NULL},
        {"/a/../..", FDT_EPROTO, NULL},
        {"/a/%2e%2E/b", 0, "b"},
        {"/%2e/a", 0, "a"},
        {"/...", 0, "..."},
        {"/a%20b/c%C3%A9", 0, "a b|c\xc3\xa9"},
        {"/a+b", 0, "a+b"},
        {"/%41%7a", 0, "Az"},
        {"/a%2Fb", FDT_EPROTO, NULL},
        {"/a%2fb", FDT_EPROTO, NULL},
        {"/a%00b", FDT_EPROTO, NULL},
        {"/a%", FDT_EPROTO, NULL},
        {"/a%4", FDT_EPROTO, NULL},
        {"/a%4g", FDT_EPROTO, NULL},
        {"/a%%41", FDT_EPROTO, NULL},
        {"/a\tb", FDT_EPROTO, NULL},
        {"/a\x7f", FDT_EPROTO, NULL},
        {"", FDT_EPROTO, NULL},
        {"a/b", FDT_EPROTO, NULL},
        {"/%0a", 0, "\n"},
    };
    for (size_t i = 0; i < FDT_ARRAY_LEN(cases); i++) {
        size_t len = strlen(cases[i].path);
        void *map;
        size_t map_len;
        char *path = guarded(cases[i].path, len, &map, &map_len);
        char out[256];
        const char *segs[64];
        size_t lens[64];
        size_t n = 99;
        int rc = fdt__http_path_split(path, len, out, segs, lens, 64, &n);
        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): rc %d, expected %d", i, cases[i].path, rc, cases[i].rc);
        if (rc == 0) {
            char joined[256] = "";
            for (size_t k = 0; k < n; k++) {
                assert_int_equal(strlen(segs[k]), lens[k]);
                if (k)
                    strcat(joined, "|");
                strcat(joined, segs[k]);
            }
            assert_string_equal(joined, cases[i].joined);
        }
        munmap(map, map_len);
    }
    /* More segments than room: FDT_ELIMIT, never an overflow. */
    char out[64];
    const char *segs[2];
    size_t lens[2];
    size_t n;
    assert_int_equal(fdt__http_path_split("/a/b/c", 6, out, segs, lens, 2, &n), FDT_ELIMIT);
}

static void test_segment_encode(void **state)
{
    (void)state;
    char out[64];
    size_t n = fdt__http_segment_encode("a b/c~d.e%", 10, out, sizeof(out));
    assert_int_equal(n, strlen("a%20b%2Fc~d.e%25"));
    assert_memory_equal(out, "a%20b%2Fc~d.e%25", n);
    /* Measuring with no room. */
    assert_int_equal(fdt__http_segment_encode("\xff\x01", 2, NULL, 0), 6);
}

/* A resource's URL leads back to it through traversal, whatever its names hold. */
static void test_resource_url_round_trip(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, 16384, 1024);
    struct fdt_http_request *req = &h.s.req;
    struct fdt_http_resource *root = fdt_http_resource_new(req, NULL, &t_root, "", 0, NULL);
    assert_non_null(root);
    char url[256];
    size_t n;
    assert_int_equal(fdt_http_resource_url(root, url, sizeof(url), &n), 0);
    assert_string_equal(url, "/");
    assert_int_equal(n, 1);
    static const char *const names[] = {"x y", "\xc3\xa9 ?", "% #", "a&b=c", "...", "~ok-._"};
    struct fdt_http_resource *r = root;
    for (size_t i = 0; i < FDT_ARRAY_LEN(names); i++)
        r = fdt_http_resource_new(req, r, &t_node, names[i], strlen(names[i]), NULL);
    assert_int_equal(fdt_http_resource_url(r, url, sizeof(url), &n), 0);
    assert_string_equal(url, "/x%20y/%C3%A9%20%3F/%25%20%23/a%26b%3Dc/.../~ok-._/");
    /* Too small: the length needed is still reported. */
    char small[8];
    size_t need;
    assert_int_equal(fdt_http_resource_url(r, small, sizeof(small), &need), FDT_ELIMIT);
    assert_int_equal(need, n);
    /* Decoding the URL gives the names back. */
    char out[256];
    const char *segs[16];
    size_t lens[16];
    size_t k;
    assert_int_equal(fdt__http_path_split(url, n, out, segs, lens, 16, &k), 0);
    assert_int_equal(k, FDT_ARRAY_LEN(names));
    for (size_t i = 0; i < k; i++)
        assert_string_equal(segs[i], names[i]);
    /* Names that cannot come back through traversal are refused. */
    static const char *const bad[] = {"", ".", "..", "a/b", "@@v"};
    for (size_t i = 0; i < FDT_ARRAY_LEN(bad); i++) {
        struct fdt_http_resource *b =
            fdt_http_resource_new(req, root, &t_node, bad[i], strlen(bad[i]), NULL);
        assert_int_equal(fdt_http_resource_url(b, url, sizeof(url), &n), FDT_EINVAL);
    }
    struct fdt_http_resource *nul = fdt_http_resource_new(req, root, &t_node, "a\0b", 3, NULL);
    assert_int_equal(fdt_http_resource_url(nul, url, sizeof(url), &n), FDT_EINVAL);
    /* A type with the wrong ABI version makes no resource. */
    struct fdt_http_resource_type old = t_node;
    old.abi_version = 0;
    assert_null(fdt_http_resource_new(req, root, &old, "a", 1, NULL));
    harness_deinit(&h);
}

static void test_view_find(void **state)
{
    (void)state;
    char allow[64];
    int st = 0;
    const struct fdt_http_view *v;
    v = fdt__http_view_find(&t_app, &t_root, "", "GET", false, allow, sizeof(allow), &st);
    assert_ptr_equal(v->fn, v_root);
    v = fdt__http_view_find(&t_app, &t_root, "", "HEAD", false, allow, sizeof(allow), &st);
    assert_ptr_equal(v->fn, v_root);
    v = fdt__http_view_find(&t_app, &t_root, "", "POST", false, allow, sizeof(allow), &st);
    assert_null(v);
    assert_int_equal(st, 405);
    assert_string_equal(allow, "GET, HEAD");
    v = fdt__http_view_find(&t_app, &t_node, "edit", "GET", false, allow, sizeof(allow), &st);
    assert_null(v);
    assert_int_equal(st, 405);
    assert_string_equal(allow, "PUT, DELETE");
    v = fdt__http_view_find(&t_app, &t_root, "nope", "GET", false, allow, sizeof(allow), &st);
    assert_null(v);
    assert_int_equal(st, 404);
    /* A subpath only for views that take one. */
    v = fdt__http_view_find(&t_app, &t_root, "sub", "GET", true, allow, sizeof(allow), &st);
    assert_ptr_equal(v->fn, v_sub);
    v = fdt__http_view_find(&t_app, &t_root, "echo", "POST", true, allow, sizeof(allow), &st);
    assert_null(v);
    assert_int_equal(st, 404);
    /* A view for any type and any method. */
    v = fdt__http_view_find(&t_app, &t_node, "any", "PATCH", false, allow, sizeof(allow), &st);
    assert_ptr_equal(v->fn, v_edit);
}

/* FDT_HTTP_VIEW_ANY_NAME: a catch-all, tried after the views whose name matches. */
static void test_view_find_any_name(void **state)
{
    (void)state;
    static const struct fdt_http_view views[] = {
        {.type = &t_root, .name = "", .method = "GET", .fn = v_root},
        {.type = NULL,
         .method = NULL,
         .fn = v_sub,
         .flags = FDT_HTTP_VIEW_ANY_NAME | FDT_HTTP_VIEW_SUBPATH},
    };
    struct fdt_http_app app = t_app;
    app.views = views;
    app.n_views = FDT_ARRAY_LEN(views);
    char allow[64];
    int st = 0;
    const struct fdt_http_view *v;
    v = fdt__http_view_find(&app, &t_root, "", "GET", false, allow, sizeof(allow), &st);
    assert_ptr_equal(v->fn, v_root);
    /* The named view has no POST: its (type, name) wins and answers 405. */
    v = fdt__http_view_find(&app, &t_root, "", "POST", false, allow, sizeof(allow), &st);
    assert_null(v);
    assert_int_equal(st, 405);
    v = fdt__http_view_find(&app, &t_root, "anything", "DELETE", true, allow, sizeof(allow), &st);
    assert_ptr_equal(v->fn, v_sub);
    v = fdt__http_view_find(&app, &t_node, "x", "GET", false, allow, sizeof(allow), &st);
    assert_ptr_equal(v->fn, v_sub);
}

static void test_app_check(void **state)
{
    (void)state;
    char reason[256];
    assert_int_equal(fdt__http_app_check(&t_app, reason, sizeof(reason)), 0);
    struct fdt_http_app bad = t_app;
    bad.abi_version = 99;
    assert_int_equal(fdt__http_app_check(&bad, reason, sizeof(reason)), FDT_EINVAL);
    assert_non_null(strstr(reason, "abi_version"));
    bad = t_app;
    bad.root_type = NULL;
    assert_int_equal(fdt__http_app_check(&bad, reason, sizeof(reason)), FDT_EINVAL);
    struct fdt_http_view views[1] = {{.type = &t_root, .name = "x"}};
    bad = t_app;
    bad.views = views;
    bad.n_views = 1;
    assert_int_equal(fdt__http_app_check(&bad, reason, sizeof(reason)), FDT_EINVAL);
}

static void test_date_and_log_line(void **state)
{
    (void)state;
    char date[30];
    fdt__http_date_format(784111777, date);
    assert_string_equal(date, "Sun, 06 Nov 1994 08:49:37 GMT");
    fdt__http_date_format(0, date);
    assert_string_equal(date, "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_int_equal(strlen(fdt__http_date_now()), 29);

    char line[256];
    size_t n = fdt__http_access_log_format(line, sizeof(line), "127.0.0.1", 784111777, "GET",
                                           "/a?b=1", 11, 200, 13, 152);
    assert_string_equal(line, "127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"GET /a?b=1 HTTP/1.1\" "
                              "200 13 152\n");
    assert_int_equal(n, strlen(line));
    /* Quotes, backslashes and control bytes are escaped; no body is "-"; no request line
     * (a request that never parsed) is "-". */
    fdt__http_access_log_format(line, sizeof(line), "::1", 0, "GET", "/\"x\\\n", 10, 404, 0, 7);
    assert_string_equal(line, "::1 - - [01/Jan/1970:00:00:00 +0000] \"GET /\\x22x\\x5c\\x0a "
                              "HTTP/1.0\" 404 - 7\n");
    fdt__http_access_log_format(line, sizeof(line), "::1", 0, "", "", 0, 400, 12, 3);
    assert_string_equal(line, "::1 - - [01/Jan/1970:00:00:00 +0000] \"-\" 400 12 3\n");
    /* A line that does not fit keeps its tail (status, bytes, time) and its newline. */
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char shortline[120];
    n = fdt__http_access_log_format(shortline, sizeof(shortline), "1.2.3.4", 0, "GET", big, 11, 200,
                                    1, 2);
    assert_true(n < sizeof(shortline));
    assert_int_equal(shortline[n - 1], '\n');
    assert_non_null(strstr(shortline, "\" 200 1 2\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_split),
        cmocka_unit_test(test_segment_encode),
        cmocka_unit_test(test_resource_url_round_trip),
        cmocka_unit_test(test_view_find),
        cmocka_unit_test(test_view_find_any_name),
        cmocka_unit_test(test_app_check),
        cmocka_unit_test(test_date_and_log_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "fdt_config.h"

#include "config/config.h"
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
#include <unistd.h>

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/fdt-test-cfg-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(fdt__write_all(fd, text, strlen(text)), 0);
    close(fd);
    return path;
}

static void test_full_file(void **state)
{
    (void)state;
    char *path = write_tmp("[server]\n"
                           "workers = 3\n"
                           "threads = 4\n"
                           "graceful_timeout = 2.5\n"
                           "max_input = 8k\n"
                           "log_level = debug\n"
                           "pid_file = /tmp/x.pid\n"
                           "[listen.main]\n"
                           "address = 127.0.0.1:8080\n"
                           "protocol = raw\n"
                           "backlog = 64\n"
                           "[listen.v6]\n"
                           "address = [::1]:8081\n"
                           "[app]\n"
                           "module = /x/app.so\n"
                           "version = 7\n"
                           "[resource.ledger]\n"
                           "driver = sqlite\n"
                           "path = /tmp/l.db\n");
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    struct fdt_error err = {0};
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_load_file(cfg, path, &err), 0);
    assert_int_equal(fdt__cfg_finish(cfg, &err), 0);
    assert_int_equal(cfg->workers, 3);
    assert_int_equal(cfg->threads, 4);
    assert_true(cfg->graceful_timeout == 2.5);
    assert_int_equal(cfg->max_input, 8192);
    assert_int_equal(cfg->n_listeners, 2);
    assert_string_equal(cfg->listeners[0].name, "main");
    assert_int_equal(cfg->listeners[0].protocol, FDT_PROTO_RAW);
    assert_int_equal(cfg->listeners[0].backlog, 64);
    assert_int_equal(cfg->listeners[1].protocol, FDT_PROTO_HTTP);
    assert_string_equal(cfg->app_module, "/x/app.so");
    assert_string_equal(fdt__cfg_app_get(cfg, "version"), "7");
    assert_null(fdt__cfg_app_get(cfg, "nope"));
    assert_int_equal(cfg->n_resources, 1);
    /* --set overrides the file. */
    assert_int_equal(fdt__cfg_set(cfg, "server.threads=9", &err), 0);
    assert_int_equal(cfg->threads, 9);
    assert_int_equal(fdt__cfg_set(cfg, "app.version=8", &err), 0);
    assert_string_equal(fdt__cfg_app_get(cfg, "version"), "8");
    fdt__cfg_deinit(cfg);
    free(cfg);
    unlink(path);
}

/* Each bad file must fail with the right line and a message naming the key. */
static void test_errors_name_line_and_key(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int line;
        const char *needle;
    } cases[] = {
        {"[server]\nworkers = 2\nbogus = 1\n", 3, "bogus"},
        {"[server]\nthreads = 0\n", 2, "threads"},
        {"[server]\nthreads = many\n", 2, "threads"},
        {"[listen.a]\naddress = nowhere\n", 2, "address"},
        {"[listen.a]\nprotocol = gopher\n", 2, "protocol"},
        {"[nosuch]\nx = 1\n", 2, "nosuch"},
        {"[server]\n\n\ngraceful_timeout = -1\n", 4, "graceful_timeout"},
        {"[resource.r]\ndriver = oracle\n", 2, "driver"},
        {"[server]\nthis line is not ini\n", 2, ""},
        {"[listen.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\naddress = :1\n", 2,
         "too long"},
    };
    for (size_t i = 0; i < FDT_ARRAY_LEN(cases); i++) {
        char *path = write_tmp(cases[i].text);
        struct fdt_cfg *cfg = malloc(sizeof(*cfg));
        struct fdt_error err = {0};
        fdt__cfg_init(cfg);
        assert_int_equal(fdt__cfg_load_file(cfg, path, &err), FDT_ECONFIG);
        assert_int_equal(err.line, cases[i].line);
        assert_non_null(err.file);
        assert_string_equal(err.file, path);
        assert_non_null(strstr(err.msg, cases[i].needle));
        fdt__cfg_deinit(cfg);
        free(cfg);
        unlink(path);
    }
}

static void test_missing_file_and_finish(void **state)
{
    (void)state;
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    struct fdt_error err = {0};
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_load_file(cfg, "/nonexistent/fdt.ini", &err), FDT_ECONFIG);
    assert_non_null(strstr(err.msg, "cannot open"));
    /* No listener, no app: finish refuses. */
    assert_int_equal(fdt__cfg_finish(cfg, &err), FDT_ECONFIG);
    assert_non_null(strstr(err.msg, "listener"));
    assert_int_equal(fdt__cfg_add_listen(cfg, "127.0.0.1:0,raw", &err), 0);
    assert_int_equal(fdt__cfg_finish(cfg, &err), FDT_ECONFIG);
    assert_non_null(strstr(err.msg, "application"));
    assert_int_equal(fdt__cfg_set(cfg, "app.module=/a.so", &err), 0);
    assert_int_equal(fdt__cfg_finish(cfg, &err), 0);
    assert_true(cfg->workers >= 1);
    assert_int_equal(fdt__cfg_add_listen(cfg, "unix:/tmp/x.sock,jsonrpc", &err), 0);
    assert_int_equal(cfg->listeners[1].protocol, FDT_PROTO_JSONRPC);
    assert_int_equal(fdt__cfg_add_listen(cfg, "1.2.3.4:99999", &err), FDT_ECONFIG);
    assert_int_equal(fdt__cfg_set(cfg, "noequals", &err), FDT_ECONFIG);
    assert_int_equal(fdt__cfg_set(cfg, "server.workers=500", &err), FDT_ECONFIG);
    fdt__cfg_deinit(cfg);
    free(cfg);
}

/* The HTTP limits of [server]: defaults, values, bad values, keepalive_timeout's default. */
static void test_http_limits(void **state)
{
    (void)state;
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    struct fdt_error err = {0};
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_add_listen(cfg, "127.0.0.1:1", &err), 0);
    assert_int_equal(fdt__cfg_set(cfg, "app.module=/x.so", &err), 0);
    assert_int_equal(fdt__cfg_set(cfg, "server.idle_timeout=7", &err), 0);
    assert_int_equal(fdt__cfg_finish(cfg, &err), 0);
    assert_int_equal(cfg->max_header_size, 16 * 1024);
    assert_int_equal(cfg->max_body_size, 1024 * 1024);
    assert_true(cfg->header_timeout == 10.0);
    assert_true(cfg->body_timeout == 30.0);
    assert_true(cfg->keepalive_timeout == 7.0); /* defaults to idle_timeout */
    assert_int_equal(fdt__cfg_set(cfg, "server.max_header_size=8k", &err), 0);
    assert_int_equal(fdt__cfg_set(cfg, "server.max_body_size=0", &err), 0);
    assert_int_equal(fdt__cfg_set(cfg, "server.header_timeout=0.5", &err), 0);
    assert_int_equal(fdt__cfg_set(cfg, "server.body_timeout=2", &err), 0);
    assert_int_equal(fdt__cfg_set(cfg, "server.keepalive_timeout=3", &err), 0);
    assert_int_equal(fdt__cfg_finish(cfg, &err), 0);
    assert_int_equal(cfg->max_header_size, 8192);
    assert_int_equal(cfg->max_body_size, 0);
    assert_true(cfg->header_timeout == 0.5);
    assert_true(cfg->body_timeout == 2.0);
    assert_true(cfg->keepalive_timeout == 3.0);
    static const char *bad[] = {
        "server.max_header_size=10", "server.max_header_size=2m", "server.max_body_size=2g",
        "server.header_timeout=0",   "server.body_timeout=-1",    "server.keepalive_timeout=x",
        "server.max_body_size=lots",
    };
    for (size_t i = 0; i < FDT_ARRAY_LEN(bad); i++) {
        assert_int_equal(fdt__cfg_set(cfg, bad[i], &err), FDT_ECONFIG);
        char key[64];
        snprintf(key, sizeof(key), "%s", strchr(bad[i], '.') + 1);
        *strchr(key, '=') = '\0';
        assert_non_null(strstr(err.msg, key));
    }
    fdt__cfg_deinit(cfg);
    free(cfg);
}

/* TCP keepalive of accepted connections: defaults, values, bounds, bad values. */
static void test_tcp_keepalive(void **state)
{
    (void)state;
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    struct fdt_error err = {0};
    fdt__cfg_init(cfg);
    assert_true(cfg->tcp_keepalive);
    assert_int_equal(cfg->tcp_keepidle, 60);
    assert_int_equal(cfg->tcp_keepintvl, 10);
    assert_int_equal(cfg->tcp_keepcnt, 6);
    assert_int_equal(fdt__cfg_set(cfg, "server.tcp_keepalive=no", &err), 0);
    assert_int_equal(fdt__cfg_set(cfg, "server.tcp_keepidle=7", &err), 0);
    assert_int_equal(fdt__cfg_set(cfg, "server.tcp_keepintvl=32767", &err), 0);
    assert_int_equal(fdt__cfg_set(cfg, "server.tcp_keepcnt=127", &err), 0);
    assert_false(cfg->tcp_keepalive);
    assert_int_equal(cfg->tcp_keepidle, 7);
    assert_int_equal(cfg->tcp_keepintvl, 32767);
    assert_int_equal(cfg->tcp_keepcnt, 127);
    static const char *bad[] = {
        "server.tcp_keepalive=maybe", "server.tcp_keepidle=0",   "server.tcp_keepidle=32768",
        "server.tcp_keepidle=1.5",    "server.tcp_keepintvl=-1", "server.tcp_keepcnt=0",
        "server.tcp_keepcnt=128",     "server.tcp_keepcnt=",
    };
    for (size_t i = 0; i < FDT_ARRAY_LEN(bad); i++) {
        assert_int_equal(fdt__cfg_set(cfg, bad[i], &err), FDT_ECONFIG);
        char key[64];
        snprintf(key, sizeof(key), "%s", strchr(bad[i], '.') + 1);
        *strchr(key, '=') = '\0';
        assert_non_null(strstr(err.msg, key));
    }
    /* A refused value leaves the previous one. */
    assert_int_equal(cfg->tcp_keepidle, 7);
    assert_int_equal(cfg->tcp_keepcnt, 127);
    fdt__cfg_deinit(cfg);
    free(cfg);
}

static void test_relative_paths(void **state)
{
    (void)state;
    char *path = write_tmp("[app]\nmodule = app.so\n[server]\npid_file = run/x.pid\n");
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    struct fdt_error err = {0};
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_load_file(cfg, path, &err), 0);
    /* Relative paths are anchored at the configuration file's directory. */
    assert_string_equal(cfg->app_module, "/tmp/app.so");
    assert_string_equal(cfg->pid_file, "/tmp/run/x.pid");
    fdt__cfg_deinit(cfg);
    free(cfg);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_errors_name_line_and_key),
        cmocka_unit_test(test_missing_file_and_finish),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_http_limits),
        cmocka_unit_test(test_tcp_keepalive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

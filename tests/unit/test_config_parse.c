#include "fdt_config.h"

#include "config/config.h"
#include "config/config_int.h"
#include "util/util.h"

#include <fdt/log.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
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
    assert_true(cfg->keepalive_timeout == 5.0); /* its own default, not idle_timeout's */
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

/* The section a row's key is tried in ([listen.t] and [resource.t] for the named ones). */
static const char *row_section(const struct fdt__cfg_key *k)
{
    switch (k->section) {
    case FDT__CFG_SERVER:
        return "server";
    case FDT__CFG_LISTEN:
        return "listen.t";
    case FDT__CFG_RESOURCE:
        return "resource.t";
    case FDT__CFG_APP:
        return "app";
    case FDT__CFG_PYTHON:
        return "python";
    }
    return "?";
}

/* The struct the row's offset points into; creates listener or resource "t" if needed. */
static void *row_base(struct fdt_cfg *cfg, const struct fdt__cfg_key *k)
{
    struct fdt_error err = {0};
    if (k->section == FDT__CFG_LISTEN) {
        if (cfg->n_listeners == 0)
            assert_int_equal(fdt__cfg_apply(cfg, "listen.t", "protocol", "http", &err), 0);
        return &cfg->listeners[0];
    }
    if (k->section == FDT__CFG_RESOURCE) {
        if (cfg->n_resources == 0)
            assert_int_equal(fdt__cfg_apply(cfg, "resource.t", "log", "no", &err), 0);
        return &cfg->resources[0];
    }
    return cfg;
}

/* One value to try on a row: accepted or refused. */
struct bound_case {
    char value[FDT_CFG_PATH_MAX + 16];
    bool ok;
};

static size_t add_case(struct bound_case *c, size_t n, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t add_case(struct bound_case *c, size_t n, bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c[n].value, sizeof(c[n].value), fmt, ap);
    va_end(ap);
    c[n].ok = ok;
    return n + 1;
}

static size_t add_text_case(struct bound_case *c, size_t n, bool ok, char first, size_t len)
{
    memset(c[n].value, 'a', len);
    c[n].value[0] = first;
    c[n].value[len] = '\0';
    c[n].ok = ok;
    return n + 1;
}

/* Values just inside and just outside the row's bounds, from the table itself. */
static size_t bound_cases(const struct fdt__cfg_key *k, struct bound_case *c)
{
    size_t n = 0;
    double step = k->min > 0.001 ? k->min / 2 : 0.0005;
    switch (k->type) {
    case FDT__CFG_INT:
        n = add_case(c, n, true, "%.0f", k->min);
        n = add_case(c, n, true, "%.0f", k->max);
        n = add_case(c, n, false, "%.0f", k->min - 1);
        n = add_case(c, n, false, "%.0f", k->max + 1);
        n = add_case(c, n, false, "%.0f.5", k->min);
        break;
    case FDT__CFG_DOUBLE:
        n = add_case(c, n, true, "%.17g", k->min);
        n = add_case(c, n, true, "%.17g", k->max);
        n = add_case(c, n, false, "%.17g", k->min - step);
        n = add_case(c, n, false, "%.17g", k->max + 0.0005);
        break;
    case FDT__CFG_SIZE:
        n = add_case(c, n, true, "%.0f", k->min);
        n = add_case(c, n, true, "%.0f", k->max);
        n = add_case(c, n, k->min == 0, "%.0f", k->min - (k->min > 0 ? 1 : 0));
        n = add_case(c, n, false, "%.0f", k->max + 1);
        n = add_case(c, n, false, "-1");
        break;
    case FDT__CFG_BOOL:
        n = add_case(c, n, true, "yes");
        n = add_case(c, n, true, "off");
        n = add_case(c, n, false, "maybe");
        break;
    case FDT__CFG_ENUM:
        for (const struct fdt__cfg_choice *ch = k->choices; ch->name; ch++)
            n = add_case(c, n, true, "%s", ch->name);
        break;
    case FDT__CFG_STRING:
        for (const struct fdt__cfg_choice *ch = k->choices; ch && ch->name; ch++)
            n = add_case(c, n, true, "%s", ch->name);
        if (!k->choices) {
            n = add_text_case(c, n, true, 'a', k->size - 1);
            n = add_text_case(c, n, false, 'a', k->size);
            n = add_case(c, n, k->min == 0, "%s", "");
        }
        break;
    case FDT__CFG_PATH:
        n = add_text_case(c, n, true, '/', k->size - 1);
        n = add_text_case(c, n, false, '/', k->size);
        break;
    case FDT__CFG_ADDRESS:
        n = add_case(c, n, true, "127.0.0.1:1");
        n = add_case(c, n, true, "[::1]:65535");
        n = add_case(c, n, true, "unix:/tmp/x.sock");
        n = add_case(c, n, false, "127.0.0.1:65536");
        n = add_case(c, n, false, "unix:");
        break;
    }
    bool free_text = (k->type == FDT__CFG_STRING && !k->choices) || k->type == FDT__CFG_PATH;
    n = add_case(c, n, free_text, "bogus");
    return n;
}

/* Every row refuses what is outside its bounds, names its key, and keeps its old value. */
static void test_bounds_from_table(void **state)
{
    (void)state;
    static struct bound_case cases[16];
    for (size_t i = 0; i < fdt__cfg_n_keys; i++) {
        const struct fdt__cfg_key *k = &fdt__cfg_keys[i];
        struct fdt_cfg *cfg = malloc(sizeof(*cfg));
        fdt__cfg_init(cfg);
        void *base = row_base(cfg, k);
        size_t n = bound_cases(k, cases);
        for (size_t j = 0; j < n; j++) {
            struct fdt_error err = {0};
            char before[FDT_CFG_PATH_MAX + 32], after[sizeof(before)];
            union fdt__cfg_value v;
            fdt__cfg_value_get(k, base, &v);
            fdt__cfg_value_format(k, &v, before, sizeof(before));
            int rc = fdt__cfg_apply(cfg, row_section(k), k->key, cases[j].value, &err);
            fdt__cfg_value_get(k, base, &v);
            fdt__cfg_value_format(k, &v, after, sizeof(after));
            if (cases[j].ok != (rc == 0))
                fail_msg("[%s] %s = '%.40s': rc %d (%s)", row_section(k), k->key, cases[j].value,
                         rc, err.msg);
            if (rc < 0) {
                assert_int_equal(rc, FDT_ECONFIG);
                assert_non_null(strstr(err.msg, k->key));
                assert_string_equal(before, after);
            }
        }
        fdt__cfg_deinit(cfg);
        free(cfg);
    }
}

/* The rows themselves: field sizes fit the types, keys are unique, defaults are in range. */
static void test_table_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < fdt__cfg_n_keys; i++) {
        const struct fdt__cfg_key *k = &fdt__cfg_keys[i];
        assert_non_null(k->doc);
        assert_true(fdt__cfg_key_find(k->section, k->key) == k);
        assert_true(k->zero == NULL || k->min == 0);
        switch (k->type) {
        case FDT__CFG_INT:
        case FDT__CFG_ENUM:
            assert_int_equal(k->size, sizeof(int));
            break;
        case FDT__CFG_DOUBLE:
            assert_int_equal(k->size, sizeof(double));
            break;
        case FDT__CFG_SIZE:
            assert_int_equal(k->size, sizeof(size_t));
            break;
        case FDT__CFG_BOOL:
            assert_int_equal(k->size, sizeof(bool));
            break;
        default:
            assert_true(k->size > 1);
        }
        assert_true(k->type != FDT__CFG_ENUM || k->choices);
        double d = k->type == FDT__CFG_DOUBLE ? k->def.d
                   : k->type == FDT__CFG_SIZE ? (double)k->def.z
                                              : (double)k->def.i;
        bool numeric =
            k->type == FDT__CFG_INT || k->type == FDT__CFG_DOUBLE || k->type == FDT__CFG_SIZE;
        if (numeric)
            assert_true(d >= k->min && d <= k->max);
    }
}

/* A fresh configuration, and a new listener or resource, hold the table's defaults. */
static void test_defaults_equal_table(void **state)
{
    (void)state;
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    fdt__cfg_init(cfg);
    for (size_t i = 0; i < fdt__cfg_n_keys; i++) {
        const struct fdt__cfg_key *k = &fdt__cfg_keys[i];
        void *base = row_base(cfg, k);
        union fdt__cfg_value v;
        fdt__cfg_value_get(k, base, &v);
        /* row_base made listener t with protocol = http and resource t with log = no, both
         * their defaults. */
        if (!fdt__cfg_value_equal(k, &v, &k->def))
            fail_msg("[%s] %s does not start at its default", row_section(k), k->key);
    }
    /* The defaults other documents and tests rely on. */
    assert_int_equal(cfg->workers, 0);
    assert_int_equal(cfg->threads, 8);
    assert_true(cfg->graceful_timeout == 30.0);
    assert_true(cfg->idle_timeout == 60.0);
    assert_int_equal(cfg->max_input, 64 * 1024);
    assert_int_equal(cfg->max_output, 8 * 1024 * 1024);
    assert_int_equal(cfg->log_level, FDT_LOG_INFO);
    assert_string_equal(cfg->control_socket, "fdtserver.ctl");
    assert_string_equal(cfg->node, "node1");
    assert_true(cfg->transaction_timeout == 60.0);
    assert_int_equal(cfg->listeners[0].backlog, 1024);
    assert_int_equal(cfg->listeners[0].protocol, FDT_PROTO_HTTP);
    fdt__cfg_deinit(cfg);
    free(cfg);
}

/* An unknown key or section names the nearest known one when it is close. */
static void test_nearest_key(void **state)
{
    (void)state;
    static const struct {
        const char *section;
        const char *key;
        const char *want; /* expected in the message; NULL: no suggestion */
    } cases[] = {
        {"server", "wrokers", "unknown key 'wrokers' (did you mean 'workers'?)"},
        {"server", "threds", "(did you mean 'threads'?)"},
        {"server", "max-input", "(did you mean 'max_input'?)"},
        {"server", "tcp_keepidel", "(did you mean 'tcp_keepidle'?)"},
        {"server", "bogus", NULL},
        {"server", "address", NULL},
        {"listen.a", "adress", "[listen.a] unknown key 'adress' (did you mean 'address'?)"},
        {"listen.a", "protocl", "(did you mean 'protocol'?)"},
        {"resource.r", "drvier", "(did you mean 'driver'?)"},
        {"resource.r", "workers", NULL},
        {"sever", "workers", "unknown section [sever] (did you mean [server]?)"},
        {"lisen.a", "address", "(did you mean [listen.a]?)"},
        {"nosuch", "x", NULL},
    };
    for (size_t i = 0; i < FDT_ARRAY_LEN(cases); i++) {
        struct fdt_cfg *cfg = malloc(sizeof(*cfg));
        struct fdt_error err = {0};
        fdt__cfg_init(cfg);
        assert_int_equal(fdt__cfg_apply(cfg, cases[i].section, cases[i].key, "1", &err),
                         FDT_ECONFIG);
        if (cases[i].want && !strstr(err.msg, cases[i].want))
            fail_msg("%s.%s: got \"%s\"", cases[i].section, cases[i].key, err.msg);
        if (!cases[i].want && strstr(err.msg, "did you mean"))
            fail_msg("%s.%s: unexpected \"%s\"", cases[i].section, cases[i].key, err.msg);
        fdt__cfg_deinit(cfg);
        free(cfg);
    }
    assert_int_equal(fdt__cfg_distance("workers", "workers", 2), 0);
    assert_int_equal(fdt__cfg_distance("wrokers", "workers", 2), 1);
    assert_int_equal(fdt__cfg_distance("worker", "workers", 2), 1);
    assert_int_equal(fdt__cfg_distance("wrkrs", "workers", 2), 2);
    assert_int_equal(fdt__cfg_distance("kitten", "sitting", 2), 3);
    assert_int_equal(fdt__cfg_distance("a", "abcdef", 2), 3);
    /* Through a file: file, line and key stay named. */
    char *path = write_tmp("[server]\nthreads = 2\nwrokers = 1\n");
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    struct fdt_error err = {0};
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_load_file(cfg, path, &err), FDT_ECONFIG);
    assert_int_equal(err.line, 3);
    assert_string_equal(err.msg, "[server] unknown key 'wrokers' (did you mean 'workers'?)");
    fdt__cfg_deinit(cfg);
    free(cfg);
    unlink(path);
}

/* What fdt__cfg_describe prints, in a malloc'd string. */
static char *describe(const struct fdt_cfg *cfg)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    fdt__cfg_describe(cfg, f);
    long len = ftell(f);
    assert_true(len > 0);
    char *text = calloc(1, (size_t)len + 1);
    rewind(f);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return text;
}

/* describe prints what differs from the defaults, and what it prints loads back the same. */
static void test_describe(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof(path), "%s",
             write_tmp("[server]\nthreads = 4\nmax_input = 8k\nlog_level = DEBUG\n"
                       "idle_timeout = 60\n"
                       "[listen.main]\naddress = 127.0.0.1:8080\nprotocol = raw\n"
                       "[app]\nmodule = /x/app.so\nversion = 7\n"
                       "[resource.ledger]\ndriver = sqlite\npath = /tmp/l.db\n"));
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    struct fdt_error err = {0};
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_load_file(cfg, path, &err), 0);
    char *text = describe(cfg);
    static const char *has[] = {
        "\n[server]\nthreads = 4\nmax_input = 8k\nlog_level = debug\n",
        "\n[listen.main]\naddress = 127.0.0.1:8080\nprotocol = raw\nreuseport = no\n",
        "\n[app]\nmodule = /x/app.so\nversion = 7\n",
        "\n[resource.ledger]\ndriver = sqlite\npath = /tmp/l.db\nlog = no\n",
    };
    for (size_t i = 0; i < FDT_ARRAY_LEN(has); i++) {
        if (!strstr(text, has[i]))
            fail_msg("no \"%s\" in:\n%s", has[i], text);
    }
    assert_null(strstr(text, "idle_timeout")); /* set, but to its default */
    assert_null(strstr(text, "dsn"));          /* empty */
    /* What describe prints is a configuration file that loads back to the same. */
    char *again_path = write_tmp(strchr(text, '\n') + 1);
    struct fdt_cfg *again = malloc(sizeof(*again));
    fdt__cfg_init(again);
    assert_int_equal(fdt__cfg_load_file(again, again_path, &err), 0);
    char *again_text = describe(again);
    assert_string_equal(strchr(text, '\n') + 1, strchr(again_text, '\n') + 1);
    free(again_text);
    free(text);
    fdt__cfg_deinit(again);
    fdt__cfg_deinit(cfg);
    free(again);
    free(cfg);
    unlink(again_path);
    unlink(path);
}

/* Addresses: IPv6 and IPv4 with a bad port or host are refused; "*" and an empty host are
 * every IPv4 address, "localhost" the loopback one. */
static void test_addresses(void **state)
{
    (void)state;
    struct fdt_addr a;
    static const char *const bad[] = {"[::1]:x",     "[::1]:70000", "[zz::1]:80", "[::1]80",
                                      "127.0.0.1:x", "127.0.0.1:",  "1.2.3:80",   "host:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (fdt__addr_parse(bad[i], &a) != FDT_EINVAL)
            fail_msg("accepted: %s", bad[i]);
    }
    assert_int_equal(fdt__addr_parse("[::1]:8080", &a), 0);
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port), 8080);
    static const char *const any[] = {"*:81", ":81"};
    for (size_t i = 0; i < 2; i++) {
        memset(&a, 0xff, sizeof(a));
        assert_int_equal(fdt__addr_parse(any[i], &a), 0);
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a.ss;
        assert_int_equal(a.family, AF_INET);
        assert_int_equal(in->sin_addr.s_addr, htonl(INADDR_ANY));
        assert_int_equal(ntohs(in->sin_port), 81);
    }
    assert_int_equal(fdt__addr_parse("localhost:82", &a), 0);
    assert_int_equal(((const struct sockaddr_in *)&a.ss)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
}

/* [app] keys without an application module (only set on the command line, say): the
 * description still puts them under their section. */
static void test_describe_app_keys_without_module(void **state)
{
    (void)state;
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    struct fdt_error err = {0};
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_set(cfg, "app.colour=blue", &err), 0);
    char *text = describe(cfg);
    assert_non_null(strstr(text, "\n[app]\ncolour = blue\n"));
    free(text);
    fdt__cfg_deinit(cfg);
    free(cfg);
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
        cmocka_unit_test(test_bounds_from_table),
        cmocka_unit_test(test_table_rows),
        cmocka_unit_test(test_defaults_equal_table),
        cmocka_unit_test(test_nearest_key),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_describe_app_keys_without_module),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

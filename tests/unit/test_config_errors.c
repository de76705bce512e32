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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a person reads when a configuration is refused (each message names the section,
 * key or limit), and where relative paths point when the file itself was named relative
 * to the working directory. */

/* A scratch directory, the working directory while a test runs. */
static char t_dir[64];
static char t_old_cwd[PATH_MAX];

static int setup(void **state)
{
    (void)state;
    snprintf(t_dir, sizeof(t_dir), "/tmp/fdt-test-cfgerr-XXXXXX");
    if (!mkdtemp(t_dir) || !getcwd(t_old_cwd, sizeof(t_old_cwd)) || chdir(t_dir) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (chdir(t_old_cwd) != 0)
        return -1;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "%s/sub", t_dir);
    rmdir(cmd);
    rmdir(t_dir);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Load text as a file (and finish it when finish is set); returns the code, err filled. */
static int load(const char *text, bool finish, struct fdt_cfg *cfg, struct fdt_error *err)
{
    write_file("t.ini", text);
    fdt__cfg_init(cfg);
    memset(err, 0, sizeof(*err));
    int rc = fdt__cfg_load_file(cfg, "t.ini", err);
    if (rc == 0 && finish)
        rc = fdt__cfg_finish(cfg, err);
    unlink("t.ini");
    return rc;
}

static const char *const APP = "[app]\nmodule = /x/app.so\n";

static void test_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool finish;
        const char *msg;
    } cases[] = {
        {"workers = 1\n", false, "key 'workers' outside any section"},
        {"[listen.a]\nprotocol = raw\n", true, "[listen.a] address is missing"},
        {"[listen.a]\naddress = unix:/tmp/x.sock\nreuseport = yes\n", true,
         "[listen.a] reuseport applies to TCP addresses only"},
        {"[listen.a]\naddress = 127.0.0.1:9\n[listen.b]\naddress = 127.0.0.1:9\n", true,
         "[listen.b] address 127.0.0.1:9 is also used by [listen.a]"},
        {"[listen.a]\naddress = 127.0.0.1:9\n[resource.db]\nlog = no\n", true,
         "[resource.db] driver is missing"},
        {"[listen.a]\naddress = 127.0.0.1:9\n[python]\nhome = /opt/py\n", true,
         "[python] is set but neither [app] wsgi nor jsonrpc"},
        {"[listen.a]\naddress = 127.0.0.1:9\n[resource.db]\ndriver = postgresql\n", true,
         "[resource.db] dsn is missing"},
        {"[listen.a]\naddress = 127.0.0.1:9\n[resource.db]\ndriver = sqlite\n", true,
         "[resource.db] path is missing"},
        {"[listen.a]\naddress = 127.0.0.1:9\ntls = yes\ncertificate = /x/c.pem\n", true,
         "[listen.a] tls = yes needs private_key"},
    };
    for (size_t i = 0; i < FDT_ARRAY_LEN(cases); i++) {
        char text[512];
        snprintf(text, sizeof(text), "%s%s", cases[i].text, cases[i].finish ? APP : "");
        struct fdt_cfg *cfg = malloc(sizeof(*cfg));
        struct fdt_error err;
        assert_int_equal(load(text, cases[i].finish, cfg, &err), FDT_ECONFIG);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: %s", i, err.msg);
        fdt__cfg_deinit(cfg);
        free(cfg);
    }
}

/* A Python application: a JSON-RPC mapping that is not pkg.module:mapping, and an http
 * listener for an application that has no WSGI callable. */
static void test_python_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"[listen.a]\naddress = 127.0.0.1:9\nprotocol = jsonrpc\n[app]\njsonrpc = nomodule\n",
         "[app] jsonrpc = 'nomodule': expected pkg.module:mapping"},
        {"[listen.a]\naddress = 127.0.0.1:9\nprotocol = http\n[app]\njsonrpc = pkg.mod:methods\n",
         "[listen.a] protocol = http, but the Python application has no [app] wsgi"},
    };
    for (size_t i = 0; i < FDT_ARRAY_LEN(cases); i++) {
        struct fdt_cfg *cfg = malloc(sizeof(*cfg));
        struct fdt_error err;
        assert_int_equal(load(cases[i].text, true, cfg, &err), FDT_ECONFIG);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: %s", i, err.msg);
        fdt__cfg_deinit(cfg);
        free(cfg);
    }
}

/* Sections and keys beyond the fixed limits: the limit is named. */
static void test_too_many(void **state)
{
    (void)state;
    static const struct {
        int n;
        const char *msg;
    } cases[] = {
        {FDT_CFG_MAX_LISTENERS + 1, "too many listeners (at most 32)"},
        {FDT_CFG_MAX_RESOURCES + 1, "too many resources (at most 16)"},
        {FDT_CFG_MAX_APP_KEYS + 1, "[app] too many keys (at most 64)"},
    };
    for (size_t i = 0; i < FDT_ARRAY_LEN(cases); i++) {
        char *text = malloc(16384);
        assert_non_null(text);
        size_t used = (size_t)snprintf(text, 16384, "%s", i == 2 ? "[app]\n" : "");
        for (int j = 0; j < cases[i].n; j++) {
            if (i == 0)
                used += (size_t)snprintf(text + used, 16384 - used,
                                         "[listen.l%d]\naddress = 127.0.0.1:%d\n", j, 9000 + j);
            else if (i == 1)
                used +=
                    (size_t)snprintf(text + used, 16384 - used, "[resource.r%d]\nlog = no\n", j);
            else
                used += (size_t)snprintf(text + used, 16384 - used, "k%d = %d\n", j, j);
        }
        struct fdt_cfg *cfg = malloc(sizeof(*cfg));
        struct fdt_error err;
        assert_int_equal(load(text, false, cfg, &err), FDT_ECONFIG);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: %s", i, err.msg);
        /* The line of the section or key one past the limit. */
        assert_true(err.line > 0);
        fdt__cfg_deinit(cfg);
        free(cfg);
        free(text);
    }
}

/* A file named relative to the working directory anchors its relative paths (and relative
 * unix socket addresses) at its own directory, made absolute. */
static void test_relative_file(void **state)
{
    (void)state;
    assert_int_equal(mkdir("sub", 0700), 0);
    write_file("sub/f.ini", "[server]\npid_file = x.pid\n[listen.a]\naddress = unix:a.sock\n");
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    struct fdt_error err = {0};
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_load_file(cfg, "sub/f.ini", &err), 0);
    char want[256];
    snprintf(want, sizeof(want), "%s/sub/x.pid", t_dir);
    assert_string_equal(cfg->pid_file, want);
    snprintf(want, sizeof(want), "unix:%s/sub/a.sock", t_dir);
    assert_string_equal(cfg->listeners[0].address, want);
    fdt__cfg_deinit(cfg);
    unlink("sub/f.ini");

    /* In the working directory itself. */
    write_file("f.ini", "[server]\npid_file = y.pid\n");
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_load_file(cfg, "f.ini", &err), 0);
    snprintf(want, sizeof(want), "%s/y.pid", t_dir);
    assert_string_equal(cfg->pid_file, want);
    fdt__cfg_deinit(cfg);
    unlink("f.ini");

    /* A working directory that was removed: a relative file cannot be anchored. */
    assert_int_equal(mkdir("gone", 0700), 0);
    assert_int_equal(chdir("gone"), 0);
    assert_int_equal(rmdir("../gone"), 0);
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_load_file(cfg, "f.ini", &err), FDT_ECONFIG);
    assert_string_equal(err.msg, "getcwd: No such file or directory");
    fdt__cfg_deinit(cfg);
    assert_int_equal(chdir(t_dir), 0);
    free(cfg);
}

/* Paths and command-line values too long for the configuration: refused with the reason. */
static void test_too_long(void **state)
{
    (void)state;
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    struct fdt_error err = {0};
    char *path = malloc(2 * FDT_CFG_PATH_MAX);
    assert_non_null(path);

    /* The file's own name. */
    memset(path, 'p', 2 * FDT_CFG_PATH_MAX - 1);
    path[2 * FDT_CFG_PATH_MAX - 1] = '\0';
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_load_file(cfg, path, &err), FDT_ECONFIG);
    assert_memory_equal(err.msg, "configuration file path too long: ppp", 37);
    fdt__cfg_deinit(cfg);

    /* A relative name that fits, but not once the working directory is put in front. */
    memset(path, 'd', FDT_CFG_PATH_MAX - 8);
    memcpy(path + FDT_CFG_PATH_MAX - 8, "/f.ini", 7);
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_load_file(cfg, path, &err), FDT_ECONFIG);
    assert_memory_equal(err.msg, "configuration file path too long: ddd", 37);
    fdt__cfg_deinit(cfg);

    /* A path value that does not fit: the reason comes before the value. */
    char *set = malloc(FDT_CFG_PATH_MAX + 32);
    assert_non_null(set);
    int n = snprintf(set, 32, "server.pid_file=");
    memset(set + n, 'x', FDT_CFG_PATH_MAX);
    set[n + FDT_CFG_PATH_MAX] = '\0';
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_set(cfg, set, &err), FDT_ECONFIG);
    assert_memory_equal(err.msg, "--set: [server] pid_file: path too long: 'xxx", 45);
    fdt__cfg_deinit(cfg);
    free(set);

    /* --set with an empty key or a section name too long; --listen too long. */
    fdt__cfg_init(cfg);
    assert_int_equal(fdt__cfg_set(cfg, "server.=1", &err), FDT_ECONFIG);
    assert_string_equal(err.msg, "--set server.=1: bad section or key");
    char long_section[256];
    memset(long_section, 's', 200);
    memcpy(long_section + 200, ".workers=1", 11);
    assert_int_equal(fdt__cfg_set(cfg, long_section, &err), FDT_ECONFIG);
    assert_non_null(strstr(err.msg, ": bad section or key"));
    memset(path, 'a', 2 * FDT_CFG_PATH_MAX - 1);
    path[2 * FDT_CFG_PATH_MAX - 1] = '\0';
    assert_int_equal(fdt__cfg_add_listen(cfg, path, &err), FDT_ECONFIG);
    assert_string_equal(err.msg, "--listen: address too long");
    /* Without an error structure the code alone comes back. */
    assert_int_equal(fdt__cfg_set(cfg, "server.workers=many", NULL), FDT_ECONFIG);
    fdt__cfg_deinit(cfg);
    free(path);
    free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals), cmocka_unit_test(test_python_refusals),
        cmocka_unit_test(test_too_many), cmocka_unit_test(test_relative_file),
        cmocka_unit_test(test_too_long),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

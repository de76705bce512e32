#include "fdt_config.h"

#include "listen/listen.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

/* A loopback TCP socket on a free port, listening or not; *port gets the port. */
static int tcp_socket(bool listening, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    if (listening)
        assert_int_equal(listen(fd, 8), 0);
    return fd;
}

static void add_listener(struct fdt_cfg *cfg, const char *name, int port, bool reuseport)
{
    struct fdt_listen_cfg *l = &cfg->listeners[cfg->n_listeners++];
    memset(l, 0, sizeof(*l));
    fdt__strlcpy(l->name, name, sizeof(l->name));
    snprintf(l->address, sizeof(l->address), "127.0.0.1:%d", port);
    l->reuseport = reuseport;
    l->backlog = 8;
}

static struct fdt_cfg *cfg_new(void)
{
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    assert_non_null(cfg);
    fdt__cfg_init(cfg);
    return cfg;
}

static void cfg_free(struct fdt_cfg *cfg)
{
    fdt__cfg_deinit(cfg);
    free(cfg);
}

static void test_format_and_parse(void **state)
{
    (void)state;
    int p1, p2;
    int a = tcp_socket(true, &p1);
    int b = tcp_socket(false, &p2); /* a reuseport anchor of an old master */
    char spec[256] = "";
    assert_int_equal(fdt__inherit_format(spec, sizeof(spec), a, FDT_LISTEN_SYSTEMD, "web"), 0);
    assert_int_equal(fdt__inherit_format(spec, sizeof(spec), b, FDT_LISTEN_UPGRADE, "a:b"), 0);
    struct fdt_inherit set = {0};
    struct fdt_error err = {0};
    assert_int_equal(fdt__inherit_parse(&set, spec, &err), 2);
    assert_int_equal(set.n, 2);
    assert_int_equal(set.fds[0].fd, a);
    assert_int_equal(set.fds[0].origin, FDT_LISTEN_SYSTEMD);
    assert_string_equal(set.fds[0].name, "web");
    assert_true(set.fds[0].listening);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", p1);
    assert_string_equal(set.fds[0].addr, want);
    assert_int_equal(set.fds[1].origin, FDT_LISTEN_UPGRADE);
    assert_string_equal(set.fds[1].name, ""); /* a name with ':' is not carried */
    assert_false(set.fds[1].listening);
    /* Made close-on-exec (the new master's own children must not inherit them). */
    assert_true(fcntl(a, F_GETFD) & FD_CLOEXEC);
    assert_true(fdt__inherit_has(&set, b));
    assert_false(fdt__inherit_has(&set, -1));
    close(a);
    close(b);
}

static void test_parse_refuses(void **state)
{
    (void)state;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    int dgram = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int p;
    int idle = tcp_socket(false, &p);
    char bad[5][64];
    snprintf(bad[0], sizeof(bad[0]), "%d=s=web", pipefd[0]); /* not a socket */
    snprintf(bad[1], sizeof(bad[1]), "%d=s=web", dgram);     /* not a stream */
    snprintf(bad[2], sizeof(bad[2]), "%d=s=web", idle);      /* systemd's must listen */
    snprintf(bad[3], sizeof(bad[3]), "%d=x=web", idle);      /* unknown origin */
    snprintf(bad[4], sizeof(bad[4]), "%d", idle);            /* no origin */
    for (size_t i = 0; i < FDT_ARRAY_LEN(bad); i++) {
        struct fdt_inherit set = {0};
        struct fdt_error err = {0};
        assert_int_equal(fdt__inherit_parse(&set, bad[i], &err), FDT_ECONFIG);
        assert_true(err.msg[0] != '\0');
    }
    struct fdt_inherit set = {0};
    assert_int_equal(fdt__inherit_parse(&set, "99999=s=web", NULL), FDT_ECONFIG); /* closed */
    close(pipefd[0]);
    close(pipefd[1]);
    close(dgram);
    close(idle);
}

static void test_systemd_other_pid(void **state)
{
    (void)state;
    /* Variables for another process are not ours, and no child may see them either. */
    setenv("LISTEN_PID", "1", 1);
    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_FDNAMES", "web", 1);
    struct fdt_inherit set = {0};
    assert_int_equal(fdt__inherit_systemd(&set, NULL), 0);
    assert_int_equal(set.n, 0);
    assert_null(getenv("LISTEN_PID"));
    assert_null(getenv("LISTEN_FDS"));
    assert_null(getenv("LISTEN_FDNAMES"));
    assert_int_equal(fdt__inherit_systemd(&set, NULL), 0); /* absent: nothing */
}

/* By name first (the address must be the listener's), then by address; a socket that
 * names no listener and has no listener's address is left unused. */
static void test_assign(void **state)
{
    (void)state;
    int pw, pa, ps;
    int web = tcp_socket(true, &pw);
    int api = tcp_socket(true, &pa);
    int spare = tcp_socket(true, &ps);
    char spec[256] = "";
    fdt__inherit_format(spec, sizeof(spec), web, FDT_LISTEN_SYSTEMD, "web");
    fdt__inherit_format(spec, sizeof(spec), api, FDT_LISTEN_SYSTEMD, "");
    fdt__inherit_format(spec, sizeof(spec), spare, FDT_LISTEN_SYSTEMD, "spare");
    struct fdt_inherit set = {0};
    assert_int_equal(fdt__inherit_parse(&set, spec, NULL), 3);

    struct fdt_cfg *cfg = cfg_new();
    add_listener(cfg, "new", 1, false); /* no passed socket has port 1: the caller binds it */
    add_listener(cfg, "api", pa, false);
    add_listener(cfg, "web", pw, false);
    struct fdt_listener ls[FDT_CFG_MAX_LISTENERS];
    struct fdt_error err = {0};
    assert_int_equal(fdt__inherit_assign(&set, cfg, ls, &err), 0);
    assert_int_equal(ls[0].fd, -1);
    assert_int_equal(ls[0].origin, FDT_LISTEN_BOUND);
    assert_int_equal(ls[1].fd, api);
    assert_int_equal(ls[1].origin, FDT_LISTEN_SYSTEMD);
    assert_int_equal(ls[2].fd, web);
    assert_true(set.fds[0].used && set.fds[1].used);
    assert_false(set.fds[2].used);

    /* A named socket on another address than its listener's is refused, with both. */
    cfg->n_listeners = 0;
    add_listener(cfg, "web", pa, false);
    assert_int_equal(fdt__inherit_assign(&set, cfg, ls, &err), FDT_ECONFIG);
    assert_non_null(strstr(err.msg, "[listen.web]"));
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", pw);
    assert_non_null(strstr(err.msg, addr));

    /* reuseport cannot be combined with a socket systemd passed. */
    cfg->n_listeners = 0;
    add_listener(cfg, "web", pw, true);
    assert_int_equal(fdt__inherit_assign(&set, cfg, ls, &err), FDT_ECONFIG);
    assert_non_null(strstr(err.msg, "reuseport"));

    /* "spare" is used once a configuration names it. */
    cfg->n_listeners = 0;
    add_listener(cfg, "spare", ps, false);
    assert_int_equal(fdt__inherit_assign(&set, cfg, ls, &err), 0);
    assert_int_equal(ls[0].fd, spare);
    assert_true(set.fds[2].used && !set.fds[0].used);
    cfg_free(cfg);
    close(web);
    close(api);
    close(spare);
}

static void test_origin_names(void **state)
{
    (void)state;
    /* What fdtctl status shows in a listener's "socket" field. */
    assert_string_equal(fdt__listen_origin_name(FDT_LISTEN_BOUND), "bound");
    assert_string_equal(fdt__listen_origin_name(FDT_LISTEN_SYSTEMD), "systemd");
    assert_string_equal(fdt__listen_origin_name(FDT_LISTEN_UPGRADE), "upgrade");
    assert_string_equal(fdt__listen_origin_name((enum fdt_listen_origin)42), "?");
}

/* The variable of a binary upgrade that cannot be taken whole: too long, more sockets than
 * served; and an entry that does not fit the buffer leaves it as it was. */
static void test_parse_and_format_limits(void **state)
{
    (void)state;
    static char spec[9000];
    memset(spec, '7', sizeof(spec) - 1);
    struct fdt_inherit set = {0};
    struct fdt_error err = {0};
    assert_int_equal(fdt__inherit_parse(&set, spec, &err), FDT_ECONFIG);
    assert_string_equal(err.msg, "list of inherited sockets too long");
    assert_int_equal(set.n, 0);

    int p;
    int fd = tcp_socket(true, &p);
    spec[0] = '\0';
    for (int i = 0; i <= FDT_INHERIT_MAX; i++)
        assert_int_equal(fdt__inherit_format(spec, sizeof(spec), fd, FDT_LISTEN_UPGRADE, ""), 0);
    assert_int_equal(fdt__inherit_parse(&set, spec, &err), FDT_ECONFIG);
    char want[128];
    snprintf(want, sizeof(want), "more than %d sockets passed by the old master", FDT_INHERIT_MAX);
    assert_string_equal(err.msg, want);
    assert_int_equal(set.n, FDT_INHERIT_MAX);

    char small[16] = "";
    assert_int_equal(fdt__inherit_format(small, sizeof(small), 12, FDT_LISTEN_SYSTEMD, "web"), 0);
    assert_string_equal(small, "12=s=web");
    assert_int_equal(fdt__inherit_format(small, sizeof(small), 13, FDT_LISTEN_UPGRADE, "api"),
                     FDT_ELIMIT);
    assert_string_equal(small, "12=s=web"); /* unchanged: no half entry */
    close(fd);
}

/* Run fdt__inherit_systemd with fd as descriptor 3 (SD_LISTEN_FDS_START) and the variables
 * of systemd for this process; fd 3 is restored afterwards. */
static int systemd_with_fd3(int fd, const char *n, const char *names, struct fdt_inherit *set,
                            struct fdt_error *err)
{
    int saved = fcntl(3, F_DUPFD_CLOEXEC, 10); /* -1 when 3 is not open */
    assert_int_equal(dup2(fd, 3), 3);
    char pid[32];
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", n, 1);
    if (names)
        setenv("LISTEN_FDNAMES", names, 1);
    int rc = fdt__inherit_systemd(set, err);
    assert_null(getenv("LISTEN_FDS"));
    if (saved >= 0) {
        assert_int_equal(dup2(saved, 3), 3);
        close(saved);
    } else {
        close(3);
    }
    return rc;
}

static void test_systemd_names_and_count(void **state)
{
    (void)state;
    int p;
    int fd = tcp_socket(true, &p);
    /* systemd names a socket without FileDescriptorName= "unknown": it names no listener. */
    struct fdt_inherit set = {0};
    struct fdt_error err = {0};
    assert_int_equal(systemd_with_fd3(fd, "1", "unknown", &set, &err), 1);
    assert_int_equal(set.n, 1);
    assert_int_equal(set.fds[0].origin, FDT_LISTEN_SYSTEMD);
    assert_string_equal(set.fds[0].name, "");
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", p);
    assert_string_equal(set.fds[0].addr, want);

    /* More sockets than a server serves: refused, none taken. */
    struct fdt_inherit many = {0};
    assert_int_equal(systemd_with_fd3(fd, "1000", NULL, &many, &err), FDT_ECONFIG);
    snprintf(want, sizeof(want), "systemd passed 1000 sockets; at most %d are served",
             FDT_INHERIT_MAX);
    assert_string_equal(err.msg, want);
    assert_int_equal(many.n, 0);
    close(fd);
}

/* A loopback IPv6 socket on a free port. */
static int tcp6_socket(bool listening, int *port)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin6_port);
    if (listening)
        assert_int_equal(listen(fd, 8), 0);
    return fd;
}

/* The sockets of a binary upgrade go by address, IPv6 ones too; one whose reuseport
 * setting the new configuration changes is refused (a reuseport anchor does not listen). */
static void test_assign_upgrade_by_address(void **state)
{
    (void)state;
    int p6, pa, pl;
    int v6 = tcp6_socket(true, &p6);
    int anchor = tcp_socket(false, &pa);
    int plain = tcp_socket(true, &pl);
    char dir[] = "/tmp/fdt-inherit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%s/s", dir);
    int local = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(local >= 0);
    assert_int_equal(bind(local, (struct sockaddr *)&un, sizeof(un)), 0);
    assert_int_equal(listen(local, 8), 0);
    char spec[256] = "";
    fdt__inherit_format(spec, sizeof(spec), v6, FDT_LISTEN_UPGRADE, "v6");
    fdt__inherit_format(spec, sizeof(spec), anchor, FDT_LISTEN_UPGRADE, "rp");
    fdt__inherit_format(spec, sizeof(spec), plain, FDT_LISTEN_UPGRADE, "plain");
    fdt__inherit_format(spec, sizeof(spec), local, FDT_LISTEN_UPGRADE, "local");
    struct fdt_inherit set = {0};
    assert_int_equal(fdt__inherit_parse(&set, spec, NULL), 4);
    char want[64];
    snprintf(want, sizeof(want), "[::1]:%d", p6);
    assert_string_equal(set.fds[0].addr, want);

    struct fdt_cfg *cfg = cfg_new();
    add_listener(cfg, "other6", p6 == 65535 ? 1 : p6 + 1, false);
    snprintf(cfg->listeners[0].address, sizeof(cfg->listeners[0].address), "[::1]:%d",
             p6 == 65535 ? 1 : p6 + 1);
    add_listener(cfg, "v6", 0, false);
    snprintf(cfg->listeners[1].address, sizeof(cfg->listeners[1].address), "[::1]:%d", p6);
    add_listener(cfg, "bad", 0, false);
    snprintf(cfg->listeners[2].address, sizeof(cfg->listeners[2].address), "no address");
    add_listener(cfg, "rp", pa, true);
    add_listener(cfg, "plain", pl, false);
    add_listener(cfg, "other", 0, false);
    snprintf(cfg->listeners[5].address, sizeof(cfg->listeners[5].address), "unix:%s/t", dir);
    add_listener(cfg, "local", 0, false);
    snprintf(cfg->listeners[6].address, sizeof(cfg->listeners[6].address), "unix:%s", un.sun_path);
    struct fdt_listener ls[FDT_CFG_MAX_LISTENERS];
    struct fdt_error err = {0};
    assert_int_equal(fdt__inherit_assign(&set, cfg, ls, &err), 0);
    assert_int_equal(ls[5].fd, -1); /* another path */
    assert_int_equal(ls[6].fd, local);
    assert_int_equal(ls[0].fd, -1); /* same family, another port: bound anew */
    assert_int_equal(ls[1].fd, v6);
    assert_int_equal(ls[1].origin, FDT_LISTEN_UPGRADE);
    assert_int_equal(ls[2].fd, -1); /* an address that does not parse matches nothing */
    assert_int_equal(ls[3].fd, anchor);
    assert_int_equal(ls[4].fd, plain);

    /* reuseport turned off for the anchor, or on for a listening socket: refused. */
    cfg->listeners[3].reuseport = false;
    assert_int_equal(fdt__inherit_assign(&set, cfg, ls, &err), FDT_ECONFIG);
    snprintf(want, sizeof(want),
             "[listen.rp] reuseport cannot change on a binary upgrade of "
             "127.0.0.1:%d",
             pa);
    assert_non_null(strstr(err.msg, want));
    cfg->listeners[3].reuseport = true;
    cfg->listeners[4].reuseport = true;
    assert_int_equal(fdt__inherit_assign(&set, cfg, ls, &err), FDT_ECONFIG);
    assert_non_null(strstr(err.msg, "[listen.plain] reuseport cannot change"));
    cfg_free(cfg);
    close(v6);
    close(anchor);
    close(plain);
    close(local);
    unlink(un.sun_path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_parse),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_systemd_other_pid),
        cmocka_unit_test(test_assign),
        cmocka_unit_test(test_origin_names),
        cmocka_unit_test(test_parse_and_format_limits),
        cmocka_unit_test(test_systemd_names_and_count),
        cmocka_unit_test(test_assign_upgrade_by_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

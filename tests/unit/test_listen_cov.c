/* Listening sockets when the system says no: an address that does not parse, no descriptor
 * left (RLIMIT_NOFILE), listen(2) refused (the linker's --wrap=listen: the only mock here,
 * because listen fails on a freshly bound socket only when another process starts listening
 * on the address between our bind and our listen), a reuseport member that cannot be bound,
 * and closing sockets that systemd passed or that this master bound on a unix path. */
#include "fdt_config.h"

#include "listen/listen.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

/* listen(2), failing with listen_errno once when it is set. */
static int listen_errno;
int __real_listen(int fd, int backlog);
int __wrap_listen(int fd, int backlog);
int __wrap_listen(int fd, int backlog)
{
    if (listen_errno) {
        errno = listen_errno;
        listen_errno = 0;
        return -1;
    }
    return __real_listen(fd, backlog);
}

static void listener_init(struct fdt_listener *l, const char *name, const char *address)
{
    memset(l, 0, sizeof(*l));
    fdt__strlcpy(l->cfg.name, name, sizeof(l->cfg.name));
    fdt__strlcpy(l->cfg.address, address, sizeof(l->cfg.address));
    l->cfg.backlog = 8;
    l->fd = -1;
}

/* The lowest free descriptor (the next socket(2) gets it). */
static int next_fd(void)
{
    int fd = dup(0);
    assert_true(fd >= 0);
    close(fd);
    return fd;
}

/* Lower RLIMIT_NOFILE so that no new descriptor can be made; returns the old limit. */
static struct rlimit no_more_fds(void)
{
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)next_fd();
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
    return old;
}

static void test_format_of_what_is_not_an_inet_or_unix_socket(void **state)
{
    (void)state;
    char out[64];
    int p[2];
    assert_int_equal(pipe(p), 0);
    fdt__addr_format_fd(p[0], out, sizeof(out));
    assert_string_equal(out, "?");
    close(p[0]);
    close(p[1]);
    int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (nl >= 0) { /* a sandbox may forbid netlink sockets */
        fdt__addr_format_fd(nl, out, sizeof(out));
        assert_string_equal(out, "?");
        close(nl);
    }
}

static void test_bind_failures(void **state)
{
    (void)state;
    struct fdt_listener l;
    struct fdt_error err = {0};
    /* The configuration checks addresses first; the listener says so itself too. */
    listener_init(&l, "web", "nowhere");
    assert_int_equal(fdt__listener_bind(&l, &err), FDT_ECONFIG);
    assert_string_equal(err.msg, "[listen.web] bad address nowhere");
    assert_int_equal(l.fd, -1);

    /* Out of descriptors. */
    listener_init(&l, "web", "127.0.0.1:0");
    struct rlimit old = no_more_fds();
    int rc = fdt__listener_bind(&l, &err);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, -EMFILE);
    assert_string_equal(err.msg, "[listen.web] socket: Too many open files");
    assert_int_equal(l.fd, -1);

    /* listen refused: the bound socket is closed again, and the message names the address. */
    int before = next_fd();
    listen_errno = EADDRINUSE;
    assert_int_equal(fdt__listener_bind(&l, &err), -EADDRINUSE);
    assert_string_equal(err.msg, "[listen.web] listen 127.0.0.1:0: Address already in use");
    assert_int_equal(l.fd, -1);
    assert_int_equal(next_fd(), before);
}

static void test_member_failures(void **state)
{
    (void)state;
    struct fdt_listener anchor;
    struct fdt_error err = {0};
    int fd = 42;
    /* An anchor that is not a socket. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    listener_init(&anchor, "web", "127.0.0.1:1");
    anchor.fd = p[0];
    assert_int_equal(fdt__listener_open_member(&anchor, &fd, &err), -ENOTSOCK);
    assert_string_equal(err.msg, "[listen.web] getsockname: Socket operation on non-socket");
    assert_int_equal(fd, -1);
    close(p[0]);
    close(p[1]);

    /* Out of descriptors. */
    anchor.cfg.reuseport = true;
    assert_int_equal(fdt__listener_bind(&anchor, &err), 0);
    struct rlimit old = no_more_fds();
    int rc = fdt__listener_open_member(&anchor, &fd, &err);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, -EMFILE);
    assert_string_equal(err.msg, "[listen.web] socket: Too many open files");
    fdt__listener_close(&anchor, true);

    /* A unix path cannot be bound twice (reuseport is for TCP: the configuration refuses
     * it on unix addresses). */
    char path[] = "/tmp/fdt-listen-cov-XXXXXX";
    assert_non_null(mkdtemp(path));
    char addr[128];
    snprintf(addr, sizeof(addr), "unix:%s/s", path);
    listener_init(&anchor, "local", addr);
    assert_int_equal(fdt__listener_bind(&anchor, &err), 0);
    int before = next_fd();
    assert_int_equal(fdt__listener_open_member(&anchor, &fd, &err), -EADDRINUSE);
    char want[256];
    snprintf(want, sizeof(want), "[listen.local] reuseport socket for %s: Address already in use",
             addr);
    assert_string_equal(err.msg, want);
    assert_int_equal(fd, -1);
    assert_int_equal(next_fd(), before);
    /* Closing with unlink_path removes the file this master bound. */
    fdt__listener_close(&anchor, true);
    assert_int_equal(anchor.fd, -1);
    struct stat st;
    assert_int_equal(stat(addr + 5, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(rmdir(path), 0);
}

/* An IPv6 reuseport listener: each member is one more listening socket on the same port. */
static void test_member_ipv6(void **state)
{
    (void)state;
    int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 lo = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (probe < 0 || bind(probe, (struct sockaddr *)&lo, sizeof(lo)) < 0) {
        if (probe >= 0)
            close(probe);
        skip(); /* no IPv6 loopback here */
    }
    close(probe);
    struct fdt_listener anchor;
    struct fdt_error err = {0};
    listener_init(&anchor, "v6", "[::1]:0");
    anchor.cfg.reuseport = true;
    assert_int_equal(fdt__listener_bind(&anchor, &err), 0);
    int member = -1;
    assert_int_equal(fdt__listener_open_member(&anchor, &member, &err), 0);
    char a[64], m[64];
    fdt__addr_format_fd(anchor.fd, a, sizeof(a));
    fdt__addr_format_fd(member, m, sizeof(m));
    assert_string_equal(a, m);
    assert_true(strncmp(m, "[::1]:", 6) == 0);
    int acc = 0;
    socklen_t len = sizeof(acc);
    assert_int_equal(getsockopt(member, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len), 0);
    assert_true(acc);
    int v6only = 0;
    len = sizeof(v6only);
    assert_int_equal(getsockopt(member, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len), 0);
    assert_true(v6only);
    close(member);
    fdt__listener_close(&anchor, true);
}

/* A socket systemd passed is only forgotten: the master keeps it for later reloads. */
static void test_close_systemd_socket(void **state)
{
    (void)state;
    struct fdt_listener l;
    struct fdt_error err = {0};
    listener_init(&l, "web", "127.0.0.1:0");
    assert_int_equal(fdt__listener_bind(&l, &err), 0);
    int fd = l.fd;
    l.origin = FDT_LISTEN_SYSTEMD;
    fdt__listener_close(&l, true);
    assert_int_equal(l.fd, -1);
    assert_true(fcntl(fd, F_GETFD) >= 0); /* still open */
    close(fd);
    fdt__listener_close(&l, true); /* nothing to do */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_of_what_is_not_an_inet_or_unix_socket),
        cmocka_unit_test(test_bind_failures),
        cmocka_unit_test(test_member_failures),
        cmocka_unit_test(test_member_ipv6),
        cmocka_unit_test(test_close_systemd_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

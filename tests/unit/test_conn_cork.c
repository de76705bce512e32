#include "fdt_config.h"

#include "conn/conn.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* The coalescing rule of a connection's output (fdt__conn_cork, conn.h): while corked,
 * writes are collected, not sent; they leave at uncork, at an explicit flush, when
 * FDT_CONN_CORK_MAX bytes are collected, and before the connection's transaction waits on
 * a resource (the holder's before_wait). Uncorked, a write is sent at once. The connection
 * runs over a socketpair; the test reads the other end without waiting. */

static struct fdt_conn_loop t_loop;
static _Atomic uint64_t t_requests;
static _Atomic int64_t t_open;
static struct fdt_proto t_proto = {.name = "test"};

struct pair {
    struct fdt_conn *c;
    int peer;
};

static void open_pair(struct pair *p)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    t_loop.epfd = epoll_create1(EPOLL_CLOEXEC);
    assert_true(t_loop.epfd >= 0);
    t_loop.max_input = 65536;
    t_loop.max_output = 1 << 20;
    t_loop.requests = &t_requests;
    t_loop.conns_open = &t_open;
    p->c = fdt__conn_new(&t_loop, sv[0], &t_proto, "test");
    assert_non_null(p->c);
    p->peer = sv[1];
}

static void close_pair(struct pair *p)
{
    close(p->c->fd);
    fdt__conn_destroy(p->c);
    close(p->peer);
    close(t_loop.epfd);
}

/* Bytes waiting at the peer (read and dropped), 0 when none. */
static size_t peer_take(struct pair *p)
{
    static char buf[1 << 16];
    size_t total = 0;
    for (;;) {
        ssize_t n = recv(p->peer, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        return total;
    }
}

static void test_uncorked_writes_go_at_once(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p);
    assert_int_equal(fdt_conn_write(p.c, "abc\n", 4), 0);
    assert_int_equal(peer_take(&p), 4);
    assert_int_equal(fdt__conn_write_wait(p.c, "de\n", 3), 0);
    assert_int_equal(peer_take(&p), 3);
    close_pair(&p);
}

static void test_corked_writes_wait_for_uncork(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p);
    fdt__conn_cork(p.c);
    for (int i = 0; i < 32; i++)
        assert_int_equal(fdt__conn_write_wait(p.c, "{\"result\":[1]}\n", 15), 0);
    assert_int_equal(fdt_conn_write(p.c, "x\n", 2), 0);
    assert_int_equal(peer_take(&p), 0); /* nothing sent yet */
    assert_int_equal(p.c->out.len, 32 * 15 + 2);
    fdt__conn_uncork(p.c);
    assert_int_equal(peer_take(&p), 32 * 15 + 2);
    assert_int_equal(p.c->out.len, 0);
    /* Uncorked again: straight out. */
    assert_int_equal(fdt_conn_write(p.c, "y\n", 2), 0);
    assert_int_equal(peer_take(&p), 2);
    close_pair(&p);
}

static void test_flush_threshold_and_before_wait(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p);
    static char big[FDT_CONN_CORK_MAX / 4];
    memset(big, 'b', sizeof(big));
    fdt__conn_cork(p.c);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fdt__conn_write_wait(p.c, big, sizeof(big)), 0);
    assert_int_equal(peer_take(&p), 0);
    /* The fourth reaches the threshold: everything collected goes. */
    assert_int_equal(fdt__conn_write_wait(p.c, big, sizeof(big)), 0);
    assert_int_equal(peer_take(&p), 4 * sizeof(big));
    /* An explicit flush, and the transaction's "about to wait" both send, staying corked. */
    assert_int_equal(fdt_conn_write(p.c, "1\n", 2), 0);
    fdt__conn_flush(p.c);
    assert_int_equal(peer_take(&p), 2);
    assert_int_equal(fdt_conn_write(p.c, "2\n", 2), 0);
    assert_non_null(p.c->th.before_wait);
    p.c->th.before_wait(&p.c->th);
    assert_int_equal(peer_take(&p), 2);
    assert_int_equal(fdt_conn_write(p.c, "3\n", 2), 0);
    assert_int_equal(peer_take(&p), 0); /* still corked */
    fdt__conn_uncork(p.c);
    assert_int_equal(peer_take(&p), 2);
    /* Uncorked, before_wait has nothing to do. */
    p.c->th.before_wait(&p.c->th);
    assert_int_equal(peer_take(&p), 0);
    close_pair(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uncorked_writes_go_at_once),
        cmocka_unit_test(test_corked_writes_wait_for_uncork),
        cmocka_unit_test(test_flush_threshold_and_before_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

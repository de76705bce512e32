#include "fdt_config.h"

#include "alloc_fault.h"
#include "conn/conn.h"
#include "util/util.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The waiting side of a connection's output and input (conn.h): fdt__conn_write_wait
 * bounded by the loop's output budget, fdt__conn_sendfile_wait (what is buffered first,
 * then the file; a file shorter than promised; a client that takes nothing), and
 * fdt__conn_read_wait (peek, EOF, no data yet, a deadline, a socket that fails, a
 * connection another thread closed). The connection runs over a unix socketpair with small
 * buffers; a reader thread plays the client where one is needed. */

static struct fdt_conn_loop t_loop;
static _Atomic uint64_t t_requests;
static _Atomic int64_t t_open;
static struct fdt_proto t_proto = {.name = "test"};
static int t_enqueued;

static void t_enqueue(struct fdt_conn_loop *loop, struct fdt_conn *c)
{
    (void)loop;
    (void)c;
    t_enqueued++;
}

struct pair {
    struct fdt_conn *c;
    int peer;
};

static void open_pair(struct pair *p, size_t max_output, size_t budget, int64_t send_timeout_ms)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* Non-blocking, as accept4 makes the server's sockets (sendfile(2) has no MSG_DONTWAIT). */
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    memset(&t_loop, 0, sizeof(t_loop));
    t_loop.epfd = epoll_create1(EPOLL_CLOEXEC);
    assert_true(t_loop.epfd >= 0);
    t_loop.max_input = 65536;
    t_loop.max_output = max_output;
    t_loop.out_budget = budget;
    t_loop.send_timeout_ms = send_timeout_ms;
    t_loop.requests = &t_requests;
    t_loop.conns_open = &t_open;
    t_loop.enqueue = t_enqueue;
    p->c = fdt__conn_new(&t_loop, sv[0], &t_proto, "test");
    assert_non_null(p->c);
    p->peer = sv[1];
}

static void close_pair(struct pair *p)
{
    close(p->c->fd);
    fdt__conn_destroy(p->c);
    if (p->peer >= 0)
        close(p->peer);
    close(t_loop.epfd);
}

/* The client: reads everything until EOF, counting bytes and checking the pattern. */
struct reader {
    int fd;
    size_t got;
    size_t max_out_queued; /* the loop's buffered output, as seen while reading */
    unsigned char expect;  /* byte i is (unsigned char)i, if check */
    bool check;
    bool ok;
    pthread_t t;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    static char buf[8192];
    r->ok = true;
    for (;;) {
        size_t q = atomic_load(&t_loop.out_queued);
        if (q > r->max_out_queued)
            r->max_out_queued = q;
        ssize_t n = recv(r->fd, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        for (ssize_t i = 0; r->check && i < n; i++)
            if ((unsigned char)buf[i] != (unsigned char)(r->got + (size_t)i))
                r->ok = false;
        r->got += (size_t)n;
        struct timespec ts = {0, 200000}; /* a slow client: the writer waits */
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void reader_start(struct reader *r, int fd, bool check)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->check = check;
    assert_int_equal(pthread_create(&r->t, NULL, reader_main, r), 0);
}

/* Ends the conversation (the connection's side shuts down) and waits for the reader. */
static void reader_join(struct reader *r, struct pair *p)
{
    shutdown(p->c->fd, SHUT_WR);
    pthread_join(r->t, NULL);
}

static unsigned char *pattern(size_t n)
{
    unsigned char *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)i;
    return b;
}

static void test_write_wait_stays_within_the_output_budget(void **state)
{
    (void)state;
    struct pair p;
    /* max_output 1 MiB, but the loop's budget only 32 KiB: a waiting writer buffers at most
     * that much, whatever its own buffer could take. */
    open_pair(&p, 1 << 20, 32768, 0);
    size_t n = 2 << 20;
    unsigned char *data = pattern(n);
    struct reader r;
    reader_start(&r, p.peer, true);
    assert_int_equal(fdt__conn_write_wait(p.c, data, n), 0);
    assert_true(atomic_load(&t_loop.out_queued) <= 32768);
    while (p.c->out.len > 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        fdt__conn_flush(p.c);
    }
    reader_join(&r, &p);
    assert_int_equal(r.got, n);
    assert_true(r.ok);
    assert_true(r.max_out_queued <= 32768);
    free(data);
    close_pair(&p);
}

static void test_write_wait_gives_up_on_a_client_that_takes_nothing(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p, 65536, 0, 300);
    unsigned char *data = pattern(1 << 20);
    /* Nobody reads: after send_timeout_ms without progress the connection is dead. */
    assert_int_equal(fdt__conn_write_wait(p.c, data, 1 << 20), FDT_ECLOSED);
    assert_true(p.c->dead);
    /* Later writes fail at once. */
    assert_int_equal(fdt_conn_write(p.c, "x", 1), FDT_ECLOSED);
    free(data);
    close_pair(&p);
}

static void test_write_wait_out_of_memory(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p, 1 << 20, 0, 300);
    unsigned char *data = pattern(1 << 20);
    /* The socket takes its few KiB, the buffer for the rest cannot be allocated. */
    alloc_fault_arm(1, true);
    int rc = fdt__conn_write_wait(p.c, data, 1 << 20);
    assert_true(alloc_fault_hit());
    alloc_fault_disarm();
    assert_int_equal(rc, FDT_ENOMEM);
    assert_true(p.c->dead);
    free(data);
    close_pair(&p);
}

static int temp_file(size_t n)
{
    char path[] = "/tmp/test_conn_cov.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    unsigned char *data = pattern(n);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    free(data);
    return fd;
}

static void test_sendfile_after_buffered_output(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p, 1 << 20, 0, 0);
    size_t n = 1 << 20;
    int fd = temp_file(n);
    struct reader r;
    reader_start(&r, p.peer, false);
    /* Collected output (corked) goes first, then the file, waiting for the slow client. */
    fdt__conn_cork(p.c);
    assert_int_equal(fdt_conn_write(p.c, "head", 4), 0);
    assert_int_equal(p.c->out.len, 4);
    assert_int_equal(fdt__conn_sendfile_wait(p.c, fd, 0, n), 0);
    assert_int_equal(p.c->out.len, 0);
    reader_join(&r, &p);
    assert_int_equal(r.got, 4 + n);
    assert_int_equal(p.c->out_sent, 4 + n);
    close(fd);
    close_pair(&p);
}

static void test_sendfile_failures(void **state)
{
    (void)state;
    struct pair p;
    /* A file shorter than the response promised: the response cannot be completed. */
    open_pair(&p, 1 << 20, 0, 300);
    int fd = temp_file(100);
    struct reader r;
    reader_start(&r, p.peer, false);
    assert_int_equal(fdt__conn_sendfile_wait(p.c, fd, 0, 200), FDT_EPROTO);
    assert_true(p.c->dead);
    /* Dead: the next call fails at once. */
    assert_int_equal(fdt__conn_sendfile_wait(p.c, fd, 0, 10), FDT_ECLOSED);
    reader_join(&r, &p);
    assert_int_equal(r.got, 100);
    close(fd);
    close_pair(&p);

    /* Not a file. */
    open_pair(&p, 1 << 20, 0, 300);
    assert_int_equal(fdt__conn_sendfile_wait(p.c, -1, 0, 10), -EBADF);
    assert_true(p.c->dead);
    close_pair(&p);

    /* A client that takes nothing: the file waits send_timeout_ms, then gives up. */
    open_pair(&p, 1 << 20, 0, 300);
    fd = temp_file(1 << 20);
    assert_int_equal(fdt__conn_sendfile_wait(p.c, fd, 0, 1 << 20), FDT_ECLOSED);
    assert_true(p.c->dead);
    close(fd);
    close_pair(&p);

    /* ... also while what was buffered before the file is still waiting. */
    open_pair(&p, 1 << 20, 0, 300);
    unsigned char *data = pattern(1 << 18);
    assert_int_equal(fdt_conn_write(p.c, data, 1 << 18), 0);
    assert_true(p.c->out.len > 0);
    fd = temp_file(10);
    assert_int_equal(fdt__conn_sendfile_wait(p.c, fd, 0, 10), FDT_ECLOSED);
    free(data);
    close(fd);
    close_pair(&p);
}

static void test_read_wait(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p, 65536, 0, 0);
    char buf[16];
    _Atomic int64_t busy = 1234;
    fdt__conn_thread_busy(&busy);
    /* Nothing yet: without a deadline it says so at once; with one it waits until then. */
    assert_int_equal(fdt__conn_read_wait(p.c, buf, sizeof(buf), false, 0), FDT_EAGAIN);
    assert_int_equal(fdt__conn_read_wait(p.c, buf, sizeof(buf), false, fdt__now_ms() + 30),
                     FDT_ETIMEDOUT);
    /* The thread was marked as waiting for its client meanwhile, and busy again after. */
    assert_true(atomic_load(&busy) > 1234);
    fdt__conn_thread_busy(NULL);
    assert_int_equal(fdt__conn_read_wait(p.c, buf, sizeof(buf), false, fdt__now_ms() + 20),
                     FDT_ETIMEDOUT);
    assert_int_equal(fdt__conn_read_wait(p.c, buf, sizeof(buf), false, fdt__now_ms() - 1),
                     FDT_ETIMEDOUT);
    /* A peek leaves the bytes for the read. */
    assert_int_equal(send(p.peer, "abc", 3, 0), 3);
    assert_int_equal(fdt__conn_read_wait(p.c, buf, sizeof(buf), true, 0), 3);
    assert_int_equal(fdt__conn_read_wait(p.c, buf, sizeof(buf), false, 0), 3);
    assert_memory_equal(buf, "abc", 3);
    /* EOF. */
    shutdown(p.peer, SHUT_WR);
    assert_int_equal(fdt__conn_read_wait(p.c, buf, sizeof(buf), false, 0), 0);
    /* Closed by another thread: nothing is read any more. */
    t_enqueued = 0;
    fdt_conn_close(p.c);
    assert_int_equal(t_enqueued, 1); /* nobody ran it: handed to the loop */
    assert_int_equal(fdt__conn_read_wait(p.c, buf, sizeof(buf), false, 0), FDT_ECLOSED);
    fdt_conn_close(p.c); /* a second close does nothing */
    assert_int_equal(t_enqueued, 1);
    close_pair(&p);

    /* A descriptor recv(2) refuses (not a socket): the connection is unusable. */
    open_pair(&p, 65536, 0, 0);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    int sock = p.c->fd;
    p.c->fd = pipefd[0];
    assert_int_equal(fdt__conn_read_wait(p.c, buf, sizeof(buf), false, 0), FDT_ECLOSED);
    p.c->fd = sock;
    close(pipefd[0]);
    close(pipefd[1]);
    close_pair(&p);
}

/* A writer waiting for its client gives up when another thread closes the connection. */
static void *closer_main(void *arg)
{
    struct fdt_conn *c = arg;
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    fdt_conn_close(c);
    return NULL;
}

static void test_write_wait_ends_when_another_thread_closes(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p, 65536, 0, 60000);
    unsigned char *data = pattern(1 << 20);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, closer_main, p.c), 0);
    assert_int_equal(fdt__conn_write_wait(p.c, data, 1 << 20), FDT_ECLOSED);
    pthread_join(t, NULL);
    assert_true(p.c->closing);
    free(data);
    close_pair(&p);
}

static void test_collected_output_to_a_closed_peer(void **state)
{
    (void)state;
    struct pair p;
    /* Collected up to FDT_CONN_CORK_MAX, then sent: the peer is gone, the connection dies. */
    open_pair(&p, 1 << 20, 0, 0);
    close(p.peer);
    p.peer = -1;
    fdt__conn_cork(p.c);
    static char big[FDT_CONN_CORK_MAX];
    memset(big, 'x', sizeof(big));
    assert_int_equal(fdt__conn_write_wait(p.c, big, sizeof(big)), FDT_ECLOSED);
    assert_true(p.c->dead);
    close_pair(&p);
    /* Collected, and sent at uncork. */
    open_pair(&p, 1 << 20, 0, 0);
    close(p.peer);
    p.peer = -1;
    fdt__conn_cork(p.c);
    assert_int_equal(fdt_conn_write(p.c, "abc", 3), 0);
    fdt__conn_uncork(p.c);
    assert_true(p.c->dead);
    close_pair(&p);
}

/* A connection with a TLS session whose handshake is not done (the session is never
 * touched on these paths: a stand-in pointer). */
static char t_fake_tls;

static void fake_tls(struct pair *p, bool on)
{
    p->c->tls = on ? (struct fdt_tls *)(void *)&t_fake_tls : NULL;
}

static void test_tls_output_before_the_handshake_waits(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p, 65536, 0, 0);
    fake_tls(&p, true);
    /* Nothing goes out before the handshake: the bytes wait in the output buffer. */
    assert_int_equal(fdt_conn_write(p.c, "abc", 3), 0);
    assert_int_equal(p.c->out.len, 3);
    fake_tls(&p, false);
    close_pair(&p);
    /* ... and when that buffer cannot be allocated, the connection is closed: the bytes
     * TLS was offered cannot be offered again. */
    open_pair(&p, 65536, 0, 0);
    fake_tls(&p, true);
    alloc_fault_arm(1, false);
    int rc = fdt_conn_write(p.c, "abc", 3);
    assert_true(alloc_fault_hit());
    alloc_fault_disarm();
    assert_int_equal(rc, FDT_ENOMEM);
    assert_true(p.c->dead);
    assert_int_equal(p.c->out.len, 0);
    fake_tls(&p, false);
    close_pair(&p);
}

static void test_tls_file_in_blocks_failures(void **state)
{
    (void)state;
    struct pair p;
    int fd = temp_file(100);
    /* No memory for the block buffer. */
    open_pair(&p, 65536, 0, 0);
    fake_tls(&p, true);
    alloc_fault_arm(1, false);
    int rc = fdt__conn_sendfile_wait(p.c, fd, 0, 10);
    alloc_fault_disarm();
    assert_int_equal(rc, FDT_ENOMEM);
    fake_tls(&p, false);
    close_pair(&p);
    /* The file ends before the promised length. */
    open_pair(&p, 65536, 0, 0);
    fake_tls(&p, true);
    assert_int_equal(fdt__conn_sendfile_wait(p.c, fd, 100, 10), FDT_EPROTO);
    assert_true(p.c->dead);
    fake_tls(&p, false);
    close_pair(&p);
    /* Not a file. */
    open_pair(&p, 65536, 0, 0);
    fake_tls(&p, true);
    assert_int_equal(fdt__conn_sendfile_wait(p.c, -1, 0, 10), -EBADF);
    assert_true(p.c->dead);
    fake_tls(&p, false);
    close_pair(&p);
    close(fd);
}

static int t_handoff_rc;
static int t_handoffs;
static int t_released;

static int t_handoff(struct fdt_conn_loop *loop, struct fdt_conn *c)
{
    (void)loop;
    (void)c;
    t_handoffs++;
    return t_handoff_rc;
}

static void t_release(struct fdt_conn_loop *loop, struct fdt_conn *c)
{
    (void)loop;
    t_released++;
    fdt__conn_destroy(c);
}

static void test_run_edges(void **state)
{
    (void)state;
    struct pair p;
    /* A transaction timeout for a connection without a transaction: nothing to roll back,
     * the connection is armed again. */
    open_pair(&p, 65536, 0, 0);
    t_loop.transaction_timeout_ms = 1;
    p.c->running = true;
    p.c->pending = FDT_EV_TXN_TIMEOUT;
    fdt__conn_run(p.c);
    assert_true(p.c->armed && !p.c->closed && !p.c->running);
    close_pair(&p);

    /* Retiring for a successor: an idle connection goes on there, or, when the hand-over
     * fails, is just closed. */
    static struct fdt_proto handoff_proto = {.name = "test", .handoff = true};
    for (int i = 0; i < 2; i++) {
        open_pair(&p, 65536, 0, 0);
        p.c->proto = &handoff_proto;
        t_loop.handoff = t_handoff;
        t_loop.release = t_release;
        atomic_store(&t_loop.draining, true);
        atomic_store(&t_loop.retiring, true);
        atomic_store(&t_open, 1);
        t_handoff_rc = i == 0 ? 0 : FDT_ECLOSED;
        t_handoffs = t_released = 0;
        p.c->served = true;
        p.c->running = true;
        p.c->pending = FDT_EV_DRAIN;
        fdt__conn_run(p.c); /* tears down and releases the connection */
        assert_int_equal(t_handoffs, 1);
        assert_int_equal(t_released, 1);
        assert_int_equal(atomic_load(&t_loop.handed_off), i == 0 ? 1 : 0);
        assert_int_equal(atomic_load(&t_open), 0);
        close(p.peer);
        close(t_loop.epfd);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_wait_stays_within_the_output_budget),
        cmocka_unit_test(test_write_wait_gives_up_on_a_client_that_takes_nothing),
        cmocka_unit_test(test_write_wait_out_of_memory),
        cmocka_unit_test(test_sendfile_after_buffered_output),
        cmocka_unit_test(test_sendfile_failures),
        cmocka_unit_test(test_read_wait),
        cmocka_unit_test(test_write_wait_ends_when_another_thread_closes),
        cmocka_unit_test(test_collected_output_to_a_closed_peer),
        cmocka_unit_test(test_tls_output_before_the_handshake_waits),
        cmocka_unit_test(test_tls_file_in_blocks_failures),
        cmocka_unit_test(test_run_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

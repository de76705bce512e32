#include "fdt_config.h"

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
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* fdt__fd_cloexec sets and clears FD_CLOEXEC (a binary upgrade hands its listening sockets
 * to the new master through exec with it cleared), and reports a bad descriptor. */
static void test_fd_cloexec(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fdt__fd_cloexec(p[0], true), 0);
    assert_true(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
    assert_int_equal(fdt__fd_cloexec(p[0], false), 0);
    assert_false(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
    close(p[0]);
    close(p[1]);
    assert_int_equal(fdt__fd_cloexec(p[0], true), -EBADF);
}

/* fdt__write_all carries on after a signal handler interrupted it (an application may
 * install one without SA_RESTART): a write blocked on a full pipe is interrupted by a
 * bounded number of signals, then a reader drains the pipe; every byte arrives once, in
 * order. */
static volatile sig_atomic_t usr1_seen;

static void on_usr1(int sig)
{
    (void)sig;
    usr1_seen++;
}

struct eintr_reader {
    pthread_t writer;
    int fd;
    size_t expect;
    size_t got;
    size_t bad; /* bytes of the data part not where they should be */
    size_t prefill;
};

static void *eintr_read(void *arg)
{
    struct eintr_reader *r = arg;
    for (int i = 0; i < 20; i++) {
        pthread_kill(r->writer, SIGUSR1);
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    char buf[4096];
    while (r->got < r->expect) {
        ssize_t n = read(r->fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            size_t at = r->got + (size_t)i;
            char want = at < r->prefill ? 'p' : (char)('a' + (at - r->prefill) % 26);
            r->bad += buf[i] != want;
        }
        r->got += (size_t)n;
    }
    return NULL;
}

static void test_write_all_interrupted(void **state)
{
    (void)state;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1; /* no SA_RESTART: a blocked write fails with EINTR */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    /* Fill the pipe, so that the write below blocks. */
    assert_int_equal(fdt__fd_nonblock(p[1], true), 0);
    char fill[4096];
    memset(fill, 'p', sizeof(fill));
    size_t prefill = 0;
    ssize_t n;
    while ((n = write(p[1], fill, sizeof(fill))) > 0)
        prefill += (size_t)n;
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(fdt__fd_nonblock(p[1], false), 0);
    char data[4096];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    struct eintr_reader r = {
        .writer = pthread_self(), .fd = p[0], .expect = prefill + sizeof(data), .prefill = prefill};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, eintr_read, &r), 0);
    assert_int_equal(fdt__write_all(p[1], data, sizeof(data)), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(r.got, prefill + sizeof(data));
    assert_int_equal(r.bad, 0);
    assert_true(usr1_seen >= 1);
    close(p[0]);
    close(p[1]);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_cloexec),
        cmocka_unit_test(test_write_all_interrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

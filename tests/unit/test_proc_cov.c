#include "fdt_config.h"

#include "fdt/error.h"
#include "proc/proc.h"

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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* With the descriptor table full, the channel cannot be made: the error is EMFILE (the
 * master logs it and starts no worker), and nothing is left open. */
static void test_channel_pair_without_descriptors(void **state)
{
    (void)state;
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int probe = dup(0);
    assert_true(probe >= 0);
    close(probe);
    struct rlimit low = {.rlim_cur = (rlim_t)probe + 1, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fds[2] = {-1, -1};
    int rc = fdt__channel_pair(fds); /* one descriptor free: a pair needs two */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, -EMFILE);
    assert_int_equal(dup(0), probe); /* the lowest free descriptor is still free */
    close(probe);
}

/* A message with two descriptors: the receiver gets the first, the second is closed (a
 * message carries at most one on purpose). Without a place for one, both are closed. */
static void test_channel_extra_descriptors_closed(void **state)
{
    (void)state;
    int ch[2], p[2], q[2];
    assert_int_equal(fdt__channel_pair(ch), 0);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(pipe(q), 0);
    struct fdt_msg m = {.type = FDT_MSG_CONN};
    strcpy(m.text, "main");
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int two[2] = {p[1], q[1]};
    memcpy(CMSG_DATA(cm), two, sizeof(two));
    assert_int_equal(sendmsg(ch[1], &mh, 0), (ssize_t)sizeof(m));
    assert_int_equal(sendmsg(ch[1], &mh, 0), (ssize_t)sizeof(m));
    close(p[1]);
    close(q[1]);

    struct fdt_msg got;
    int fd = -2;
    assert_int_equal(fdt__channel_recv_fd(ch[0], &got, &fd), 1);
    assert_int_equal(got.type, FDT_MSG_CONN);
    assert_string_equal(got.text, "main");
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(write(fd, "x", 1), 1); /* the first pipe's write end */
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(fd);
    /* fdt__channel_recv wants none: both descriptors of the second message are closed, and
     * so was the first message's second one: no write end of either pipe is left. */
    assert_int_equal(fdt__channel_recv(ch[0], &got), 1);
    assert_int_equal(read(p[0], &c, 1), 0);
    assert_int_equal(read(q[0], &c, 1), 0);
    close(p[0]);
    close(q[0]);
    close(ch[0]);
    close(ch[1]);
}

/* Credentials that come with a message (SO_PASSCRED, which fdtserver never sets) are not
 * descriptors: skipped, the message is read. */
static void test_channel_other_control_messages_skipped(void **state)
{
    (void)state;
    int ch[2];
    assert_int_equal(fdt__channel_pair(ch), 0);
    int one = 1;
    assert_int_equal(setsockopt(ch[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
    assert_int_equal(fdt__channel_send(ch[1], FDT_MSG_RECYCLE, 7, "why"), 0);
    struct fdt_msg got;
    int fd = 5;
    assert_int_equal(fdt__channel_recv_fd(ch[0], &got, &fd), 1);
    assert_int_equal(got.type, FDT_MSG_RECYCLE);
    assert_int_equal(got.arg, 7);
    assert_string_equal(got.text, "why");
    assert_int_equal(fd, -1);
    close(ch[0]);
    close(ch[1]);
}

/* A short message (a peer of another build, or nonsense) reads as a message whose missing
 * part is zero: no text left over from the caller's buffer. */
static void test_channel_short_message_zero_filled(void **state)
{
    (void)state;
    int ch[2];
    assert_int_equal(fdt__channel_pair(ch), 0);
    uint32_t type = FDT_MSG_READY;
    assert_int_equal(send(ch[1], &type, sizeof(type), 0), (ssize_t)sizeof(type));
    struct fdt_msg got;
    memset(&got, 'x', sizeof(got));
    assert_int_equal(fdt__channel_recv(ch[0], &got), 1);
    assert_int_equal(got.type, FDT_MSG_READY);
    assert_int_equal(got.arg, 0);
    assert_string_equal(got.text, "");
    /* Then nothing more, then the end. */
    assert_int_equal(fdt__channel_recv(ch[0], &got), FDT_EAGAIN);
    close(ch[1]);
    assert_int_equal(fdt__channel_recv(ch[0], &got), 0);
    close(ch[0]);
}

/* Errors other than "nothing yet" come back as -errno. */
static void test_channel_errors(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct fdt_msg got;
    assert_int_equal(fdt__channel_recv(p[0], &got), -ENOTSOCK);
    assert_int_equal(fdt__channel_send(p[1], FDT_MSG_READY, 0, ""), -ENOTSOCK);
    close(p[0]);
    close(p[1]);
    int ch[2];
    assert_int_equal(fdt__channel_pair(ch), 0);
    close(ch[0]);
    assert_int_equal(fdt__channel_send(ch[1], FDT_MSG_READY, 0, "x"), -EPIPE);
    close(ch[1]);
}

struct sum_arg {
    struct fdt_scoreboard *sb;
    struct fdt_counters out;
    uint64_t requests;
};

static void *sum_thread(void *p)
{
    struct sum_arg *a = p;
    fdt__scoreboard_sum(a->sb, &a->out, &a->requests);
    return NULL;
}

/* A reader that meets a fold in progress (fold_seq odd) waits for it to end, and then sums
 * what the fold left: it never returns a half-moved count. */
static void test_scoreboard_sum_waits_for_a_fold(void **state)
{
    (void)state;
    struct fdt_scoreboard *sb = fdt__scoreboard_new();
    assert_non_null(sb);
    int slot = fdt__scoreboard_claim(sb, 1, 0, 1);
    assert_true(slot >= 0);
    atomic_store(&sb->master.fold_seq, 1); /* a fold begun */
    atomic_store(&sb->retired_requests, 5);
    struct sum_arg a = {.sb = sb};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sum_thread, &a), 0);
    usleep(50 * 1000); /* not an assertion: lets the reader meet the odd count */
    atomic_store(&sb->retired_requests, 12);
    atomic_store(&sb->master.fold_seq, 2); /* the fold ended */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.requests, 12);
    fdt__scoreboard_release(sb, slot);
    fdt__scoreboard_free(sb);
}

/* Every slot taken (4 generations of 128 workers alive at once): a claim says so with -1,
 * and a slot freed is the next one claimed. */
static void test_scoreboard_full(void **state)
{
    (void)state;
    struct fdt_scoreboard *sb = fdt__scoreboard_new();
    assert_non_null(sb);
    for (int i = 0; i < FDT_MAX_SLOTS; i++)
        assert_int_equal(fdt__scoreboard_claim(sb, 1, (unsigned)i % FDT_MAX_WORKERS, 1), i);
    assert_int_equal(fdt__scoreboard_claim(sb, 2, 0, 1), -1);
    fdt__scoreboard_release(sb, 17);
    assert_int_equal(fdt__scoreboard_claim(sb, 2, 0, 1), 17);
    assert_int_equal(sb->slots[17].generation, 2);
    fdt__scoreboard_free(sb);
}

/* A slot number out of range (a worker that never got one) folds nothing; a request of an
 * unknown protocol or class, or counted without counters, counts nothing; a duration below
 * zero (a clock stepped back) counts as 0 us in the first bucket. */
static void test_scoreboard_bounds(void **state)
{
    (void)state;
    struct fdt_scoreboard *sb = fdt__scoreboard_new();
    assert_non_null(sb);
    int slot = fdt__scoreboard_claim(sb, 1, 0, 1);
    atomic_store(&sb->slots[slot].requests, 3);
    fdt__scoreboard_fold(sb, -1);
    fdt__scoreboard_fold(sb, FDT_MAX_SLOTS);
    assert_int_equal(atomic_load(&sb->slots[slot].requests), 3);
    assert_int_equal(atomic_load(&sb->retired_requests), 0);
    assert_int_equal(atomic_load(&sb->master.fold_seq), 0);

    struct fdt_counters *c = &sb->slots[slot].counters;
    fdt__counters_request(NULL, FDT_MPROTO_HTTP, FDT_MCLASS_OK, 5);
    fdt__counters_request(c, FDT_MPROTO_N, FDT_MCLASS_OK, 5);
    fdt__counters_request(c, FDT_MPROTO_HTTP, FDT_MCLASS_N, 5);
    fdt__counters_request(c, (enum fdt_metric_proto) - 1, FDT_MCLASS_OK, 5);
    for (int p = 0; p < FDT_MPROTO_N; p++)
        for (int k = 0; k < FDT_MCLASS_N; k++)
            assert_int_equal(atomic_load(&c->requests[p][k]), 0);
    fdt__counters_request(c, FDT_MPROTO_RAW, FDT_MCLASS_OK, -250);
    assert_int_equal(atomic_load(&c->requests[FDT_MPROTO_RAW][FDT_MCLASS_OK]), 1);
    assert_int_equal(atomic_load(&c->duration_bucket[FDT_MPROTO_RAW][0]), 1);
    assert_int_equal(atomic_load(&c->duration_us[FDT_MPROTO_RAW]), 0);
    fdt__scoreboard_free(sb);
}

static int drain_fd = -1;
static volatile sig_atomic_t drained;

static void drain_on_alarm(int sig)
{
    (void)sig;
    int saved = errno; /* the interrupted send's EINTR must reach it */
    struct fdt_msg m;
    while (recv(drain_fd, &m, sizeof(m), MSG_DONTWAIT) > 0)
        drained++;
    errno = saved;
}

/* A blocking send on a full channel interrupted by a signal whose handler has no SA_RESTART
 * (an application's, in a worker) is sent again, not lost as EINTR. */
static void test_channel_send_interrupted(void **state)
{
    (void)state;
    int ch[2];
    assert_int_equal(fdt__channel_pair(ch), 0);
    int queued = 0;
    while (fdt__channel_send_fd(ch[1], FDT_MSG_READY, (uint32_t)queued, "", -1, MSG_DONTWAIT) == 0)
        queued++;
    assert_true(queued > 0);
    drain_fd = ch[0];
    drained = 0;
    struct sigaction sa = {.sa_handler = drain_on_alarm}, old;
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = 50 * 1000}};
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    assert_int_equal(fdt__channel_send(ch[1], FDT_MSG_FAILED, 99, "last"), 0);
    assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
    assert_int_equal(drained, queued);
    struct fdt_msg got;
    assert_int_equal(fdt__channel_recv(ch[0], &got), 1);
    assert_int_equal(got.type, FDT_MSG_FAILED);
    assert_int_equal(got.arg, 99);
    assert_string_equal(got.text, "last");
    close(ch[0]);
    close(ch[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channel_pair_without_descriptors),
        cmocka_unit_test(test_channel_extra_descriptors_closed),
        cmocka_unit_test(test_channel_other_control_messages_skipped),
        cmocka_unit_test(test_channel_short_message_zero_filled),
        cmocka_unit_test(test_channel_errors),
        cmocka_unit_test(test_scoreboard_sum_waits_for_a_fold),
        cmocka_unit_test(test_scoreboard_full),
        cmocka_unit_test(test_scoreboard_bounds),
        cmocka_unit_test(test_channel_send_interrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

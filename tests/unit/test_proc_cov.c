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
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channel_pair_without_descriptors),
        cmocka_unit_test(test_channel_extra_descriptors_closed),
        cmocka_unit_test(test_channel_other_control_messages_skipped),
        cmocka_unit_test(test_channel_short_message_zero_filled),
        cmocka_unit_test(test_channel_errors),
        cmocka_unit_test(test_scoreboard_sum_waits_for_a_fold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "fdt_config.h"

#include "log/log.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Log rotation (SIGUSR1) reopens the error log while other threads write to it. The
 * descriptor those threads hold must never be closed: its number could be given to a new
 * socket or database connection, which would then receive log lines. */

static char dir[64];

static void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

static size_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/fdt-log-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    char path[128];
    fdt__log_open(NULL);
    path_of(path, sizeof(path), "error.log");
    unlink(path);
    path_of(path, sizeof(path), "error.log.1");
    unlink(path);
    snprintf(cmd, sizeof(cmd), "%s", dir);
    rmdir(cmd);
    return 0;
}

/* The number lines are written to is the same before and after a reopen, and lines
 * written after it land in the new file. */
static void test_reopen_keeps_descriptor(void **state)
{
    (void)state;
    char path[128], rotated[128];
    path_of(path, sizeof(path), "error.log");
    path_of(rotated, sizeof(rotated), "error.log.1");
    assert_int_equal(fdt__log_open(path), 0);
    int fd = fdt__log_fd();
    fdt_log(FDT_LOG_ERROR, "before rotation");
    assert_int_equal(rename(path, rotated), 0);
    assert_int_equal(fdt__log_reopen(), 0);
    assert_int_equal(fdt__log_fd(), fd);
    assert_true(fcntl(fd, F_GETFD) >= 0);
    fdt_log(FDT_LOG_ERROR, "after rotation");
    assert_true(file_size(path) > 0);
    size_t old = file_size(rotated);
    fdt_log(FDT_LOG_ERROR, "more");
    assert_int_equal(file_size(rotated), old);
}

static atomic_bool stop;

static void *writer(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop))
        fdt_log(FDT_LOG_ERROR, "a line from a writer thread");
    return NULL;
}

/* Reopens racing with writers: a socket created after each reopen never receives a log
 * line (before the fix, it could get the closed descriptor's number). */
static void test_reopen_race_never_feeds_a_socket(void **state)
{
    (void)state;
    char path[128];
    path_of(path, sizeof(path), "error.log");
    assert_int_equal(fdt__log_open(path), 0);
    pthread_t th[2];
    atomic_store(&stop, false);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer, NULL), 0);
    int leaked = 0;
    for (int i = 0; i < 200; i++) {
        assert_int_equal(fdt__log_reopen(), 0);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        usleep(200);
        char buf[256];
        if (recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT) > 0)
            leaked++;
        close(sv[0]);
        close(sv[1]);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(leaked, 0);
}

int main(void)
{
    fdt__log_set_level(FDT_LOG_DEBUG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reopen_keeps_descriptor),
        cmocka_unit_test(test_reopen_race_never_feeds_a_socket),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

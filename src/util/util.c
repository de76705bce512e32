#include "fdt_config.h"

#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* GCOVR_EXCL_START: unreachable: runs only when an FDT_ASSERT fails, that is on a bug; it
 * aborts, so a coverage run could not count it even then. */
void fdt__assert_fail(const char *expr, const char *file, int line)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "FATAL %d assertion failed: %s at %s:%d\n", (int)getpid(),
                     expr, file, line);
    if (n > 0)
        (void)!write(STDERR_FILENO, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    abort();
}
/* GCOVR_EXCL_STOP */

#if FDT_COVERAGE
/* From libgcov (linked by --coverage): writes the counters of every instrumented object
 * (executable and shared objects alike) and marks them written, so exit() does not repeat it. */
extern void __gcov_dump(void);
#endif

void fdt__exit(int code)
{
#if FDT_COVERAGE
    __gcov_dump();
#endif
    _exit(code); /* GCOVR_EXCL_LINE: unreachable: runs, but is never counted: the counters were
                    written just above */
}

int64_t fdt__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t fdt__now_ms(void)
{
    return fdt__now_ns() / 1000000;
}

int64_t fdt__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fdt__fd_nonblock(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -errno;
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (fcntl(fd, F_SETFL, flags) < 0)
        return -errno; /* GCOVR_EXCL_LINE: unreachable: F_GETFL succeeded, so fd is valid and takes
                          O_NONBLOCK */
    return 0;
}

int fdt__fd_cloexec(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0)
        return -errno;
    flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    if (fcntl(fd, F_SETFD, flags) < 0)
        return -errno; /* GCOVR_EXCL_LINE: unreachable: F_GETFD succeeded, so fd is valid and takes
                          the flag */
    return 0;
}

void fdt__close(int fd)
{
    if (fd < 0)
        return;
    int saved = errno;
    close(fd);
    errno = saved;
}

int fdt__write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue; /* no fdtserver process installs a signal handler (signals are
                           * read through signalfd); an application's could */
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fdt__strlcpy(char *dst, const char *src, size_t dst_size)
{
    size_t n = strlen(src);
    if (dst_size == 0)
        return FDT_ELIMIT;
    if (n >= dst_size) {
        memcpy(dst, src, dst_size - 1);
        dst[dst_size - 1] = '\0';
        return FDT_ELIMIT;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

char *fdt__strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int fdt__parse_long(const char *s, long min, long max, long *out)
{
    if (!s || !*s)
        return FDT_EINVAL;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return FDT_EINVAL;
    *out = v;
    return 0;
}

int fdt__parse_double(const char *s, double min, double max, double *out)
{
    if (!s || !*s)
        return FDT_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || isnan(v) || v < min || v > max)
        return FDT_EINVAL;
    *out = v;
    return 0;
}

int fdt__parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"yes", "true", "on", "1"};
    static const char *no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < FDT_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return FDT_EINVAL;
}

int fdt__parse_size(const char *s, size_t min, size_t max, size_t *out)
{
    if (!s || !*s || *s == '-')
        return FDT_EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return FDT_EINVAL;
    unsigned long long mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1024ULL;
    else if (*end == 'm' || *end == 'M')
        mult = 1024ULL * 1024;
    else if (*end == 'g' || *end == 'G')
        mult = 1024ULL * 1024 * 1024;
    if (mult != 1)
        end++;
    if (*end != '\0' || v > ULLONG_MAX / mult)
        return FDT_EINVAL;
    v *= mult;
    if (v < min || v > max)
        return FDT_EINVAL;
    *out = (size_t)v;
    return 0;
}

/* Small helpers shared by every module: time, file descriptors, strings, errors. */
#ifndef FDT_SRC_UTIL_H
#define FDT_SRC_UTIL_H

#include <fdt/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FDT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The one rule for a public descriptor an application fills (struct fdt_app,
 * fdt_http_app, fdt_http_resource_type, fdt_jsonrpc_app): its abi_version is its header's
 * FDT_<X>_ABI_VERSION and its size covers at least every field before the reserved slots
 * (new fields take reserved room, so an application built against an older header of the
 * same ABI still passes). */
#define FDT_ABI_OK(p, version, type)                                                               \
    ((p)->abi_version == (version) && (p)->size >= offsetof(type, reserved))

/* Always-on assertion for programming errors, never for client input. */
#define FDT_ASSERT(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fdt__assert_fail(#cond, __FILE__, __LINE__);                                           \
    } while (0)

__attribute__((noreturn)) void fdt__assert_fail(const char *expr, const char *file, int line);

/* _exit(code) for every process that leaves without running atexit handlers (a worker, or
 * a forked child that execs nothing). In a coverage build (FDT_COVERAGE, set from meson's
 * b_coverage) it first writes the gcov counters of every instrumented object in the process,
 * which _exit would skip. Use it instead of _exit everywhere in src/.
 * Thread: any. Async-signal-safe: yes, except in a coverage build. */
__attribute__((noreturn)) void fdt__exit(int code);

/* Monotonic clock in milliseconds and in nanoseconds. */
int64_t fdt__now_ms(void);
int64_t fdt__now_ns(void);
/* Wall clock in milliseconds since the epoch. */
int64_t fdt__wall_ms(void);

/* Set or clear O_NONBLOCK. Returns 0 or -errno. */
int fdt__fd_nonblock(int fd, bool on);
/* Set or clear FD_CLOEXEC. Returns 0 or -errno. */
int fdt__fd_cloexec(int fd, bool on);
/* close() that keeps errno and ignores EINTR. */
void fdt__close(int fd);
/* Write all of buf to a blocking fd (used for logs and pipes). Returns 0 or -errno. */
int fdt__write_all(int fd, const void *buf, size_t len);

/* Copy src into dst (size dst_size), always NUL-terminated. Returns FDT_ELIMIT if cut. */
int fdt__strlcpy(char *dst, const char *src, size_t dst_size);
/* strdup that returns NULL on failure. */
char *fdt__strdup(const char *s);

/* Parse a whole string as a number in [min, max]. Returns 0 or FDT_EINVAL. */
int fdt__parse_long(const char *s, long min, long max, long *out);
int fdt__parse_double(const char *s, double min, double max, double *out);
/* Parse yes/no/true/false/on/off/1/0. */
int fdt__parse_bool(const char *s, bool *out);
/* Parse a size with optional k/m/g suffix (powers of 1024). */
int fdt__parse_size(const char *s, size_t min, size_t max, size_t *out);

#endif

/* Internal side of logging: where lines go, and the per-process prefix.
 *
 * fdt_log_write() formats each event as one line and writes it with one write(2):
 *
 *     2026-11-26T09:15:02.123Z WARN 4242 worker/3 http: message
 *
 * that is the UTC time with milliseconds, the level (ERROR, WARN, INFO, DEBUG), the pid,
 * role/generation as set by fdt__log_set_role() ("main/0" until it is called), the module
 * (FDT_LOG_MODULE, "-" when NULL), then the message. Newlines and carriage returns in the
 * message become spaces; a longer line is cut to 2047 bytes, newline included. */
#ifndef FDT_SRC_LOG_H
#define FDT_SRC_LOG_H

#include <fdt/log.h>

/* Set the threshold from a name (error, warn, info, debug). Returns 0 or FDT_EINVAL. */
int fdt__log_level_parse(const char *name, int *level);
void fdt__log_set_level(int level);
/* Role ("master", "worker"; at most 15 bytes) and generation, shown on each line as
 * "role/generation". Thread: main, before other threads start. */
void fdt__log_set_role(const char *role, unsigned generation);
/* Send lines to path (appended), or to stderr when path is NULL or empty. Returns 0 or
 * -errno; on error the previous destination is kept. Thread: main. */
int fdt__log_open(const char *path);
/* Reopen the current file (SIGUSR1, after log rotation). */
int fdt__log_reopen(void);
/* The fd lines are written to (for handing to children). */
int fdt__log_fd(void);

#endif

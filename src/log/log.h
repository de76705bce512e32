/* Internal side of logging: where lines go, and the per-process prefix. */
#ifndef FDT_LOG_INT_H
#define FDT_LOG_INT_H

#include <fdt/log.h>

/* Set the threshold from a name (error, warn, info, debug). Returns 0 or FDT_EINVAL. */
int fdt__log_level_parse(const char *name, int *level);
void fdt__log_set_level(int level);
/* Role and generation shown on each line ("master", "worker"). */
void fdt__log_set_role(const char *role, unsigned generation);
/* Send lines to path (appended), or to stderr when path is NULL or empty. Returns 0 or
 * -errno; on error the previous destination is kept. Thread: main. */
int fdt__log_open(const char *path);
/* Reopen the current file (SIGUSR1, after log rotation). */
int fdt__log_reopen(void);
/* The fd lines are written to (for handing to children). */
int fdt__log_fd(void);

#endif

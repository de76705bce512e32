/* Logging: one line per event, "TIME LEVEL pid role/gen module: message", one write(2) per
 * line (src/log/log.h shows the exact format). */
#ifndef FDT_LOG_H
#define FDT_LOG_H

#include <fdt/common.h>

enum fdt_log_level {
    FDT_LOG_ERROR = 0,
    FDT_LOG_WARN = 1,
    FDT_LOG_INFO = 2,
    FDT_LOG_DEBUG = 3,
};

/* Current threshold; messages above it are skipped. Thread: any. */
FDT_API int fdt_log_threshold(void);

/* Write one log line. Use the fdt_log() macro instead. Thread: any. */
FDT_API void fdt_log_write(int level, const char *module, const char *fmt, ...) FDT_PRINTF(3, 4);

#ifndef FDT_LOG_MODULE
#define FDT_LOG_MODULE "app"
#endif

#define fdt_log(level, ...)                                                                        \
    do {                                                                                           \
        if ((level) > fdt_log_threshold())                                                         \
            break;                                                                                 \
        fdt_log_write((level), FDT_LOG_MODULE, __VA_ARGS__);                                       \
    } while (0)

#endif

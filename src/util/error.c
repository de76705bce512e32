#include "fdt_config.h"

#include "util/util.h"

#include <fdt/fdt.h>
#include <stdarg.h>
#include <string.h>

const char *fdt_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case FDT_ECONFIG:
        return "configuration error";
    case FDT_EPROTO:
        return "protocol error";
    case FDT_ELIMIT:
        return "limit reached";
    case FDT_ETXNSTATE:
        return "operation not valid in this transaction state";
    case FDT_EAPP:
        return "application failed";
    case FDT_ERANDOM:
        return "random source failed";
    case FDT_EOUTCOME:
        return "outcome unknown";
    case FDT_ERETRY:
        return "conflict, try again";
    case FDT_EDB:
        return "database error";
    case FDT_EDOWN:
        return "database unavailable";
    default:
        break;
    }
    if (code < 0 && code > FDT_EBASE)
        return strerrordesc_np(-code) ? strerrordesc_np(-code) : "unknown error";
    return "unknown error";
}

int fdt_error_set(struct fdt_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    /* One line, whatever the message holds (database errors come with newlines). */
    size_t n = strlen(err->msg);
    while (n > 0 && (err->msg[n - 1] == '\n' || err->msg[n - 1] == '\r' || err->msg[n - 1] == ' '))
        err->msg[--n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (err->msg[i] == '\n' || err->msg[i] == '\r' || err->msg[i] == '\t')
            err->msg[i] = ' ';
    }
    return code;
}

const char *fdt_version(void)
{
    return FDT_VERSION;
}

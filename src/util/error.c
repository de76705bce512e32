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
    return code;
}

const char *fdt_version(void)
{
    return FDT_VERSION;
}

/* Error codes: 0 or a negative number. Where errno fits, the code is -errno. */
#ifndef FDT_ERROR_H
#define FDT_ERROR_H

#include <errno.h>
#include <fdt/common.h>

#define FDT_OK        0
#define FDT_ENOMEM    (-ENOMEM)
#define FDT_EINVAL    (-EINVAL)
#define FDT_EAGAIN    (-EAGAIN)
#define FDT_ENOENT    (-ENOENT)
#define FDT_ECLOSED   (-EPIPE)
#define FDT_ETIMEDOUT (-ETIMEDOUT)

/* Our own codes live in a reserved block far above errno values. */
#define FDT_EBASE     (-10000)
#define FDT_ECONFIG   (FDT_EBASE - 1)  /* bad configuration */
#define FDT_EPROTO    (FDT_EBASE - 2)  /* peer broke the protocol */
#define FDT_ELIMIT    (FDT_EBASE - 3)  /* a configured limit was reached */
#define FDT_ETXNSTATE (FDT_EBASE - 4)  /* operation not valid in this transaction state */
#define FDT_EAPP      (FDT_EBASE - 5)  /* the application failed to load or start */
#define FDT_ERANDOM   (FDT_EBASE - 6)  /* the random source failed */
#define FDT_EOUTCOME  (FDT_EBASE - 7)  /* a commit whose outcome is unknown: recovery ends it */
#define FDT_ERETRY    (FDT_EBASE - 20) /* a conflict (serialization, deadlock, busy): retry */
#define FDT_EDB       (FDT_EBASE - 21) /* the database refused the statement */
#define FDT_EDOWN     (FDT_EBASE - 22) /* no connection to the database */

/* A detailed error that a person must act on (configuration, app loading). */
struct fdt_error {
    int code;
    char msg[256];
    const char *file; /* borrowed; may be NULL */
    int line;         /* 0 when not applicable */
};

/* Text for an error code. Never NULL. Thread: any. Async-signal-safe: yes. */
FDT_API const char *fdt_strerror(int code);

/* Fill err (may be NULL) with code and a formatted message. Returns code. */
FDT_API int fdt_error_set(struct fdt_error *err, int code, const char *fmt, ...) FDT_PRINTF(3, 4);

#endif

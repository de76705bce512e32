/* Umbrella header for fdtserver applications. */
#ifndef FDT_FDT_H
#define FDT_FDT_H

#include <fdt/app.h>
#include <fdt/code.h>
#include <fdt/common.h>
#include <fdt/conn.h>
#include <fdt/error.h>
#include <fdt/http.h>
#include <fdt/json.h>
#include <fdt/log.h>
#include <fdt/txn.h>

/* The version of libfdt, e.g. "0.1.0". */
FDT_API const char *fdt_version(void);

/* Entry point of the fdtserver binary; its main() only calls this. */
FDT_API int fdt_server_main(int argc, char **argv);

/* Entry point of `fdtserver txn ...`, which the fdtserver binary's main() calls instead of
 * fdt_server_main: argv[0] is "txn", then list | commit GID | rollback GID and -c FILE.
 * Returns the exit status. */
FDT_API int fdt_server_txn_main(int argc, char **argv);

#endif

/* `fdtserver txn list [--node NAME]|commit GID|rollback GID`: in-doubt transactions of
 * every node sharing the databases (or of one), from the command line (design §2),
 * talking to the databases directly, never to the master. */
#ifndef FDT_SRC_TXN_CLI_H
#define FDT_SRC_TXN_CLI_H

#include "config/config.h"

/* argv: the words after "txn". Returns the process exit status. */
int fdt__txn_cli(const struct fdt_cfg *cfg, int argc, char **argv);

#endif

/* Fault points for tests: end the worker at an exact step of a transaction.
 *
 * Compiled in only when meson's fault_points option is on (off by default; the Makefile's
 * test builds turn it on). A test writes the name of a point into the
 * file named by the environment variable FDT_FAULT_FILE; the first transaction that
 * reaches that point removes the file and kills its worker with SIGKILL ("NAME"), or
 * pauses there for MS milliseconds ("NAME sleep MS"). */
#ifndef FDT_SRC_TXN_FAULT_H
#define FDT_SRC_TXN_FAULT_H

#include "fdt_config.h"

#if FDT_FAULT_POINTS
void fdt__txn_fault(const char *name);
#define FDT_FAULT_POINT(name) fdt__txn_fault(name)
#else
#define FDT_FAULT_POINT(name)                                                                      \
    do {                                                                                           \
    } while (0)
#endif

#endif

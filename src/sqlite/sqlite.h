/* The SQLite driver is a module (fdt_rm_sqlite.so) reached through its vtable (txn/rm.h);
 * this header only declares what its unit test needs beyond the vtable. */
#ifndef FDT_SRC_SQLITE_H
#define FDT_SRC_SQLITE_H

/* How many requests wait for the turn on the group-commit writer of session's resource
 * (0 without group commit). For tests that must order threads without sleeping.
 * Thread: any. */
int fdt__sqlite_group_waiting(void *session);

#endif

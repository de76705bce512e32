#include "fdt_config.h"

#include "conn/conn.h"

/* The public transaction functions that name a connection: a connection owns at most one
 * transaction, kept in its holder (txn/txn.h), so that txn never reads a connection. */

int fdt_txn_begin(struct fdt_conn *c, const struct fdt_xid *xid, struct fdt_error *err)
{
    return fdt__txn_begin(&c->th, xid, false, err);
}

struct fdt_txn *fdt_conn_txn(struct fdt_conn *c)
{
    return c->th.txn;
}

int fdt_txn_run(struct fdt_conn *c, fdt_txn_fn fn, void *arg, int max_attempts, int *attempts,
                struct fdt_error *err)
{
    return fdt__txn_run(&c->th, fn, arg, max_attempts, attempts, err);
}

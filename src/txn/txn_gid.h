/* Global transaction ids (GIDs) as PostgreSQL's PREPARE TRANSACTION takes them.
 *
 *     fdt1:<node>:<resource>:<format_id>:<gtrid>:<bqual>
 *
 * node and resource are configured names ([A-Za-z0-9_-], 1..63 bytes); format_id is the
 * XID's format number in decimal; gtrid and bqual are the XID's parts, 0..64 bytes each,
 * in unpadded base64url. A GID is at most FDT_GID_MAX bytes (PostgreSQL's limit is 199);
 * an XID whose GID would be longer is refused. A GID names the host (node) that prepared
 * it: recovery touches only GIDs of fdtserver's prefix, those of its own node, and those of
 * a node it has proof is gone (no session holds that node's alive lock: txn_recover.c). */
#ifndef FDT_SRC_TXN_GID_H
#define FDT_SRC_TXN_GID_H

#include <fdt/txn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FDT_GID_MAX    199
#define FDT_GID_PREFIX "fdt1:"

struct fdt_gid {
    char node[64];
    char resource[64];
    struct fdt_xid xid;
};

/* Write the GID of (node, resource, xid) into out (at least FDT_GID_MAX + 1 bytes).
 * Returns 0, FDT_EINVAL for a bad name or part, FDT_ELIMIT when it would not fit. */
int fdt__gid_format(char *out, size_t size, const char *node, const char *resource,
                    const struct fdt_xid *xid);
/* Parse a GID. Returns 0 or FDT_EINVAL (not one of ours, or malformed). */
int fdt__gid_parse(const char *gid, struct fdt_gid *out);
/* The prefix shared by every GID of a node ("fdt1:<node>:"). */
int fdt__gid_node_prefix(char *out, size_t size, const char *node);
/* True when two XIDs are the same. */
bool fdt__xid_equal(const struct fdt_xid *a, const struct fdt_xid *b);
/* base64url without padding; return bytes written (excluding NUL) or -1. */
long fdt__b64url_encode(char *out, size_t size, const uint8_t *in, size_t len);
long fdt__b64url_decode(uint8_t *out, size_t size, const char *in, size_t len);
/* True for a valid node or resource name. */
bool fdt__gid_name_ok(const char *name);

#endif

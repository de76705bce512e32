#include "fdt_config.h"

#include "txn/txn_gid.h"

#include "config/config.h"
#include "util/util.h"

#include <string.h>

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

long fdt__b64url_encode(char *out, size_t size, const uint8_t *in, size_t len)
{
    size_t need = (len * 4 + 2) / 3;
    if (need + 1 > size)
        return -1;
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
        out[o++] = b64url[v >> 6 & 63];
        out[o++] = b64url[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
        out[o++] = b64url[v >> 6 & 63];
    }
    out[o] = '\0';
    return (long)o;
}

static int b64val(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

long fdt__b64url_decode(uint8_t *out, size_t size, const char *in, size_t len)
{
    if (len % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val(in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= size)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Canonical form only: the unused low bits must be zero, so each XID has one GID. */
    if (acc != 0)
        return -1;
    return (long)o;
}

bool fdt__gid_name_ok(const char *name)
{
    return fdt__cfg_name_ok(name); /* one rule: the configuration checks names with it */
}

int fdt__gid_node_prefix(char *out, size_t size, const char *node)
{
    if (!fdt__gid_name_ok(node))
        return FDT_EINVAL;
    int n = snprintf(out, size, FDT_GID_PREFIX "%s:", node);
    return n < 0 || (size_t)n >= size ? FDT_ELIMIT : 0;
}

int fdt__gid_format(char *out, size_t size, const char *node, const char *resource,
                    const struct fdt_xid *xid)
{
    if (!fdt__gid_name_ok(node) || !fdt__gid_name_ok(resource) ||
        xid->gtrid_len > FDT_XID_PART_MAX || xid->bqual_len > FDT_XID_PART_MAX ||
        xid->gtrid_len == 0)
        return FDT_EINVAL;
    char g[FDT_XID_PART_MAX * 2];
    char b[FDT_XID_PART_MAX * 2];
    fdt__b64url_encode(g, sizeof(g), xid->gtrid, xid->gtrid_len);
    fdt__b64url_encode(b, sizeof(b), xid->bqual, xid->bqual_len);
    char tmp[512];
    int n = snprintf(tmp, sizeof(tmp), FDT_GID_PREFIX "%s:%s:%d:%s:%s", node, resource,
                     (int)xid->format_id, g, b);
    if (n < 0 || n > FDT_GID_MAX || (size_t)n >= size)
        return FDT_ELIMIT;
    memcpy(out, tmp, (size_t)n + 1);
    return 0;
}

int fdt__gid_parse(const char *gid, struct fdt_gid *out)
{
    memset(out, 0, sizeof(*out));
    size_t len = strlen(gid);
    if (len > FDT_GID_MAX || strncmp(gid, FDT_GID_PREFIX, strlen(FDT_GID_PREFIX)) != 0)
        return FDT_EINVAL;
    const char *field[5];
    size_t flen[5];
    const char *p = gid + strlen(FDT_GID_PREFIX);
    for (int i = 0; i < 5; i++) {
        const char *end = i < 4 ? strchr(p, ':') : p + strlen(p);
        if (!end)
            return FDT_EINVAL;
        field[i] = p;
        flen[i] = (size_t)(end - p);
        p = end + (i < 4);
    }
    if (flen[0] == 0 || flen[0] >= sizeof(out->node) || flen[1] == 0 ||
        flen[1] >= sizeof(out->resource))
        return FDT_EINVAL;
    memcpy(out->node, field[0], flen[0]);
    memcpy(out->resource, field[1], flen[1]);
    if (!fdt__gid_name_ok(out->node) || !fdt__gid_name_ok(out->resource))
        return FDT_EINVAL;
    char num[16];
    if (flen[2] == 0 || flen[2] >= sizeof(num))
        return FDT_EINVAL;
    memcpy(num, field[2], flen[2]);
    num[flen[2]] = '\0';
    long fmt;
    if (fdt__parse_long(num, INT32_MIN, INT32_MAX, &fmt) < 0)
        return FDT_EINVAL;
    out->xid.format_id = (int32_t)fmt;
    long g = fdt__b64url_decode(out->xid.gtrid, sizeof(out->xid.gtrid), field[3], flen[3]);
    long b = fdt__b64url_decode(out->xid.bqual, sizeof(out->xid.bqual), field[4], flen[4]);
    if (g <= 0 || b < 0)
        return FDT_EINVAL;
    out->xid.gtrid_len = (size_t)g;
    out->xid.bqual_len = (size_t)b;
    /* Only the canonical spelling is ours: formatting it again gives the same text. */
    char again[FDT_GID_MAX + 1];
    if (fdt__gid_format(again, sizeof(again), out->node, out->resource, &out->xid) < 0 ||
        strcmp(again, gid) != 0)
        return FDT_EINVAL;
    return 0;
}

bool fdt__xid_equal(const struct fdt_xid *a, const struct fdt_xid *b)
{
    return a->format_id == b->format_id && a->gtrid_len == b->gtrid_len &&
           a->bqual_len == b->bqual_len && memcmp(a->gtrid, b->gtrid, a->gtrid_len) == 0 &&
           memcmp(a->bqual, b->bqual, a->bqual_len) == 0;
}

#include "fdt_config.h"

#include "http/http_int.h"

#include <fdt/error.h>

/* Value of a hex digit, or -1. */
static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Each decoded segment is written at or before the position of its raw bytes plus one
 * (a segment is preceded by at least one '/', whose place its NUL takes), so out never
 * needs more than len + 1 bytes. */
int fdt__http_path_split(const char *path, size_t len, char *out, const char **segs,
                         size_t *seg_lens, size_t max_segs, size_t *n_segs)
{
    size_t n = 0;
    size_t o = 0;
    size_t i = 0;
    *n_segs = 0;
    if (len == 0 || path[0] != '/')
        return FDT_EPROTO;
    while (i < len) {
        if (path[i] == '/') {
            i++;
            continue;
        }
        size_t start = o;
        while (i < len && path[i] != '/') {
            unsigned char ch = (unsigned char)path[i];
            if (ch < 0x20 || ch == 0x7f)
                return FDT_EPROTO;
            if (ch != '%') {
                out[o++] = (char)ch;
                i++;
                continue;
            }
            if (len - i < 3)
                return FDT_EPROTO;
            int hi = hex_value((unsigned char)path[i + 1]);
            int lo = hex_value((unsigned char)path[i + 2]);
            if (hi < 0 || lo < 0)
                return FDT_EPROTO;
            int v = hi * 16 + lo;
            /* A NUL would cut the key short for C code; a '/' would make a key that no
             * URL can name without ambiguity. */
            if (v == 0 || v == '/')
                return FDT_EPROTO;
            out[o++] = (char)v;
            i += 3;
        }
        size_t slen = o - start;
        if (slen == 1 && out[start] == '.') {
            o = start;
            continue;
        }
        if (slen == 2 && out[start] == '.' && out[start + 1] == '.') {
            if (n == 0)
                return FDT_EPROTO; /* above the root */
            n--;
            o = (size_t)(segs[n] - out);
            continue;
        }
        if (n >= max_segs)
            return FDT_ELIMIT;
        out[o++] = '\0';
        segs[n] = out + start;
        seg_lens[n] = slen;
        n++;
    }
    *n_segs = n;
    return 0;
}

static bool unreserved(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

size_t fdt__http_segment_encode(const char *in, size_t len, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (unreserved(ch)) {
            if (o < size)
                out[o] = (char)ch;
            o++;
            continue;
        }
        char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
        for (int k = 0; k < 3; k++, o++) {
            if (o < size)
                out[o] = esc[k];
        }
    }
    return o;
}

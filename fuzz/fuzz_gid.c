/* libFuzzer target: the GID parser. Anything that parses must format back to the same
 * text (one spelling per XID), and nothing may crash or read out of bounds.
 *
 * Linked with fuzz_replay.c (the _replay build) it replays the files and directories given on the
 * command line (fuzz/corpus/gid/). */
#include "fdt_config.h"

#include "txn/txn_gid.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    struct fdt_gid g;
    if (fdt__gid_parse(s, &g) == 0) {
        char again[FDT_GID_MAX + 1];
        if (fdt__gid_format(again, sizeof(again), g.node, g.resource, &g.xid) != 0 ||
            strcmp(again, s) != 0)
            abort();
    }
    uint8_t out[FDT_XID_PART_MAX];
    long n = fdt__b64url_decode(out, sizeof(out), s, strlen(s));
    if (n >= 0) {
        char enc[FDT_XID_PART_MAX * 2];
        if (fdt__b64url_encode(enc, sizeof(enc), out, (size_t)n) < 0 || strcmp(enc, s) != 0)
            abort();
    }
    free(s);
    return 0;
}

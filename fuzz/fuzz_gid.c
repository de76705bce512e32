/* libFuzzer target: the GID parser. Anything that parses must format back to the same
 * text (one spelling per XID), and nothing may crash or read out of bounds.
 *
 * With -DFDT_FUZZ_STANDALONE a main() replays the files and directories given on the
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

#ifdef FDT_FUZZ_STANDALONE
#include <dirent.h>
#include <sys/stat.h>

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    static uint8_t buf[1 << 16];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    return 0;
}

/* Replay the files named on the command line, and every file in the directories named. */
int main(int argc, char **argv)
{
    int count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i]) < 0)
                return 1;
            count++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            perror(argv[i]);
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (replay_file(path) < 0) {
                closedir(d);
                return 1;
            }
            count++;
        }
        closedir(d);
    }
    printf("fuzz_gid: replayed %d inputs\n", count);
    return 0;
}
#endif

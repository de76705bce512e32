/* libFuzzer target for the HTTP request path: llhttp glue, limits, the session's state
 * machine, traversal decoding and the error responses.
 *
 * The first byte of an input picks how the rest is cut into reads (1..63 bytes, or all at
 * once), whether the worker is draining, whether the application renders errors as JSON,
 * and whether the connection's deadline passes at the end; the rest is what the client
 * sends to a small application with a resource tree (tests/unit/http_harness.h). Checked:
 * nothing crashes or leaks (under the sanitizers), the session never consumes more than it
 * is given, every byte written starts with a status line, and decoded paths re-encode to
 * paths that decode to the same segments. Any violation aborts.
 *
 * With -DFDT_FUZZ_STANDALONE a main() replays the files and directories given on the
 * command line (fuzz/corpus/http/); tests/unit/test_http_corpus.c replays the corpus in
 * every build. */
#include "fdt_config.h"

#include "../tests/unit/http_harness.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_one(data, size);
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
    static uint8_t buf[1 << 20];
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
    printf("fuzz_http: replayed %d inputs\n", count);
    return 0;
}
#endif

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
 * Linked with fuzz_replay.c (the _replay build) it replays the files and directories given on the
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

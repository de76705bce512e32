/* libFuzzer target for the JSON module.
 *
 * Every input is parsed. A parse that succeeds must re-encode to text that parses back to an
 * equal value and encodes to exactly the same text again; every key of every object must be
 * found by lookup; the value must also be writable inside a streaming response. A parse that
 * fails must fail with FDT_EPROTO or FDT_ELIMIT and a filled error. The input is also written
 * as a JSON string when it is valid UTF-8, and that string must parse back to the same bytes.
 * Any violation aborts.
 *
 * Build with clang -fsanitize=fuzzer,address,undefined (fuzz/meson.build does it with
 * -Dfuzz=true), or linked with fuzz_replay.c (the _replay build) to replay files given on
 * the command line (the corpus under fuzz/corpus/json/). */
#include "fdt_config.h"

#include <fdt/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_json: check failed at line %d: %s\n", __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Every key of every object in v is found by lookup, at its own position. */
static void check_lookups(const struct fdt_json *v, int depth)
{
    CHECK(depth <= FDT_JSON_DEPTH_MAX);
    if (fdt_json_type(v) == FDT_JSON_ARRAY) {
        for (size_t i = 0; i < fdt_json_size(v); i++)
            check_lookups(fdt_json_array_get(v, i), depth + 1);
    } else if (fdt_json_type(v) == FDT_JSON_OBJECT) {
        for (size_t i = 0; i < fdt_json_size(v); i++) {
            size_t klen;
            const char *key = fdt_json_object_key_at(v, i, &klen);
            CHECK(key && key[klen] == '\0');
            CHECK(fdt_json_object_getn(v, key, klen) == fdt_json_object_value_at(v, i));
            check_lookups(fdt_json_object_value_at(v, i), depth + 1);
        }
    }
}

static void check_round_trip(struct fdt_json_doc *doc, const struct fdt_json *v,
                             const struct fdt_json_limits *lim)
{
    char *text1 = NULL, *text2 = NULL;
    size_t len1 = 0, len2 = 0;
    CHECK(fdt_json_encode(v, 0, &text1, &len1) == 0);
    CHECK(strlen(text1) == len1);

    /* The encoding can be longer than the input ("1e2" becomes "100.0"). */
    struct fdt_json_limits big = *lim;
    big.max_size = len1 + 1;
    struct fdt_json *again = NULL;
    struct fdt_error err;
    int rc = fdt_json_parse(doc, text1, len1, &big, &again, &err);
    if (rc != 0)
        fprintf(stderr, "fuzz_json: re-parse failed: %s\n", err.msg);
    CHECK(rc == 0);
    CHECK(fdt_json_equal(v, again));
    CHECK(fdt_json_equal(again, v));
    CHECK(fdt_json_encode(again, 0, &text2, &len2) == 0);
    CHECK(len1 == len2 && memcmp(text1, text2, len1) == 0);

    /* The same value inside a response written with the streaming writer. */
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    fdt_json_writer_begin_object(&w);
    fdt_json_writer_key(&w, "result");
    fdt_json_writer_value(&w, v);
    fdt_json_writer_end_object(&w);
    const char *resp;
    size_t resp_len;
    CHECK(fdt_json_writer_finish(&w, &resp, &resp_len) == 0);
    CHECK(resp_len == len1 + 11 && memcmp(resp + 10, text1, len1) == 0);
    fdt_json_writer_deinit(&w);

    free(text1);
    free(text2);
}

static void check_as_string(struct fdt_json_doc *doc, const uint8_t *data, size_t size)
{
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    int rc = fdt_json_writer_stringn(&w, (const char *)data, size);
    struct fdt_json *s = fdt_json_stringn(doc, (const char *)data, size);
    /* The writer and the builder agree on what is valid UTF-8. */
    CHECK((rc == 0) == (s != NULL));
    if (rc == 0) {
        const char *text;
        size_t len;
        CHECK(fdt_json_writer_finish(&w, &text, &len) == 0);
        struct fdt_json_limits lim;
        fdt_json_limits_default(&lim);
        lim.max_size = len + 1;
        lim.max_string = size + 1;
        struct fdt_json *v;
        struct fdt_error err;
        CHECK(fdt_json_parse(doc, text, len, &lim, &v, &err) == 0);
        size_t got;
        const char *p = fdt_json_string_value(v, &got);
        CHECK(got == size && (size == 0 || memcmp(p, data, size) == 0));
        CHECK(fdt_json_equal(v, s));
    } else {
        CHECK(rc == FDT_EINVAL);
    }
    fdt_json_writer_deinit(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fdt_json_doc *doc = fdt_json_doc_new();
    CHECK(doc);
    struct fdt_json_limits lim;
    fdt_json_limits_default(&lim);
    lim.max_size = 1 << 20;
    lim.max_values = 1 << 16;
    struct fdt_json *v = NULL;
    struct fdt_error err;
    memset(&err, 0, sizeof(err));
    int rc = fdt_json_parse(doc, (const char *)data, size, &lim, &v, &err);
    if (rc == 0) {
        CHECK(v != NULL);
        check_lookups(v, 0);
        check_round_trip(doc, v, &lim);
    } else {
        CHECK(rc == FDT_EPROTO || rc == FDT_ELIMIT);
        CHECK(v == NULL && err.code == rc && err.line >= 1 && strstr(err.msg, "(byte "));
    }
    fdt_json_doc_clear(doc);
    check_as_string(doc, data, size);
    fdt_json_doc_free(doc);
    return 0;
}

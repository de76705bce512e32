/* libFuzzer target for the JSON-RPC protocol without a connection: line framing, request
 * validation (-32700, -32600 with the line-length and nesting limits), the names and
 * parameters of the built-in txn.* methods (-32601, -32602) and the error answers, through
 * the pure functions of src/jsonrpc/jsonrpc.h that jsonrpc_proto.c itself is built on.
 *
 * The first byte of an input picks max_input, the line limit (bits 0-1: 64, 300, 4096 or
 * 64k bytes), and whether the stream is also fed cut into reads (bit 2); the rest is what a
 * client sends. In the seed corpus it is a digit: '3' = 64k lines, one read; '7' = 64k lines
 * and reads; '4' = 64-byte lines and reads. Checked, besides no crash or leak under the
 * sanitizers:
 *  - framing: every message lies inside the input, has no newline and no blanks around it,
 *    and cutting the stream into reads (keeping the unconsumed tail, as the connection does)
 *    yields exactly the messages of one read of everything;
 *  - validation: the answer is 0, -32700 or -32600; a line over the limit is -32600; a
 *    request has a method of 1 to 128 bytes without NUL, params object/array/absent and a
 *    string/integer/null id; an error is answered with a null id unless the id was valid;
 *  - built-ins: only the seven txn.* names are known; an accepted xid has a 1..64-byte gtrid;
 *  - every error answer (the ones the server would send, app methods being "not found" here)
 *    writes without error, is one line, and parses back to jsonrpc "2.0", the same code and
 *    message, and the request's id.
 * Any violation aborts.
 *
 * Linked with fuzz_replay.c (the _replay build) it replays the files and directories given on the
 * command line (fuzz/corpus/jsonrpc/). */
#include "fdt_config.h"

#include "jsonrpc/jsonrpc.h"

#include <fdt/jsonrpc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_jsonrpc: check failed at line %d: %s\n", __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The server's max_output default: an answer never outgrows it here. */
#define MAX_OUTPUT (8u * 1024 * 1024)
/* Messages remembered per input to compare the two ways of framing. */
#define MAX_MESSAGES 4096

struct fuzz_state {
    struct fdt_json_doc *doc;  /* the request, as the connection's document */
    struct fdt_json_doc *back; /* an answer parsed back */
    struct fdt_json_writer out;
    struct fdt_json_limits limits;
    size_t max_line;
};

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* The answer the server sends for an error: written, one line, and it says what we meant. */
static void check_error_answer(struct fuzz_state *st, const struct fdt_json *id, int code,
                               const char *message)
{
    fdt__jsonrpc_error_write(&st->out, id, code, message);
    const char *text;
    size_t len;
    CHECK(fdt_json_writer_finish(&st->out, &text, &len) == 0);
    CHECK(len > 0 && memchr(text, '\n', len) == NULL);

    struct fdt_json_limits lim;
    fdt_json_limits_default(&lim);
    lim.max_size = len;
    lim.max_string = len;
    struct fdt_json *v = NULL;
    struct fdt_error err = {0};
    fdt_json_doc_clear(st->back);
    CHECK(fdt_json_parse(st->back, text, len, &lim, &v, &err) == 0);
    CHECK(fdt_json_type(v) == FDT_JSON_OBJECT && fdt_json_size(v) == 3);
    size_t n;
    const char *version = fdt_json_string_value(fdt_json_object_get(v, "jsonrpc"), &n);
    CHECK(version && n == 3 && memcmp(version, "2.0", 3) == 0);
    const struct fdt_json *e = fdt_json_object_get(v, "error");
    CHECK(fdt_json_type(e) == FDT_JSON_OBJECT && fdt_json_size(e) == 2);
    int64_t got;
    CHECK(fdt_json_get_int(fdt_json_object_get(e, "code"), &got) == 0 && got == code);
    const char *msg = fdt_json_string_value(fdt_json_object_get(e, "message"), &n);
    CHECK(msg && n == strlen(message) && memcmp(msg, message, n) == 0);
    const struct fdt_json *back_id = fdt_json_object_get(v, "id");
    if (id)
        CHECK(fdt_json_equal(back_id, id));
    else
        CHECK(fdt_json_type(back_id) == FDT_JSON_NULL);
}

static bool known_builtin(const char *m)
{
    static const char *names[] = {"txn.begin",
                                  "txn.vote",
                                  "txn.finish",
                                  "txn.abort",
                                  "txn.recover",
                                  "txn.commit_prepared",
                                  "txn.rollback_prepared"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(m, names[i]) == 0)
            return true;
    }
    return false;
}

/* One message, as handle_line sees it, up to the point where a call would run. */
static void check_message(struct fuzz_state *st, const char *line, size_t len)
{
    struct fdt__jsonrpc_request req;
    struct fdt_error err = {0};
    int code =
        fdt__jsonrpc_request_parse(st->doc, line, len, st->max_line, &st->limits, &req, &err);
    CHECK(code == 0 || code == FDT_JSONRPC_PARSE_ERROR || code == FDT_JSONRPC_INVALID_REQUEST);
    if (len > st->max_line)
        CHECK(code == FDT_JSONRPC_INVALID_REQUEST && req.id == NULL);
    const struct fdt_json *id = req.id;
    if (id)
        CHECK(fdt_json_type(id) == FDT_JSON_STRING || fdt_json_type(id) == FDT_JSON_INT ||
              fdt_json_type(id) == FDT_JSON_NULL);
    if (code != 0) {
        CHECK(err.msg[0] != '\0');
        CHECK(code != FDT_JSONRPC_PARSE_ERROR || id == NULL);
        check_error_answer(st, id, code, err.msg);
        return;
    }
    size_t mlen = strlen(req.method);
    CHECK(mlen >= 1 && mlen <= 128);
    CHECK(req.params == NULL || fdt_json_type(req.params) == FDT_JSON_OBJECT ||
          fdt_json_type(req.params) == FDT_JSON_ARRAY);

    if (strncmp(req.method, "txn.", 4) != 0) {
        /* No application here: every other method is unknown, answered unless a notification. */
        if (id) {
            char msg[200];
            snprintf(msg, sizeof(msg), "method not found: %.128s", req.method);
            check_error_answer(st, id, FDT_JSONRPC_METHOD_NOT_FOUND, msg);
        }
        return;
    }
    struct fdt_xid xid;
    bool has_xid = true;
    err = (struct fdt_error){0};
    int rc = fdt__jsonrpc_builtin_params(req.method, req.params, &xid, &has_xid, &err);
    CHECK(rc == 0 || rc == FDT_ENOENT || rc == FDT_EINVAL);
    CHECK((rc == FDT_ENOENT) == !known_builtin(req.method));
    if (rc == 0) {
        if (has_xid)
            CHECK(xid.gtrid_len >= 1 && xid.gtrid_len <= FDT_XID_PART_MAX &&
                  xid.bqual_len <= FDT_XID_PART_MAX);
        else
            CHECK(strstr(req.method, "_prepared") == NULL);
        return;
    }
    CHECK(err.msg[0] != '\0');
    if (id)
        check_error_answer(
            st, id, rc == FDT_ENOENT ? FDT_JSONRPC_METHOD_NOT_FOUND : FDT_JSONRPC_INVALID_PARAMS,
            err.msg);
}

struct span {
    const char *p;
    size_t n;
};

/* The messages of buf in one read; checks each with check_message. Returns how many. */
static size_t frame_all(struct fuzz_state *st, const char *buf, size_t len, struct span *msgs,
                        size_t *used_out)
{
    size_t used = 0, count = 0;
    const char *line;
    size_t n;
    while (fdt__jsonrpc_next_line(buf, len, &used, &line, &n)) {
        CHECK(line >= buf && line + n <= buf + used && used <= len);
        CHECK(n > 0 && memchr(line, '\n', n) == NULL);
        CHECK(line[0] != ' ' && line[0] != '\t' && !is_blank(line[n - 1]));
        CHECK(buf[used - 1] == '\n');
        if (count < MAX_MESSAGES)
            msgs[count] = (struct span){line, n};
        count++;
        check_message(st, line, n);
    }
    CHECK(used <= len);
    /* What is left is an incomplete line: the connection keeps it for the next read. */
    CHECK(memchr(buf + used, '\n', len - used) == NULL);
    *used_out = used;
    return count;
}

/* The same stream cut into reads of 1..64 bytes chosen by the input itself, the unconsumed
 * tail kept in front of the next read: the same messages in the same order. */
static void frame_in_reads(const char *buf, size_t len, const struct span *msgs, size_t count)
{
    char *pending = malloc(len + 1);
    CHECK(pending);
    size_t have = 0, fed = 0, seen = 0;
    while (fed < len) {
        size_t step = 1 + (unsigned char)buf[fed] % 64;
        if (step > len - fed)
            step = len - fed;
        memcpy(pending + have, buf + fed, step);
        have += step;
        fed += step;
        size_t used = 0;
        const char *line;
        size_t n;
        while (fdt__jsonrpc_next_line(pending, have, &used, &line, &n)) {
            if (seen < count && seen < MAX_MESSAGES)
                CHECK(msgs[seen].n == n && memcmp(msgs[seen].p, line, n) == 0);
            seen++;
        }
        memmove(pending, pending + used, have - used);
        have -= used;
    }
    CHECK(seen == count);
    free(pending);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t max_lines[] = {64, 300, 4096, 64 * 1024};
    if (size == 0)
        return 0;
    struct fuzz_state st;
    st.max_line = max_lines[data[0] & 3];
    bool in_reads = (data[0] & 4) != 0;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    /* As fdt__proto_jsonrpc_init sets them. */
    fdt_json_limits_default(&st.limits);
    st.limits.max_size = st.max_line;
    st.doc = fdt_json_doc_new();
    st.back = fdt_json_doc_new();
    CHECK(st.doc && st.back);
    fdt_json_writer_init(&st.out, MAX_OUTPUT);

    static struct span msgs[MAX_MESSAGES];
    size_t used;
    size_t count = frame_all(&st, buf, len, msgs, &used);
    if (in_reads)
        frame_in_reads(buf, len, msgs, count);

    fdt_json_writer_deinit(&st.out);
    fdt_json_doc_free(st.back);
    fdt_json_doc_free(st.doc);
    return 0;
}

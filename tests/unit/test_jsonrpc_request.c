/* The connection-free half of the JSON-RPC protocol (src/jsonrpc/jsonrpc.h): framing,
 * request validation, built-in parameters and error answers. fuzz/fuzz_jsonrpc.c checks
 * their invariants on random input; this pins the answer for each kind of input. */
#include "fdt_config.h"

#include "jsonrpc/jsonrpc.h"
#include "util/util.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <fdt/jsonrpc.h>
#include <stdio.h>
#include <string.h>

static void test_framing(void **state)
{
    (void)state;
    static const char buf[] = "\n \t\r\n  {\"a\":1} \t\r\n\r\n{}\n{\"tail";
    size_t len = sizeof(buf) - 1;
    size_t pos = 0;
    const char *line;
    size_t n;
    assert_true(fdt__jsonrpc_next_line(buf, len, &pos, &line, &n));
    assert_int_equal(n, 7);
    assert_memory_equal(line, "{\"a\":1}", 7);
    assert_true(fdt__jsonrpc_next_line(buf, len, &pos, &line, &n));
    assert_int_equal(n, 2);
    assert_memory_equal(line, "{}", 2);
    /* The incomplete last line stays for the next read. */
    assert_false(fdt__jsonrpc_next_line(buf, len, &pos, &line, &n));
    assert_string_equal(buf + pos, "{\"tail");

    /* Only blank lines: all consumed, nothing returned. */
    pos = 0;
    assert_false(fdt__jsonrpc_next_line("\r\n \n", 4, &pos, &line, &n));
    assert_int_equal(pos, 4);
    pos = 0;
    assert_false(fdt__jsonrpc_next_line("", 0, &pos, &line, &n));
    assert_int_equal(pos, 0);
}

struct req_case {
    const char *line;
    int code;        /* expected answer, 0: a valid request */
    bool has_id;     /* the answer carries the request's id */
    const char *msg; /* part of the message, or NULL */
};

static void test_request_validation(void **state)
{
    (void)state;
    char too_long_method[200];
    snprintf(too_long_method, sizeof(too_long_method),
             "{\"jsonrpc\":\"2.0\",\"method\":\"%0129d\",\"id\":1}", 0);
    /* Nesting one level over the default limit (64) is a limit, not a parse error. */
    char deep[300];
    int k = snprintf(deep, sizeof(deep), "{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":");
    for (int d = 0; d < 65; d++)
        deep[k++] = '[';
    for (int d = 0; d < 65; d++)
        deep[k++] = ']';
    snprintf(deep + k, sizeof(deep) - (size_t)k, "}");
    const struct req_case cases[] = {
        {"{\"jsonrpc\":\"2.0\",\"method\":\"a.b\",\"params\":{\"x\":1},\"id\":1}", 0, true, NULL},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":[],\"id\":\"s\"}", 0, true, NULL},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":null}", 0, true, NULL},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"a\"}", 0, false, NULL},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"a\"", FDT_JSONRPC_PARSE_ERROR, false, "parse error"},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"method\":\"b\",\"id\":1}",
         FDT_JSONRPC_PARSE_ERROR, false, "duplicate key"},
        {deep, FDT_JSONRPC_INVALID_REQUEST, false, "nesting too deep"},
        {"[{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":1}]", FDT_JSONRPC_INVALID_REQUEST, false,
         "batches are not supported"},
        {"42", FDT_JSONRPC_INVALID_REQUEST, false, "not an object"},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":1.5}", FDT_JSONRPC_INVALID_REQUEST, false,
         "id must be"},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":[1]}", FDT_JSONRPC_INVALID_REQUEST, false,
         "id must be"},
        {"{\"jsonrpc\":\"1.0\",\"method\":\"a\",\"id\":7}", FDT_JSONRPC_INVALID_REQUEST, true,
         "jsonrpc must be"},
        {"{\"method\":\"a\",\"id\":7}", FDT_JSONRPC_INVALID_REQUEST, true, "jsonrpc must be"},
        {"{\"jsonrpc\":\"2.0\",\"id\":7}", FDT_JSONRPC_INVALID_REQUEST, true, "method must be"},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"\",\"id\":7}", FDT_JSONRPC_INVALID_REQUEST, true,
         "method must be"},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"a\\u0000\",\"id\":7}", FDT_JSONRPC_INVALID_REQUEST,
         true, "method must be"},
        {too_long_method, FDT_JSONRPC_INVALID_REQUEST, true, "method must be"},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":\"x\",\"id\":7}",
         FDT_JSONRPC_INVALID_REQUEST, true, "params must be"},
    };
    struct fdt_json_doc *doc = fdt_json_doc_new();
    assert_non_null(doc);
    struct fdt_json_limits lim;
    fdt_json_limits_default(&lim);
    lim.max_size = 4096;
    for (size_t i = 0; i < FDT_ARRAY_LEN(cases); i++) {
        const struct req_case *tc = &cases[i];
        struct fdt__jsonrpc_request req;
        struct fdt_error err = {0};
        int code =
            fdt__jsonrpc_request_parse(doc, tc->line, strlen(tc->line), 4096, &lim, &req, &err);
        if (code != tc->code || (req.id != NULL) != tc->has_id ||
            (tc->msg && !strstr(err.msg, tc->msg)))
            fail_msg("case %zu (%s): code %d, id %s, message '%s'", i, tc->line, code,
                     req.id ? "set" : "NULL", err.msg);
        if (code == 0)
            assert_non_null(req.method);
    }
    /* A line over the limit is refused unread. */
    struct fdt__jsonrpc_request req;
    struct fdt_error err = {0};
    const char *ok = "{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":1}";
    assert_int_equal(
        fdt__jsonrpc_request_parse(doc, ok, strlen(ok), strlen(ok) - 1, &lim, &req, &err),
        FDT_JSONRPC_INVALID_REQUEST);
    assert_null(req.id);
    assert_non_null(strstr(err.msg, "longer than max_input"));
    assert_int_equal(fdt__jsonrpc_request_parse(doc, ok, strlen(ok), strlen(ok), &lim, &req, &err),
                     0);
    assert_string_equal(req.method, "a");
    fdt_json_doc_free(doc);
}

struct builtin_case {
    const char *method;
    const char *params; /* JSON text or NULL */
    int rc;
    bool has_xid;
};

static void test_builtin_params(void **state)
{
    (void)state;
    const struct builtin_case cases[] = {
        {"txn.begin", NULL, 0, false},
        {"txn.begin", "{}", 0, false},
        {"txn.begin", "{\"xid\":null}", 0, false},
        {"txn.begin", "{\"xid\":{\"format_id\":7,\"gtrid\":\"Y29vcmQtMQ\",\"bqual\":\"YjE\"}}", 0,
         true},
        {"txn.begin", "[1]", FDT_EINVAL, false},
        {"txn.begin", "{\"xid\":\"x\"}", FDT_EINVAL, false},
        {"txn.begin", "{\"xid\":{\"gtrid\":\"\"}}", FDT_EINVAL, false},
        {"txn.begin", "{\"xid\":{\"gtrid\":\"a+/=\"}}", FDT_EINVAL, false},
        {"txn.begin", "{\"xid\":{\"gtrid\":\"YQ\",\"format_id\":4294967296}}", FDT_EINVAL, false},
        {"txn.begin", "{\"xid\":{\"gtrid\":\"YQ\",\"format_id\":\"7\"}}", FDT_EINVAL, false},
        {"txn.commit_prepared", NULL, FDT_EINVAL, false},
        {"txn.rollback_prepared", "{\"xid\":null}", FDT_EINVAL, false},
        {"txn.rollback_prepared", "{\"xid\":{\"gtrid\":\"YQ\"}}", 0, true},
        {"txn.vote", "[1,2]", 0, false},
        {"txn.finish", NULL, 0, false},
        {"txn.abort", NULL, 0, false},
        {"txn.recover", "{\"anything\":1}", 0, false},
        {"txn.commit", NULL, FDT_ENOENT, false},
        {"txn.", NULL, FDT_ENOENT, false},
    };
    struct fdt_json_doc *doc = fdt_json_doc_new();
    assert_non_null(doc);
    for (size_t i = 0; i < FDT_ARRAY_LEN(cases); i++) {
        const struct builtin_case *tc = &cases[i];
        struct fdt_json *params = NULL;
        struct fdt_error err = {0};
        fdt_json_doc_clear(doc);
        if (tc->params)
            assert_int_equal(
                fdt_json_parse(doc, tc->params, strlen(tc->params), NULL, &params, &err), 0);
        struct fdt_xid xid;
        bool has = !tc->has_xid;
        int rc = fdt__jsonrpc_builtin_params(tc->method, params, &xid, &has, &err);
        if (rc != tc->rc || has != tc->has_xid || (rc < 0 && !err.msg[0]))
            fail_msg("case %zu (%s %s): rc %d, has_xid %d, '%s'", i, tc->method,
                     tc->params ? tc->params : "-", rc, has, err.msg);
    }
    /* The xid as given: format_id and the decoded base64url parts. */
    const char *p = "{\"xid\":{\"format_id\":-3,\"gtrid\":\"Y29vcmQtMQ\",\"bqual\":\"YjE\"}}";
    struct fdt_json *params = NULL;
    fdt_json_doc_clear(doc);
    assert_int_equal(fdt_json_parse(doc, p, strlen(p), NULL, &params, NULL), 0);
    struct fdt_xid xid;
    bool has;
    assert_int_equal(fdt__jsonrpc_builtin_params("txn.begin", params, &xid, &has, NULL), 0);
    assert_true(has);
    assert_int_equal(xid.format_id, -3);
    assert_int_equal(xid.gtrid_len, 7);
    assert_memory_equal(xid.gtrid, "coord-1", 7);
    assert_int_equal(xid.bqual_len, 2);
    assert_memory_equal(xid.bqual, "b1", 2);
    fdt_json_doc_free(doc);
}

static void test_error_answer(void **state)
{
    (void)state;
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, 0);
    const char *text;
    size_t len;
    fdt__jsonrpc_error_write(&w, NULL, FDT_JSONRPC_PARSE_ERROR, "parse error: \"x\"\n");
    assert_int_equal(fdt_json_writer_finish(&w, &text, &len), 0);
    assert_string_equal(text, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32700,\"message\":"
                              "\"parse error: \\\"x\\\"\\n\"},\"id\":null}");

    struct fdt_json_doc *doc = fdt_json_doc_new();
    struct fdt_json *id = fdt_json_string(doc, "req-1");
    fdt__jsonrpc_error_write(&w, id, FDT_JSONRPC_METHOD_NOT_FOUND, "method not found: x");
    assert_int_equal(fdt_json_writer_finish(&w, &text, &len), 0);
    assert_string_equal(text, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32601,\"message\":"
                              "\"method not found: x\"},\"id\":\"req-1\"}");
    fdt_json_doc_free(doc);
    fdt_json_writer_deinit(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_request_validation),
        cmocka_unit_test(test_builtin_params),
        cmocka_unit_test(test_error_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

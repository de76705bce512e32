#include "fdt_config.h"

#include "log/log.h"
#include "metrics/metrics.h"
#include "proc/proc.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The scoreboard's counters and their rendering: histogram buckets at their edges, classes,
 * folding an exited worker's counters into the totals (which never go backwards), and the
 * JSON string escaper of the logs. */

static char *render(struct fdt_scoreboard *sb)
{
    struct fdt_buf b;
    fdt__buf_init(&b, (size_t)1 << 20);
    assert_int_equal(fdt__metrics_render(sb, &b), 0);
    char *text = strndup(fdt__buf_head(&b), b.len);
    fdt__buf_deinit(&b);
    return text;
}

static void has(const char *text, const char *line)
{
    char want[256];
    snprintf(want, sizeof(want), "\n%s\n", line);
    if (!strstr(text, want))
        fail_msg("missing line: %s", line);
}

static void test_buckets_and_classes(void **state)
{
    (void)state;
    struct fdt_scoreboard *sb = fdt__scoreboard_new();
    assert_non_null(sb);
    int slot = fdt__scoreboard_claim(sb, 1, 0, 4);
    assert_true(slot >= 0);
    atomic_store(&sb->slots[slot].pid, 4242);
    struct fdt_counters *c = &sb->slots[slot].counters;
    fdt__counters_request(c, FDT_MPROTO_HTTP, fdt__metric_http_class(200), 500);
    fdt__counters_request(c, FDT_MPROTO_HTTP, fdt__metric_http_class(404), 501);
    fdt__counters_request(c, FDT_MPROTO_HTTP, fdt__metric_http_class(503), 20000000);
    fdt__counters_request(c, FDT_MPROTO_JSONRPC, FDT_MCLASS_ERROR, 0);
    assert_int_equal(fdt__metric_http_class(99), FDT_MCLASS_OTHER);
    assert_int_equal(fdt__metric_http_class(600), FDT_MCLASS_OTHER);
    char *t = render(sb);
    has(t, "fdt_requests_total{protocol=\"http\",class=\"2xx\"} 1");
    has(t, "fdt_requests_total{protocol=\"http\",class=\"4xx\"} 1");
    has(t, "fdt_requests_total{protocol=\"http\",class=\"5xx\"} 1");
    has(t, "fdt_requests_total{protocol=\"jsonrpc\",class=\"error\"} 1");
    has(t, "fdt_request_duration_seconds_bucket{protocol=\"http\",le=\"0.0005\"} 1");
    has(t, "fdt_request_duration_seconds_bucket{protocol=\"http\",le=\"0.001\"} 2");
    has(t, "fdt_request_duration_seconds_bucket{protocol=\"http\",le=\"10\"} 2");
    has(t, "fdt_request_duration_seconds_bucket{protocol=\"http\",le=\"+Inf\"} 3");
    has(t, "fdt_request_duration_seconds_count{protocol=\"http\"} 3");
    has(t, "fdt_request_duration_seconds_sum{protocol=\"http\"} 20.001001");
    has(t, "fdt_worker_threads{generation=\"1\",worker=\"0\",pid=\"4242\"} 4");
    has(t, "fdt_workers{state=\"starting\"} 1");
    free(t);
    fdt__scoreboard_free(sb);
}

static void test_fold_keeps_totals(void **state)
{
    (void)state;
    struct fdt_scoreboard *sb = fdt__scoreboard_new();
    int a = fdt__scoreboard_claim(sb, 1, 0, 1);
    int b = fdt__scoreboard_claim(sb, 1, 1, 1);
    for (int i = 0; i < 5; i++)
        fdt__counters_request(&sb->slots[a].counters, FDT_MPROTO_HTTP, FDT_MCLASS_OK + 0, 10);
    atomic_fetch_add(&sb->slots[a].counters.accepted, 3);
    atomic_fetch_add(&sb->slots[b].counters.accepted, 2);
    atomic_fetch_add(&sb->slots[a].requests, 5);
    struct fdt_counters sum;
    uint64_t reqs;
    fdt__scoreboard_sum(sb, &sum, &reqs);
    assert_int_equal(atomic_load(&sum.accepted), 5);
    assert_int_equal(reqs, 5);
    /* Worker a exits: the master folds, then frees its slot, which a new worker takes. */
    fdt__scoreboard_fold(sb, a);
    fdt__scoreboard_release(sb, a);
    int c = fdt__scoreboard_claim(sb, 2, 0, 1);
    assert_int_equal(c, a); /* the same slot, zeroed */
    atomic_fetch_add(&sb->slots[c].counters.accepted, 1);
    fdt__scoreboard_sum(sb, &sum, &reqs);
    assert_int_equal(atomic_load(&sum.accepted), 6);
    assert_int_equal(reqs, 5);
    assert_int_equal(atomic_load(&sum.requests[FDT_MPROTO_HTTP][FDT_MCLASS_OK]), 5);
    assert_int_equal(atomic_load(&sum.duration_us[FDT_MPROTO_HTTP]), 50);
    fdt__scoreboard_free(sb);
}

static void test_json_string(void **state)
{
    (void)state;
    char out[64];
    size_t o = 0;
    fdt__log_json_string(out, sizeof(out), &o, "a\"b\\c\n\x01\xff\xc3\xa9");
    out[o] = '\0';
    assert_string_equal(out, "\"a\\\"b\\\\c\\u000a\\u0001\\u00ff\xc3\xa9\"");
    /* Cut to fit in out[0, size), the closing quote kept. */
    char small[9];
    o = 0;
    fdt__log_json_string(small, sizeof(small) - 1, &o, "abcdefghij");
    assert_int_equal(o, sizeof(small) - 1);
    small[o] = '\0';
    assert_string_equal(small, "\"abcdef\"");
}

/* A draining worker is counted as such; output that does not fit the buffer is an error
 * (the part that fit stays, ending at a whole line). */
static void test_draining_and_a_full_buffer(void **state)
{
    (void)state;
    struct fdt_scoreboard *sb = fdt__scoreboard_new();
    assert_non_null(sb);
    int slot = fdt__scoreboard_claim(sb, 3, 1, 2);
    assert_true(slot >= 0);
    atomic_store(&sb->slots[slot].pid, 4343);
    atomic_store(&sb->slots[slot].state, FDT_WORKER_DRAINING);
    char *t = render(sb);
    has(t, "fdt_workers{state=\"draining\"} 1");
    has(t, "fdt_workers{state=\"starting\"} 0");
    has(t, "fdt_worker_busy_threads{generation=\"3\",worker=\"1\",pid=\"4343\",state=\"draining\"} "
           "0");
    free(t);
    struct fdt_buf b;
    fdt__buf_init(&b, 1000);
    assert_int_equal(fdt__metrics_render(sb, &b), FDT_ELIMIT);
    assert_true(b.len > 0 && b.len <= 1000);
    assert_int_equal(fdt__buf_head(&b)[b.len - 1], '\n');
    fdt__buf_deinit(&b);
    fdt__scoreboard_free(sb);
}

/* In-doubt transactions: the largest count any live worker saw, and the oldest age. */
static void test_in_doubt_gauges(void **state)
{
    (void)state;
    struct fdt_scoreboard *sb = fdt__scoreboard_new();
    assert_non_null(sb);
    int a = fdt__scoreboard_claim(sb, 1, 0, 1);
    int b = fdt__scoreboard_claim(sb, 1, 1, 1);
    assert_true(a >= 0 && b >= 0);
    atomic_store(&sb->slots[a].pid, 5001);
    atomic_store(&sb->slots[b].pid, 5002);
    atomic_store(&sb->slots[a].txn_in_doubt, 2);
    atomic_store(&sb->slots[a].txn_in_doubt_oldest_ms, 2500);
    atomic_store(&sb->slots[b].txn_in_doubt, 3);
    atomic_store(&sb->slots[b].txn_in_doubt_oldest_ms, 1500);
    char *t = render(sb);
    has(t, "fdt_transactions_in_doubt 3");
    has(t, "fdt_transactions_in_doubt_oldest_seconds 2.5");
    free(t);
    fdt__scoreboard_free(sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_and_classes),
        cmocka_unit_test(test_fold_keeps_totals),
        cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_draining_and_a_full_buffer),
        cmocka_unit_test(test_in_doubt_gauges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for fdt_random_code(): format, arguments, uniformity, threads, frugality, failures,
 * fork. Statistical checks use the kernel source; everything else is exact. */
#include "fdt_config.h"

#include "code/code.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <fdt/code.h>
#include <fdt/error.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

/* 99.9 % critical values of the chi-square distribution. */
#define CHI2_DF8_999 26.12
#define CHI2_DF9_999 27.88

/* log2(9) and log2(10), so that the test needs no libm. */
#define LOG2_9  3.169925001442312
#define LOG2_10 3.321928094887362

/* True when s is exactly `digits` decimal digits with a non-zero first digit. */
static bool code_valid(const char *s, unsigned digits)
{
    if (strlen(s) != digits || s[0] < '1' || s[0] > '9')
        return false;
    for (unsigned i = 1; i < digits; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* log2 of the number of codes with `digits` digits: log2(9) + (digits - 1) * log2(10). */
static double code_bits(unsigned digits)
{
    return LOG2_9 + (digits - 1) * LOG2_10;
}

static void test_every_length(void **state)
{
    (void)state;
    char out[FDT_CODE_MAX_DIGITS + 1];
    for (unsigned d = 1; d <= FDT_CODE_MAX_DIGITS; d++) {
        for (int i = 0; i < 50; i++) {
            /* out_size of exactly digits + 1 is enough. */
            memset(out, 'x', sizeof(out));
            assert_int_equal(fdt_random_code(out, d + 1, d), 0);
            assert_true(code_valid(out, d));
        }
    }
    /* The one-digit code covers all of 1..9 and never 0. */
    bool seen[10] = {false};
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(fdt_random_code(out, sizeof(out), 1), 0);
        seen[out[0] - '0'] = true;
    }
    assert_false(seen[0]);
    for (int i = 1; i <= 9; i++)
        assert_true(seen[i]);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char out[FDT_CODE_MAX_DIGITS + 8];
    static const struct {
        size_t size;
        unsigned digits;
    } bad[] = {
        {sizeof(out), 0},
        {sizeof(out), FDT_CODE_MAX_DIGITS + 1},
        {sizeof(out), 1000000},
        {6, 6},
        {1, 6},
        {1, 1},
        {FDT_CODE_MAX_DIGITS, FDT_CODE_MAX_DIGITS},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(out, 'x', sizeof(out));
        assert_int_equal(fdt_random_code(out, bad[i].size, bad[i].digits), FDT_EINVAL);
        assert_string_equal(out, "");
    }
    /* Nothing is written when out_size is 0, and NULL is refused. */
    memset(out, 'x', sizeof(out));
    assert_int_equal(fdt_random_code(out, 0, 6), FDT_EINVAL);
    assert_int_equal(out[0], 'x');
    assert_int_equal(fdt_random_code(NULL, 7, 6), FDT_EINVAL);
    assert_int_equal(fdt_random_code(NULL, 0, 6), FDT_EINVAL);
}

/*
 * The sampler step is exact, not just close: for every v in [0, m), the accepted cases map
 * one-to-one onto (value, new v) in [0, n) x [0, m / n) and the rejected cases one-to-one onto
 * [0, m % n). So a uniform v gives a uniform value, an independent uniform new state, and no
 * modulo bias.
 */
static void test_sampler_step_exact(void **state)
{
    (void)state;
    static const uint64_t ns[] = {1, 2, 3, 7, 9, 10, 90, 100, 900, 1000, 4095, 4096};
    static const uint64_t ms[] = {1, 2, 9, 10, 99, 1000, 1001, 4095, 4096, 4097, 8191};
    unsigned char *seen_acc = calloc(8192, 1);
    unsigned char *seen_rej = calloc(8192, 1);
    assert_non_null(seen_acc);
    assert_non_null(seen_rej);
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        for (size_t j = 0; j < sizeof(ms) / sizeof(ms[0]); j++) {
            uint64_t n = ns[i], m = ms[j], q = m / n;
            memset(seen_acc, 0, 8192);
            memset(seen_rej, 0, 8192);
            uint64_t acc = 0, rej = 0;
            for (uint64_t v = 0; v < m; v++) {
                struct fdt__code_sampler s = {.v = v, .m = m};
                uint64_t x = UINT64_MAX;
                if (fdt__code_sampler_step(&s, n, &x)) {
                    assert_true(x < n);
                    assert_true(s.m == q);
                    assert_true(s.v < s.m);
                    uint64_t slot = x * q + (uint64_t)s.v;
                    assert_int_equal(seen_acc[slot], 0);
                    seen_acc[slot] = 1;
                    acc++;
                } else {
                    assert_true(s.m == m % n);
                    assert_true(s.v < s.m);
                    assert_int_equal(seen_rej[(uint64_t)s.v], 0);
                    seen_rej[(uint64_t)s.v] = 1;
                    rej++;
                }
            }
            assert_int_equal(acc, n * q);
            assert_int_equal(rej, m % n);
        }
    }
    free(seen_acc);
    free(seen_rej);
}

/* Chi-square statistic of counts against a uniform expectation. */
static double chi_square(const uint64_t *counts, int k, uint64_t total)
{
    double expect = (double)total / k, sum = 0;
    for (int i = 0; i < k; i++) {
        double d = (double)counts[i] - expect;
        sum += d * d / expect;
    }
    return sum;
}

/* One round of 10^6 six-digit codes: chi-square of the first and the last digit. */
static void chi_square_round(double *first, double *last)
{
    enum { N = 1000000 };
    uint64_t c_first[10] = {0}, c_last[10] = {0};
    char out[8];
    for (int i = 0; i < N; i++) {
        assert_int_equal(fdt_random_code(out, sizeof(out), 6), 0);
        c_first[out[0] - '0']++;
        c_last[out[5] - '0']++;
    }
    assert_int_equal(c_first[0], 0);
    *first = chi_square(c_first + 1, 9, N);
    *last = chi_square(c_last, 10, N);
}

static void test_chi_square_six_digits(void **state)
{
    (void)state;
    /* A correct generator fails one round with probability about 0.2 % (two tests at 0.1 %),
     * so one more round is allowed before calling it a failure: a false alarm then needs two
     * failed rounds in a row, about 4e-6. A biased generator fails both. */
    double first = 0, last = 0;
    bool ok = false;
    for (int round = 0; round < 2 && !ok; round++) {
        chi_square_round(&first, &last);
        print_message("chi-square round %d: first digit %.2f (df 8, limit %.2f), "
                      "last digit %.2f (df 9, limit %.2f)\n",
                      round + 1, first, CHI2_DF8_999, last, CHI2_DF9_999);
        ok = first <= CHI2_DF8_999 && last <= CHI2_DF9_999;
    }
    assert_true(ok);
}

/* A 20-digit code as two 10-digit halves, for sorting without 128-bit integers. */
struct code20 {
    uint64_t hi, lo;
};

struct dup_job {
    struct code20 *codes;
    size_t count;
    unsigned bad;
    uint64_t drawn_before, drawn_after;
};

static uint64_t parse_digits(const char *s, unsigned k)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < k; i++)
        x = x * 10 + (uint64_t)(s[i] - '0');
    return x;
}

static void *dup_worker(void *arg)
{
    struct dup_job *job = arg;
    char out[21];
    job->drawn_before = fdt__code_bytes_drawn();
    for (size_t i = 0; i < job->count; i++) {
        if (fdt_random_code(out, sizeof(out), 20) != 0 || !code_valid(out, 20)) {
            job->bad++;
            continue;
        }
        job->codes[i].hi = parse_digits(out, 10);
        job->codes[i].lo = parse_digits(out + 10, 10);
    }
    job->drawn_after = fdt__code_bytes_drawn();
    return NULL;
}

static int code20_cmp(const void *a, const void *b)
{
    const struct code20 *x = a, *y = b;
    if (x->hi != y->hi)
        return x->hi < y->hi ? -1 : 1;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    return 0;
}

static void test_threads_no_duplicates(void **state)
{
    (void)state;
    enum { THREADS = 8, PER_THREAD = 125000, TOTAL = THREADS * PER_THREAD };
    struct code20 *codes = calloc(TOTAL, sizeof(*codes));
    assert_non_null(codes);
    struct dup_job jobs[THREADS];
    pthread_t tids[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct dup_job){.codes = codes + (size_t)i * PER_THREAD, .count = PER_THREAD};
        assert_int_equal(pthread_create(&tids[i], NULL, dup_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(tids[i], NULL), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(jobs[i].bad, 0);
        /* Each thread starts with its own counter at zero and its own buffer. */
        assert_int_equal(jobs[i].drawn_before, 0);
        assert_true(jobs[i].drawn_after > 0);
    }
    qsort(codes, TOTAL, sizeof(*codes), code20_cmp);
    size_t dups = 0;
    for (size_t i = 1; i < TOTAL; i++)
        dups += code20_cmp(&codes[i - 1], &codes[i]) == 0;
    assert_int_equal(dups, 0);
    free(codes);
}

struct many_job {
    unsigned seed;
    unsigned bad;
};

static void *many_worker(void *arg)
{
    struct many_job *job = arg;
    char out[FDT_CODE_MAX_DIGITS + 1];
    for (unsigned i = 0; i < 2000; i++) {
        unsigned d = 1 + (job->seed + i * 7) % FDT_CODE_MAX_DIGITS;
        if (fdt_random_code(out, sizeof(out), d) != 0 || !code_valid(out, d))
            job->bad++;
    }
    return NULL;
}

/* Many threads drawing codes of every length at once (the ThreadSanitizer case). */
static void test_many_threads(void **state)
{
    (void)state;
    enum { THREADS = 32 };
    struct many_job jobs[THREADS];
    pthread_t tids[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        jobs[i] = (struct many_job){.seed = i};
        assert_int_equal(pthread_create(&tids[i], NULL, many_worker, &jobs[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(tids[i], NULL), 0);
    for (unsigned i = 0; i < THREADS; i++)
        assert_int_equal(jobs[i].bad, 0);
}

/*
 * Bytes drawn from the kernel per code stay within 1.1x of log2(9 * 10^(d-1)) bits. The ratio
 * can never be below 1 (the codes cannot carry more entropy than the bytes they came from), so
 * a ratio under 1 would mean bytes were counted wrongly or used twice.
 */
static void test_bytes_ratio(void **state)
{
    (void)state;
    static const unsigned lengths[] = {6, 9, 12, 20, 64};
    enum { N = 100000 };
    char out[FDT_CODE_MAX_DIGITS + 1];
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        unsigned d = lengths[i];
        fdt__code_state_reset();
        uint64_t before = fdt__code_bytes_drawn();
        for (int j = 0; j < N; j++)
            assert_int_equal(fdt_random_code(out, sizeof(out), d), 0);
        uint64_t bytes = fdt__code_bytes_drawn() - before;
        double min_bytes = N * code_bits(d) / 8.0;
        double ratio = (double)bytes / min_bytes;
        print_message("digits %2u: %.4f bytes/code, minimum %.4f, ratio %.5f\n", d,
                      (double)bytes / N, min_bytes / N, ratio);
        assert_true(ratio <= 1.1);
        assert_true(ratio >= 1.0);
    }
}

/* Sources for the failure tests. They follow getrandom(2): count, or -1 with errno. */
static ssize_t source_fail(void *buf, size_t len, unsigned int flags)
{
    (void)buf;
    (void)len;
    (void)flags;
    errno = EIO;
    return -1;
}

static ssize_t source_nosys(void *buf, size_t len, unsigned int flags)
{
    (void)buf;
    (void)len;
    (void)flags;
    errno = ENOSYS;
    return -1;
}

static ssize_t source_empty(void *buf, size_t len, unsigned int flags)
{
    (void)buf;
    (void)len;
    (void)flags;
    return 0;
}

static _Thread_local size_t budget;

/* Real random bytes up to a budget, then failure. Returns short reads on the way. */
static ssize_t source_budget(void *buf, size_t len, unsigned int flags)
{
    if (budget == 0) {
        errno = EIO;
        return -1;
    }
    size_t n = len < budget ? len : budget;
    n = n > 17 ? 17 : n;
    ssize_t r = getrandom(buf, n, flags);
    if (r > 0)
        budget -= (size_t)r;
    return r;
}

static _Thread_local unsigned flaky_calls;

/* EINTR on every other call, and one byte at a time otherwise. */
static ssize_t source_flaky(void *buf, size_t len, unsigned int flags)
{
    (void)len;
    if (flaky_calls++ % 2 == 0) {
        errno = EINTR;
        return -1;
    }
    return getrandom(buf, 1, flags);
}

static ssize_t source_zero(void *buf, size_t len, unsigned int flags)
{
    (void)flags;
    memset(buf, 0, len);
    return (ssize_t)len;
}

static void test_source_failure(void **state)
{
    (void)state;
    static const fdt__code_source_fn failing[] = {source_fail, source_nosys, source_empty};
    char out[FDT_CODE_MAX_DIGITS + 1];
    for (size_t i = 0; i < sizeof(failing) / sizeof(failing[0]); i++) {
        fdt__code_set_source(failing[i]);
        for (unsigned d = 1; d <= FDT_CODE_MAX_DIGITS; d += 9) {
            memset(out, 'x', sizeof(out));
            assert_int_equal(fdt_random_code(out, sizeof(out), d), FDT_ERANDOM);
            assert_string_equal(out, "");
        }
    }

    /* A source that dies in the middle of a code: the code is refused and no digit of it is
     * left in the buffer. 300 bytes cover a few 128-digit codes (54 bytes each) but not 20. */
    fdt__code_set_source(source_budget);
    budget = 300;
    int rc = 0, made = 0;
    while (made < 20) {
        memset(out, 'x', sizeof(out));
        rc = fdt_random_code(out, sizeof(out), FDT_CODE_MAX_DIGITS);
        if (rc != 0)
            break;
        assert_true(code_valid(out, FDT_CODE_MAX_DIGITS));
        made++;
    }
    assert_true(made >= 2);
    assert_int_equal(rc, FDT_ERANDOM);
    assert_string_equal(out, "");
    for (size_t i = 0; i < sizeof(out); i++)
        assert_false(out[i] >= '0' && out[i] <= '9');
    /* It keeps failing while the source does. */
    assert_int_equal(fdt_random_code(out, sizeof(out), 6), FDT_ERANDOM);
    assert_string_equal(out, "");

    fdt__code_set_source(NULL);
    assert_int_equal(fdt_random_code(out, sizeof(out), 6), 0);
    assert_true(code_valid(out, 6));
}

/* EINTR and short reads are retried until the 64-byte buffer is full, and counted right. */
static void test_source_eintr_short_reads(void **state)
{
    (void)state;
    char out[FDT_CODE_MAX_DIGITS + 1];
    fdt__code_set_source(source_flaky);
    flaky_calls = 0;
    uint64_t before = fdt__code_bytes_drawn();
    assert_int_equal(fdt_random_code(out, sizeof(out), 6), 0);
    assert_true(code_valid(out, 6));
    assert_int_equal(fdt__code_bytes_drawn() - before, 64);
    assert_int_equal(flaky_calls, 128);
    for (unsigned d = 1; d <= FDT_CODE_MAX_DIGITS; d++) {
        assert_int_equal(fdt_random_code(out, sizeof(out), d), 0);
        assert_true(code_valid(out, d));
    }
    fdt__code_set_source(NULL);
}

/* Known answer: with all-zero input every chunk is 0, so each code is 1 followed by zeros. */
static void test_known_answer_zero_source(void **state)
{
    (void)state;
    char out[FDT_CODE_MAX_DIGITS + 1], want[FDT_CODE_MAX_DIGITS + 1];
    fdt__code_set_source(source_zero);
    for (unsigned d = 1; d <= FDT_CODE_MAX_DIGITS; d++) {
        memset(want, '0', d);
        want[0] = '1';
        want[d] = '\0';
        assert_int_equal(fdt_random_code(out, sizeof(out), d), 0);
        assert_string_equal(out, want);
    }
    fdt__code_set_source(NULL);
}

/* After fork the child refills its buffer instead of reusing bytes the parent still holds. */
static void test_fork_drops_state(void **state)
{
    (void)state;
    char out[32], parent_code[32], child_code[32] = "";
    fdt__code_state_reset();
    /* This leaves most of a 64-byte buffer unused in this thread. */
    assert_int_equal(fdt_random_code(out, sizeof(out), 6), 0);

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint64_t before = fdt__code_bytes_drawn();
        int rc = fdt_random_code(out, sizeof(out), 20);
        int ok = rc == 0 && fdt__code_bytes_drawn() - before == 64;
        ssize_t w = write(fds[1], out, 21);
        _exit(ok && w == 21 ? 0 : 1);
    }
    close(fds[1]);
    uint64_t before = fdt__code_bytes_drawn();
    assert_int_equal(fdt_random_code(parent_code, sizeof(parent_code), 20), 0);
    /* The parent still had buffered bytes and drew nothing new. */
    assert_int_equal(fdt__code_bytes_drawn() - before, 0);
    assert_int_equal(read(fds[0], child_code, 21), 21);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(code_valid(child_code, 20));
    assert_string_not_equal(parent_code, child_code);
}

/* All one bits first, then zeros: with v = m - 1 every draw from the ones is rejected (v is
 * in the top slice [q * n, m)), so the sampler loops until the zeros arrive; the code is
 * still valid, and took more than the one 64-byte buffer a 6-digit code needs. */
static int ones_calls;

static ssize_t source_ones_then_zero(void *buf, size_t len, unsigned int flags)
{
    (void)flags;
    memset(buf, ones_calls++ == 0 ? 0xff : 0, len);
    return (ssize_t)len;
}

static void test_rejections_loop_until_accepted(void **state)
{
    (void)state;
    char out[FDT_CODE_MAX_DIGITS + 1];
    fdt__code_state_reset();
    fdt__code_set_source(source_ones_then_zero);
    ones_calls = 0;
    uint64_t before = fdt__code_bytes_drawn();
    assert_int_equal(fdt_random_code(out, sizeof(out), 6), 0);
    assert_true(code_valid(out, 6));
    assert_true(fdt__code_bytes_drawn() - before > 64);
    assert_true(ones_calls >= 2);
    fdt__code_set_source(NULL);
    fdt__code_state_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_length),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_sampler_step_exact),
        cmocka_unit_test(test_chi_square_six_digits),
        cmocka_unit_test(test_threads_no_duplicates),
        cmocka_unit_test(test_many_threads),
        cmocka_unit_test(test_bytes_ratio),
        cmocka_unit_test(test_source_failure),
        cmocka_unit_test(test_source_eintr_short_reads),
        cmocka_unit_test(test_known_answer_zero_source),
        cmocka_unit_test(test_rejections_loop_until_accepted),
        cmocka_unit_test(test_fork_drops_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

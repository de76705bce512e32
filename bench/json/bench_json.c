/* The classic serializer workload with libfdt's JSON: a mapping of N entries str(k) -> -k.
 *
 *   encode  fdt_json_encode() of the mapping held as a libfdt value (an object built once)
 *   decode  fdt_json_doc_new() + fdt_json_parse() of that text into a new document; the
 *           object's hash index is built during the parse, so every key is findable at once
 *   lookup  fdt_json_object_getn() of all N keys in the decoded object (each value checked)
 *   writer  the same text written straight from C with the streaming writer (the response
 *           path: no document at all)
 *
 * Each figure is the median of RUNS runs in milliseconds. Freeing a result is outside the
 * timed region, as it is for the Python side. Output, one line per row:
 *   name<TAB>encode_ms<TAB>decode_ms<TAB>lookup_ms<TAB>bytes
 *
 * Usage: bench_json [entries] [runs]   (defaults 100000 and 20) */
#include "fdt_config.h"

#include <fdt/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_json: %s (%d)\n", what, rc);
    exit(1);
}

struct key {
    char s[24];
    size_t len;
};

static double time_encode(const struct fdt_json *obj, int runs, double *t, const char *expect,
                          size_t expect_len)
{
    for (int r = 0; r < runs; r++) {
        char *out;
        size_t len;
        double t0 = now_ms();
        int rc = fdt_json_encode(obj, 0, &out, &len);
        t[r] = now_ms() - t0;
        if (rc != 0)
            die("encode failed", rc);
        if (len != expect_len || memcmp(out, expect, len) != 0)
            die("encoded text differs from the expected text", 0);
        free(out);
    }
    return median(t, runs);
}

static double time_writer(const struct key *keys, long n, int runs, double *t, size_t expect_len)
{
    for (int r = 0; r < runs; r++) {
        struct fdt_json_writer w;
        char *out;
        size_t len;
        double t0 = now_ms();
        fdt_json_writer_init(&w, 0);
        fdt_json_writer_begin_object(&w);
        for (long k = 0; k < n; k++) {
            fdt_json_writer_keyn(&w, keys[k].s, keys[k].len);
            fdt_json_writer_int(&w, -k);
        }
        fdt_json_writer_end_object(&w);
        int rc = fdt_json_writer_take(&w, &out, &len);
        t[r] = now_ms() - t0;
        fdt_json_writer_deinit(&w);
        if (rc != 0 || len != expect_len)
            die("writer failed", rc);
        free(out);
    }
    return median(t, runs);
}

static double time_decode(const char *text, size_t len, int runs, double *t)
{
    for (int r = 0; r < runs; r++) {
        struct fdt_json *root;
        struct fdt_error err;
        double t0 = now_ms();
        struct fdt_json_doc *doc = fdt_json_doc_new();
        int rc = doc ? fdt_json_parse(doc, text, len, NULL, &root, &err) : FDT_ENOMEM;
        t[r] = now_ms() - t0;
        if (rc != 0)
            die(rc == FDT_ENOMEM ? "out of memory" : err.msg, rc);
        fdt_json_doc_free(doc);
    }
    return median(t, runs);
}

static double time_lookup(const char *text, size_t len, const struct key *keys, long n, int runs,
                          double *t)
{
    struct fdt_json *root;
    struct fdt_json_doc *doc = fdt_json_doc_new();
    if (!doc || fdt_json_parse(doc, text, len, NULL, &root, NULL) != 0)
        die("parse failed", 0);
    if ((long)fdt_json_size(root) != n)
        die("decoded object has the wrong size", 0);
    for (int r = 0; r < runs; r++) {
        long bad = 0;
        double t0 = now_ms();
        for (long k = 0; k < n; k++) {
            const struct fdt_json *v = fdt_json_object_getn(root, keys[k].s, keys[k].len);
            bad += fdt_json_int_value(v) != -k || !v;
        }
        t[r] = now_ms() - t0;
        if (bad)
            die("a key was not found after decoding", (int)bad);
    }
    fdt_json_doc_free(doc);
    return median(t, runs);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    int runs = argc > 2 ? atoi(argv[2]) : 20;
    if (n < 1 || n > 10000000 || runs < 1 || runs > 1000) {
        fprintf(stderr, "usage: bench_json [entries] [runs]\n");
        return 2;
    }
    struct key *keys = calloc((size_t)n, sizeof(*keys));
    double *t = calloc((size_t)runs, sizeof(*t));
    size_t cap = (size_t)n * 32 + 16, len = 0;
    char *expect = malloc(cap);
    struct fdt_json_doc *doc = fdt_json_doc_new();
    if (!keys || !t || !expect || !doc)
        die("out of memory", 0);

    /* The mapping as a libfdt value, and the text it must encode to. */
    struct fdt_json *obj = fdt_json_object(doc);
    expect[len++] = '{';
    for (long k = 0; k < n; k++) {
        keys[k].len = (size_t)snprintf(keys[k].s, sizeof(keys[k].s), "%ld", k);
        int rc = fdt_json_object_setn(doc, obj, keys[k].s, keys[k].len, fdt_json_int(doc, -k));
        if (rc != 0)
            die("building the object failed", rc);
        len += (size_t)snprintf(expect + len, cap - len, "%s\"%ld\":%ld", k ? "," : "", k, -k);
    }
    expect[len++] = '}';
    expect[len] = '\0';

    double enc = time_encode(obj, runs, t, expect, len);
    double dec = time_decode(expect, len, runs, t);
    double look = time_lookup(expect, len, keys, n, runs, t);
    double wr = time_writer(keys, n, runs, t, len);
    printf("C libfdt\t%.2f\t%.2f\t%.2f\t%zu\n", enc, dec, look, len);
    printf("C libfdt streaming writer\t%.2f\t-\t-\t%zu\n", wr, len);

    fdt_json_doc_free(doc);
    free(expect);
    free(t);
    free(keys);
    return 0;
}

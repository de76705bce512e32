/* Measure one of Debian's C JSON libraries on the classic serializer workload.
 *
 * This program is how the parser for libfdt was chosen (see docs/json.md). It is
 * built once per library by bench/json/run, with exactly one of USE_JANSSON,
 * USE_JSONC, USE_FASTJSON, USE_CJSON or USE_JSONPARSER defined, because json-c and
 * libfastjson export the same symbol names and cannot share one program.
 *
 * The workload is a mapping of N entries str(k) -> -k. "decode" parses the compact
 * text into the library's value; "lookup" then finds every key and checks its value;
 * "encode" turns an already built value into compact text. Each figure is the median
 * of RUNS runs in milliseconds. A library whose object lookup is a linear scan is
 * timed on a sample of keys and the total is extrapolated (marked with "~").
 *
 * Output is one line: name<TAB>encode_ms<TAB>decode_ms<TAB>lookup_ms. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(USE_JANSSON)
#include <jansson.h>
#define LIB_NAME      "jansson"
#define LINEAR_LOOKUP 0
#elif defined(USE_JSONC)
#include <json-c/json.h>
#define LIB_NAME      "json-c"
#define LINEAR_LOOKUP 0
#elif defined(USE_FASTJSON)
#include <libfastjson/json.h>
#define LIB_NAME      "libfastjson"
#define LINEAR_LOOKUP 1
#elif defined(USE_CJSON)
#include <cjson/cJSON.h>
#define LIB_NAME      "cJSON"
#define LINEAR_LOOKUP 1
#elif defined(USE_JSONPARSER)
#include <json-parser/json.h>
#define LIB_NAME      "json-parser"
#define LINEAR_LOOKUP 1
#else
#error "define one of USE_JANSSON, USE_JSONC, USE_FASTJSON, USE_CJSON, USE_JSONPARSER"
#endif

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

static char *make_text(long n, size_t *len)
{
    size_t cap = (size_t)n * 32 + 16, off = 0;
    char *s = malloc(cap);
    if (!s)
        exit(2);
    s[off++] = '{';
    for (long k = 0; k < n; k++)
        off += (size_t)snprintf(s + off, cap - off, "%s\"%ld\":%ld", k ? "," : "", k, -k);
    s[off++] = '}';
    s[off] = '\0';
    *len = off;
    return s;
}

static void fail(const char *what)
{
    fprintf(stderr, "%s: %s\n", LIB_NAME, what);
    exit(1);
}

/* Library glue: parse, free, find a key's integer, build, dump. */
#if defined(USE_JANSSON)
typedef json_t val_t;
static val_t *lib_parse(const char *s, size_t len)
{
    return json_loadb(s, len, 0, NULL);
}
static void lib_free(val_t *v)
{
    json_decref(v);
}
static int lib_get(val_t *o, const char *key, long *out)
{
    json_t *x = json_object_get(o, key);
    if (!x)
        return -1;
    *out = (long)json_integer_value(x);
    return 0;
}
static val_t *lib_build(long n)
{
    json_t *o = json_object();
    char key[32];
    for (long k = 0; k < n; k++) {
        snprintf(key, sizeof(key), "%ld", k);
        json_object_set_new(o, key, json_integer(-k));
    }
    return o;
}
static char *lib_dump(val_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
}
static void lib_dump_free(char *s)
{
    free(s);
}
#elif defined(USE_JSONC)
typedef struct json_object val_t;
static val_t *lib_parse(const char *s, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    val_t *v = json_tokener_parse_ex(tok, s, (int)len);
    json_tokener_free(tok);
    return v;
}
static void lib_free(val_t *v)
{
    json_object_put(v);
}
static int lib_get(val_t *o, const char *key, long *out)
{
    struct json_object *x;
    if (!json_object_object_get_ex(o, key, &x))
        return -1;
    *out = (long)json_object_get_int64(x);
    return 0;
}
static val_t *lib_build(long n)
{
    val_t *o = json_object_new_object();
    char key[32];
    for (long k = 0; k < n; k++) {
        snprintf(key, sizeof(key), "%ld", k);
        json_object_object_add(o, key, json_object_new_int64(-k));
    }
    return o;
}
static char *lib_dump(val_t *v)
{
    return (char *)json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}
static void lib_dump_free(char *s)
{
    (void)s; /* owned by the object */
}
#elif defined(USE_FASTJSON)
typedef struct fjson_object val_t;
static val_t *lib_parse(const char *s, size_t len)
{
    struct fjson_tokener *tok = fjson_tokener_new();
    val_t *v = fjson_tokener_parse_ex(tok, s, (int)len);
    fjson_tokener_free(tok);
    return v;
}
static void lib_free(val_t *v)
{
    fjson_object_put(v);
}
static int lib_get(val_t *o, const char *key, long *out)
{
    struct fjson_object *x;
    if (!fjson_object_object_get_ex(o, key, &x))
        return -1;
    *out = (long)fjson_object_get_int64(x);
    return 0;
}
static val_t *lib_build(long n)
{
    val_t *o = fjson_object_new_object();
    char key[32];
    for (long k = 0; k < n; k++) {
        snprintf(key, sizeof(key), "%ld", k);
        fjson_object_object_add(o, key, fjson_object_new_int64(-k));
    }
    return o;
}
static char *lib_dump(val_t *v)
{
    return (char *)fjson_object_to_json_string_ext(v, FJSON_TO_STRING_PLAIN);
}
static void lib_dump_free(char *s)
{
    (void)s;
}
#elif defined(USE_CJSON)
typedef cJSON val_t;
static val_t *lib_parse(const char *s, size_t len)
{
    return cJSON_ParseWithLength(s, len);
}
static void lib_free(val_t *v)
{
    cJSON_Delete(v);
}
static int lib_get(val_t *o, const char *key, long *out)
{
    cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!x)
        return -1;
    *out = (long)x->valuedouble;
    return 0;
}
static val_t *lib_build(long n)
{
    cJSON *o = cJSON_CreateObject();
    char key[32];
    for (long k = 0; k < n; k++) {
        snprintf(key, sizeof(key), "%ld", k);
        cJSON_AddItemToObject(o, key, cJSON_CreateNumber((double)-k));
    }
    return o;
}
static char *lib_dump(val_t *v)
{
    return cJSON_PrintUnformatted(v);
}
static void lib_dump_free(char *s)
{
    free(s);
}
#elif defined(USE_JSONPARSER)
typedef json_value val_t;
static val_t *lib_parse(const char *s, size_t len)
{
    return json_parse(s, len);
}
static void lib_free(val_t *v)
{
    json_value_free(v);
}
static int lib_get(val_t *o, const char *key, long *out)
{
    for (unsigned i = 0; i < o->u.object.length; i++) {
        if (strcmp(o->u.object.values[i].name, key) == 0) {
            *out = (long)o->u.object.values[i].value->u.integer;
            return 0;
        }
    }
    return -1;
}
/* json-parser has no encoder (json-builder is not packaged in Debian). */
#define NO_ENCODER 1
#endif

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    int runs = argc > 2 ? atoi(argv[2]) : 20;
    if (n < 1 || runs < 1 || runs > 1000)
        fail("usage: bench_json_libs [entries] [runs]");
    size_t len;
    char *text = make_text(n, &len);
    double *t = calloc((size_t)runs, sizeof(double));
    if (!t)
        fail("out of memory");

    /* Decode. */
    for (int r = 0; r < runs; r++) {
        double t0 = now_ms();
        val_t *v = lib_parse(text, len);
        t[r] = now_ms() - t0;
        if (!v)
            fail("parse failed");
        lib_free(v);
    }
    double dec = median(t, runs);

    /* Look up every key (or a sample of keys for linear lookups) and check the value. */
    val_t *v = lib_parse(text, len);
    long step = LINEAR_LOOKUP ? (n > 1000 ? n / 1000 : 1) : 1;
    char key[32];
    for (int r = 0; r < runs; r++) {
        double t0 = now_ms();
        long found = 0;
        for (long k = 0; k < n; k += step) {
            long got;
            snprintf(key, sizeof(key), "%ld", k);
            if (lib_get(v, key, &got) != 0 || got != -k)
                fail("key not found after decoding");
            found++;
        }
        t[r] = (now_ms() - t0) * (double)n / (double)found;
    }
    double look = median(t, runs);
    lib_free(v);

    double enc = -1;
#ifndef NO_ENCODER
    v = lib_build(n);
    for (int r = 0; r < runs; r++) {
        double t0 = now_ms();
        char *s = lib_dump(v);
        t[r] = now_ms() - t0;
        if (!s || strlen(s) != len)
            fail("encoded text has the wrong size");
        lib_dump_free(s);
        /* json-c and libfastjson cache the text in the object: rebuild to be fair. */
#if defined(USE_JSONC) || defined(USE_FASTJSON)
        lib_free(v);
        v = lib_build(n);
#endif
    }
    enc = median(t, runs);
    lib_free(v);
#endif

    printf("C %s\t", LIB_NAME);
    if (enc < 0)
        printf("-\t");
    else
        printf("%.2f\t", enc);
    printf("%.2f\t%s%.2f\n", dec, LINEAR_LOOKUP ? "~" : "", look);
    free(t);
    free(text);
    return 0;
}

/* Benchmark for fdt_random_code(): codes per second and kernel bytes drawn per code.
 *
 * Usage: bench_code [codes-per-thread]   (default 2000000)
 * Timing lives here only; the unit test checks the byte counts, never the speed. */
#include "fdt_config.h"

#include "code/code.h"

#include <fdt/code.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* log2(9) and log2(10), so that the bench needs no libm. */
#define LOG2_9  3.169925001442312
#define LOG2_10 3.321928094887362

struct job {
    unsigned digits;
    unsigned long count;
    pthread_barrier_t *start;
    unsigned long failures;
    uint64_t bytes;
    double cpu_seconds;
};

static double clock_seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
    struct job *job = arg;
    char out[FDT_CODE_MAX_DIGITS + 1];
    /* Start from an empty buffer so that every byte this run uses is counted. */
    fdt__code_state_reset();
    pthread_barrier_wait(job->start);
    uint64_t before = fdt__code_bytes_drawn();
    double cpu0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
    for (unsigned long i = 0; i < job->count; i++) {
        if (fdt_random_code(out, sizeof(out), job->digits) != 0)
            job->failures++;
    }
    job->cpu_seconds = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    job->bytes = fdt__code_bytes_drawn() - before;
    return NULL;
}

/* Run one case; returns 0, or 1 when a thread could not start or a code failed. */
static int run_case(unsigned digits, unsigned threads, unsigned long count)
{
    struct job jobs[2];
    pthread_t tids[2];
    pthread_barrier_t start;
    if (threads > 2 || pthread_barrier_init(&start, NULL, threads + 1) != 0)
        return 1;
    for (unsigned i = 0; i < threads; i++) {
        jobs[i] = (struct job){.digits = digits, .count = count, .start = &start};
        if (pthread_create(&tids[i], NULL, worker, &jobs[i]) != 0) {
            fprintf(stderr, "bench_code: pthread_create failed\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&start);
    double t0 = clock_seconds(CLOCK_MONOTONIC);
    uint64_t bytes = 0;
    unsigned long failures = 0;
    double cpu = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        bytes += jobs[i].bytes;
        failures += jobs[i].failures;
        cpu += jobs[i].cpu_seconds;
    }
    double elapsed = clock_seconds(CLOCK_MONOTONIC) - t0;
    pthread_barrier_destroy(&start);

    double codes = (double)count * threads;
    double min_bytes = (LOG2_9 + (digits - 1) * LOG2_10) / 8.0;
    double per_code = (double)bytes / codes;
    /* Wall-clock codes/s depends on what else runs on the host; CPU ns/code does not. */
    printf("%6u  %7u  %12.0f  %11.1f  %10.4f  %10.4f  %8.5f\n", digits, threads, codes / elapsed,
           cpu * 1e9 / codes, per_code, min_bytes, per_code / min_bytes);
    return failures != 0;
}

int main(int argc, char **argv)
{
    unsigned long count = 2000000;
    if (argc > 1) {
        char *end = NULL;
        count = strtoul(argv[1], &end, 10);
        if (end == argv[1] || *end != '\0' || count == 0) {
            fprintf(stderr, "usage: %s [codes-per-thread]\n", argv[0]);
            return 2;
        }
    }
    static const unsigned lengths[] = {6, 12, 20};
    int rc = 0;
    printf("fdt_random_code: %lu codes per thread per row\n", count);
    printf("%6s  %7s  %12s  %11s  %10s  %10s  %8s\n", "digits", "threads", "codes/s", "cpu ns/code",
           "bytes/code", "min bytes", "ratio");
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        for (unsigned threads = 1; threads <= 2; threads++)
            rc |= run_case(lengths[i], threads, count);
    }
    if (rc != 0)
        fprintf(stderr, "bench_code: some codes failed\n");
    return rc;
}

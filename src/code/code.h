/* Internal side of random codes: the per-thread byte counter, test hooks and the sampler step. */
#ifndef FDT_SRC_CODE_H
#define FDT_SRC_CODE_H

#include <fdt/code.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A random source with the signature and error convention of getrandom(2): it returns the
 * number of bytes written (possibly fewer than len), or -1 with errno set. */
typedef ssize_t (*fdt__code_source_fn)(void *buf, size_t len, unsigned int flags);

/* Bytes the calling thread has received from its random source since it started. Used by the
 * unit test and the bench to check that codes use little randomness. Thread: any (per thread). */
uint64_t fdt__code_bytes_drawn(void);

/* Use fn instead of getrandom(2) in the calling thread only; NULL restores getrandom(2). Drops
 * the thread's buffered randomness so that the next code comes from the new source.
 * For unit tests only. Thread: any (affects the calling thread). */
void fdt__code_set_source(fdt__code_source_fn fn);

/* Forget the calling thread's buffered randomness (the fork child handler does this). The byte
 * counter and the source are kept. Thread: any (affects the calling thread). */
void fdt__code_state_reset(void);

/* Sampler state: v is uniform in [0, m) and independent of everything returned so far. */
struct fdt__code_sampler {
    __extension__ unsigned __int128 v;
    __extension__ unsigned __int128 m;
};

/*
 * One step of the entropy-preserving uniform sampler, for n >= 1. With q = m / n:
 * if v < q * n, store v % n in *x, keep v / n uniform in [0, q) and return true;
 * otherwise keep v - q * n uniform in [0, m - q * n) and return false (rejection).
 * Pure arithmetic: no randomness is drawn here. Thread: any.
 */
bool fdt__code_sampler_step(struct fdt__code_sampler *s, uint64_t n, uint64_t *x);

#endif

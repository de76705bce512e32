/* Secure random numeric codes (one-time codes, confirmation numbers). */
#ifndef FDT_CODE_H
#define FDT_CODE_H

#include <fdt/common.h>

/* The longest code fdt_random_code() produces, in digits. */
#define FDT_CODE_MAX_DIGITS 128

/**
 * Write a random code of exactly `digits` decimal digits to `out`, followed by a NUL.
 *
 * The first digit is never '0'. Every one of the 9 * 10^(digits - 1) codes of that length is
 * equally likely: the randomness comes from the kernel CSPRNG (getrandom(2)) and is turned into
 * digits by rejection sampling, so there is no modulo bias. There is no fallback to a weaker
 * source.
 *
 * Returns 0, or a negative code:
 *   FDT_EINVAL   out is NULL, digits is 0 or above FDT_CODE_MAX_DIGITS, or out_size is smaller
 *                than digits + 1.
 *   FDT_ERANDOM  the kernel random source failed. No code is ever made from weaker randomness.
 * On every error, `out` holds an empty string when out_size is at least 1.
 *
 * Ownership: `out` is borrowed for the duration of the call and belongs to the caller.
 * Thread: any. Each thread keeps its own small random buffer; nothing is shared between threads.
 * After fork(), the child never reuses randomness buffered by the parent.
 * Async-signal-safe: no (a signal handler must not interrupt a call on the same thread).
 */
FDT_API int fdt_random_code(char *out, size_t out_size, unsigned digits);

#endif

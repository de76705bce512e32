#include "fdt_config.h"

#include "code/code.h"

#include <errno.h>
#include <fdt/error.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/*
 * How a code is made.
 *
 * Each thread keeps a uniform state (v, m): v is uniform in [0, m) and independent of every
 * digit handed out so far. To draw a value uniform in [0, n), random bits are shifted into the
 * state (v = v * 2^k + bits, m = m * 2^k) until m has 63 more bits than n, and then one sampler
 * step runs (see fdt__code_sampler_step): on acceptance v % n is the value and v / n, uniform in
 * [0, m / n), stays as the state; on rejection the remainder stays as the state. No randomness
 * is thrown away on either path, so a long run of codes uses barely more bits than log2 of the
 * number of possible codes (Lumbroso's "Fast Dice Roller" with the leftover kept). Since then
 * m > 2^62 * n, a rejection happens with probability below 2^-62. Keeping m below 2^64 * n
 * (rather than filling all 128 bits) lets each 128-by-64-bit division take one machine division.
 *
 * A code is made of independent uniform chunks that fit 64-bit arithmetic: the first digit with
 * up to 18 more (uniform in [0, 9 * 10^k), then 10^k added), then chunks of up to 18 digits
 * uniform in [0, 10^k) and written with leading zeros. Independent uniform chunks make the
 * whole code uniform.
 *
 * Bits come from a 64-byte per-thread buffer filled by one getrandom(2) call. Bytes are taken
 * out of the buffer 8 at a time into a 64-bit word and wiped from the buffer, and bits are then
 * taken from that word, so no byte is handed out twice. A fork child handler drops the state of
 * the forking thread, the only thread the child has.
 */

#define BUF_SIZE     64
#define CHUNK_DIGITS 18

/* One thread's generator. Only that thread reads or writes it. */
struct code_tls {
    /* The uniform state (v, m). */
    struct fdt__code_sampler s;
    /* Random bits not used yet are the low word_bits bits of word (0 to 64 of them). */
    uint64_t word;
    unsigned word_bits;
    /* Bytes of buf already moved into word; BUF_SIZE when buf is empty. */
    unsigned pos;
    /* The process that filled buf. It is only checked if pthread_atfork() failed. */
    pid_t pid;
    /* Bytes received from the source since the thread started. */
    uint64_t drawn;
    /* The random source; NULL means getrandom(2). */
    fdt__code_source_fn source;
    unsigned char buf[BUF_SIZE];
};

static _Thread_local struct code_tls tls = {.s = {.v = 0, .m = 1}, .pos = BUF_SIZE};

/* Set once by the pthread_once routine below and only read afterwards. */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static bool atfork_ok;

static const uint64_t pow10_table[CHUNK_DIGITS + 1] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
    1000000000ULL,
    10000000000ULL,
    100000000000ULL,
    1000000000000ULL,
    10000000000000ULL,
    100000000000000ULL,
    1000000000000000ULL,
    10000000000000000ULL,
    100000000000000000ULL,
    1000000000000000000ULL,
};

static void state_drop(struct code_tls *t)
{
    t->s.v = 0;
    t->s.m = 1;
    t->word = 0;
    t->word_bits = 0;
    t->pos = BUF_SIZE;
    t->pid = 0;
    explicit_bzero(t->buf, sizeof(t->buf));
}

void fdt__code_state_reset(void)
{
    state_drop(&tls);
}

/* GCOVR_EXCL_START: unreachable for gcov: runs (test_code_random's test_fork_drops_state
 * checks its effect), but GCC's fork wrapper resets the child's counters after the atfork
 * handlers ran (docs/coverage.md) */
static void on_fork_child(void)
{
    /* Runs in the child on the thread that called fork(), the child's only thread. */
    state_drop(&tls);
}
/* GCOVR_EXCL_STOP */

static void atfork_register(void)
{
    atfork_ok = pthread_atfork(NULL, NULL, on_fork_child) == 0;
}

uint64_t fdt__code_bytes_drawn(void)
{
    return tls.drawn;
}

void fdt__code_set_source(fdt__code_source_fn fn)
{
    tls.source = fn;
    state_drop(&tls);
}

/* Fill the whole buffer from the source, retrying on EINTR and short reads. */
static int buf_fill(struct code_tls *t)
{
    size_t got = 0;
    while (got < sizeof(t->buf)) {
        ssize_t r;
        if (t->source != NULL)
            r = t->source(t->buf + got, sizeof(t->buf) - got, 0);
        else
            r = getrandom(t->buf + got, sizeof(t->buf) - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (size_t)r > sizeof(t->buf) - got) {
            /* A source that fails, or returns nothing for a non-empty request, is broken. */
            return FDT_ERANDOM;
        }
        got += (size_t)r;
        t->drawn += (uint64_t)r;
    }
    t->pos = 0;
    t->pid = atfork_ok ? 0 : getpid();
    return 0;
}

/* Move the next 8 buffer bytes into the bit word, wiping them from the buffer. */
static int word_load(struct code_tls *t)
{
    if (t->pos >= sizeof(t->buf)) {
        int rc = buf_fill(t);
        if (rc < 0)
            return rc;
    }
    memcpy(&t->word, t->buf + t->pos, sizeof(t->word));
    memset(t->buf + t->pos, 0, sizeof(t->word));
    t->pos += sizeof(t->word);
    t->word_bits = 64;
    return 0;
}

/* Number of significant bits of m (m >= 1). */
static unsigned state_bits(const struct fdt__code_sampler *s)
{
    uint64_t hi = (uint64_t)(s->m >> 64);
    if (hi != 0)
        return 128 - (unsigned)__builtin_clzll(hi); /* GCOVR_EXCL_LINE: unreachable: m < 2^64
            whenever the state is topped up (after a draw m = q < 2^64, after a rejection
            m < n, at the start m = 1); kept so that the count is right for any state */
    return 64 - (unsigned)__builtin_clzll((uint64_t)s->m);
}

/*
 * Shift random bits into the state until m has 63 more bits than n (1 <= n < 2^63). Then
 * 2^62 * n < m < 2^64 * n <= 2^127: rejection is rare and v / n, m / n fit one division.
 */
static int state_top_up(struct code_tls *t, uint64_t n)
{
    unsigned target = 63 + 64 - (unsigned)__builtin_clzll(n);
    unsigned have = state_bits(&t->s);
    unsigned need = have < target ? target - have : 0;
    while (need > 0) {
        if (t->word_bits == 0) {
            int rc = word_load(t);
            if (rc < 0)
                return rc;
        }
        unsigned k = need < t->word_bits ? need : t->word_bits;
        uint64_t bits = k == 64 ? t->word : t->word & ((1ULL << k) - 1);
        t->word = k == 64 ? 0 : t->word >> k;
        t->word_bits -= k;
        t->s.v = (t->s.v << k) | bits;
        t->s.m <<= k;
        need -= k;
    }
    return 0;
}

bool fdt__code_sampler_step(struct fdt__code_sampler *s, uint64_t n, uint64_t *x)
{
    /* __extension__ keeps -Wpedantic quiet about the GCC 128-bit type. */
    __extension__ unsigned __int128 q = s->m / n;
    __extension__ unsigned __int128 d = s->v / n;
    uint64_t r = (uint64_t)(s->v - d * n);
    if (d < q) {
        /* v < q * n: (v % n, v / n) is uniform over [0, n) x [0, q). */
        *x = r;
        s->v = d;
        s->m = q;
        return true;
    }
    /* v >= q * n, so d == q and r = v - q * n is uniform in [0, m - q * n). */
    s->v = r;
    s->m -= q * n;
    return false;
}

/* Draw x uniform in [0, n), for 1 <= n < 2^63. */
static int uniform(struct code_tls *t, uint64_t n, uint64_t *x)
{
    for (;;) {
        int rc = state_top_up(t, n);
        if (rc < 0)
            return rc;
        if (fdt__code_sampler_step(&t->s, n, x))
            return 0;
    }
}

/* Write x as exactly k decimal digits, with leading zeros. */
static void digits_put(char *p, unsigned k, uint64_t x)
{
    while (k > 0) {
        k--;
        p[k] = (char)('0' + x % 10);
        x /= 10;
    }
}

int fdt_random_code(char *out, size_t out_size, unsigned digits)
{
    if (out != NULL && out_size > 0)
        out[0] = '\0';
    if (out == NULL || digits == 0 || digits > FDT_CODE_MAX_DIGITS || out_size < digits + 1u)
        return FDT_EINVAL;

    pthread_once(&atfork_once, atfork_register);
    struct code_tls *t = &tls;
    if (!atfork_ok && t->pid != 0 && t->pid != getpid())
        state_drop(t); /* GCOVR_EXCL_LINE: unreachable: pthread_atfork fails only when libc
                          cannot allocate its handler entry, which no test can provoke */

    int rc = FDT_ERANDOM;
    unsigned done = 0;
    uint64_t x;

    /* First chunk: a leading digit 1..9 and up to CHUNK_DIGITS more. */
    unsigned k = digits - 1 < CHUNK_DIGITS ? digits - 1 : CHUNK_DIGITS;
    rc = uniform(t, 9 * pow10_table[k], &x);
    if (rc < 0)
        goto out;
    digits_put(out, k + 1, x + pow10_table[k]);
    done = k + 1;

    while (done < digits) {
        k = digits - done < CHUNK_DIGITS ? digits - done : CHUNK_DIGITS;
        rc = uniform(t, pow10_table[k], &x);
        if (rc < 0)
            goto out;
        digits_put(out + done, k, x);
        done += k;
    }
    out[digits] = '\0';
    rc = 0;

out:
    if (rc < 0) {
        /* Never leave part of a code behind. */
        explicit_bzero(out, done);
        state_drop(t);
    }
    return rc;
}

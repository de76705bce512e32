#include "fdt_config.h"

#include "json/json.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Numbers must be read and written with '.' as the decimal point even when the application
 * called setlocale(). glibc has no snprintf_l, so both directions use one C locale object,
 * created once for the whole process and never changed afterwards (it is a constant once
 * initialised, not mutable state). If it cannot be created, the process locale is used.
 */
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t get_c_locale(void)
{
    pthread_once(&c_locale_once, c_locale_init);
    return c_locale;
}

/* clang-format off */
const uint8_t fdt__json_char_class[256] = {
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};
/* clang-format on */

bool fdt__json_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        /* Skip ASCII eight bytes at a time. */
        while ((size_t)(end - p) >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (w & 0x8080808080808080ull)
                break;
            p += 8;
        }
        if (p >= end)
            break;
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t n = fdt__json_utf8_seq(p, end);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

bool fdt__json_is_clean(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = fdt__json_char_class[p[i]];
        if (c != FDT__JSON_CH_PLAIN && c != FDT__JSON_CH_HIGH)
            return false;
    }
    return true;
}

int fdt__json_strtod(const char *s, size_t len, double *out)
{
    locale_t loc = get_c_locale();
    char *end = NULL;
    double d = loc ? strtod_l(s, &end, loc) : strtod(s, &end);
    if (end != s + len)
        return FDT_EPROTO; /* Cannot happen for text that passed the JSON number grammar. */
    if (!isfinite(d))
        return FDT_EPROTO; /* Too large for a double; underflow to 0 or a subnormal is fine. */
    *out = d;
    return 0;
}

size_t fdt__json_format_double(double d, char *out)
{
    if (!isfinite(d))
        return 0;
    locale_t loc = get_c_locale();
    locale_t old = loc ? uselocale(loc) : (locale_t)0;
    int n = 0;
    /* For a normal double, the nearest 15-digit decimal is the shortest form whenever that
     * has at most 15 digits; otherwise the nearest 16-digit one is tried, and 17 digits
     * always round-trip. Subnormals carry fewer bits, so their search starts at 1 digit. */
    for (int prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        n = snprintf(out, 32, "%.*g", prec, d);
        if (prec == 17 || strtod(out, NULL) == d)
            break;
    }
    if (old)
        uselocale(old);
    if (n <= 0 || n > 28)
        return 0; /* GCOVR_EXCL_LINE: unreachable: %.17g of a finite double is at most 24 bytes */
    /* Keep it a double when read back: "1" becomes "1.0", "-0" becomes "-0.0". */
    if (!strpbrk(out, ".e")) {
        out[n++] = '.';
        out[n++] = '0';
        out[n] = '\0';
    }
    return (size_t)n;
}

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

size_t fdt__json_format_int(int64_t i, char *out)
{
    static const uint64_t pow10[20] = {1ull,
                                       10ull,
                                       100ull,
                                       1000ull,
                                       10000ull,
                                       100000ull,
                                       1000000ull,
                                       10000000ull,
                                       100000000ull,
                                       1000000000ull,
                                       10000000000ull,
                                       100000000000ull,
                                       1000000000000ull,
                                       10000000000000ull,
                                       100000000000000ull,
                                       1000000000000000ull,
                                       10000000000000000ull,
                                       100000000000000000ull,
                                       1000000000000000000ull,
                                       10000000000000000000ull};
    uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    /* Digits from the bit length: 1233 / 4096 approximates log10(2); one compare fixes it. */
    unsigned bits = 64 - (unsigned)__builtin_clzll(u | 1);
    size_t n = (bits * 1233) >> 12;
    n += n < 20 && u >= pow10[n];
    if (n == 0)
        n = 1;
    if (i < 0)
        *out++ = '-';
    char *p = out + n;
    while (u >= 100) {
        unsigned r = (unsigned)(u % 100);
        u /= 100;
        p -= 2;
        p[0] = digit_pairs[2 * r];
        p[1] = digit_pairs[2 * r + 1];
    }
    if (u >= 10) {
        p[-2] = digit_pairs[2 * u];
        p[-1] = digit_pairs[2 * u + 1];
    } else {
        p[-1] = (char)('0' + u);
    }
    return n + (i < 0);
}

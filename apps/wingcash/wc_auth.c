/* Bearer tokens: 32 bytes from the kernel's CSPRNG, shown once to the account's owner and
 * stored only as their SHA-256. A token carries 256 bits of entropy, so a fast unsalted
 * hash is enough (as for API tokens elsewhere): nothing can be guessed from the hash. */
#include "wingcash.h"

#include <openssl/evp.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int wc_token_new(char out[WC_TOKEN_LEN + 1])
{
    unsigned char raw[33];
    size_t got = 0;
    while (got < 32) {
        ssize_t n = getrandom(raw + got, 32 - got, 0);
        if (n <= 0)
            return FDT_ERANDOM;
        got += (size_t)n;
    }
    raw[32] = 0;
    memcpy(out, "wc_", 3);
    char *p = out + 3;
    /* 32 bytes = 10 groups of 3 bytes + 2 bytes: 40 + 3 characters. */
    for (size_t i = 0; i < 33; i += 3) {
        unsigned v =
            (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | (i + 2 < 33 ? raw[i + 2] : 0);
        *p++ = b64url[(v >> 18) & 63];
        *p++ = b64url[(v >> 12) & 63];
        *p++ = b64url[(v >> 6) & 63];
        if (i + 2 < 32)
            *p++ = b64url[v & 63];
    }
    out[WC_TOKEN_LEN] = '\0';
    return 0;
}

void wc_token_hash(const char *token, size_t len, char out[WC_TOKEN_HASH_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    if (EVP_Digest(token, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        /* GCOVR_EXCL_START: unreachable: a one-shot SHA-256 of a buffer in memory fails
         * only when OpenSSL cannot allocate its context */
        memset(out, '0', WC_TOKEN_HASH_LEN); /* matches no token: every lookup fails */
        out[WC_TOKEN_HASH_LEN] = '\0';
        return;
        /* GCOVR_EXCL_STOP */
    }
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[WC_TOKEN_HASH_LEN] = '\0';
}

const char *wc_bearer(const char *authorization)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    const char *t = authorization + 7;
    while (*t == ' ')
        t++;
    return *t ? t : NULL;
}

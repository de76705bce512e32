/* TLS contexts and sessions when memory runs out, and a protocol version OpenSSL does not
 * know. OpenSSL's own allocations are routed through malloc and realloc of this program
 * (CRYPTO_set_mem_functions, before OpenSSL allocates anything), so the allocation fault
 * injector (tests/unit/alloc_fault.h) reaches them as well as ours: each allocation of
 * making a context and a session is failed in turn, and each such run must fail cleanly
 * (an error, a message, nothing returned; ASan checks for leaks) or, where OpenSSL copes
 * with the failure itself, succeed. The certificate is made here for each run. */
#include "fdt_config.h"

#include "alloc_fault.h"
#include "tls/tls.h"
#include "util/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

static char dir[] = "/tmp/fdt-tls-cov-XXXXXX";
static char cert_path[64], key_path[64];

/* A self-signed P-256 certificate for localhost and its key, as PEM files in dir. */
static int make_files(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(cert_path, sizeof(cert_path), "%s/server.pem", dir);
    snprintf(key_path, sizeof(key_path), "%s/server.key", dir);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"localhost", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    FILE *f = fopen(cert_path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
    f = fopen(key_path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    return 0;
}

static int remove_files(void **state)
{
    (void)state;
    unlink(cert_path);
    unlink(key_path);
    rmdir(dir);
    return 0;
}

static void listener_init(struct fdt_listen_cfg *l)
{
    memset(l, 0, sizeof(*l));
    fdt__strlcpy(l->name, "secure", sizeof(l->name));
    fdt__strlcpy(l->address, "127.0.0.1:0", sizeof(l->address));
    fdt__strlcpy(l->certificate, cert_path, sizeof(l->certificate));
    fdt__strlcpy(l->private_key, key_path, sizeof(l->private_key));
    fdt__strlcpy(l->ca, cert_path, sizeof(l->ca)); /* self-signed: its own CA */
    l->tls = true;
    l->min_version = 0x0303;
    l->handshake_timeout = 2.5;
    l->session_tickets = true;
    l->protocol = FDT_PROTO_HTTP;
}

/* The configuration offers TLS 1.2 and 1.3 only; a version OpenSSL does not know is still
 * refused by name rather than ignored. */
static void test_min_version_not_supported(void **state)
{
    (void)state;
    struct fdt_listen_cfg l;
    listener_init(&l);
    l.min_version = 0x0305;
    struct fdt_tls_ctx *ctx = NULL;
    struct fdt_error err = {0};
    assert_int_equal(fdt__tls_ctx_new(&l, NULL, &ctx, &err), FDT_ECONFIG);
    assert_string_equal(err.msg, "[listen.secure] min_version not supported");
    assert_null(ctx);
}

static void test_ctx_every_allocation_fails_cleanly(void **state)
{
    (void)state;
    struct fdt_listen_cfg l;
    listener_init(&l);
    unsigned char key[FDT_TLS_TICKET_KEY_LEN];
    assert_int_equal(fdt__tls_ticket_key_new(key), 0);
    /* Making a context allocates about 9000 times with OpenSSL 3.0 (its decoders), and
     * OpenSSL copes with most failures by itself; walking every one would take minutes under
     * ASan. So: each of the first 64 allocations (ours, SSL_CTX_new's and the settings'),
     * then every 61st, which still reaches every file's loading. */
    unsigned failed = 0;
    unsigned n;
    for (n = 1; n < 20000; n += n < 64 ? 1 : 61) {
        struct fdt_tls_ctx *ctx = NULL;
        struct fdt_error err = {0};
        alloc_fault_arm(n, false);
        int rc = fdt__tls_ctx_new(&l, key, &ctx, &err);
        bool hit = alloc_fault_hit();
        alloc_fault_disarm();
        if (rc == 0) {
            assert_non_null(ctx);
            assert_int_equal(fdt__tls_ctx_handshake_timeout_ms(ctx), 2500);
            fdt__tls_ctx_free(ctx);
            if (!hit)
                break; /* every allocation was made */
            continue;  /* OpenSSL did without that one */
        }
        assert_true(hit);
        failed++;
        assert_null(ctx);
        assert_true(rc == FDT_ENOMEM || rc == FDT_ECONFIG);
        assert_true(err.msg[0] != '\0');
        /* Our context struct, then OpenSSL's SSL_CTX: both say so. */
        if (n == 1)
            assert_string_equal(err.msg, "out of memory");
        if (n == 2)
            assert_string_equal(err.msg, "[listen.secure] cannot make a TLS context");
        if (rc == FDT_ECONFIG)
            assert_non_null(strstr(err.msg, "[listen.secure] "));
    }
    assert_true(n < 20000);
    assert_true(failed >= 2);
}

static void test_session_every_allocation_fails_cleanly(void **state)
{
    (void)state;
    struct fdt_listen_cfg l;
    listener_init(&l);
    struct fdt_tls_ctx *ctx = NULL;
    assert_int_equal(fdt__tls_ctx_new(&l, NULL, &ctx, NULL), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    unsigned failed = 0;
    unsigned n;
    for (n = 1; n < 5000; n++) {
        alloc_fault_arm(n, false);
        struct fdt_tls *t = fdt__tls_new(ctx, sv[0]);
        bool hit = alloc_fault_hit();
        alloc_fault_disarm();
        if (!t) {
            assert_true(hit);
            failed++;
            continue;
        }
        assert_false(fdt__tls_plain_http(t));
        fdt__tls_free(t);
        if (!hit)
            break;
    }
    assert_true(n < 5000);
    assert_true(failed >= 2); /* our session struct, then OpenSSL's SSL */
    close(sv[0]);
    close(sv[1]);
    fdt__tls_ctx_free(ctx);
}

int main(void)
{
    /* Before OpenSSL allocates anything (it refuses later). */
    if (CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free) != 1) {
        fprintf(stderr, "CRYPTO_set_mem_functions refused\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_min_version_not_supported),
        cmocka_unit_test(test_ctx_every_allocation_fails_cleanly),
        cmocka_unit_test(test_session_every_allocation_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, make_files, remove_files);
}

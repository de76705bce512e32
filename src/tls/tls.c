#include "fdt_config.h"

#include "tls/tls.h"

#define FDT_LOG_MODULE "tls"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <fdt/log.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Plaintext bytes of one TLS record at most. */
#define RECORD_MAX FDT_TLS_RECORD_MAX

struct fdt_tls_ctx {
    SSL_CTX *ssl_ctx;
    int64_t handshake_timeout_ms;
};

struct fdt_tls {
    SSL *ssl;
    bool wants_write; /* the handshake or a read waits for POLLOUT */
    bool fatal;       /* an error happened: no close_notify */
    bool plain_http;  /* the handshake failed on a plain HTTP request */
    bool done;        /* handshake complete */
};

int fdt__tls_ticket_key_new(unsigned char key[FDT_TLS_TICKET_KEY_LEN])
{
    return RAND_bytes(key, FDT_TLS_TICKET_KEY_LEN) == 1 ? 0 : FDT_ERANDOM;
}

/* OpenSSL's reason for the oldest error in this thread's queue, then clear the queue. The
 * fallback stands for an error without a reason string (in OpenSSL 3 only system errors,
 * which loading these files does not raise: a read error shows as "no start line") and for
 * an empty queue (an allocation that failed where OpenSSL queues nothing). */
static void ssl_reason(char *out, size_t size, const char *fallback)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(out, size, "%s", r ? r : fallback);
    ERR_clear_error();
}

/* A file the master must read: say clearly when it cannot (missing, permissions, a
 * directory: open(2) takes one, and OpenSSL would then only say "no start line"). */
static int file_readable(const char *listener, const char *key, const char *path,
                         struct fdt_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int rc = fd < 0 ? -errno : fstat(fd, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        return fdt_error_set(err, FDT_ECONFIG, "[listen.%s] %s %s: %s", listener, key, path,
                             fdt_strerror(rc));
    return 0;
}

/* Never prompt for a passphrase on the terminal: an encrypted key is refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* ALPN of http listeners: http/1.1 when the client offers it; otherwise no ALPN at all (a
 * client that offers only h2 is served HTTP/1.1 as if it had offered nothing). */
static int alpn_http(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char h11[] = "http/1.1";
    unsigned int i = 0;
    while (i < inlen) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen)
            break; /* GCOVR_EXCL_LINE: unreachable: OpenSSL refuses a ClientHello whose ALPN list is
                      not well framed before it calls this (tls_parse_ctos_alpn) */
        if (n == sizeof(h11) - 1 && memcmp(in + i + 1, h11, n) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* Warn about a certificate that is expired or not yet valid: the client decides. */
static void check_dates(SSL_CTX *ctx, const struct fdt_listen_cfg *l)
{
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    if (!cert)
        return; /* GCOVR_EXCL_LINE: unreachable: called once the certificate file loaded */
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
        fdt_log(FDT_LOG_WARN, "[listen.%s] certificate %s has expired", l->name, l->certificate);
    else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
        fdt_log(FDT_LOG_WARN, "[listen.%s] certificate %s is not valid yet", l->name,
                l->certificate);
}

static int load_files(SSL_CTX *ctx, const struct fdt_listen_cfg *l, struct fdt_error *err)
{
    char why[256];
    int rc = file_readable(l->name, "certificate", l->certificate, err);
    if (rc < 0)
        return rc;
    rc = file_readable(l->name, "private_key", l->private_key, err);
    if (rc < 0)
        return rc;
    if (SSL_CTX_use_certificate_chain_file(ctx, l->certificate) != 1) {
        ssl_reason(why, sizeof(why), "not a PEM certificate");
        return fdt_error_set(err, FDT_ECONFIG, "[listen.%s] certificate %s: %s", l->name,
                             l->certificate, why);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, l->private_key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            return fdt_error_set(err, FDT_ECONFIG,
                                 "[listen.%s] private_key %s does not match certificate %s",
                                 l->name, l->private_key, l->certificate);
        }
        ssl_reason(why, sizeof(why), "not a PEM private key");
        return fdt_error_set(err, FDT_ECONFIG,
                             "[listen.%s] private_key %s: %s (an unencrypted PEM key is needed)",
                             l->name, l->private_key, why);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        return fdt_error_set(err, FDT_ECONFIG,
                             "[listen.%s] private_key %s does not match certificate %s", l->name,
                             l->private_key, l->certificate);
    }
    check_dates(ctx, l);
    if (!l->ca[0])
        return 0;
    rc = file_readable(l->name, "ca", l->ca, err);
    if (rc < 0)
        return rc;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(l->ca);
    if (!names || SSL_CTX_load_verify_locations(ctx, l->ca, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        ssl_reason(why, sizeof(why), "no PEM certificate in it");
        return fdt_error_set(err, FDT_ECONFIG, "[listen.%s] ca %s: %s", l->name, l->ca, why);
    }
    SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
    return 0;
}

static int set_protocol(SSL_CTX *ctx, const struct fdt_listen_cfg *l,
                        const unsigned char *ticket_key, struct fdt_error *err)
{
    char why[256];
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    /* Writes go out record by record from a buffer that may move (conn's output buffer);
     * idle connections give their buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* One read(2) per record instead of two (header, then body); what it reads beyond a
     * record stays inside OpenSSL, which conn asks about (fdt__tls_has_pending). */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* The chain sent is the one in the certificate file, as the documentation says: no
     * chain built from the CA store at every handshake. */
    SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    if (SSL_CTX_set_min_proto_version(ctx, l->min_version) != 1)
        return fdt_error_set(err, FDT_ECONFIG, "[listen.%s] min_version not supported", l->name);
    if (l->ciphers[0] && SSL_CTX_set_cipher_list(ctx, l->ciphers) != 1) {
        ssl_reason(why, sizeof(why), "no cipher matches");
        return fdt_error_set(err, FDT_ECONFIG, "[listen.%s] ciphers '%s': %s", l->name, l->ciphers,
                             why);
    }
    if (l->ciphersuites[0] && SSL_CTX_set_ciphersuites(ctx, l->ciphersuites) != 1) {
        ssl_reason(why, sizeof(why), "no cipher suite matches");
        return fdt_error_set(err, FDT_ECONFIG, "[listen.%s] ciphersuites '%s': %s", l->name,
                             l->ciphersuites, why);
    }
    if (l->verify_client != FDT_TLS_VERIFY_NO) {
        int mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
        if (l->verify_client == FDT_TLS_VERIFY_REQUIRE)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
    }
    /* Resumed sessions belong to this listener only (and keep its client verification). */
    size_t idlen = strlen(l->name);
    SSL_CTX_set_session_id_context(
        ctx, (const unsigned char *)l->name,
        (unsigned)(idlen < SSL_MAX_SID_CTX_LENGTH ? idlen : SSL_MAX_SID_CTX_LENGTH));
    /* No server-side session cache (it would be per process): tickets only, whose key every
     * worker of the generation shares. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (l->session_tickets && ticket_key) {
        if (SSL_CTX_set_tlsext_ticket_keys(ctx, (void *)ticket_key, FDT_TLS_TICKET_KEY_LEN) != 1) {
            /* GCOVR_EXCL_START: unreachable: OpenSSL refuses only a key of another length
             * than its 16 + 32 + 32 bytes, which FDT_TLS_TICKET_KEY_LEN is */
            return fdt_error_set(err, FDT_ECONFIG, "[listen.%s] cannot set the ticket key",
                                 l->name);
            /* GCOVR_EXCL_STOP */
        }
    } else {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    if (l->protocol == FDT_PROTO_HTTP)
        SSL_CTX_set_alpn_select_cb(ctx, alpn_http, NULL);
    return 0;
}

int fdt__tls_ctx_new(const struct fdt_listen_cfg *l, const unsigned char *ticket_key,
                     struct fdt_tls_ctx **out, struct fdt_error *err)
{
    int rc = FDT_ENOMEM;
    struct fdt_tls_ctx *t = calloc(1, sizeof(*t));
    if (!t)
        return fdt_error_set(err, rc, "out of memory");
    ERR_clear_error();
    t->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (!t->ssl_ctx) {
        fdt_error_set(err, rc, "[listen.%s] cannot make a TLS context", l->name);
        goto out;
    }
    SSL_CTX_set_default_passwd_cb(t->ssl_ctx, no_passphrase);
    rc = set_protocol(t->ssl_ctx, l, ticket_key, err);
    if (rc < 0)
        goto out;
    rc = load_files(t->ssl_ctx, l, err);
    if (rc < 0)
        goto out;
    t->handshake_timeout_ms = (int64_t)(l->handshake_timeout * 1000.0);
    *out = t;
    t = NULL;
    rc = 0;
out:
    ERR_clear_error();
    fdt__tls_ctx_free(t);
    return rc;
}

void fdt__tls_ctx_free(struct fdt_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

int64_t fdt__tls_ctx_handshake_timeout_ms(const struct fdt_tls_ctx *ctx)
{
    return ctx->handshake_timeout_ms;
}

struct fdt_tls *fdt__tls_new(const struct fdt_tls_ctx *ctx, int fd)
{
    struct fdt_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ssl = SSL_new(ctx->ssl_ctx);
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
        ERR_clear_error();
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    SSL_set_accept_state(t->ssl);
    return t;
}

void fdt__tls_free(struct fdt_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

/* Map the result ret of a failed SSL_read or SSL_write. Returns FDT_EAGAIN, 0 for a clean
 * close by the peer, or FDT_ECLOSED (fatal). A read records which way it waits. */
static int result(struct fdt_tls *t, int ret, bool reading)
{
    int e = SSL_get_error(t->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        if (reading)
            t->wants_write = e == SSL_ERROR_WANT_WRITE;
        return FDT_EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        t->fatal = true;
        return FDT_ECLOSED;
    }
}

int fdt__tls_handshake(struct fdt_tls *t, char *why, size_t why_size)
{
    ERR_clear_error();
    errno = 0;
    int ret = SSL_do_handshake(t->ssl);
    if (ret == 1) {
        t->done = true;
        t->wants_write = false;
        return 0;
    }
    int sys = errno;
    int e = SSL_get_error(t->ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        t->wants_write = e == SSL_ERROR_WANT_WRITE;
        ERR_clear_error();
        return FDT_EAGAIN;
    }
    t->fatal = true;
    unsigned long code = ERR_peek_error();
    if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_HTTP_REQUEST)
        t->plain_http = true;
    if (e == SSL_ERROR_SSL)
        ssl_reason(why, why_size, "protocol error");
    else if (e == SSL_ERROR_SYSCALL && sys != 0)
        snprintf(why, why_size, "%s", fdt_strerror(-sys));
    else
        snprintf(why, why_size, "the client closed the connection");
    ERR_clear_error();
    return FDT_EPROTO;
}

bool fdt__tls_wants_write(const struct fdt_tls *t)
{
    return t->wants_write;
}

bool fdt__tls_plain_http(const struct fdt_tls *t)
{
    return t->plain_http;
}

/* SSL_read or SSL_peek, with fdt__tls_read's results. */
static ssize_t tls_in(struct fdt_tls *t, void *buf, size_t len, bool peek)
{
    ERR_clear_error();
    int max = len > INT32_MAX ? INT32_MAX : (int)len;
    int n = peek ? SSL_peek(t->ssl, buf, max) : SSL_read(t->ssl, buf, max);
    if (n > 0) {
        t->wants_write = false;
        return n;
    }
    int rc = result(t, n, true);
    ERR_clear_error();
    return rc;
}

ssize_t fdt__tls_read(struct fdt_tls *t, void *buf, size_t len)
{
    return tls_in(t, buf, len, false);
}

ssize_t fdt__tls_peek(struct fdt_tls *t, void *buf, size_t len)
{
    return tls_in(t, buf, len, true);
}

bool fdt__tls_has_pending(const struct fdt_tls *t)
{
    return SSL_has_pending(t->ssl) == 1;
}

ssize_t fdt__tls_write(struct fdt_tls *t, const void *buf, size_t len)
{
    ERR_clear_error();
    int n = SSL_write(t->ssl, buf, len > RECORD_MAX ? RECORD_MAX : (int)len);
    if (n > 0)
        return n;
    int rc = result(t, n, false);
    ERR_clear_error();
    return rc == 0 ? FDT_ECLOSED : rc;
}

void fdt__tls_close_notify(struct fdt_tls *t)
{
    if (!t || t->fatal || !t->done)
        return;
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

void fdt__tls_describe(const struct fdt_tls *t, char *out, size_t size)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
    snprintf(out, size, "%s %s%s", SSL_get_version(t->ssl), c ? SSL_CIPHER_get_name(c) : "-",
             SSL_session_reused(t->ssl) ? " resumed" : "");
}

/* tls_keyupdate PORT WAIT_MS FIRST SECOND: a TLS 1.3 client that asks for a key update
 * while the server's output is backed up. Python's ssl module cannot send a KeyUpdate.
 *
 * It connects to 127.0.0.1:PORT with a small receive buffer, sends FIRST (a request whose
 * answer is large), reads nothing for WAIT_MS (the server's socket fills), then sends a
 * KeyUpdate that asks the server to update its keys too, followed by SECOND. The server must
 * answer the KeyUpdate with its own, a write into a full socket, while reading. Then
 * everything the server sends, until it closes (or 30 s pass), is copied to stdout.
 * "\n" in FIRST and SECOND is a newline, "\r" a carriage return. The exit status is 0 when
 * the server closed cleanly, 1 otherwise (with the reason on stderr). The server's
 * certificate is not checked: the tests' own. */
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Copy s into out, turning the two-character escapes \n and \r into their bytes. */
static size_t unescape(const char *s, char *out)
{
    size_t n = 0;
    for (; *s; s++) {
        if (s[0] == '\\' && (s[1] == 'n' || s[1] == 'r')) {
            out[n++] = s[1] == 'n' ? '\n' : '\r';
            s++;
        } else {
            out[n++] = *s;
        }
    }
    return n;
}

static int fail(const char *what)
{
    fprintf(stderr, "tls_keyupdate: %s: ", what);
    ERR_print_errors_fp(stderr);
    fprintf(stderr, "(errno %s)\n", strerror(errno));
    return 1;
}

static int send_all(SSL *ssl, const char *s)
{
    char buf[4096];
    size_t n = unescape(s, buf);
    size_t done = 0;
    while (done < n) {
        size_t k = 0;
        if (SSL_write_ex(ssl, buf + done, n - done, &k) != 1)
            return -1;
        done += k;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5 || strlen(argv[3]) >= 4096 || strlen(argv[4]) >= 4096) {
        fprintf(stderr, "usage: tls_keyupdate PORT WAIT_MS FIRST SECOND\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 8192; /* no autotuning: the server's output backs up at once */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) < 0)
        return fail("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)strtol(argv[1], NULL, 10)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return fail("connect");
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION))
        return fail("SSL_CTX_new");
    SSL *ssl = SSL_new(ctx);
    if (!ssl || !SSL_set_fd(ssl, fd) || !SSL_set_tlsext_host_name(ssl, "localhost"))
        return fail("SSL_new");
    if (SSL_connect(ssl) != 1)
        return fail("handshake");
    if (send_all(ssl, argv[3]) < 0)
        return fail("sending FIRST");
    long ms = strtol(argv[2], NULL, 10);
    struct timespec wait = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&wait, NULL);
    if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1)
        return fail("SSL_key_update");
    if (send_all(ssl, argv[4]) < 0) /* the KeyUpdate goes first */
        return fail("sending SECOND");
    time_t until = time(NULL) + 30;
    char buf[65536];
    for (;;) {
        size_t n = 0;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (SSL_pending(ssl) == 0 && poll(&pfd, 1, 1000) == 0) {
            if (time(NULL) >= until)
                return fail("no close from the server in 30 s");
            continue;
        }
        int rc = SSL_read_ex(ssl, buf, sizeof(buf), &n);
        if (rc == 1) {
            if (fwrite(buf, 1, n, stdout) != n)
                return fail("stdout");
            continue;
        }
        int e = SSL_get_error(ssl, rc);
        if (e == SSL_ERROR_ZERO_RETURN)
            break; /* close_notify */
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return fail("reading");
    }
    fflush(stdout);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return 0;
}

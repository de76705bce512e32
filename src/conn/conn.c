#include "fdt_config.h"

#include "conn/conn.h"

#define FDT_LOG_MODULE "conn"
#include "txn/txn.h"
#include "util/util.h"

#include <errno.h>
#include <fdt/log.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 16384

static void out_consume(struct fdt_conn *c, size_t n);
static void holder_before_wait(struct fdt_txn_holder *h);

struct fdt_conn *fdt__conn_new(struct fdt_conn_loop *loop, int fd, const struct fdt_proto *proto,
                               const char *listener_name)
{
    struct fdt_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        fdt__close(fd);
        return NULL;
    }
    c->kind = FDT_POLL_CONN;
    c->fd = fd;
    c->id = atomic_fetch_add_explicit(&loop->next_id, 1, memory_order_relaxed) + 1;
    c->loop = loop;
    c->proto = proto;
    c->listener_name = listener_name;
    pthread_mutex_init(&c->lock, NULL);
    fdt__buf_init(&c->in, loop->max_input);
    fdt__buf_init(&c->out, loop->max_output);
    c->th.env = loop->txn_env;
    c->th.id = c->id;
    c->th.before_wait = holder_before_wait;
    atomic_init(&c->refs, 1);
    atomic_init(&c->last_active_ms, fdt__now_ms());
    return c;
}

struct fdt_conn *fdt__conn_adopt(struct fdt_conn_loop *loop, int fd, const struct fdt_proto *proto,
                                 const char *listener_name)
{
    struct fdt_conn *c = fdt__conn_new(loop, fd, proto, listener_name);
    if (c)
        c->served = true; /* a draining worker may close or hand it on between requests */
    return c;
}

int fdt__conn_tls_start(struct fdt_conn *c, const struct fdt_tls_ctx *ctx)
{
    c->tls = fdt__tls_new(ctx, c->fd);
    if (!c->tls)
        return FDT_ENOMEM;
    /* The handshake's deadline; proto->open sets the protocol's own once it is done. */
    atomic_store(&c->deadline_ms, fdt__now_ms() + fdt__tls_ctx_handshake_timeout_ms(ctx));
    return 0;
}

void fdt__conn_destroy(struct fdt_conn *c)
{
    fdt__tls_free(c->tls);
    fdt__buf_deinit(&c->in);
    out_consume(c, c->out.len);
    fdt__buf_deinit(&c->out);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

bool fdt__conn_claim(struct fdt_conn *c, uint32_t events)
{
    pthread_mutex_lock(&c->lock);
    c->armed = false;
    if (c->closed) {
        pthread_mutex_unlock(&c->lock);
        return false;
    }
    c->pending |= events;
    bool mine = !c->running;
    c->running = true;
    pthread_mutex_unlock(&c->lock);
    return mine;
}

/* The socket took n bytes; caller holds the lock. Output taken by the client is activity
 * too (idle_timeout counts from it). */
static void sent(struct fdt_conn *c, size_t n)
{
    c->out_sent += n;
    if (c->loop->counters)
        atomic_fetch_add_explicit(&c->loop->counters->bytes_out, n, memory_order_relaxed);
    atomic_store_explicit(&c->last_active_ms, fdt__now_ms(), memory_order_relaxed);
}

/* Bytes buffered in c->out, counted in the loop's budget; caller holds the lock. */
static int out_append(struct fdt_conn *c, const void *p, size_t n)
{
    int rc = fdt__buf_append(&c->out, p, n);
    if (rc == 0)
        atomic_fetch_add_explicit(&c->loop->out_queued, n, memory_order_relaxed);
    return rc;
}

static void out_consume(struct fdt_conn *c, size_t n)
{
    fdt__buf_consume(&c->out, n);
    atomic_fetch_sub_explicit(&c->loop->out_queued, n, memory_order_relaxed);
}

/* send(2) on the socket, or through TLS: the same results (bytes taken, or -1 with errno
 * EAGAIN, EINTR or what broke the connection). A TLS write that returned EAGAIN must be
 * offered the same bytes again: see send_direct_locked. Caller holds the lock. */
static ssize_t send_locked(struct fdt_conn *c, const void *p, size_t n)
{
    if (!c->tls)
        return send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (!c->tls_ready) {
        /* Nothing goes out before the handshake is done: the bytes wait in c->out. */
        errno = EAGAIN;
        return -1;
    }
    ssize_t r = fdt__tls_write(c->tls, p, n);
    if (r >= 0)
        return r;
    errno = r == FDT_EAGAIN ? EAGAIN : EPIPE;
    return -1;
}

/* Send queued output; caller holds the lock. Returns 0, or -errno on a dead socket. */
static int flush_locked(struct fdt_conn *c)
{
    while (c->out.len > 0) {
        ssize_t n = send_locked(c, fdt__buf_head(&c->out), c->out.len);
        if (n > 0) {
            out_consume(c, (size_t)n);
            sent(c, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return n < 0 ? -errno : FDT_ECLOSED;
    }
    fdt__buf_shrink(&c->out, 4096);
    return 0;
}

/* Arm the connection in epoll for what it waits on; caller holds the lock. With force, tell
 * epoll even when nothing changed: it then reports what is already there (a writer on
 * another thread wants EPOLLOUT reported). See conn.h on the two ways a connection sits in
 * epoll. */
static void arm_locked(struct fdt_conn *c, bool force)
{
    struct epoll_event ev = {.data.ptr = c};
    if (c->tls) {
        ev.events = EPOLLONESHOT;
        if (!c->closing || c->lingering)
            ev.events |= EPOLLIN | EPOLLRDHUP;
        if (c->out.len > 0 || fdt__tls_wants_write(c->tls))
            ev.events |= EPOLLOUT;
    } else {
        /* EPOLLOUT is reported on an edge only: after a send found the buffer full. */
        ev.events = EPOLLET | EPOLLOUT;
        if (!c->closing || c->lingering)
            ev.events |= EPOLLIN | EPOLLRDHUP;
        if (!force && c->in_epoll && c->drained && ev.events == c->ev_mask) {
            c->armed = true;
            return;
        }
    }
    if (epoll_ctl(c->loop->epfd, c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        fdt_log(FDT_LOG_ERROR, "conn=%llu epoll_ctl: %s", (unsigned long long)c->id,
                fdt_strerror(-errno));
        c->dead = true;
        return;
    }
    c->ev_mask = ev.events;
    c->armed = c->in_epoll = true;
}

/* The runner is about to wait inside its run (for input or for room to write): a plain
 * connection stops being reported meanwhile, so that each arrival or each drained send
 * buffer does not wake another thread only to record the event; its re-arm at the end of
 * the run (the mask differs then) reports what is there. Caller holds the lock. */
static void quiet_locked(struct fdt_conn *c)
{
    if (c->tls || !c->running || !c->in_epoll || c->ev_mask == EPOLLET)
        return;
    struct epoll_event ev = {.events = EPOLLET, .data.ptr = c};
    if (epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->ev_mask = EPOLLET;
}

static void teardown(struct fdt_conn *c)
{
    pthread_mutex_lock(&c->lock);
    /* GCOVR_EXCL_START: unreachable: only the thread running c tears it down (running is
     * set under the lock by whoever hands c to a thread, never for a closed connection) */
    if (c->closed) {
        pthread_mutex_unlock(&c->lock);
        return;
    }
    /* GCOVR_EXCL_STOP */
    c->closed = true;
    c->running = false;
    if (c->in_epoll)
        epoll_ctl(c->loop->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->in_epoll = false;
    if (c->handoff) {
        /* The successor owns the connection once the descriptor is on its way; closing this
         * copy then sends nothing to the client. */
        int rc = c->loop->handoff(c->loop, c);
        if (rc == 0)
            atomic_fetch_add_explicit(&c->loop->handed_off, 1, memory_order_relaxed);
        else
            fdt_log(FDT_LOG_DEBUG, "conn=%llu cannot hand over to a successor (%s): closed",
                    (unsigned long long)c->id, fdt_strerror(rc));
    }
    if (c->tls) {
        /* Tell the client the data is complete (close_notify), then forget the session. */
        if (c->tls_ready && !c->lingering)
            fdt__tls_close_notify(c->tls);
        fdt__tls_free(c->tls);
        c->tls = NULL;
    }
    fdt__close(c->fd);
    c->fd = -1;
    out_consume(c, c->out.len);
    fdt__buf_deinit(&c->out);
    pthread_mutex_unlock(&c->lock);
    fdt__buf_deinit(&c->in);
    /* The disconnect rule: before the vote roll back, after it stay prepared. */
    if (c->th.txn)
        fdt__txn_holder_closed(&c->th);
    if (c->opened && c->proto->close)
        c->proto->close(c);
    atomic_fetch_sub(c->loop->conns_open, 1);
    fdt_conn_unref(c);
}

/* Offer buf to the protocol until it stops consuming or the connection is closing.
 * Returns bytes consumed, or -1 when the connection must close now. */
static long feed(struct fdt_conn *c, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        int64_t t0 = c->proto->counts_requests ? 0 : fdt__now_ns();
        long used = c->proto->data(c, buf + off, len - off);
        if (used < 0)
            return -1;
        if (used == 0)
            break;
        if ((size_t)used > len - off)
            used = (long)(len - off);
        off += (size_t)used;
        c->served = true;
        if (!c->proto->counts_requests)
            fdt__conn_request_end(c, FDT_MCLASS_OTHER, (fdt__now_ns() - t0) / 1000);
        pthread_mutex_lock(&c->lock);
        bool stop = c->closing || c->dead;
        pthread_mutex_unlock(&c->lock);
        if (stop)
            break;
    }
    return (long)off;
}

static bool overflow(struct fdt_conn *c)
{
    if (c->proto->overflow)
        c->proto->overflow(c);
    /* A protocol that answered and asked to linger closes that way (the rest of the
     * input is still coming); otherwise the connection closes now. */
    pthread_mutex_lock(&c->lock);
    bool linger = c->linger && c->closing;
    pthread_mutex_unlock(&c->lock);
    return linger;
}

/* The rest of a request cannot be kept: the connection closes (the client sees its
 * request unanswered, the log says why). */
static bool input_nomem(struct fdt_conn *c)
{
    fdt_log(FDT_LOG_WARN, "conn=%llu out of memory for input: closing", (unsigned long long)c->id);
    return false;
}

/* Each application thread reads into its own buffer; only bytes the protocol leaves
 * unconsumed (a partial request) are copied into the connection's buffer. Idle
 * connections thus hold no input memory at all. */
static _Thread_local char t_rbuf[READ_CHUNK];

/* recv(2) on the socket, or through TLS, with recv's results. */
static ssize_t conn_recv(struct fdt_conn *c, void *p, size_t n)
{
    if (!c->tls)
        return recv(c->fd, p, n, MSG_DONTWAIT);
    pthread_mutex_lock(&c->lock);
    ssize_t r = fdt__tls_read(c->tls, p, n);
    pthread_mutex_unlock(&c->lock);
    if (r >= 0)
        return r;
    errno = r == FDT_EAGAIN ? EAGAIN : ECONNRESET;
    return -1;
}

/* Whether the TLS session holds input that epoll cannot report. */
static bool tls_pending(struct fdt_conn *c)
{
    if (!c->tls)
        return false;
    pthread_mutex_lock(&c->lock);
    bool pending = fdt__tls_has_pending(c->tls);
    pthread_mutex_unlock(&c->lock);
    return pending;
}

/* Read what the socket has and feed it to the protocol. Returns false to close now. ev is
 * what epoll reported: when it includes the peer's end (a FIN or a reset that came with the
 * last bytes, before this thread read them), a short read does not prove the socket empty,
 * since no further edge will ever come for it; reading goes on until recv says EOF or
 * EAGAIN. */
static bool read_and_dispatch(struct fdt_conn *c, uint32_t ev)
{
    bool ended = ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    c->drained = false;
    for (;;) {
        char *p;
        size_t room;
        bool direct = c->in.len == 0;
        if (direct) {
            p = t_rbuf;
            room = sizeof(t_rbuf);
        } else {
            int rc;
            p = fdt__buf_reserve(&c->in, READ_CHUNK, &room, &rc);
            if (!p && rc == FDT_ELIMIT)
                return overflow(c);
            if (!p)
                return input_nomem(c);
        }
        ssize_t n = conn_recv(c, p, room);
        if (n > 0) {
            atomic_store_explicit(&c->last_active_ms, fdt__now_ms(), memory_order_relaxed);
            if (c->loop->counters)
                atomic_fetch_add_explicit(&c->loop->counters->bytes_in, (uint64_t)n,
                                          memory_order_relaxed);
            if (direct) {
                long used = feed(c, p, (size_t)n);
                if (used < 0)
                    return false;
                size_t rest = (size_t)n - (size_t)used;
                if (rest > 0) {
                    if (rest >= c->in.max)
                        return overflow(c);
                    if (fdt__buf_append(&c->in, p + used, rest) < 0)
                        return input_nomem(c);
                }
            } else {
                fdt__buf_commit(&c->in, (size_t)n);
                long used = feed(c, fdt__buf_head(&c->in), c->in.len);
                if (used < 0)
                    return false;
                fdt__buf_consume(&c->in, (size_t)used);
                if (used == 0 && c->in.len >= c->in.max)
                    return overflow(c);
            }
            if (c->in.len == 0)
                fdt__buf_shrink(&c->in, 0);
            pthread_mutex_lock(&c->lock);
            bool stop = c->closing || c->dead;
            pthread_mutex_unlock(&c->lock);
            if (stop)
                return true;
            if ((size_t)n < room && !ended && !tls_pending(c)) {
                c->drained = true; /* took all the socket had */
                return true;
            }
            continue;
        }
        if (n == 0) {
            c->eof = true;
            return false;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->drained = true;
            return true;
        }
        return false;
    }
}

void fdt__conn_linger(struct fdt_conn *c)
{
    c->linger = true;
}

/* Lingering: read and drop what the client still sends. Returns false at EOF or error. */
static bool drop_input(struct fdt_conn *c)
{
    /* At most 16 reads per run, so that a client that never stops sending does not hold
     * the thread: the connection is armed again and the deadline still applies. */
    c->drained = false;
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(c->fd, t_rbuf, sizeof(t_rbuf), MSG_DONTWAIT);
        if (n > 0)
            continue;
        /* (No EINTR: a recv with MSG_DONTWAIT never sleeps, so no signal interrupts it.) */
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return fdt__now_ms() < atomic_load(&c->deadline_ms);
}

static void expire_txn(struct fdt_conn *c)
{
    int64_t since = atomic_load(&c->txn_idle_ms);
    int64_t limit = c->loop->transaction_timeout_ms;
    struct fdt_txn *t = c->th.txn;
    if (!t || fdt_txn_state(t) != FDT_TXN_ACTIVE || !since || fdt__now_ms() - since < limit)
        return;
    fdt_log(FDT_LOG_WARN, "conn=%llu transaction idle for %.1fs (transaction_timeout): rolled back",
            (unsigned long long)c->id, (double)(fdt__now_ms() - since) / 1000.0);
    fdt_txn_abort(t, NULL);
    atomic_store(&c->txn_idle_ms, 0);
    if (c->proto->txn_expired)
        c->proto->txn_expired(c);
}

/* Advance the TLS handshake; caller holds the lock. Returns true when it is done (or has
 * failed: c->dead is then set), false while it waits for the client. */
static bool handshake_locked(struct fdt_conn *c)
{
    char why[200];
    int rc = fdt__tls_handshake(c->tls, why, sizeof(why));
    if (rc == FDT_EAGAIN)
        return false;
    if (rc == 0) {
        c->tls_ready = true;
        atomic_store(&c->deadline_ms, 0);
        if (c->loop->counters)
            atomic_fetch_add_explicit(&c->loop->counters->tls_handshakes, 1, memory_order_relaxed);
        if (FDT_LOG_DEBUG <= fdt_log_threshold()) {
            char desc[128];
            fdt__tls_describe(c->tls, desc, sizeof(desc));
            fdt_log(FDT_LOG_DEBUG, "conn=%llu TLS handshake done: %s", (unsigned long long)c->id,
                    desc);
        }
        return true;
    }
    c->dead = true;
    if (c->loop->counters)
        atomic_fetch_add_explicit(&c->loop->counters->tls_handshake_errors, 1,
                                  memory_order_relaxed);
    if (fdt__tls_plain_http(c->tls) && c->proto->plain_on_tls_reply) {
        fdt_log(FDT_LOG_INFO, "conn=%llu on %s: plain HTTP on a TLS listener: answered 400",
                (unsigned long long)c->id, c->listener_name);
        /* Take in what the request sent so far, so that closing sends a FIN after the
         * answer, not a reset that could destroy it. */
        char drop[4096];
        for (int i = 0; i < 16 && recv(c->fd, drop, sizeof(drop), MSG_DONTWAIT) > 0; i++)
            ;
        const char *r = c->proto->plain_on_tls_reply;
        (void)!send(c->fd, r, strlen(r), MSG_NOSIGNAL | MSG_DONTWAIT);
        shutdown(c->fd, SHUT_WR);
        return true;
    }
    fdt_log(FDT_LOG_INFO, "conn=%llu on %s: TLS handshake failed: %s", (unsigned long long)c->id,
            c->listener_name, why);
    return true;
}

/* Whether the client has sent bytes this process has not read yet (in the socket). Not
 * OpenSSL's buffer: after a read it can hold a partial record, which no read completes
 * until more arrives, so asking it would spin; its decrypted bytes were all taken by the
 * read that just ran (read_and_dispatch loops while the session has some). */
static bool input_waiting(struct fdt_conn *c)
{
    /* Not after EOF (the connection is dead then) nor while lingering (it is closing). */
    int n = 0;
    return ioctl(c->fd, FIONREAD, &n) == 0 && n > 0;
}

/* Whether the protocol is between requests (see struct fdt_proto.idle). */
static bool proto_idle(struct fdt_conn *c)
{
    return c->proto->idle ? c->proto->idle(c) : c->in.len == 0;
}

void fdt__conn_run(struct fdt_conn *c)
{
    pthread_mutex_lock(&c->lock);
    for (;;) {
        uint32_t ev = c->pending;
        c->pending = 0;
        /* GCOVR_EXCL_START: unreachable: a closed connection is never handed to a thread
         * (claim, enqueue and the loop's timers check closed under the lock), and only this
         * thread's teardown, which returns, closes it */
        if (c->closed) {
            pthread_mutex_unlock(&c->lock);
            return;
        }
        /* GCOVR_EXCL_STOP */
        if (ev & EPOLLOUT) {
            /* A TLS read that had to write first goes on now. SSL_read may ask for a write
             * (SSL_ERROR_WANT_WRITE) by its contract; the OpenSSL we build with never does
             * on a server that refuses client renegotiation: it answers a TLS 1.3 key update
             * with the next write (test_16_20 and test_16_21: a key update while the output
             * is backed up). */
            if (c->tls && c->tls_ready && fdt__tls_wants_write(c->tls))
                ev |= EPOLLIN; /* GCOVR_EXCL_LINE: unreachable with OpenSSL 3.0: see above */
            if (flush_locked(c) < 0)
                c->dead = true;
        }
        bool handshaking = false;
        if (!c->dead && c->tls && !c->tls_ready) {
            handshaking = !handshake_locked(c);
            if (!handshaking)
                ev |= EPOLLIN; /* the request may have come with the handshake's end */
        }
        bool dead = c->dead;
        pthread_mutex_unlock(&c->lock);

        if (handshaking) {
            int64_t dl = atomic_load(&c->deadline_ms);
            if ((ev & FDT_EV_TIMEOUT) && dl && fdt__now_ms() >= dl) {
                fdt_log(FDT_LOG_INFO,
                        "conn=%llu on %s: TLS handshake not done in time "
                        "(handshake_timeout): closing",
                        (unsigned long long)c->id, c->listener_name);
                if (c->loop->counters)
                    atomic_fetch_add_explicit(&c->loop->counters->tls_handshake_errors, 1,
                                              memory_order_relaxed);
                dead = true;
            }
            ev &= FDT_EV_CLOSE; /* nothing else happens before the handshake is done */
        }
        if (!dead && !handshaking && !c->opened && ((ev & FDT_EV_OPEN) || c->tls)) {
            c->opened = true;
            if (c->proto->open && c->proto->open(c) != 0)
                dead = true;
        }
        if (!dead && c->lingering) {
            int64_t dl = atomic_load(&c->deadline_ms);
            if ((ev & (FDT_EV_CLOSE | FDT_EV_TIMEOUT)) && dl && fdt__now_ms() >= dl)
                dead = true;
            else if (!drop_input(c))
                dead = true;
            ev &= ~(uint32_t)(FDT_EV_TIMEOUT | FDT_EV_CLOSE | FDT_EV_DRAIN | FDT_EV_TXN_TIMEOUT);
        }
        if (!dead && !c->lingering &&
            (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | FDT_EV_DRAIN))) {
            if (!read_and_dispatch(c, ev))
                dead = true;
        }
        if (!dead && (ev & FDT_EV_TIMEOUT) && c->opened) {
            int64_t dl = atomic_load(&c->deadline_ms);
            if (dl && fdt__now_ms() >= dl) {
                if (c->proto->timeout)
                    c->proto->timeout(c);
                pthread_mutex_lock(&c->lock);
                c->closing = true;
                pthread_mutex_unlock(&c->lock);
            }
        }
        if (!dead && (ev & FDT_EV_TXN_TIMEOUT))
            expire_txn(c);
        if (ev & FDT_EV_CLOSE)
            dead = true;

        pthread_mutex_lock(&c->lock);
        if (dead)
            c->dead = true;
        if (c->pending && !c->dead)
            continue;
        /* Draining: close between requests, as the protocol says (proto->idle). A
         * connection that has not sent its first request yet is kept until it does (or
         * idle_timeout): its client surely means to send one, and closing it now would fail
         * a request on a brand-new connection. A connection whose transaction is open is
         * not idle either: transactions in flight finish (promises 3 and 4), bounded by
         * graceful_timeout. */
        bool drain_idle = !c->dead && atomic_load(&c->loop->draining) && c->served &&
                          proto_idle(c) && !c->th.txn &&
                          !(c->proto->drain_keeps_idle && atomic_load(&c->loop->retiring));
        /* Bytes the client sent before the stop (while this thread finished its previous
         * request, the socket unwatched) are a request under way: read them first. */
        if (drain_idle && !c->closing && input_waiting(c)) {
            c->pending |= EPOLLIN;
            continue;
        }
        if (drain_idle) {
            c->closing = true;
            /* Retiring for a successor: a connection holding nothing goes on there (not a
             * TLS one: its session state lives in this process). */
            c->handoff = c->proto->handoff && c->loop->handoff && atomic_load(&c->loop->retiring) &&
                         !c->app_data && !c->tls && c->in.len == 0 && c->out.len == 0 && !c->eof;
        }
        if (!c->dead && c->out.len > 0) {
            if (flush_locked(c) < 0)
                c->dead = true;
        }
        if (!c->dead && c->closing && c->out.len == 0 && c->linger && !c->lingering && !c->eof) {
            /* Everything is sent: stop sending, keep reading (and dropping) for a while. */
            c->lingering = true;
            if (c->tls)
                fdt__tls_close_notify(c->tls);
            shutdown(c->fd, SHUT_WR);
            atomic_store(&c->deadline_ms, fdt__now_ms() + FDT_CONN_LINGER_MS);
        }
        if (c->dead || (c->closing && c->out.len == 0 && !c->lingering)) {
            pthread_mutex_unlock(&c->lock);
            teardown(c);
            return;
        }
        /* An active transaction now waits for its client: the loop's timer watches it. */
        atomic_store_explicit(
            &c->txn_idle_ms,
            c->th.txn && fdt_txn_state(c->th.txn) == FDT_TXN_ACTIVE ? fdt__now_ms() : 0,
            memory_order_relaxed);
        arm_locked(c, false);
        if (c->dead) {
            pthread_mutex_unlock(&c->lock);
            teardown(c);
            return;
        }
        c->running = false;
        pthread_mutex_unlock(&c->lock);
        return;
    }
}

void fdt__conn_set_deadline(struct fdt_conn *c, int64_t deadline_ms)
{
    atomic_store_explicit(&c->deadline_ms, deadline_ms, memory_order_relaxed);
}

long fdt__conn_read_wait(struct fdt_conn *c, void *buf, size_t len, bool peek, int64_t deadline_ms)
{
    for (;;) {
        pthread_mutex_lock(&c->lock);
        bool gone = c->closed || c->closing || c->dead;
        pthread_mutex_unlock(&c->lock);
        if (gone)
            return FDT_ECLOSED;
        ssize_t n;
        bool want_out = false;
        if (c->tls) {
            /* Through the session: its records hold the bytes (and may need a write). */
            pthread_mutex_lock(&c->lock);
            n = peek ? fdt__tls_peek(c->tls, buf, len) : fdt__tls_read(c->tls, buf, len);
            want_out = n == FDT_EAGAIN && fdt__tls_wants_write(c->tls);
            pthread_mutex_unlock(&c->lock);
            if (n < 0) {
                errno = n == FDT_EAGAIN ? EAGAIN : ECONNRESET;
                n = -1;
            }
        } else {
            n = recv(c->fd, buf, len, MSG_DONTWAIT | (peek ? MSG_PEEK : 0));
        }
        if (n > 0) {
            atomic_store_explicit(&c->last_active_ms, fdt__now_ms(), memory_order_relaxed);
            return (long)n;
        }
        if (n == 0)
            return 0;
        /* (No EINTR: recv with MSG_DONTWAIT never sleeps; the TLS path sets EAGAIN or
         * ECONNRESET itself.) */
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return FDT_ECLOSED;
        if (deadline_ms == 0)
            return FDT_EAGAIN;
        int64_t left = deadline_ms - fdt__now_ms();
        if (left <= 0)
            return FDT_ETIMEDOUT;
        /* In slices, so that a close asked by another thread is seen. */
        pthread_mutex_lock(&c->lock);
        quiet_locked(c);
        pthread_mutex_unlock(&c->lock);
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
        if (want_out)              /* a TLS read that must write first: see fdt__conn_run */
            pfd.events |= POLLOUT; /* GCOVR_EXCL_LINE: unreachable with OpenSSL 3.0 */
        int64_t busy = fdt__conn_client_wait_begin();
        (void)!poll(&pfd, 1, left < 250 ? (int)left : 250);
        fdt__conn_client_wait_end(busy);
    }
}

void fdt__conn_request_done(struct fdt_conn *c)
{
    c->served = true;
    atomic_fetch_add_explicit(c->loop->requests, 1, memory_order_relaxed);
}

void fdt__conn_request_end(struct fdt_conn *c, enum fdt_metric_class cls, int64_t duration_us)
{
    fdt__conn_request_done(c);
    fdt__counters_request(c->loop->counters, c->proto->metric_proto, cls, duration_us);
}

/* Send what the socket takes at once; caller holds the lock and c->out is empty. Advances
 * *p and *len. Returns 0, or FDT_ECLOSED (the connection is then dead). */
static int send_direct_locked(struct fdt_conn *c, const char **p, size_t *len)
{
    while (*len > 0) {
        ssize_t n = send_locked(c, *p, *len);
        if (n > 0) {
            *p += n;
            *len -= (size_t)n;
            sent(c, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->tls)
                return 0;
            /* TLS has made a record of these bytes already and must be offered them again:
             * they go first in the output buffer, whatever the caller's limits. */
            size_t k = *len < FDT_TLS_RECORD_MAX ? *len : FDT_TLS_RECORD_MAX;
            if (out_append(c, *p, k) < 0) {
                /* Without those bytes the session cannot go on: offering it others would
                 * break it (and the caller's output would go on without them). */
                fdt_log(FDT_LOG_WARN, "conn=%llu out of memory for output: closing",
                        (unsigned long long)c->id);
                c->dead = true;
                return FDT_ENOMEM;
            }
            *p += k;
            *len -= k;
            return 0;
        }
        c->dead = true;
        return FDT_ECLOSED;
    }
    return 0;
}

static size_t budget_of(const struct fdt_conn_loop *loop)
{
    return loop->out_budget ? loop->out_budget : FDT_CONN_BUDGET_FACTOR * loop->max_output;
}

/* Bytes a waiting writer may buffer now (0: it must wait); caller holds the lock. Once
 * the connection's buffer was full (*full), it waits until the client has taken it down to
 * half of max_output, so that it does not wake up for every few bytes sent. */
static size_t room_locked(struct fdt_conn *c, bool *full)
{
    if (*full && c->out.len > c->out.max / 2)
        return 0;
    size_t room = c->out.max - c->out.len;
    size_t queued = atomic_load_explicit(&c->loop->out_queued, memory_order_relaxed);
    size_t budget = budget_of(c->loop);
    size_t left = queued < budget ? budget - queued : 0;
    if (left < room)
        room = left;
    *full = room == 0;
    return room;
}

/* The calling application thread's "busy since" word in the scoreboard (see
 * fdt__conn_thread_busy), or NULL. */
static _Thread_local _Atomic int64_t *t_busy;

void fdt__conn_thread_busy(_Atomic int64_t *busy)
{
    t_busy = busy;
}

static _Thread_local void (*t_on_block)(void *);
static _Thread_local void *t_on_block_arg;

void fdt__conn_thread_on_block(void (*fn)(void *), void *arg)
{
    t_on_block = fn;
    t_on_block_arg = arg;
}

static void about_to_block(void)
{
    if (t_on_block)
        t_on_block(t_on_block_arg);
}

int64_t fdt__conn_client_wait_begin(void)
{
    about_to_block();
    if (!t_busy)
        return 0;
    int64_t was = atomic_load(t_busy);
    if (was > 0)
        atomic_store(t_busy, -was); /* still busy (status counts it), but not stuck */
    return was;
}

void fdt__conn_client_wait_end(int64_t was)
{
    if (t_busy && was > 0)
        atomic_store(t_busy, fdt__now_ms());
}

/* Wait (without the lock) up to a quarter of a second for the socket to take more, then
 * send what is buffered; caller holds the lock. *idle_since is when the writer saw the
 * socket take something last (0: not waiting yet), *seen the byte count then. Returns 0,
 * or FDT_ECLOSED when the connection is closed or closing, the socket failed, or the
 * client took nothing for send_timeout_ms (the connection is then dead). */
static int wait_writable_locked(struct fdt_conn *c, int64_t *idle_since, uint64_t *seen)
{
    int64_t timeout =
        c->loop->send_timeout_ms > 0 ? c->loop->send_timeout_ms : FDT_CONN_SEND_TIMEOUT_MS;
    int64_t now = fdt__now_ms();
    if (!*idle_since || c->out_sent != *seen) {
        *idle_since = now;
        *seen = c->out_sent;
    }
    if (now - *idle_since >= timeout) {
        fdt_log(FDT_LOG_WARN, "conn=%llu the client took no output for %.1fs: closing",
                (unsigned long long)c->id, (double)(now - *idle_since) / 1000.0);
        c->dead = true;
        return FDT_ECLOSED;
    }
    int64_t left = *idle_since + timeout - now;
    struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
    quiet_locked(c);
    pthread_mutex_unlock(&c->lock);
    /* Another thread may close the descriptor meanwhile: the slice bounds the wait, and the
     * state is checked again under the lock. */
    int64_t busy = fdt__conn_client_wait_begin();
    (void)!poll(&pfd, 1, left < 250 ? (int)left : 250);
    fdt__conn_client_wait_end(busy);
    pthread_mutex_lock(&c->lock);
    if (c->closed || c->closing || c->dead)
        return FDT_ECLOSED;
    if (flush_locked(c) < 0) {
        c->dead = true;
        return FDT_ECLOSED;
    }
    return 0;
}

static int conn_write(struct fdt_conn *c, const void *buf, size_t len, bool wait)
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (c->closed || c->closing || c->dead) {
        rc = FDT_ECLOSED;
        goto out;
    }
    const char *p = buf;
    bool full = false;
    int64_t idle_since = 0;
    uint64_t seen = 0;
    while (len > 0) {
        if (c->out.len == 0 && !c->corked) {
            rc = send_direct_locked(c, &p, &len);
            if (rc < 0 || len == 0)
                break;
        }
        if (!wait) {
            rc = out_append(c, p, len);
            if (rc == FDT_ELIMIT)
                fdt_log(FDT_LOG_WARN, "conn=%llu output over max_output (%zu bytes): closing",
                        (unsigned long long)c->id, c->out.max);
            else if (rc < 0)
                fdt_log(FDT_LOG_WARN, "conn=%llu out of memory for output: closing",
                        (unsigned long long)c->id);
            if (rc < 0)
                c->dead = true;
            break;
        }
        size_t room = room_locked(c, &full);
        if (room > 0) {
            size_t n = room < len ? room : len;
            rc = out_append(c, p, n);
            if (rc < 0) {
                /* n fits under max_output: only memory can fail here */
                fdt_log(FDT_LOG_WARN, "conn=%llu out of memory for output: closing",
                        (unsigned long long)c->id);
                c->dead = true;
                break;
            }
            p += n;
            len -= n;
            continue;
        }
        rc = wait_writable_locked(c, &idle_since, &seen);
        if (rc < 0)
            break;
    }
    /* Collected enough: send it now (one large send instead of many). */
    if (rc == 0 && c->corked && c->out.len >= FDT_CONN_CORK_MAX && flush_locked(c) < 0) {
        c->dead = true;
        rc = FDT_ECLOSED;
    }
    /* A writer on another thread while the connection sits armed: make epoll report
     * EPOLLOUT (or the close) so the loop picks it up. */
    if (!c->running && c->armed && (c->out.len > 0 || c->dead)) {
        if (c->dead) {
            c->pending |= FDT_EV_CLOSE;
            c->running = true;
            pthread_mutex_unlock(&c->lock);
            c->loop->enqueue(c->loop, c);
            return rc;
        }
        arm_locked(c, true);
    }
out:
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void fdt__conn_cork(struct fdt_conn *c)
{
    pthread_mutex_lock(&c->lock);
    c->corked = true;
    pthread_mutex_unlock(&c->lock);
}

/* Send what is collected; caller holds the lock. What the socket does not take now waits
 * for EPOLLOUT, as any buffered output does. */
static void flush_collected_locked(struct fdt_conn *c)
{
    if (c->out.len > 0 && !c->closed && !c->dead && flush_locked(c) < 0)
        c->dead = true;
}

void fdt__conn_uncork(struct fdt_conn *c)
{
    pthread_mutex_lock(&c->lock);
    c->corked = false;
    flush_collected_locked(c);
    pthread_mutex_unlock(&c->lock);
}

void fdt__conn_flush(struct fdt_conn *c)
{
    pthread_mutex_lock(&c->lock);
    flush_collected_locked(c);
    pthread_mutex_unlock(&c->lock);
}

/* The connection's transaction is about to wait on a database: answers collected for a
 * pipelined batch go out first, not after the wait. */
static void holder_before_wait(struct fdt_txn_holder *h)
{
    struct fdt_conn *c = (struct fdt_conn *)((char *)h - offsetof(struct fdt_conn, th));
    about_to_block();
    pthread_mutex_lock(&c->lock);
    if (c->corked)
        flush_collected_locked(c);
    pthread_mutex_unlock(&c->lock);
}

int fdt_conn_write(struct fdt_conn *c, const void *buf, size_t len)
{
    return conn_write(c, buf, len, false);
}

int fdt__conn_write_wait(struct fdt_conn *c, const void *buf, size_t len)
{
    return conn_write(c, buf, len, true);
}

/* A file over TLS: read in blocks and written through the session (no sendfile). */
static int send_file_blocks(struct fdt_conn *c, int fd, int64_t offset, size_t len)
{
    char *buf = malloc(FDT_TLS_RECORD_MAX);
    if (!buf)
        return FDT_ENOMEM;
    int rc = 0;
    while (len > 0 && rc == 0) {
        size_t want = len < FDT_TLS_RECORD_MAX ? len : FDT_TLS_RECORD_MAX;
        ssize_t n = pread(fd, buf, want, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue; /* GCOVR_EXCL_LINE: unreachable: pread(2) of a regular file is not interrupted
                         by a signal (the wait for the disk is not interruptible) */
        if (n <= 0) {
            rc = n == 0 ? FDT_EPROTO : -errno;
            pthread_mutex_lock(&c->lock);
            c->dead = true; /* the response cannot be completed */
            pthread_mutex_unlock(&c->lock);
            break;
        }
        rc = conn_write(c, buf, (size_t)n, true);
        offset += n;
        len -= (size_t)n;
    }
    free(buf);
    return rc;
}

int fdt__conn_sendfile_wait(struct fdt_conn *c, int fd, int64_t offset, size_t len)
{
    if (c->tls)
        return send_file_blocks(c, fd, offset, len);
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (c->closed || c->closing || c->dead) {
        rc = FDT_ECLOSED;
        goto out;
    }
    int64_t idle_since = 0;
    uint64_t seen = 0;
    /* The file follows what is buffered: let that go first. */
    while (c->out.len > 0) {
        rc = wait_writable_locked(c, &idle_since, &seen);
        if (rc < 0)
            goto out;
    }
    off_t off = (off_t)offset;
    while (len > 0) {
        size_t piece = len < ((size_t)1 << 30) ? len : (size_t)1 << 30;
        ssize_t n = sendfile(c->fd, fd, &off, piece);
        if (n > 0) {
            len -= (size_t)n;
            sent(c, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue; /* GCOVR_EXCL_LINE: unreachable: sendfile(2) to a non-blocking socket never
                         sleeps on the socket, and reading a regular file is not interrupted by a
                         signal */
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = wait_writable_locked(c, &idle_since, &seen);
            if (rc < 0)
                break;
            continue;
        }
        /* The file ended early (n == 0: truncated meanwhile) or a failure: the response
         * cannot be completed. */
        rc = n == 0 ? FDT_EPROTO : -errno;
        c->dead = true;
        break;
    }
out:
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void fdt_conn_close(struct fdt_conn *c)
{
    pthread_mutex_lock(&c->lock);
    if (c->closed || c->closing) {
        pthread_mutex_unlock(&c->lock);
        return;
    }
    c->closing = true;
    if (!c->running) {
        c->pending |= FDT_EV_CLOSE * (c->out.len == 0);
        c->running = true;
        pthread_mutex_unlock(&c->lock);
        c->loop->enqueue(c->loop, c);
        return;
    }
    pthread_mutex_unlock(&c->lock);
}

void fdt_conn_ref(struct fdt_conn *c)
{
    atomic_fetch_add(&c->refs, 1);
}

void fdt_conn_unref(struct fdt_conn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1)
        c->loop->release(c->loop, c);
}

void fdt_conn_set_data(struct fdt_conn *c, void *data)
{
    c->app_data = data;
}

void *fdt_conn_data(const struct fdt_conn *c)
{
    return c->app_data;
}

uint64_t fdt_conn_id(const struct fdt_conn *c)
{
    return c->id;
}

const char *fdt_conn_listener(const struct fdt_conn *c)
{
    return c->listener_name;
}

bool fdt_conn_tls(const struct fdt_conn *c)
{
    return c->tls != NULL;
}

bool fdt_conn_draining(const struct fdt_conn *c)
{
    return atomic_load(&c->loop->draining);
}

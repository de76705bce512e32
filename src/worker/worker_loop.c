#include "fdt_config.h"

#define FDT_LOG_MODULE "worker"
#include "http/http.h"
#include "log/log.h"
#include "util/util.h"
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <fdt/log.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

void fdt__worker_loop(struct fdt_worker *w);

#define MAX_EVENTS       256
#define SCAN_INTERVAL_MS 250
/* Out of descriptors: how long accepting stops, and how often it is logged. */
#define ACCEPT_PAUSE_MS      500
#define ACCEPT_LOG_REPEAT_MS 10000
/* Accept balancing (see balance_ok): a worker takes a connection from a shared listener
 * while its share is at most BALANCE_SLACK above the least of its siblings'; a pause is
 * looked at again every BALANCE_TICK_MS; a sibling whose loop has not turned for
 * BALANCE_STALE_MS is left out. */
#define BALANCE_SLACK       1
#define BALANCE_TICK_MS     5
#define BALANCE_STALE_MS    1000
#define BALANCE_RUNNABLE_MS 250

static void registry_add(struct fdt_worker *w, struct fdt_conn *c)
{
    c->reg_prev = NULL;
    c->reg_next = w->registry;
    if (w->registry)
        w->registry->reg_prev = c;
    w->registry = c;
    w->n_conns++;
}

static void registry_remove(struct fdt_worker *w, struct fdt_conn *c)
{
    if (c->reg_prev)
        c->reg_prev->reg_next = c->reg_next;
    else
        w->registry = c->reg_next;
    if (c->reg_next)
        c->reg_next->reg_prev = c->reg_prev;
    w->n_conns--;
}

/* Whether no application thread can still hold an epoll event for the batch in limbo. */
static bool quiescent_ok(struct fdt_worker *w)
{
    for (int i = 0; i < w->n_threads_started; i++) {
        uint64_t v = atomic_load(&w->quiescent[i]);
        if ((v & 1) && (v >> 1) <= (w->limbo_snap[i] >> 1))
            return false;
    }
    return true;
}

/* Free the connections whose last reference is gone, once no thread can hold an event
 * naming them: those handed over since the last call wait in limbo for one round. */
static void free_pending(struct fdt_worker *w)
{
    uint64_t v;
    (void)!read(w->wakefd, &v, sizeof(v));
    if (w->limbo && quiescent_ok(w)) {
        struct fdt_conn *list = w->limbo;
        w->limbo = NULL;
        while (list) {
            struct fdt_conn *next = list->free_next;
            registry_remove(w, list);
            fdt__conn_destroy(list);
            list = next;
        }
    }
    if (w->limbo)
        return;
    pthread_mutex_lock(&w->free_lock);
    w->limbo = w->free_list;
    w->free_list = NULL;
    w->n_free = 0;
    pthread_mutex_unlock(&w->free_lock);
    if (!w->limbo)
        return;
    for (int i = 0; i < w->n_threads_started; i++)
        w->limbo_snap[i] = atomic_load(&w->quiescent[i]);
    if (quiescent_ok(w))
        free_pending(w); /* nobody was waiting on epoll: free at once */
}

/* Options for the TCP connections of a listener: no Nagle delay, and keepalive probes so
 * that a peer gone without a FIN (cable pulled, host powered off, NAT entry dropped) is
 * noticed: the kernel then fails the socket with ETIMEDOUT, the connection closes and a
 * transaction it owns that has not voted is rolled back. They are set on the listening
 * socket, once per worker: Linux gives an accepted socket the listener's TCP_NODELAY,
 * SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT, which spares five setsockopt
 * calls per connection. (A shared listener is shared with the other generations too: after
 * a reload changes these settings, an old worker still accepting takes the new ones.)
 * Failures are not fatal (the connections work without them), so they are only logged. */
void fdt__worker_listener_options(struct fdt_worker *w, struct fdt_worker_listener *l)
{
    const struct fdt_cfg *cfg = w->cfg;
    if (!l->tcp || l->fd < 0)
        return;
    int one = 1, keep = cfg->tcp_keepalive ? 1 : 0;
    int rc = setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (rc == 0)
        rc = setsockopt(l->fd, SOL_SOCKET, SO_KEEPALIVE, &keep, sizeof(keep));
    if (rc == 0 && keep) {
        rc = setsockopt(l->fd, IPPROTO_TCP, TCP_KEEPIDLE, &cfg->tcp_keepidle,
                        sizeof(cfg->tcp_keepidle));
        if (rc == 0)
            rc = setsockopt(l->fd, IPPROTO_TCP, TCP_KEEPINTVL, &cfg->tcp_keepintvl,
                            sizeof(cfg->tcp_keepintvl));
        if (rc == 0)
            rc = setsockopt(l->fd, IPPROTO_TCP, TCP_KEEPCNT, &cfg->tcp_keepcnt,
                            sizeof(cfg->tcp_keepcnt));
    }
    if (rc < 0)
        fdt_log(FDT_LOG_WARN, "setsockopt on listener %s: %s", l->name, fdt_strerror(-errno));
}

/* Refuse an accepted connection politely: say so, then close with FIN (nothing was read, so
 * no RST). */
static void refuse(struct fdt_worker *w, struct fdt_worker_listener *l, int fd)
{
    /* In clear on a TLS listener, the reply would only confuse the client. */
    if (l->proto.busy_reply && !l->tls)
        (void)!send(fd, l->proto.busy_reply, strlen(l->proto.busy_reply),
                    MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
    atomic_fetch_add(&w->slot->refused_busy, 1);
    atomic_fetch_add_explicit(&w->slot->counters.refused, 1, memory_order_relaxed);
}

static bool accept_paused(const struct fdt_worker *w)
{
    return w->accept_paused_until_ms != 0;
}

/* Stop watching the listeners until ACCEPT_PAUSE_MS from now (not while draining: a drain
 * has taken them out for good). */
static void pause_accept(struct fdt_worker *w, int64_t now)
{
    if (atomic_load(&w->loop.draining))
        return;
    for (int i = 0; i < w->n_listeners; i++) {
        struct fdt_worker_listener *l = &w->listeners[i];
        if (l->registered)
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
        l->registered = false;
    }
    w->accept_paused_until_ms = now + ACCEPT_PAUSE_MS;
}

static void resume_accept(struct fdt_worker *w)
{
    w->accept_paused_until_ms = 0;
    if (w->reserve_fd < 0)
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (atomic_load(&w->loop.draining))
        return;
    for (int i = 0; i < w->n_listeners; i++) {
        struct fdt_worker_listener *l = &w->listeners[i];
        if (l->fd < 0 || l->registered)
            continue;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = l};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0)
            fdt_log(FDT_LOG_ERROR, "re-adding listener %s: %s", l->name, fdt_strerror(-errno));
        else
            l->registered = true;
    }
}

/* accept4 failed with err (EMFILE: this process is out of descriptors; ENFILE: the system
 * is). The connection stays queued and the listener readable, so without care the loop
 * would spin at full CPU for as long as the shortage lasts. Instead: turn away what is
 * queued now, each with the descriptor kept in reserve (give it up, accept, refuse, take it
 * back: libev's and libuv's trick), so that those clients get an answer instead of waiting
 * in the queue; then stop accepting for ACCEPT_PAUSE_MS, as nginx does, so that new
 * arrivals cannot spin the loop either. Connections already open are served throughout. */
static void out_of_fds(struct fdt_worker *w, struct fdt_worker_listener *l, int err)
{
    int refused = 0;
    while (w->reserve_fd >= 0 && refused < MAX_EVENTS) {
        close(w->reserve_fd);
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            refuse(w, l, fd);
            refused++;
        }
        /* Another thread may have taken the number meanwhile: then retry at resume. */
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
    }
    w->refused_no_fd += (unsigned long long)refused;
    int64_t now = fdt__now_ms();
    pause_accept(w, now);
    if (w->accept_logged_ms == 0 || now - w->accept_logged_ms >= ACCEPT_LOG_REPEAT_MS) {
        fdt_log(FDT_LOG_WARN,
                "accept on %s: %s: %llu connections turned away; accepting again in %d ms "
                "(connections open: %lld)",
                l->name, fdt_strerror(err), w->refused_no_fd, ACCEPT_PAUSE_MS,
                (long long)w->n_conns);
        w->accept_logged_ms = now;
        w->refused_no_fd = 0;
    }
}

/* Accept balancing between the workers of a generation that share a listening socket.
 *
 * The kernel wakes one waiter per new connection (EPOLLEXCLUSIVE), and a worker that
 * accepts finds the rest of a burst ready at once, so without care whichever worker woke
 * first drains a burst of connects alone (8/0 in 5 of 20 tries: docs/benchmarks.md). Each
 * worker publishes its share (connections taken from shared listeners, slot->accept_share)
 * and takes a connection only while its share is at most BALANCE_SLACK above the least of
 * its ready siblings'. Shares only grow, so a share read a moment late is lower than the
 * truth, which only makes a worker more careful: the shares of a generation stay within
 * BALANCE_SLACK + 1 of each other, and the least loaded worker may always accept.
 *
 * A worker over the limit takes its shared listeners out of epoll (it would otherwise be
 * woken again at once, the sockets being level-triggered) and hands the wake-up on: the
 * kernel woke it, not the others, for what is queued, so it tells the least loaded sibling
 * with SIGWINCH (harmless to any process that ignores it, should the pid have been reused),
 * which tries to accept at once. The connection that woke a paused worker does not wait
 * for the pause to end (the failure of an earlier attempt that only paused). A pause ends
 * when a sibling's hand-on or the BALANCE_TICK_MS check finds the worker within the limit
 * again. If at that check no sibling has taken anything since the pause began, and none
 * of their event loops is running or waiting for a CPU (a loaded machine: then they are
 * waited for, up to BALANCE_RUNNABLE_MS), the worker takes its part of what is queued
 * itself, and again at each tick, so no connection waits long for siblings that do not
 * accept. A sibling whose loop has not turned for BALANCE_STALE_MS is left out. */

static bool balanced(const struct fdt_worker *w, const struct fdt_worker_listener *l)
{
    return w->cfg->workers > 1 && !l->reuseport;
}

/* How many connections wait in listener l's accept queue (-1: cannot tell). */
static int listener_queued(const struct fdt_worker_listener *l)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (!l->tcp || getsockopt(l->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return -1;
    return (int)ti.tcpi_unacked; /* a listening socket's accept queue length */
}

static bool sibling_live(const struct fdt_worker *w, const struct fdt_slot *s)
{
    if (s == w->slot || atomic_load(&s->state) != FDT_WORKER_READY ||
        s->generation != w->info.generation)
        return false;
    int64_t beat = atomic_load_explicit(&s->heartbeat_ms, memory_order_relaxed);
    return w->now_ms - beat < BALANCE_STALE_MS;
}

static void refresh_siblings(struct fdt_worker *w)
{
    w->siblings_ms = w->now_ms;
    w->n_siblings = 0;
    for (int i = 0; i < FDT_MAX_SLOTS; i++) {
        const struct fdt_slot *s = &w->sb->slots[i];
        if (s != w->slot &&
            atomic_load_explicit(&s->state, memory_order_relaxed) != FDT_WORKER_FREE &&
            s->generation == w->info.generation)
            w->siblings[w->n_siblings++] = i;
    }
}

/* The least share of the live siblings (UINT64_MAX: none) and that sibling's pid; their
 * shares summed in *sum when sum is not NULL. */
static uint64_t least_share(const struct fdt_worker *w, pid_t *pid, uint64_t *sum)
{
    uint64_t least = UINT64_MAX, total = 0;
    for (int i = 0; i < w->n_siblings; i++) {
        const struct fdt_slot *s = &w->sb->slots[w->siblings[i]];
        if (!sibling_live(w, s))
            continue;
        uint64_t v = atomic_load(&s->accept_share);
        total += v;
        if (v < least) {
            least = v;
            *pid = atomic_load_explicit(&s->pid, memory_order_relaxed);
        }
    }
    if (sum)
        *sum = total;
    return least;
}

static bool balance_ok(struct fdt_worker *w, pid_t *least_pid)
{
    *least_pid = 0;
    /* A sibling starting after this one was ready, or a replacement: seen within 10 ms. */
    if (w->n_siblings < w->cfg->workers - 1 && w->now_ms - w->siblings_ms >= 10)
        refresh_siblings(w);
    uint64_t least = least_share(w, least_pid, NULL);
    return least == UINT64_MAX || atomic_load(&w->slot->accept_share) <= least + BALANCE_SLACK;
}

void fdt__worker_balance_init(struct fdt_worker *w)
{
    w->now_ms = fdt__now_ms();
    refresh_siblings(w);
    pid_t pid = 0;
    uint64_t least = least_share(w, &pid, NULL);
    atomic_store(&w->slot->accept_share, least == UINT64_MAX ? 0 : least);
}

static bool balance_paused(const struct fdt_worker *w)
{
    return w->balance_until_ms != 0;
}

/* Whether the sibling with that pid is paused. */
static bool least_held(const struct fdt_worker *w, pid_t pid)
{
    for (int i = 0; i < w->n_siblings; i++) {
        const struct fdt_slot *s = &w->sb->slots[w->siblings[i]];
        if (atomic_load_explicit(&s->pid, memory_order_relaxed) == pid)
            return atomic_load(&s->accept_held) != 0;
    }
    return false;
}

/* Over the limit: out of epoll for the shared listeners, and the least loaded sibling is
 * told (hand_on: something is, or may be, queued that only this worker was woken for). */
static void balance_pause(struct fdt_worker *w, pid_t least_pid, bool hand_on)
{
    atomic_store(&w->slot->accept_held, 1);
    for (int i = 0; i < w->n_listeners; i++) {
        struct fdt_worker_listener *l = &w->listeners[i];
        if (l->registered && balanced(w, l)) {
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
            l->registered = false;
        }
    }
    pid_t pid = 0;
    least_share(w, &pid, &w->balance_mark);
    w->balance_until_ms = w->now_ms + BALANCE_TICK_MS;
    w->balance_since_ms = w->now_ms;
    if (hand_on && least_pid > 0)
        kill(least_pid, SIGWINCH);
}

static void balance_resume(struct fdt_worker *w)
{
    w->balance_until_ms = 0;
    atomic_store(&w->slot->accept_held, 0);
    if (accept_paused(w) || atomic_load(&w->loop.draining))
        return; /* resume_accept, or nothing */
    for (int i = 0; i < w->n_listeners; i++) {
        struct fdt_worker_listener *l = &w->listeners[i];
        if (l->fd < 0 || l->registered || !balanced(w, l))
            continue;
        /* EPOLL_CTL_ADD polls the socket: what is queued is reported at once. */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = l};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0)
            fdt_log(FDT_LOG_ERROR, "re-adding listener %s: %s", l->name, fdt_strerror(-errno));
        else
            l->registered = true;
    }
}

/* Serve the connection fd of listener l (accepted, or adopted: handed over by a retiring
 * worker of an older generation). */
static void add_conn(struct fdt_worker *w, struct fdt_worker_listener *l, int fd, bool adopted)
{
    struct fdt_conn *c = adopted ? fdt__conn_adopt(&w->loop, fd, &l->proto, l->name)
                                 : fdt__conn_new(&w->loop, fd, &l->proto, l->name);
    if (!c) {
        fdt_log(FDT_LOG_ERROR, "out of memory: connection dropped");
        return;
    }
    if (!adopted && l->tls && fdt__conn_tls_start(c, l->tls) < 0) {
        fdt_log(FDT_LOG_ERROR, "out of memory: connection dropped");
        fdt__close(fd);
        fdt__conn_destroy(c);
        return;
    }
    /* The application threads take it from here: EPOLLOUT is ready at once, so the first
     * free thread opens it (and reads the request if it is already there). */
    c->pending = FDT_EV_OPEN | EPOLLIN;
    c->armed = true;
    registry_add(w, c);
    if (!adopted) {
        atomic_fetch_add_explicit(&w->slot->accepted, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->slot->counters.accepted, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&w->slot->conns_open, 1, memory_order_relaxed);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLONESHOT,
                             .data.ptr = c};
    if (epoll_ctl(w->loop.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        fdt_log(FDT_LOG_ERROR, "epoll_ctl: %s", fdt_strerror(-errno));
        registry_remove(w, c);
        atomic_fetch_sub_explicit(&w->slot->conns_open, 1, memory_order_relaxed);
        fdt__conn_destroy(c);
        close(fd);
    }
}

/* Take one connection off a listener. Returns false when the queue is empty, or when no
 * connection can be taken now. */
static bool accept_one(struct fdt_worker *w, struct fdt_worker_listener *l)
{
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        int err = -errno;
        if (err == -EAGAIN || err == -EWOULDBLOCK || err == -EINTR || err == -ECONNABORTED)
            return false;
        if (err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM) {
            out_of_fds(w, l, err);
            return false;
        }
        /* An error of that one connection (it is gone from the queue). */
        int64_t now = fdt__now_ms();
        if (w->accept_logged_ms == 0 || now - w->accept_logged_ms >= ACCEPT_LOG_REPEAT_MS) {
            fdt_log(FDT_LOG_WARN, "accept on %s: %s", l->name, fdt_strerror(err));
            w->accept_logged_ms = now;
        }
        return false;
    }
    /* Open connections (closed ones may still wait in limbo to be freed). */
    if (atomic_load(&w->slot->conns_open) >= w->cfg->max_connections) {
        refuse(w, l, fd);
        return true;
    }
    add_conn(w, l, fd, false); /* TCP options: inherited from the listener */
    if (balanced(w, l))
        atomic_fetch_add(&w->slot->accept_share, 1);
    return true;
}

static void on_listener(struct fdt_worker *w, struct fdt_worker_listener *l)
{
    if (l->fd < 0 || !l->registered || accept_paused(w))
        return; /* closed by a drain, or paused, earlier in this batch of events */
    atomic_fetch_add_explicit(&w->slot->listen_wakeups, 1, memory_order_relaxed);
    pid_t least = 0;
    if (balanced(w, l) && !balance_ok(w, &least)) {
        balance_pause(w, least, true); /* woken for a connection: the sibling takes it */
        return;
    }
    if (!accept_one(w, l)) {
        if (!accept_paused(w))
            atomic_fetch_add_explicit(&w->slot->accept_eagain, 1, memory_order_relaxed);
        return;
    }
    if (!balanced(w, l))
        return;
    if (!balance_ok(w, &least)) {
        /* Over the limit now: what is still queued is the siblings'. The least loaded is
         * told if something is queued, or if it is paused itself (it went over the limit
         * before this worker's last accepts: nobody would hear of the next arrival until a
         * tick). Each pausing worker sets its flag before it looks at the other's, so of two
         * pausing at once at least one sees the other. */
        balance_pause(w, least, false);
        if (least > 0 && (listener_queued(l) != 0 || least_held(w, least)))
            kill(least, SIGWINCH);
        return;
    }
    /* Ahead of the least loaded sibling now: move to the back of the listener's wait queue
     * so that the kernel's exclusive wake-up goes to another worker next time (a worker
     * still behind or level stays in front, and saves the two calls). Connections still
     * queued are reported again at once (level-triggered, and EPOLL_CTL_ADD polls the
     * socket). */
    pid_t pid = 0;
    uint64_t least_v = least_share(w, &pid, NULL);
    if (least_v != UINT64_MAX && atomic_load(&w->slot->accept_share) <= least_v)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = l};
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
        fdt_log(FDT_LOG_ERROR, "re-adding listener %s: %s", l->name, fdt_strerror(-errno));
        l->registered = false;
    }
}

/* SIGWINCH from a sibling over its limit: something is queued on a shared listener that
 * the kernel told only that sibling about. From = the sender's pid. */
static void on_hand_on(struct fdt_worker *w, pid_t from)
{
    if (atomic_load(&w->loop.draining) || accept_paused(w))
        return;
    pid_t least = 0;
    if (balance_paused(w)) {
        if (balance_ok(w, &least))
            balance_resume(w); /* the socket is polled: what is queued is reported */
        else if (least > 0 && least != from)
            kill(least, SIGWINCH); /* not the least loaded after all: pass it on */
        return;
    }
    for (int i = 0; i < w->n_listeners; i++) {
        struct fdt_worker_listener *l = &w->listeners[i];
        if (balanced(w, l))
            on_listener(w, l);
    }
}

/* Whether process pid's main thread (a worker's event loop) is running or waiting for a
 * CPU (state R in /proc/PID/stat). */
static bool process_runnable(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'R';
}

/* Whether a live sibling's event loop is running or waiting for a CPU. */
static bool siblings_runnable(const struct fdt_worker *w)
{
    for (int i = 0; i < w->n_siblings; i++) {
        const struct fdt_slot *s = &w->sb->slots[w->siblings[i]];
        if (sibling_live(w, s) && process_runnable(atomic_load(&s->pid)))
            return true;
    }
    return false;
}

/* A balance pause is over (BALANCE_TICK_MS): back within the limit, go on; else, if the
 * siblings took something meanwhile, they are serving: wait one more tick; else take what
 * is queued here, so that no connection waits for siblings that do not accept. */
static void balance_tick(struct fdt_worker *w)
{
    pid_t least = 0;
    if (balance_ok(w, &least)) {
        balance_resume(w);
        return;
    }
    uint64_t mark = 0;
    least_share(w, &least, &mark);
    /* Someone accepted meanwhile, or the least loaded sibling is runnable (woken, waiting for
     * a CPU on a busy machine): it is coming; wait one more tick, up to BALANCE_RUNNABLE_MS. */
    if (mark != w->balance_mark ||
        (w->now_ms - w->balance_since_ms < BALANCE_RUNNABLE_MS && siblings_runnable(w))) {
        if (mark != w->balance_mark)
            w->balance_since_ms = w->now_ms;
        w->balance_mark = mark;
        w->balance_until_ms = w->now_ms + BALANCE_TICK_MS;
        if (least > 0)
            kill(least, SIGWINCH); /* in case it was not the least when last told */
        return;
    }
    /* Nobody is coming: take this worker's part of what is queued (each tick takes a part,
     * so the queue shrinks geometrically however long the others stay away) and tell the
     * least loaded sibling again. Nothing queued: just listen again. */
    fdt_log(FDT_LOG_DEBUG,
            "accept balance: no sibling took anything (share %llu, theirs %llu, %lld ms): taking a "
            "part of the queue",
            (unsigned long long)atomic_load(&w->slot->accept_share), (unsigned long long)mark,
            (long long)(w->now_ms - w->balance_since_ms));
    balance_resume(w);
    int live = 0;
    for (int i = 0; i < w->n_siblings; i++)
        live += sibling_live(w, &w->sb->slots[w->siblings[i]]);
    bool left = false;
    for (int i = 0; i < w->n_listeners; i++) {
        struct fdt_worker_listener *l = &w->listeners[i];
        if (!l->registered || !balanced(w, l))
            continue;
        int queued = listener_queued(l);
        int take = queued < 0 ? 1 : (queued + live) / (live + 1);
        for (; take > 0 && !accept_paused(w); take--)
            if (!accept_one(w, l))
                break;
        if (take == 0 && listener_queued(l) != 0)
            left = true;
    }
    if (left && !balance_ok(w, &least))
        balance_pause(w, least, true);
}

/* Messages from the master: connections handed over by retiring workers of older
 * generations (FDT_MSG_CONN, fdt_proto.handoff), served here as if accepted. A connection
 * that no listener of the same name and a protocol that takes hand-offs can serve, or
 * that comes beyond max_connections, is closed: what a retiring worker would have done. */
static void on_channel(struct fdt_worker *w)
{
    struct fdt_msg msg;
    int fd, rc;
    while ((rc = fdt__channel_recv_fd(w->channel_fd, &msg, &fd)) == 1) {
        if (fd < 0)
            continue;
        struct fdt_worker_listener *l = NULL;
        for (int i = 0; i < w->n_listeners && !l; i++)
            if (w->listeners[i].proto.handoff && !w->listeners[i].tls &&
                strcmp(w->listeners[i].name, msg.text) == 0)
                l = &w->listeners[i];
        if (msg.type != FDT_MSG_CONN || !l ||
            atomic_load(&w->slot->conns_open) >= w->cfg->max_connections) {
            fdt_log(FDT_LOG_INFO, "a connection handed over for listener %s: %s: closed", msg.text,
                    !l ? "no such listener takes hand-offs" : "max_connections");
            close(fd);
            continue;
        }
        add_conn(w, l, fd, true);
    }
    if (rc == 0) /* the master is gone: its SIGTERM (PR_SET_PDEATHSIG) says the rest */
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->channel_fd, NULL);
}

static void wake_to_drain(struct fdt_worker *w);

/* Graceful stop: stop accepting at once, serve what is already queued, close idle
 * connections, let work in flight finish. */
static void begin_drain(struct fdt_worker *w, const char *why)
{
    if (atomic_load(&w->loop.draining))
        return;
    atomic_store(&w->loop.draining, true);
    atomic_store(&w->slot->state, FDT_WORKER_DRAINING);
    w->balance_until_ms = 0;
    w->drain_deadline_ms = fdt__now_ms() + (int64_t)(w->cfg->graceful_timeout * 1000.0);
    int queued = 0;
    for (int i = 0; i < w->n_listeners; i++) {
        struct fdt_worker_listener *l = &w->listeners[i];
        if (l->registered)
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
        l->registered = false;
        /* Connections that completed their handshake are ours to serve, not to reset. */
        while (accept_one(w, l))
            queued++;
        fdt__close(l->fd);
        l->fd = -1;
    }
    /* Tell the master this worker accepts no more: a reload is done when every old
     * worker has said so. */
    fdt__channel_send(w->channel_fd, FDT_MSG_DRAINING, 0, NULL);
    fdt_log(FDT_LOG_INFO, "draining (%s): %lld connections open, %d taken from the accept queue",
            why, (long long)w->n_conns, queued);
    wake_to_drain(w);
}

/* Run every connection once with FDT_EV_DRAIN: each closes between requests as the drain
 * rule of fdt__conn_run says. */
static void wake_to_drain(struct fdt_worker *w)
{
    for (struct fdt_conn *c = w->registry; c; c = c->reg_next) {
        pthread_mutex_lock(&c->lock);
        bool queue = !c->running && !c->closed;
        if (queue) {
            c->running = true;
            c->pending |= FDT_EV_DRAIN;
        }
        pthread_mutex_unlock(&c->lock);
        if (queue)
            fdt__worker_enqueue(w, c);
    }
}

static void scan_idle(struct fdt_worker *w, int64_t now)
{
    int64_t idle_ms = (int64_t)(w->cfg->idle_timeout * 1000.0);
    for (struct fdt_conn *c = w->registry; c; c = c->reg_next) {
        int64_t last = atomic_load_explicit(&c->last_active_ms, memory_order_relaxed);
        int64_t deadline = atomic_load_explicit(&c->deadline_ms, memory_order_relaxed);
        int64_t txn_idle = atomic_load_explicit(&c->txn_idle_ms, memory_order_relaxed);
        uint32_t ev = 0;
        if (deadline && now >= deadline)
            ev = FDT_EV_TIMEOUT;
        else if (txn_idle && now - txn_idle >= (int64_t)(w->cfg->transaction_timeout * 1000.0))
            ev = FDT_EV_TXN_TIMEOUT;
        else if (now - last >= idle_ms)
            ev = FDT_EV_CLOSE;
        else
            continue;
        pthread_mutex_lock(&c->lock);
        bool queue = !c->running && !c->closed;
        if (queue) {
            c->running = true;
            c->pending |= ev;
        }
        pthread_mutex_unlock(&c->lock);
        if (queue) {
            fdt_log(FDT_LOG_DEBUG, "conn=%llu %s: closing", (unsigned long long)c->id,
                    ev == FDT_EV_TIMEOUT ? "deadline passed" : "idle");
            fdt__worker_enqueue(w, c);
        }
    }
}

/* The resident set size of this process in bytes (from /proc/self/statm), or -1. */
static int64_t rss_bytes(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    unsigned long long size, resident;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return -1;
    long page = sysconf(_SC_PAGESIZE);
    return (int64_t)resident * (page > 0 ? page : 4096);
}

#define MEMORY_CHECK_MS 1000

/* [server] max_requests and max_worker_memory: ask the master, once, for a successor. The
 * worker serves on until the master tells it to drain (SIGHUP), once the successor is
 * ready, so that no request waits for a worker that is starting. */
static void check_recycle(struct fdt_worker *w, int64_t now)
{
    if (w->recycle_asked || atomic_load(&w->loop.draining))
        return;
    char why[160];
    uint32_t cause = 0;
    uint64_t served = atomic_load_explicit(&w->slot->requests, memory_order_relaxed);
    if (w->recycle_after && served >= w->recycle_after) {
        cause = FDT_RESTART_MAX_REQUESTS;
        snprintf(why, sizeof(why), "%llu requests served (max_requests %d + jitter %llu)",
                 (unsigned long long)served, w->cfg->max_requests,
                 (unsigned long long)(w->recycle_after - (uint64_t)w->cfg->max_requests));
    } else if (w->cfg->max_worker_memory && now - w->memory_checked_ms >= MEMORY_CHECK_MS) {
        w->memory_checked_ms = now;
        int64_t rss = rss_bytes();
        if (rss > 0)
            atomic_store_explicit(&w->slot->rss_bytes, rss, memory_order_relaxed);
        if (rss > 0 && (uint64_t)rss > w->cfg->max_worker_memory) {
            cause = FDT_RESTART_MAX_MEMORY;
            snprintf(why, sizeof(why), "resident memory %lld bytes over max_worker_memory %zu",
                     (long long)rss, w->cfg->max_worker_memory);
        }
    }
    if (!cause)
        return;
    w->recycle_asked = true;
    fdt_log(FDT_LOG_INFO, "asking for a successor: %s", why);
    fdt__channel_send(w->channel_fd, FDT_MSG_RECYCLE, cause, why);
}

static void stop_threads(struct fdt_worker *w, int64_t deadline_ms)
{
    fdt__worker_stop_threads(w);
    for (int i = 0; i < w->n_threads_started; i++) {
        int64_t left = deadline_ms - fdt__now_ms();
        if (left < 0)
            left = 0;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (pthread_timedjoin_np(w->threads[i], NULL, &ts) != 0) {
            fdt_log(FDT_LOG_WARN, "application thread %d did not stop: exiting anyway", i);
            fdt__exit(0);
        }
    }
}

static bool on_signal(struct fdt_worker *w)
{
    struct signalfd_siginfo si;
    while (read(w->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
            /* PR_SET_PDEATHSIG sends SIGTERM when the master dies; the worker has been
             * handed to another parent by then. */
            if (getppid() != w->master_pid) {
                fdt_log(FDT_LOG_WARN, "the master (pid %d) is gone: draining and exiting",
                        (int)w->master_pid);
                begin_drain(w, "master gone");
            } else if (atomic_exchange(&w->loop.retiring, false)) {
                /* A stop while retiring: idle connections are now closed too. */
                fdt_log(FDT_LOG_INFO, "SIGTERM while retiring: closing idle connections");
                wake_to_drain(w);
            } else {
                begin_drain(w, "SIGTERM");
            }
            break;
        case SIGHUP:
            /* From the master: a successor serves on (reload, one worker fewer). Idle
             * keep-alive connections stay until their advertised idle time runs out. */
            if (atomic_load(&w->loop.draining))
                break; /* already stopping: nothing to keep */
            atomic_store(&w->loop.retiring, true);
            begin_drain(w, "retired: a successor serves");
            break;
        case SIGINT:
        case SIGQUIT:
            fdt_log(FDT_LOG_INFO, "immediate stop (%s): %lld connections cut",
                    si.ssi_signo == SIGINT ? "SIGINT" : "SIGQUIT", (long long)w->n_conns);
            fdt__exit(0);
        case SIGWINCH:
            on_hand_on(w, (pid_t)si.ssi_pid);
            break;
        case SIGUSR1:
            fdt__log_reopen();
            if (fdt__http_access_log_reopen(w->http) < 0)
                fdt_log(FDT_LOG_WARN, "cannot reopen the access log: keeping the old file");
            break;
        default:
            break;
        }
    }
    return true;
}

void fdt__worker_loop(struct fdt_worker *w)
{
    struct epoll_event events[MAX_EVENTS];
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    for (;;) {
        int64_t now = fdt__now_ms();
        int timeout = SCAN_INTERVAL_MS;
        if (accept_paused(w)) {
            int64_t left = w->accept_paused_until_ms - now;
            if (left < timeout)
                timeout = left > 0 ? (int)left : 0;
        }
        if (balance_paused(w)) {
            int64_t left = w->balance_until_ms - now;
            if (left < timeout)
                timeout = left > 0 ? (int)left : 0;
        }
        if (atomic_load(&w->loop.draining)) {
            /* Connections the master handed over before it told this worker to drain are
             * queued on the channel by now: take them before deciding there are none. */
            if (atomic_load(&w->slot->conns_open) == 0)
                on_channel(w);
            if (atomic_load(&w->slot->conns_open) == 0)
                break;
            int64_t left = w->drain_deadline_ms - now;
            if (left <= 0) {
                fdt_log(FDT_LOG_WARN, "graceful timeout (%.1fs): %lld connections cut",
                        w->cfg->graceful_timeout, (long long)w->n_conns);
                fdt__exit(0);
            }
            if (left < timeout)
                timeout = (int)left;
        }
        int n = epoll_wait(w->epfd, events, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR) {
            fdt_log(FDT_LOG_ERROR, "epoll_wait: %s", fdt_strerror(-errno));
            fdt__exit(4);
        }
        now = fdt__now_ms();
        w->now_ms = now;
        atomic_store_explicit(&w->slot->heartbeat_ms, now, memory_order_relaxed);
        for (int i = 0; i < n; i++) {
            int kind = *(int *)events[i].data.ptr;
            switch (kind) {
            case FDT_POLL_LISTENER:
                on_listener(w, events[i].data.ptr);
                break;
            case FDT_POLL_SIGNAL:
                on_signal(w);
                break;
            case FDT_POLL_WAKE:
                break;
            case FDT_POLL_MASTER:
                on_channel(w);
                break;
            default:
                FDT_ASSERT(!"unknown poll kind");
            }
        }
        free_pending(w);
        if (accept_paused(w) && now >= w->accept_paused_until_ms)
            resume_accept(w);
        if (balance_paused(w) && now >= w->balance_until_ms && !atomic_load(&w->loop.draining))
            balance_tick(w);
        if (now - w->last_scan_ms >= SCAN_INTERVAL_MS) {
            w->last_scan_ms = now;
            refresh_siblings(w);
            scan_idle(w, now);
            check_recycle(w, now);
        }
    }
    stop_threads(w, w->drain_deadline_ms);
    if (w->reserve_fd >= 0)
        close(w->reserve_fd);
    w->reserve_fd = -1;
}

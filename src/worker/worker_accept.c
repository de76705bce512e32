/* Accepting connections (the listeners, accept balancing between workers, the out-of-
 * descriptors back-off) and registering them.
 *
 * Threading: the listeners sit in the application threads' epoll set (loop.epfd), edge-
 * triggered and EPOLLEXCLUSIVE. The application thread that takes a listener's event
 * accepts (fdt__worker_accept) and runs the first new connection itself at once: no wake-up
 * of the loop thread and no hand-off to another thread, and the first read comes right
 * after the accept. Edge-triggered, the listener is reported again only when a connection
 * arrives, so whoever takes its event accepts until the queue is empty (or balancing or a
 * shortage of descriptors stops it and takes the listener out of epoll: putting it back
 * polls the socket, which reports what is queued). Connections past the first of a burst
 * go into epoll ready to run (EPOLLOUT) for the other threads. The event is claimed at once
 * and the thread lets go of the listener before it runs the connection, so a thread
 * blocked in a handler holds no listener (design promise 2).
 *
 * The loop thread accepts too (a sibling's hand-on, a balance tick, the drain) and runs the
 * timers of accepting (the end of a pause). Everything about accepting (the listeners'
 * registration and descriptors, the reserve descriptor, the pauses, the balance state,
 * w->now_ms) is guarded by w->accept_lock; the registry by w->registry_lock, taken inside
 * it. An application thread that pauses accepting wakes the loop thread (wakefd) so that
 * the pause's end is not missed. */
#include "fdt_config.h"

#define FDT_LOG_MODULE "worker"
#include "log/log.h"
#include "util/util.h"
#include "worker/worker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fdt/log.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Out of descriptors: how long accepting stops, and how often it is logged. */
#define ACCEPT_PAUSE_MS      500
#define ACCEPT_LOG_REPEAT_MS 10000
#define REFUSE_MAX           256 /* turned away in one go */
/* Accept balancing (see balance_ok): a worker takes a connection from a shared listener
 * while its share is at most BALANCE_SLACK above the least of its siblings'; a pause is
 * looked at again every BALANCE_TICK_MS; a sibling whose loop has not turned for
 * BALANCE_STALE_MS is left out. */
#define BALANCE_SLACK       1
#define BALANCE_TICK_MS     5
#define BALANCE_STALE_MS    1000
#define BALANCE_RUNNABLE_MS 250
/* How a listener is in loop.epfd. */
#define LISTENER_EVENTS (EPOLLIN | EPOLLET | EPOLLEXCLUSIVE)

void fdt__worker_registry_add(struct fdt_worker *w, struct fdt_conn *c)
{
    pthread_mutex_lock(&w->registry_lock);
    c->reg_prev = NULL;
    c->reg_next = w->registry;
    if (w->registry)
        w->registry->reg_prev = c;
    w->registry = c;
    w->n_conns++;
    pthread_mutex_unlock(&w->registry_lock);
}

void fdt__worker_registry_remove(struct fdt_worker *w, struct fdt_conn *c)
{
    pthread_mutex_lock(&w->registry_lock);
    if (c->reg_prev)
        c->reg_prev->reg_next = c->reg_next;
    else
        w->registry = c->reg_next;
    if (c->reg_next)
        c->reg_next->reg_prev = c->reg_prev;
    w->n_conns--;
    pthread_mutex_unlock(&w->registry_lock);
}

static void listener_del(struct fdt_worker *w, struct fdt_worker_listener *l)
{
    if (l->registered)
        epoll_ctl(w->loop.epfd, EPOLL_CTL_DEL, l->fd, NULL);
    l->registered = false;
}

static void pause_accept(struct fdt_worker *w, int64_t now);

/* Put listener l back into the application threads' epoll set; accept_lock held. When
 * that fails, a listener left out would never be heard of again: accepting pauses as for
 * a shortage of descriptors (every listener out), and the pause's end tries again. Returns
 * false then (the caller stops putting listeners back). */
static bool listener_add(struct fdt_worker *w, struct fdt_worker_listener *l)
{
    struct epoll_event ev = {.events = LISTENER_EVENTS, .data.ptr = l};
    if (epoll_ctl(w->loop.epfd, EPOLL_CTL_ADD, l->fd, &ev) == 0) {
        l->registered = true;
        return true;
    }
    fdt_log(FDT_LOG_ERROR, "re-adding listener %s: %s: accepting again in %d ms", l->name,
            fdt_strerror(-errno), ACCEPT_PAUSE_MS);
    pause_accept(w, fdt__now_ms());
    return false;
}

/* The loop thread's epoll_wait timeout must see a pause an application thread began. */
static void wake_loop(struct fdt_worker *w)
{
    uint64_t one = 1;
    (void)!write(w->wakefd, &one, sizeof(one));
}

/* Options for the TCP connections of a listener: no Nagle delay, and keepalive probes so
 * that a peer gone without a FIN (cable pulled, host powered off, NAT entry dropped) is
 * noticed: the kernel then fails the socket with ETIMEDOUT, the connection closes and a
 * transaction it owns that has not voted is rolled back. They are set on the listening
 * socket, once per worker: Linux gives an accepted socket the listener's TCP_NODELAY,
 * SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT, which spares five setsockopt
 * calls per connection. (A shared listener is shared with the other generations too: after
 * a reload changes these settings, an old worker still accepting takes the new ones.)
 * [listen] defer_accept sets TCP_DEFER_ACCEPT, so that a connection arrives with its first
 * request.
 * Failures are not fatal (the connections work without them), so they are only logged. */
static void listener_options(struct fdt_worker *w, struct fdt_worker_listener *l)
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
    /* Set whatever the value, so that a reload that turns it off clears it. */
    if (rc == 0)
        rc = setsockopt(l->fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &l->defer_accept,
                        sizeof(l->defer_accept));
    if (rc < 0) /* GCOVR_EXCL_START: unreachable: a TCP socket takes these options, and the
                   configuration bounds their values to the kernel's (config_table.c) */
        fdt_log(FDT_LOG_WARN, "setsockopt on listener %s: %s", l->name, fdt_strerror(-errno));
    /* GCOVR_EXCL_STOP */
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

static bool balanced(const struct fdt_worker *w, const struct fdt_worker_listener *l);

/* Put the listeners that are out of epoll (and open: not closed by a drain) back in, the
 * shared ones only with balanced_only; stop at one that cannot go back (listener_add has
 * paused accepting). EPOLL_CTL_ADD polls the socket: what is queued is reported at once. */
static void listeners_add(struct fdt_worker *w, bool balanced_only)
{
    for (int i = 0; i < w->n_listeners; i++) {
        struct fdt_worker_listener *l = &w->listeners[i];
        if (l->fd >= 0 && !l->registered && (!balanced_only || balanced(w, l)) &&
            !listener_add(w, l))
            break;
    }
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
    for (int i = 0; i < w->n_listeners; i++)
        listener_del(w, &w->listeners[i]);
    w->accept_paused_until_ms = now + ACCEPT_PAUSE_MS;
}

static void resume_accept(struct fdt_worker *w)
{
    w->accept_paused_until_ms = 0;
    if (w->reserve_fd < 0) /* GCOVR_EXCL_START: reached only when, in out_of_fds, another
                              thread took the reserve's number between its close and its
                              reopen: a race no test can arrange */
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    /* GCOVR_EXCL_STOP */
    if (atomic_load(&w->loop.draining))
        return;
    listeners_add(w, false);
}

/* accept4 failed with err (EMFILE: this process is out of descriptors; ENFILE: the system
 * is). The connection stays queued and the listener readable, so without care accepting
 * would be retried at full CPU for as long as the shortage lasts. Instead: turn away what is
 * queued now, each with the descriptor kept in reserve (give it up, accept, refuse, take it
 * back: libev's and libuv's trick), so that those clients get an answer instead of waiting
 * in the queue; then stop accepting for ACCEPT_PAUSE_MS, as nginx does, so that new
 * arrivals cannot spin the loop either. Connections already open are served throughout. */
static void out_of_fds(struct fdt_worker *w, struct fdt_worker_listener *l, int err)
{
    int refused = 0;
    while (w->reserve_fd >= 0 && refused < REFUSE_MAX) {
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
                (long long)atomic_load(&w->slot->conns_open));
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
 * of their threads is running or waiting for a CPU (a loaded machine: then they are
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

/* Which slots hold this worker's siblings, from the scoreboard's compact list of slot
 * generations: reading every slot's own fields touched each page of the scoreboard, which in
 * a new worker meant a page fault each (40 % of a worker's start-up CPU at a reload,
 * docs/benchmarks.md). With one worker per generation nothing is balanced (balanced()), so
 * nothing is read. */
static void refresh_siblings(struct fdt_worker *w)
{
    w->siblings_ms = w->now_ms;
    w->n_siblings = 0;
    if (w->cfg->workers <= 1)
        return;
    for (int i = 0; i < FDT_MAX_SLOTS; i++) {
        if (atomic_load_explicit(&w->sb->slot_generation[i], memory_order_relaxed) !=
            w->info.generation)
            continue;
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

static void balance_init(struct fdt_worker *w)
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
    /* GCOVR_EXCL_START: unreachable but for a race no test can arrange: pid was just read
     * from one of these slots, under accept_lock (only a sibling replaced in between) */
    return false;
    /* GCOVR_EXCL_STOP */
}

/* Over the limit: out of epoll for the shared listeners, and the least loaded sibling is
 * told (hand_on: something is, or may be, queued that only this worker was woken for). */
static void balance_pause(struct fdt_worker *w, pid_t least_pid, bool hand_on)
{
    atomic_store(&w->slot->accept_held, 1);
    for (int i = 0; i < w->n_listeners; i++) {
        struct fdt_worker_listener *l = &w->listeners[i];
        if (balanced(w, l))
            listener_del(w, l);
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
    /* GCOVR_EXCL_START: unreachable: a balance pause never overlaps an accept pause or a
     * drain (accepting while balance-paused happens only in balance_tick, which resumes
     * first; the drain clears the balance pause, and a tick is not run while draining).
     * Kept: a listener re-added during an accept pause would spin on a shortage. */
    if (accept_paused(w) || atomic_load(&w->loop.draining))
        return; /* resume_accept, or nothing */
    /* GCOVR_EXCL_STOP */
    listeners_add(w, true);
}

/* Make a connection of descriptor fd from listener l (accepted, or adopted: handed over by
 * a retiring worker of an older generation) and register it. With run_here the caller runs
 * it (fdt__conn_run) at once, before it is in epoll (it goes there at its first re-arm);
 * otherwise it goes into epoll ready at once (EPOLLOUT), for the first free application
 * thread. Either way its first run opens it and reads the request if it is already there.
 * Returns the connection, or NULL when it could not be made (fd closed). Any thread. */
static struct fdt_conn *add_conn(struct fdt_worker *w, struct fdt_worker_listener *l, int fd,
                                 bool adopted, bool run_here)
{
    struct fdt_conn *c = adopted ? fdt__conn_adopt(&w->loop, fd, &l->proto, l->name)
                                 : fdt__conn_new(&w->loop, fd, &l->proto, l->name);
    if (!c) {
        fdt_log(FDT_LOG_ERROR, "out of memory: connection dropped");
        return NULL;
    }
    if (!adopted && l->tls && fdt__conn_tls_start(c, l->tls) < 0) {
        fdt_log(FDT_LOG_ERROR, "out of memory: connection dropped");
        fdt__close(fd);
        fdt__conn_destroy(c);
        return NULL;
    }
    /* Set before the registry publishes it (its lock orders these writes before any other
     * thread's look at c). */
    c->pending = FDT_EV_OPEN | EPOLLIN;
    if (run_here)
        c->running = true;
    else
        c->armed = c->in_epoll = true;
    fdt__worker_registry_add(w, c);
    if (!adopted) {
        atomic_fetch_add_explicit(&w->slot->accepted, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->slot->counters.accepted, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&w->slot->conns_open, 1, memory_order_relaxed);
    if (run_here)
        return c;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLONESHOT,
                             .data.ptr = c};
    if (epoll_ctl(w->loop.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        fdt_log(FDT_LOG_ERROR, "epoll_ctl for a new connection: %s: connection closed",
                fdt_strerror(-errno));
        fdt__worker_registry_remove(w, c);
        atomic_fetch_sub_explicit(&w->slot->conns_open, 1, memory_order_relaxed);
        fdt__conn_destroy(c);
        close(fd);
        return NULL;
    }
    return c;
}

void fdt__worker_adopt(struct fdt_worker *w, struct fdt_worker_listener *l, int fd)
{
    add_conn(w, l, fd, true, false);
}

/* Take one connection off a listener; accept_lock held. With run (an application thread)
 * and no connection in *run yet, the new connection goes there for the caller to run;
 * otherwise into epoll for the other threads. Returns false when the queue is empty, or
 * when no connection can be taken now. */
static bool accept_one(struct fdt_worker *w, struct fdt_worker_listener *l, struct fdt_conn **run)
{
    int fd = -1;
    /* The listener is edge-triggered: an error of one connection must not end the turn
     * while others may be queued behind it (bounded, should the error persist). */
    for (int tries = 0; fd < 0 && tries < 16; tries++) {
        fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            break;
        int err = -errno;
        if (err == -EAGAIN || err == -EWOULDBLOCK)
            return false;
        if (err == -EINTR || err == -ECONNABORTED)
            continue;
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
    }
    if (fd < 0)
        return false;
    /* Open connections (closed ones may still wait in limbo to be freed). */
    if (atomic_load(&w->slot->conns_open) >= w->cfg->max_connections) {
        refuse(w, l, fd);
        return true;
    }
    /* TCP options: inherited from the listener. */
    bool here = run && !*run;
    struct fdt_conn *c = add_conn(w, l, fd, false, here);
    if (here)
        *run = c;
    if (balanced(w, l))
        atomic_fetch_add(&w->slot->accept_share, 1);
    return true;
}

/* Accept what listener l has queued (it is edge-triggered: until the queue is empty, or
 * balancing or a shortage of descriptors takes it out of epoll); accept_lock held. run: as
 * for accept_one. */
static void on_listener(struct fdt_worker *w, struct fdt_worker_listener *l, struct fdt_conn **run)
{
    if (l->fd < 0 || !l->registered || accept_paused(w))
        return; /* closed by a drain, or paused, since the event was taken */
    atomic_fetch_add_explicit(&w->slot->listen_wakeups, 1, memory_order_relaxed);
    int taken = 0;
    for (;;) {
        pid_t least = 0;
        if (balanced(w, l) && !balance_ok(w, &least)) {
            if (taken == 0) {
                balance_pause(w, least, true); /* woken for a connection: the sibling takes it */
                return;
            }
            /* Over the limit now: what is still queued is the siblings'. The least loaded
             * is told if something is queued, or if it is paused itself (it went over the
             * limit before this worker's last accepts: nobody would hear of the next
             * arrival until a tick). Each pausing worker sets its flag before it looks at
             * the other's, so of two pausing at once at least one sees the other. */
            balance_pause(w, least, false);
            if (least > 0 && (listener_queued(l) != 0 || least_held(w, least)))
                kill(least, SIGWINCH);
            return;
        }
        if (!accept_one(w, l, run))
            break;
        taken++;
    }
    if (taken == 0 && !accept_paused(w))
        atomic_fetch_add_explicit(&w->slot->accept_eagain, 1, memory_order_relaxed);
    if (taken == 0 || !balanced(w, l) || accept_paused(w) || !l->registered)
        return;
    /* Ahead of the least loaded sibling now: move to the back of the listener's wait queue
     * so that the kernel's exclusive wake-up goes to another worker next time (a worker
     * still behind or level stays in front, and saves the two calls). Connections queued
     * meanwhile are reported at once (EPOLL_CTL_ADD polls the socket). */
    pid_t pid = 0;
    uint64_t least_v = least_share(w, &pid, NULL);
    if (least_v != UINT64_MAX && atomic_load(&w->slot->accept_share) <= least_v)
        return;
    listener_del(w, l);
    listener_add(w, l);
}

/* Act on the listener events that were flagged (l->again); accept_lock held. run: as for
 * accept_one. */
static void take_flagged(struct fdt_worker *w, struct fdt_conn **run)
{
    int64_t paused = w->accept_paused_until_ms, held = w->balance_until_ms;
    w->now_ms = fdt__now_ms();
    for (int i = 0; i < w->n_listeners; i++) {
        struct fdt_worker_listener *l = &w->listeners[i];
        if (atomic_exchange(&l->again, false))
            on_listener(w, l, run);
    }
    /* A pause begun here ends on the loop thread's timer: make it look at the time. */
    if ((w->accept_paused_until_ms && w->accept_paused_until_ms != paused) ||
        (w->balance_until_ms && w->balance_until_ms != held))
        wake_loop(w);
}

static bool any_flagged(struct fdt_worker *w)
{
    for (int i = 0; i < w->n_listeners; i++)
        if (atomic_load(&w->listeners[i].again))
            return true;
    return false;
}

/* Let go of accept_lock. A listener event whose thread found the lock held was flagged
 * (l->again) and left to the holder: the listener is edge-triggered, nobody would be told
 * of those connections again. So the holder looks at the flags after it lets go (the
 * fences order a flag set before a failed trylock against this look), and if one is set
 * and the lock is free, acts on it. run: as for accept_one. */
static void accept_unlock(struct fdt_worker *w, struct fdt_conn **run)
{
    for (;;) {
        pthread_mutex_unlock(&w->accept_lock);
        atomic_thread_fence(memory_order_seq_cst);
        if (!any_flagged(w) || pthread_mutex_trylock(&w->accept_lock) != 0)
            return;
        take_flagged(w, run);
    }
}

struct fdt_conn *fdt__worker_accept(struct fdt_worker *w, struct fdt_worker_listener *l)
{
    struct fdt_conn *c = NULL;
    /* Threads woken for the listener while another accepts do not wait for the lock (a
     * futex sleep and wake-up each): the holder takes over their event. */
    atomic_store(&l->again, true);
    atomic_thread_fence(memory_order_seq_cst);
    if (pthread_mutex_trylock(&w->accept_lock) != 0)
        return NULL;
    take_flagged(w, &c);
    accept_unlock(w, &c);
    return c;
}

/* SIGWINCH from a sibling over its limit: something is queued on a shared listener that
 * the kernel told only that sibling about. From = the sender's pid. Loop thread. */
void fdt__worker_hand_on(struct fdt_worker *w, pid_t from)
{
    pthread_mutex_lock(&w->accept_lock);
    w->now_ms = fdt__now_ms();
    if (atomic_load(&w->loop.draining) || accept_paused(w)) {
        accept_unlock(w, NULL);
        return;
    }
    pid_t least = 0;
    if (balance_paused(w)) {
        if (balance_ok(w, &least))
            balance_resume(w); /* the socket is polled: what is queued is reported */
        else if (least > 0 && least != from)
            kill(least, SIGWINCH); /* GCOVR_EXCL_LINE: not the least loaded after all: pass it
                                      on (three workers whose shares cross while a hand-on is
                                      under way: a race no test can arrange) */
        accept_unlock(w, NULL);
        return;
    }
    /* The listener is registered here, but the kernel's exclusive wake-up went to the
     * sibling: nothing tells this worker's threads, so the loop accepts. */
    for (int i = 0; i < w->n_listeners; i++) {
        struct fdt_worker_listener *l = &w->listeners[i];
        if (balanced(w, l))
            on_listener(w, l, NULL);
    }
    accept_unlock(w, NULL);
}

/* Whether a thread of process pid is running or waiting for a CPU (state R in
 * /proc/PID/task/TID/stat): a worker accepts on its event loop (a hand-on) and on its
 * application threads (a listener's event). */
static bool process_runnable(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return false; /* GCOVR_EXCL_LINE: the sibling exited since it was read live: a race */
    bool runnable = false;
    struct dirent *e;
    while (!runnable && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int sfd = fd >= 0 ? openat(fd, "stat", O_RDONLY | O_CLOEXEC) : -1;
        if (fd >= 0)
            close(fd);
        /* GCOVR_EXCL_START: the thread exited between readdir and open, or read: a race */
        if (sfd < 0)
            continue;
        ssize_t n = read(sfd, buf, sizeof(buf) - 1);
        close(sfd);
        if (n <= 0)
            continue;
        /* GCOVR_EXCL_STOP */
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');
        runnable = p && p[1] == ' ' && p[2] == 'R';
    }
    closedir(d);
    return runnable;
}

/* Whether a live sibling is running or waiting for a CPU. */
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
            if (!accept_one(w, l, NULL))
                break; /* GCOVR_EXCL_LINE: a sibling emptied the queue since it was counted:
                          a race no test can arrange */
        if (take == 0 && listener_queued(l) != 0)
            left = true;
    }
    if (left && !balance_ok(w, &least))
        balance_pause(w, least, true);
}

int fdt__worker_accept_start(struct fdt_worker *w, char *reason, size_t len)
{
    int rc = 0;
    pthread_mutex_lock(&w->accept_lock);
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    /* The share first: the threads may accept as soon as a listener is in epoll. */
    balance_init(w);
    for (int i = 0; i < w->n_listeners && rc == 0; i++) {
        struct fdt_worker_listener *l = &w->listeners[i];
        listener_options(w, l);
        struct epoll_event ev = {.events = LISTENER_EVENTS, .data.ptr = l};
        if (epoll_ctl(w->loop.epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
            snprintf(reason, len, "epoll_ctl listener: %s", fdt_strerror(-errno));
            rc = -1;
        } else {
            l->registered = true;
        }
    }
    accept_unlock(w, NULL);
    return rc;
}

int fdt__worker_accept_stop(struct fdt_worker *w)
{
    int queued = 0;
    pthread_mutex_lock(&w->accept_lock);
    w->balance_until_ms = 0;
    for (int i = 0; i < w->n_listeners; i++) {
        struct fdt_worker_listener *l = &w->listeners[i];
        listener_del(w, l);
        /* Connections that completed their handshake are ours to serve, not to reset. */
        while (accept_one(w, l, NULL))
            queued++;
        fdt__close(l->fd);
        l->fd = -1;
    }
    accept_unlock(w, NULL);
    return queued;
}

int fdt__worker_accept_timeout(struct fdt_worker *w, int64_t now, int timeout)
{
    pthread_mutex_lock(&w->accept_lock);
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
    accept_unlock(w, NULL);
    return timeout;
}

void fdt__worker_accept_tick(struct fdt_worker *w, int64_t now, bool scan)
{
    pthread_mutex_lock(&w->accept_lock);
    w->now_ms = now;
    if (accept_paused(w) && now >= w->accept_paused_until_ms)
        resume_accept(w);
    if (balance_paused(w) && now >= w->balance_until_ms && !atomic_load(&w->loop.draining))
        balance_tick(w);
    if (scan)
        refresh_siblings(w);
    accept_unlock(w, NULL);
}

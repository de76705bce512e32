#include "fdt_config.h"

#define FDT_LOG_MODULE "worker"
#include "http/http.h"
#include "log/log.h"
#include "util/util.h"
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <fdt/log.h>
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
    if (w->limbo && quiescent_ok(w)) {
        struct fdt_conn *list = w->limbo;
        w->limbo = NULL;
        while (list) {
            struct fdt_conn *next = list->free_next;
            fdt__worker_registry_remove(w, list);
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

/* Messages from the master: connections handed over by retiring workers of older
 * generations (FDT_MSG_CONN, fdt_proto.handoff), served here as if accepted. A connection
 * that no listener of the same name and a protocol that takes hand-offs can serve, or
 * that comes beyond max_connections, is closed: what a retiring worker would have done. */
static void on_channel(struct fdt_worker *w)
{
    struct fdt_msg msg;
    int fd, rc;
    while ((rc = fdt__channel_recv_fd(w->channel_fd, &msg, &fd)) == 1) {
        if (fd < 0) {
            /* Its descriptor did not come (MSG_CTRUNC: this process had none free): the
             * client's connection is closed with the last copy, which is lost here. */
            if (msg.type == FDT_MSG_CONN)
                fdt_log(FDT_LOG_WARN,
                        "a connection handed over for listener %s was lost: its descriptor "
                        "did not arrive (out of descriptors?)",
                        msg.text);
            continue;
        }
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
        fdt__worker_adopt(w, l, fd);
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
    w->drain_deadline_ms = fdt__now_ms() + (int64_t)(w->cfg->graceful_timeout * 1000.0);
    int queued = fdt__worker_accept_stop(w);
    /* Tell the master this worker accepts no more: a reload is done when every old
     * worker has said so. */
    fdt__channel_send(w->channel_fd, FDT_MSG_DRAINING, 0, NULL);
    fdt_log(FDT_LOG_INFO, "draining (%s): %lld connections open, %d taken from the accept queue",
            why, (long long)atomic_load(&w->slot->conns_open), queued);
    wake_to_drain(w);
}

/* Run every connection once with FDT_EV_DRAIN: each closes between requests as the drain
 * rule of fdt__conn_run says. */
static void wake_to_drain(struct fdt_worker *w)
{
    pthread_mutex_lock(&w->registry_lock);
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
    pthread_mutex_unlock(&w->registry_lock);
}

static void scan_idle(struct fdt_worker *w, int64_t now)
{
    int64_t idle_ms = (int64_t)(w->cfg->idle_timeout * 1000.0);
    pthread_mutex_lock(&w->registry_lock);
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
    pthread_mutex_unlock(&w->registry_lock);
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
    /* GCOVR_EXCL_START: unreachable: Linux's statm, once open, always reads as numbers */
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    unsigned long long size, resident;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return -1;
    /* GCOVR_EXCL_STOP */
    long page = sysconf(_SC_PAGESIZE);
    return (int64_t)resident * (page > 0 ? page : 4096);
}

#define MEMORY_CHECK_MS 1000
/* A worker still serving this long after it asked for a successor asks again: the successor
 * failed to start (the master ignores a second ask while one is starting). */
#define RECYCLE_ASK_AGAIN_MS 10000

/* [server] max_requests and max_worker_memory: ask the master for a successor. The worker
 * serves on until the master tells it to drain (SIGHUP), once the successor is ready, so
 * that no request waits for a worker that is starting. */
static void check_recycle(struct fdt_worker *w, int64_t now)
{
    if ((w->recycle_asked_ms && now - w->recycle_asked_ms < RECYCLE_ASK_AGAIN_MS) ||
        atomic_load(&w->loop.draining))
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
    fdt_log(FDT_LOG_INFO, "asking %sfor a successor: %s", w->recycle_asked_ms ? "again " : "", why);
    w->recycle_asked_ms = now;
    fdt__channel_send(w->channel_fd, FDT_MSG_RECYCLE, cause, why);
}

static void stop_threads(struct fdt_worker *w, int64_t deadline_ms)
{
    fdt__worker_stop_threads(w);
    for (int i = 0; i < w->n_threads_started; i++) {
        int64_t now = fdt__now_ms();
        int64_t left = deadline_ms > now ? deadline_ms - now : 0;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        /* GCOVR_EXCL_START: unreachable: the loop ends before the deadline only once no
         * connection is open, and an application thread runs nothing but connections (a
         * connection stays open until its handler returns); at the deadline with one open
         * the worker exits from the loop. Kept: a thread must never hold the exit. */
        if (pthread_timedjoin_np(w->threads[i], NULL, &ts) != 0) {
            fdt_log(FDT_LOG_WARN, "application thread %d did not stop: exiting anyway", i);
            fdt__exit(0);
        }
        /* GCOVR_EXCL_STOP */
    }
}

static void on_one_signal(struct fdt_worker *w, const struct signalfd_siginfo *sp)
{
    const struct signalfd_siginfo si = *sp;
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
                si.ssi_signo == SIGINT ? "SIGINT" : "SIGQUIT",
                (long long)atomic_load(&w->slot->conns_open));
        fdt__exit(0);
    case SIGWINCH:
        fdt__worker_hand_on(w, (pid_t)si.ssi_pid);
        break;
    case SIGUSR1:
        fdt__log_reopen();
        if (fdt__http_access_log_reopen(w->http) < 0)
            fdt_log(FDT_LOG_WARN, "cannot reopen the access log: keeping the old file");
        break;
    } /* the signalfd's set (setup_loop) has just these signals */
}

/* The signals pending, read at once (a read that returns less than its buffer has taken
 * them all: no second read to find the signalfd empty). */
static bool on_signal(struct fdt_worker *w)
{
    struct signalfd_siginfo si[8];
    ssize_t n;
    do {
        n = read(w->sigfd, si, sizeof(si));
        for (ssize_t k = 0; k < n / (ssize_t)sizeof(si[0]); k++)
            on_one_signal(w, &si[k]);
    } while (n == (ssize_t)sizeof(si));
    return true;
}

void fdt__worker_loop(struct fdt_worker *w)
{
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int64_t now = fdt__now_ms();
        int timeout = SCAN_INTERVAL_MS;
        timeout = fdt__worker_accept_timeout(w, now, timeout);
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
                        w->cfg->graceful_timeout, (long long)atomic_load(&w->slot->conns_open));
                fdt__exit(0);
            }
            if (left < timeout)
                timeout = (int)left;
        }
        timeout = fdt__gate_watch(w, now, timeout);
        int n = epoll_wait(w->epfd, events, MAX_EVENTS, timeout);
        fdt__gate_awake(&w->gate);
        /* GCOVR_EXCL_START: unreachable: with its own epoll descriptor, a stack buffer and a
         * positive count, epoll_wait fails only with EINTR */
        if (n < 0 && errno != EINTR) {
            fdt_log(FDT_LOG_ERROR, "epoll_wait: %s", fdt_strerror(-errno));
            fdt__exit(4);
        }
        /* GCOVR_EXCL_STOP */
        now = fdt__now_ms();
        atomic_store_explicit(&w->slot->heartbeat_ms, now, memory_order_relaxed);
        for (int i = 0; i < n; i++) {
            int kind = *(int *)events[i].data.ptr;
            switch (kind) {
            case FDT_POLL_SIGNAL:
                on_signal(w);
                break;
            case FDT_POLL_WAKE: {
                uint64_t v;
                (void)!read(w->wakefd, &v, sizeof(v)); /* reset: it is level-triggered */
                break;
            }
            case FDT_POLL_MASTER:
                on_channel(w);
                break;
            default: /* GCOVR_EXCL_LINE: unreachable: setup_loop registers only these kinds */
                FDT_ASSERT(!"unknown poll kind"); /* GCOVR_EXCL_LINE: unreachable: as above */
            }
        }
        free_pending(w);
        bool scan = now - w->last_scan_ms >= SCAN_INTERVAL_MS;
        fdt__worker_accept_tick(w, now, scan);
        if (scan) {
            w->last_scan_ms = now;
            scan_idle(w, now);
            check_recycle(w, now);
        }
    }
    stop_threads(w, w->drain_deadline_ms);
    if (w->reserve_fd >= 0)
        close(w->reserve_fd);
    w->reserve_fd = -1;
}

#include "fdt_config.h"

#define FDT_LOG_MODULE "worker"
#include "http/http.h"
#include "jsonrpc/jsonrpc.h"
#include "log/log.h"
#include "txn/txn.h"
#include "util/util.h"
#include "worker/worker.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fdt/log.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <unistd.h>

void fdt__worker_loop(struct fdt_worker *w);

/* The one worker of this process, for the public accessors (fdt_app_config,
 * fdt_worker_info): they take no context, so this pointer is the one process-wide
 * variable they leave no choice about. Set once in fdt__worker_main before any application
 * code runs; the worker itself lives on fdt__worker_main's stack, which never returns. */
static struct fdt_worker *g_worker;
static _Thread_local int t_thread_index = -1;

const char *fdt_app_config(const char *key)
{
    return g_worker ? fdt__cfg_app_get(g_worker->cfg, key) : NULL;
}

const struct fdt_worker_info *fdt_worker_info(void)
{
    return g_worker ? &g_worker->info : NULL;
}

int fdt_thread_index(void)
{
    return t_thread_index;
}

/* Close every inherited descriptor the worker does not need (other workers' channels,
 * the control socket, the master's signalfd and epoll). */
static void close_other_fds(const struct fdt_worker_args *a)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        /* Out of descriptors at birth (the master at its limit): serve anyway, but say so,
         * since the master's descriptors (control socket, other workers' channels) stay
         * open here until this worker exits. */
        fdt_log(FDT_LOG_WARN, "cannot list /proc/self/fd: %s: inherited descriptors stay open",
                fdt_strerror(-errno));
        return;
    }
    int dfd = dirfd(d);
    int to_close[1024];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < (int)FDT_ARRAY_LEN(to_close)) {
        long fd;
        if (fdt__parse_long(e->d_name, 0, 1 << 30, &fd) < 0)
            continue;
        if (fd <= 2 || fd == dfd || fd == a->channel_fd || fd == fdt__log_fd())
            continue;
        bool keep = false;
        for (int i = 0; i < a->n_listeners; i++) {
            if (a->listeners[i].fd == fd)
                keep = true;
        }
        if (!keep)
            to_close[n++] = (int)fd;
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        close(to_close[i]);
}

struct thread_start {
    struct fdt_worker *w;
    unsigned index;
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    int *started;
    int *failed;
    char *reason;
};

/* What an application thread's block hook needs (fdt__conn_thread_on_block). */
struct gate_seat {
    struct fdt_poll_gate *gate;
    unsigned index;
};

static void give_up_turn(void *arg)
{
    struct gate_seat *s = arg;
    fdt__gate_block(s->gate, s->index);
}

static void *app_thread(void *arg)
{
    struct thread_start *ts = arg;
    struct fdt_worker *w = ts->w;
    unsigned index = ts->index;
    t_thread_index = (int)index;
    char name[16];
    snprintf(name, sizeof(name), "fdt-app-%u", index);
    pthread_setname_np(pthread_self(), name);
    struct fdt_error err = {0};
    int rc = 0;
    if (w->app->thread_init)
        rc = w->app->thread_init(index, &err);
    pthread_mutex_lock(ts->lock);
    if (rc != 0 && !*ts->failed) {
        *ts->failed = 1;
        snprintf(ts->reason, 400, "thread_init(%u) failed: %s", index,
                 err.msg[0] ? err.msg : fdt_strerror(rc));
    }
    (*ts->started)++;
    pthread_cond_broadcast(ts->cond);
    pthread_mutex_unlock(ts->lock);
    free(ts);
    if (rc != 0)
        return NULL;

    _Atomic int64_t *busy = &w->slot->busy_since[index];
    fdt__conn_thread_busy(busy);
    struct gate_seat seat = {&w->gate, index};
    fdt__conn_thread_on_block(give_up_turn, &seat);
    _Atomic uint64_t *quiescent = &w->quiescent[index];
    struct fdt_run_queue *q = &w->rq;
    for (;;) {
        /* From here until the event is claimed this thread may hold an event naming a
         * connection another thread is closing: such connections are not freed until the
         * window ends (see fdt__worker_quiescent_ok). */
        fdt__gate_enter(w, index);
        atomic_fetch_or(quiescent, 1);
        struct epoll_event ev;
        /* One event at a time: a thread that blocks in a handler holds nobody else's. The
         * timeout bounds how long an idle thread keeps the window open. */
        int n = epoll_wait(w->loop.epfd, &ev, 1, QUIESCENT_INTERVAL_MS);
        if (n <= 0) {
            atomic_fetch_add(quiescent, 1); /* window closed: counter + 1, holding bit 0 */
            continue;
        }
        struct fdt_conn *c = NULL;
        if (ev.data.ptr == &q->kind) {
            pthread_mutex_lock(&q->lock);
            c = q->head;
            if (c) {
                q->head = c->job_next;
                if (!q->head)
                    q->tail = NULL;
                c->job_next = NULL;
            }
            bool stop = !q->head && q->stop;
            if (!q->head && !q->stop) {
                uint64_t v;
                (void)!read(q->efd, &v, sizeof(v)); /* empty: no longer readable */
            }
            pthread_mutex_unlock(&q->lock);
            atomic_fetch_add(quiescent, 1);
            if (!c && stop)
                break;
            if (!c)
                continue; /* GCOVR_EXCL_LINE: another thread took the job first: a race */
        } else if (*(int *)ev.data.ptr == FDT_POLL_LISTENER) {
            /* A connection arrived: accept it and run it here (worker_accept.c). The
             * listener is not freed, so the window closes at once. */
            atomic_fetch_add(quiescent, 1);
            c = fdt__worker_accept(w, ev.data.ptr);
            if (!c)
                continue;
        } else {
            struct fdt_conn *e = ev.data.ptr;
            bool mine = fdt__conn_claim(e, ev.events);
            atomic_fetch_add(quiescent, 1);
            if (!mine)
                continue;
            c = e;
        }
        atomic_store(busy, fdt__now_ms());
        fdt__gate_running(w);
        fdt__conn_run(c);
        atomic_store_explicit(busy, 0, memory_order_relaxed);
    }
    if (w->app->thread_fini)
        w->app->thread_fini(index);
    return NULL;
}

void fdt__worker_enqueue(struct fdt_worker *w, struct fdt_conn *c)
{
    struct fdt_run_queue *q = &w->rq;
    pthread_mutex_lock(&q->lock);
    c->job_next = NULL;
    bool was_empty = !q->head;
    if (q->tail)
        q->tail->job_next = c;
    else
        q->head = c;
    q->tail = c;
    if (was_empty) {
        uint64_t one = 1;
        (void)!write(q->efd, &one, sizeof(one));
    }
    pthread_mutex_unlock(&q->lock);
}

void fdt__worker_stop_threads(struct fdt_worker *w)
{
    struct fdt_run_queue *q = &w->rq;
    pthread_mutex_lock(&q->lock);
    q->stop = true;
    uint64_t one = 1;
    (void)!write(q->efd, &one, sizeof(one)); /* stays readable: every thread sees it */
    pthread_mutex_unlock(&q->lock);
    fdt__gate_stop(&w->gate);
}

/* A connection whose last reference is gone goes to the loop thread for freeing. */
static void defer_free(struct fdt_worker *w, struct fdt_conn *c)
{
    pthread_mutex_lock(&w->free_lock);
    c->free_next = w->free_list;
    w->free_list = c;
    int n = ++w->n_free;
    pthread_mutex_unlock(&w->free_lock);
    /* The loop frees on its next tick (at most 250 ms away) or when it wakes for an accept;
     * waking it for every closed connection would cost a context switch each. It is woken
     * when the list grows long, and while draining (it exits when the last one closes). */
    if (n >= FREE_WAKE_BATCH || atomic_load(&w->loop.draining)) {
        uint64_t one = 1;
        (void)!write(w->wakefd, &one, sizeof(one));
    }
}

static struct fdt_worker *worker_of(struct fdt_conn_loop *loop)
{
    return (struct fdt_worker *)((char *)loop - offsetof(struct fdt_worker, loop));
}

static void loop_enqueue(struct fdt_conn_loop *loop, struct fdt_conn *c)
{
    fdt__worker_enqueue(worker_of(loop), c);
}

static void loop_release(struct fdt_conn_loop *loop, struct fdt_conn *c)
{
    defer_free(worker_of(loop), c);
}

/* A retiring worker's idle connection goes to the master, which passes it to a worker of
 * the serving generation. Never waits: a full channel just means the connection closes. */
static int loop_handoff(struct fdt_conn_loop *loop, struct fdt_conn *c)
{
    return fdt__channel_send_fd(worker_of(loop)->channel_fd, FDT_MSG_CONN, 0, c->listener_name,
                                c->fd, MSG_DONTWAIT);
}

void fdt__worker_loop_init(struct fdt_worker *w)
{
    const struct fdt_cfg *cfg = w->cfg;
    w->txn_env = (struct fdt_txn_env){
        .node = cfg->node, .cfg = cfg, .open = &w->slot->txn_open, .counters = &w->slot->counters};
    w->loop.epfd = -1;
    w->loop.max_input = cfg->max_input;
    w->loop.max_output = cfg->max_output;
    w->loop.send_timeout_ms = (int64_t)(cfg->idle_timeout * 1000.0);
    w->loop.transaction_timeout_ms = (int64_t)(cfg->transaction_timeout * 1000.0);
    w->loop.requests = &w->slot->requests;
    w->loop.conns_open = &w->slot->conns_open;
    w->loop.counters = &w->slot->counters;
    w->loop.txn_env = &w->txn_env;
    atomic_init(&w->loop.draining, false);
    atomic_init(&w->loop.retiring, false);
    w->loop.enqueue = loop_enqueue;
    w->loop.release = loop_release;
    w->loop.handoff = loop_handoff;
}

__attribute__((noreturn)) static void fail_start(struct fdt_worker *w, const char *reason)
{
    fdt_log(FDT_LOG_ERROR, "worker %u start failed: %s", w->info.index, reason);
    fdt__channel_send(w->channel_fd, FDT_MSG_FAILED, 0, reason);
    fdt__exit(3);
}

static int setup_loop(struct fdt_worker *w, const struct fdt_worker_args *a, char *reason,
                      size_t rsize)
{
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->loop.epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->rq.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->rq.kind = FDT_POLL_QUEUE;
    w->quiescent = calloc((size_t)w->info.threads, sizeof(*w->quiescent));
    w->limbo_snap = calloc((size_t)w->info.threads, sizeof(*w->limbo_snap));
    if (!w->quiescent || !w->limbo_snap ||
        fdt__gate_init(&w->gate, w->cfg->pollers, w->info.threads) < 0) {
        snprintf(reason, rsize, "out of memory");
        return -1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGWINCH); /* a sibling's accept hand-on (blocked in fdt__worker_main) */
    w->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (w->epfd < 0 || w->loop.epfd < 0 || w->wakefd < 0 || w->rq.efd < 0 || w->sigfd < 0) {
        snprintf(reason, rsize, "epoll/eventfd/signalfd: %s", fdt_strerror(-errno));
        return -1;
    }
    w->sig_kind = FDT_POLL_SIGNAL;
    w->wake_kind = FDT_POLL_WAKE;
    w->chan_kind = FDT_POLL_MASTER;
    /* Each one is needed: without the signalfd the worker would not hear SIGTERM (a stop
     * would wait for the master's SIGKILL), without the channel not the hand-offs, without
     * the wake-up not the frees and pauses, without the run queue not its connections. */
    struct {
        int epfd, fd;
        void *ptr;
        const char *what;
    } regs[] = {{w->epfd, w->sigfd, &w->sig_kind, "signalfd"},
                {w->epfd, w->channel_fd, &w->chan_kind, "master channel"},
                {w->epfd, w->wakefd, &w->wake_kind, "wake-up eventfd"},
                {w->loop.epfd, w->rq.efd, &w->rq.kind, "run queue"}};
    for (size_t i = 0; i < FDT_ARRAY_LEN(regs); i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = regs[i].ptr};
        if (epoll_ctl(regs[i].epfd, EPOLL_CTL_ADD, regs[i].fd, &ev) < 0) {
            snprintf(reason, rsize, "epoll_ctl %s: %s", regs[i].what, fdt_strerror(-errno));
            return -1;
        }
    }

    for (int i = 0; i < a->n_listeners; i++) {
        struct fdt_worker_listener *l = &w->listeners[w->n_listeners];
        const struct fdt_listener *src = &a->listeners[i];
        l->kind = FDT_POLL_LISTENER;
        l->fd = src->fd;
        l->name = src->cfg.name;
        l->reuseport = src->cfg.reuseport;
        l->defer_accept = src->cfg.defer_accept;
        l->tls = src->tls;
        l->tcp = strncmp(src->cfg.address, "unix:", 5) != 0;
        switch (src->cfg.protocol) {
        case FDT_PROTO_RAW:
            if (!w->app->on_data) {
                snprintf(reason, rsize,
                         "[listen.%s] protocol raw but the application has no on_data",
                         src->cfg.name);
                return -1;
            }
            fdt__proto_raw_init(&l->proto, w->app);
            break;
        case FDT_PROTO_HTTP:
            if (!w->http)
                w->http = fdt__http_server_new(w->app, w->cfg, reason, rsize);
            if (!w->http)
                return -1;
            fdt__proto_http_init(&l->proto, w->http);
            break;
        case FDT_PROTO_METRICS:
            if (!w->metrics)
                w->metrics = fdt__http_metrics_server_new(w->cfg, w->sb, reason, rsize);
            if (!w->metrics)
                return -1;
            fdt__proto_http_init(&l->proto, w->metrics);
            break;
        case FDT_PROTO_JSONRPC:
            l->rpc = fdt__jsonrpc_server_new(w->app, w->cfg, &src->cfg, reason, rsize);
            if (!l->rpc)
                return -1;
            fdt__proto_jsonrpc_init(&l->proto, l->rpc);
            break;
        } /* every value of the enum (-Wswitch): the configuration makes no other */
        w->n_listeners++;
    }
    return 0;
}

static void start_threads(struct fdt_worker *w)
{
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    int started = 0;
    int failed = 0;
    char reason[400] = "";
    unsigned n = w->info.threads;
    w->threads = calloc(n, sizeof(pthread_t));
    if (!w->threads)
        fail_start(w, "out of memory");
    for (unsigned i = 0; i < n; i++) {
        struct thread_start *ts = malloc(sizeof(*ts));
        if (!ts)
            fail_start(w, "out of memory");
        *ts = (struct thread_start){w, i, &lock, &cond, &started, &failed, reason};
        int rc = pthread_create(&w->threads[i], NULL, app_thread, ts);
        if (rc != 0) {
            free(ts);
            char msg[128];
            snprintf(msg, sizeof(msg), "pthread_create: %s", fdt_strerror(-rc));
            fail_start(w, msg);
        }
        w->n_threads_started++;
    }
    pthread_mutex_lock(&lock);
    while (started < (int)n)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    if (failed) {
        /* Let the threads that did start finish (and run thread_fini) before reporting. */
        fdt__worker_stop_threads(w);
        for (int i = 0; i < w->n_threads_started; i++)
            pthread_join(w->threads[i], NULL);
        fail_start(w, reason);
    }
}

void fdt__worker_main(const struct fdt_worker_args *a)
{
    struct fdt_worker worker = {0};
    struct fdt_worker *w = &worker;
    /* A sibling's accept hand-on (worker_loop.c) is read from the signalfd: blocked before
     * the application can start a thread, so that none of them takes (and ignores) it. */
    sigset_t winch;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &winch, NULL);
    w->cfg = a->cfg;
    w->slot = &a->sb->slots[a->slot];
    w->sb = a->sb;
    w->channel_fd = a->channel_fd;
    w->master_pid = a->master_pid;
    w->info.pid = getpid();
    w->info.generation = a->generation;
    w->info.index = a->index;
    w->info.threads = (unsigned)a->cfg->threads;
    pthread_mutex_init(&w->rq.lock, NULL);
    pthread_mutex_init(&w->free_lock, NULL);
    pthread_mutex_init(&w->accept_lock, NULL);
    pthread_mutex_init(&w->registry_lock, NULL);
    atomic_store(&w->slot->pid, (int32_t)getpid());
    fdt__worker_loop_init(w);
    g_worker = w;
    if (a->cfg->max_requests > 0) {
        uint64_t jitter = 0;
        if (a->cfg->max_requests_jitter > 0) {
            uint32_t r = 0;
            if (getrandom(&r, sizeof(r), 0) == (ssize_t)sizeof(r))
                jitter = r % ((uint64_t)a->cfg->max_requests_jitter + 1);
        }
        w->recycle_after = (uint64_t)a->cfg->max_requests + jitter;
    }

    fdt__log_set_role("worker", a->generation);
    fdt__log_set_json(a->cfg->log_format == FDT_LOG_FORMAT_JSON);
    /* If the master dies, drain and exit rather than serve unsupervised. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != a->master_pid)
        fdt__exit(0); /* GCOVR_EXCL_LINE: unreachable: a race no test can arrange (the master dying
                         between fork and prctl) */
    prctl(PR_SET_NAME, "fdt-worker");
    close_other_fds(a);

    struct fdt_error err = {0};
    if (fdt__app_load(a->cfg, &w->dl, &w->app, &err) < 0)
        fail_start(w, err.msg);
    fdt__txn_set_counters(&w->slot->counters);
    if (fdt__txn_init(a->cfg, &err) < 0)
        fail_start(w, err.msg);
    if (w->app->process_init) {
        int rc = w->app->process_init(&w->info, &err);
        if (rc != 0) {
            char msg[400];
            snprintf(msg, sizeof(msg), "process_init failed: %s",
                     err.msg[0] ? err.msg : fdt_strerror(rc));
            fail_start(w, msg);
        }
    }
    char reason[400];
    if (setup_loop(w, a, reason, sizeof(reason)) < 0)
        fail_start(w, reason);
    start_threads(w);
    int rc = fdt__txn_recovery_start(a->cfg, &w->slot->txn_in_doubt,
                                     &w->slot->txn_in_doubt_oldest_ms, &w->recovery);
    if (rc < 0) {
        snprintf(reason, sizeof(reason), "cannot start the recovery thread: %s", fdt_strerror(rc));
        fail_start(w, reason);
    }

    /* Listeners go into epoll last: nothing is accepted before every thread is ready. */
    if (fdt__worker_accept_start(w, reason, sizeof(reason)) < 0)
        fail_start(w, reason);
    atomic_store(&w->slot->state, FDT_WORKER_READY);
    atomic_store(&w->slot->heartbeat_ms, fdt__now_ms());
    fdt__channel_send(w->channel_fd, FDT_MSG_READY, 0, NULL);
    const char *version = fdt__cfg_app_get(w->cfg, "version");
    fdt_log(FDT_LOG_INFO, "worker %u ready: app %s %s, %u threads", a->index,
            w->app->name ? w->app->name : "?",
            version ? version : (w->app->version ? w->app->version : "-"), w->info.threads);

    fdt__worker_loop(w);
    /* fdt__worker_loop returns only after a clean drain. */
    fdt__txn_recovery_stop(w->recovery);
    if (w->app->process_fini)
        w->app->process_fini();
    fdt__txn_shutdown();
    fdt__http_server_free(w->http);
    fdt__http_server_free(w->metrics);
    for (int i = 0; i < w->n_listeners; i++)
        fdt__jsonrpc_server_free(w->listeners[i].rpc);
    unsigned long long handed = atomic_load(&w->loop.handed_off);
    /* Handed to the master, which passes each to a successor or says why it could not. */
    if (handed)
        fdt_log(FDT_LOG_INFO,
                "worker %u exiting: %llu idle connection%s handed over to a successor", a->index,
                handed, handed == 1 ? "" : "s");
    else
        fdt_log(FDT_LOG_INFO, "worker %u exiting", a->index);
    fdt__exit(0);
}

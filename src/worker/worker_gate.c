/* The pollers' gate: how many application threads of a worker wait on the connections'
 * epoll set at once ([server] pollers; 0: all of them).
 *
 * Every thread waiting on the set costs a sleep and a wake-up per event it takes: with
 * eight threads and fast requests, most events wake a sleeping thread (a context switch
 * each), where one thread that goes from one ready connection to the next sleeps only
 * when nothing is ready. So a thread polls only while it holds one of `pollers` tokens;
 * the others park on a condition variable. A holder keeps its token while it runs the
 * connection it took and polls again after it, so under load one thread serves request
 * after request. It gives the token up, waking a parked thread to poll in its place, when
 * it is about to block: on its client (fdt__conn_client_wait_begin) or on a database
 * (fdt_txn_holder.before_wait), through the hook conn.c calls (fdt__conn_thread_on_block);
 * and the loop thread takes it from a holder that has run one connection for GATE_WATCH_MS
 * (an application that computes or sleeps), so no ready connection waits longer than
 * that for a thread while one is free. A thread that finds no token free on its way back
 * to poll parks.
 *
 * The loop thread watches while a holder runs and a thread is parked, and for
 * GATE_LINGER_MS after the last request it saw served (so that a stream of short
 * connections does not wake it for each one): otherwise it sleeps its usual timeout, and
 * marks so (loop_asleep); a thread that starts running, or parks, while the loop sleeps so
 * wakes it (wakefd).
 *
 * Giving the turn up costs a wake-up (and the thread that gave it parks later): cheap for a
 * request that blocks now and then, dear for one that waits on a database several times
 * (every statement). So the gate opens wide while most requests block: every
 * GATE_MIX_MS the loop compares the requests served with the blocks counted; at one block
 * per two requests or more, every thread polls (as with pollers = 0), and below one per
 * four the gate narrows again (a thread without a token parks on its way back to poll). */
#include "fdt_config.h"

#define FDT_LOG_MODULE "worker"
#include "log/log.h"
#include "worker/worker.h"

#include <fdt/log.h>
#include <stdlib.h>
#include <unistd.h>

int fdt__gate_init(struct fdt_poll_gate *g, int pollers, unsigned threads)
{
    g->tokens = pollers > 0 && (unsigned)pollers < threads ? pollers : 0;
    g->threads = threads;
    g->active = 0;
    g->stop = false;
    atomic_init(&g->parked, 0);
    atomic_init(&g->loop_asleep, false);
    atomic_init(&g->wide, false);
    atomic_init(&g->blocks, 0);
    g->mix_ms = 0;
    g->mix_requests = g->mix_blocks = 0;
    g->watch_requests = 0;
    g->watch_until_ms = 0;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->holds = NULL;
    if (!g->tokens)
        return 0; /* no gate: every thread polls */
    g->holds = calloc(threads, sizeof(*g->holds));
    if (!g->holds)
        return -1;
    for (unsigned i = 0; i < threads; i++)
        atomic_init(&g->holds[i], false);
    return 0;
}

static void wake_loop(struct fdt_worker *w)
{
    struct fdt_poll_gate *g = &w->gate;
    if (atomic_load(&g->loop_asleep) && atomic_exchange(&g->loop_asleep, false)) {
        uint64_t one = 1;
        (void)!write(w->wakefd, &one, sizeof(one));
    }
}

void fdt__gate_enter(struct fdt_worker *w, unsigned index)
{
    struct fdt_poll_gate *g = &w->gate;
    if (!g->tokens || atomic_load_explicit(&g->holds[index], memory_order_relaxed) ||
        atomic_load_explicit(&g->wide, memory_order_relaxed))
        return;
    pthread_mutex_lock(&g->lock);
    if (g->active >= g->tokens && !g->stop && !atomic_load(&g->wide)) {
        atomic_fetch_add(&g->parked, 1);
        /* A holder may be running already, unwatched: the loop must watch it now. */
        wake_loop(w);
        while (g->active >= g->tokens && !g->stop && !atomic_load(&g->wide))
            pthread_cond_wait(&g->cond, &g->lock);
        atomic_fetch_sub(&g->parked, 1);
    }
    if (!g->stop && g->active < g->tokens) {
        g->active++;
        atomic_store_explicit(&g->holds[index], true, memory_order_relaxed);
    }
    pthread_mutex_unlock(&g->lock);
}

void fdt__gate_release(struct fdt_poll_gate *g, unsigned index)
{
    if (!g->tokens || !atomic_exchange(&g->holds[index], false))
        return;
    pthread_mutex_lock(&g->lock);
    g->active--;
    if (atomic_load(&g->parked) > 0)
        pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

void fdt__gate_block(struct fdt_poll_gate *g, unsigned index)
{
    if (!g->tokens)
        return;
    atomic_fetch_add_explicit(&g->blocks, 1, memory_order_relaxed);
    fdt__gate_release(g, index);
}

/* Open the gate wide, or narrow it, after the mix of the last period (see above). */
static void look_at_mix(struct fdt_worker *w, int64_t now)
{
    struct fdt_poll_gate *g = &w->gate;
    if (now - g->mix_ms < GATE_MIX_MS)
        return;
    uint64_t requests = atomic_load_explicit(w->loop.requests, memory_order_relaxed);
    uint64_t blocks = atomic_load_explicit(&g->blocks, memory_order_relaxed);
    uint64_t dr = requests - g->mix_requests, db = blocks - g->mix_blocks;
    g->mix_ms = now;
    g->mix_requests = requests;
    g->mix_blocks = blocks;
    if (dr < GATE_MIX_MIN)
        return; /* too few to tell: as it was */
    bool wide = atomic_load(&g->wide);
    if (!wide && db * 2 >= dr) {
        fdt_log(FDT_LOG_DEBUG,
                "pollers: every thread polls now (%llu blocks in %llu requests: a database)",
                (unsigned long long)db, (unsigned long long)dr);
        pthread_mutex_lock(&g->lock);
        atomic_store(&g->wide, true);
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->lock);
    } else if (wide && db * 4 < dr) {
        fdt_log(FDT_LOG_DEBUG, "pollers: %d again (%llu blocks in %llu requests)", g->tokens,
                (unsigned long long)db, (unsigned long long)dr);
        atomic_store(&g->wide, false);
    }
}

void fdt__gate_running(struct fdt_worker *w)
{
    /* busy_since was just stored (sequentially consistent): the loop, going to sleep, sees
     * it, or this thread sees the loop asleep. */
    if (w->gate.tokens && atomic_load(&w->gate.parked) > 0)
        wake_loop(w);
}

void fdt__gate_stop(struct fdt_poll_gate *g)
{
    if (!g->tokens)
        return;
    pthread_mutex_lock(&g->lock);
    g->stop = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

int fdt__gate_watch(struct fdt_worker *w, int64_t now, int timeout)
{
    struct fdt_poll_gate *g = &w->gate;
    if (!g->tokens)
        return timeout;
    look_at_mix(w, now);
    if (atomic_load(&g->wide))
        return timeout;
    bool running = false;
    for (unsigned i = 0; i < g->threads; i++) {
        if (!atomic_load_explicit(&g->holds[i], memory_order_relaxed))
            continue;
        int64_t since = atomic_load(&w->slot->busy_since[i]);
        if (since <= 0)
            continue;
        if (now - since >= GATE_WATCH_MS && atomic_load(&g->parked) > 0)
            fdt__gate_release(g, i); /* a parked thread polls in its place */
        else
            running = true;
    }
    uint64_t requests = atomic_load_explicit(w->loop.requests, memory_order_relaxed);
    if (requests != g->watch_requests) {
        g->watch_requests = requests;
        g->watch_until_ms = now + GATE_LINGER_MS;
    }
    if ((running || now < g->watch_until_ms) && atomic_load(&g->parked) > 0)
        return timeout < GATE_WATCH_MS ? timeout : GATE_WATCH_MS;
    atomic_store(&g->loop_asleep, true);
    /* A thread that began to run (or parked) meanwhile saw the flag, or is seen now. */
    for (unsigned i = 0; i < g->threads; i++) {
        if (atomic_load_explicit(&g->holds[i], memory_order_relaxed) &&
            atomic_load(&w->slot->busy_since[i]) > 0 && atomic_load(&g->parked) > 0) {
            atomic_store(&g->loop_asleep, false);
            return timeout < GATE_WATCH_MS ? timeout : GATE_WATCH_MS;
        }
    }
    return timeout;
}

void fdt__gate_awake(struct fdt_poll_gate *g)
{
    if (g->tokens)
        atomic_store(&g->loop_asleep, false);
}

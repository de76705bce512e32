#include "fdt_config.h"

#include "proc/proc.h"
#include "util/util.h"

#include <sched.h>
#include <string.h>
#include <sys/mman.h>

struct fdt_scoreboard *fdt__scoreboard_new(void)
{
    void *p = mmap(NULL, sizeof(struct fdt_scoreboard), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memset(p, 0, sizeof(struct fdt_scoreboard));
    return p;
}

void fdt__scoreboard_free(struct fdt_scoreboard *sb)
{
    if (sb)
        munmap(sb, sizeof(*sb));
}

int fdt__scoreboard_claim(struct fdt_scoreboard *sb, unsigned generation, unsigned index,
                          unsigned threads)
{
    for (int i = 0; i < FDT_MAX_SLOTS; i++) {
        struct fdt_slot *s = &sb->slots[i];
        if (atomic_load(&s->state) != FDT_WORKER_FREE)
            continue;
        memset((void *)s, 0, sizeof(*s));
        s->generation = generation;
        s->index = index;
        s->threads = threads;
        atomic_store(&s->started_ms, fdt__now_ms());
        atomic_store(&s->heartbeat_ms, fdt__now_ms());
        atomic_store(&s->state, FDT_WORKER_STARTING);
        atomic_store(&sb->slot_generation[i], generation);
        return i;
    }
    return -1;
}

void fdt__scoreboard_release(struct fdt_scoreboard *sb, int slot)
{
    if (slot >= 0 && slot < FDT_MAX_SLOTS) {
        atomic_store(&sb->slots[slot].pid, 0);
        atomic_store(&sb->slot_generation[slot], 0);
        atomic_store(&sb->slots[slot].state, FDT_WORKER_FREE);
    }
}

/* Every counter of struct fdt_counters, as a flat array (it holds nothing else). */
#define N_COUNTERS (sizeof(struct fdt_counters) / sizeof(_Atomic uint64_t))
_Static_assert(sizeof(struct fdt_counters) % sizeof(_Atomic uint64_t) == 0,
               "struct fdt_counters holds only 64-bit counters");

static _Atomic uint64_t *counter_array(struct fdt_counters *c)
{
    return (_Atomic uint64_t *)(void *)c;
}

void fdt__scoreboard_fold(struct fdt_scoreboard *sb, int slot)
{
    if (slot < 0 || slot >= FDT_MAX_SLOTS)
        return;
    struct fdt_slot *s = &sb->slots[slot];
    _Atomic uint64_t *from = counter_array(&s->counters);
    _Atomic uint64_t *to = counter_array(&sb->retired);
    atomic_fetch_add(&sb->master.fold_seq, 1); /* odd: a reader would count twice */
    for (size_t i = 0; i < N_COUNTERS; i++) {
        uint64_t v = atomic_exchange_explicit(&from[i], 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&to[i], v, memory_order_relaxed);
    }
    uint64_t r = atomic_exchange(&s->requests, 0);
    atomic_fetch_add(&sb->retired_requests, r);
    atomic_fetch_add(&sb->master.fold_seq, 1);
}

void fdt__scoreboard_sum(const struct fdt_scoreboard *sb, struct fdt_counters *out,
                         uint64_t *requests)
{
    struct fdt_scoreboard *m = (struct fdt_scoreboard *)sb; /* atomics are read only */
    _Atomic uint64_t *to = counter_array(out);
    for (;;) {
        uint64_t seq = atomic_load(&m->master.fold_seq);
        if (seq & 1) {
            sched_yield();
            continue;
        }
        for (size_t i = 0; i < N_COUNTERS; i++)
            atomic_store_explicit(
                &to[i], atomic_load_explicit(&counter_array(&m->retired)[i], memory_order_relaxed),
                memory_order_relaxed);
        uint64_t req = atomic_load(&m->retired_requests);
        for (int s = 0; s < FDT_MAX_SLOTS; s++) {
            /* A free slot's counters were folded (zeroed) before it was freed. */
            if (atomic_load_explicit(&m->slots[s].state, memory_order_acquire) == FDT_WORKER_FREE)
                continue;
            _Atomic uint64_t *from = counter_array(&m->slots[s].counters);
            for (size_t i = 0; i < N_COUNTERS; i++)
                atomic_fetch_add_explicit(&to[i],
                                          atomic_load_explicit(&from[i], memory_order_relaxed),
                                          memory_order_relaxed);
            req += atomic_load_explicit(&m->slots[s].requests, memory_order_relaxed);
        }
        if (atomic_load(&m->master.fold_seq) == seq) {
            *requests = req;
            return;
        }
    }
}

void fdt__counters_request(struct fdt_counters *c, enum fdt_metric_proto p,
                           enum fdt_metric_class cls, int64_t duration_us)
{
    static const int64_t bounds[FDT_METRIC_BUCKETS] = FDT_METRIC_BUCKET_BOUNDS_US;
    if (!c || (unsigned)p >= FDT_MPROTO_N || (unsigned)cls >= FDT_MCLASS_N)
        return;
    if (duration_us < 0)
        duration_us = 0;
    int b = 0;
    while (b < FDT_METRIC_BUCKETS && duration_us > bounds[b])
        b++;
    atomic_fetch_add_explicit(&c->requests[p][cls], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->duration_bucket[p][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->duration_us[p], (uint64_t)duration_us, memory_order_relaxed);
}

enum fdt_metric_class fdt__metric_http_class(int status)
{
    if (status < 100 || status > 599)
        return FDT_MCLASS_OTHER;
    return (enum fdt_metric_class)(status / 100 - 1);
}

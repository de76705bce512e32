#include "fdt_config.h"

#include "proc/proc.h"
#include "util/util.h"

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
        return i;
    }
    return -1;
}

void fdt__scoreboard_release(struct fdt_scoreboard *sb, int slot)
{
    if (slot >= 0 && slot < FDT_MAX_SLOTS) {
        atomic_store(&sb->slots[slot].pid, 0);
        atomic_store(&sb->slots[slot].state, FDT_WORKER_FREE);
    }
}

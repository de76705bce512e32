#include "alloc_fault.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);

static atomic_uint armed_at; /* 0: disarmed; else the ordinal that fails */
static atomic_uint seen;     /* allocations counted since arming */
static atomic_uint failed;   /* allocations failed since arming */
static atomic_bool sticky_mode;

void alloc_fault_arm(unsigned n, bool sticky)
{
    atomic_store(&seen, 0);
    atomic_store(&failed, 0);
    atomic_store(&sticky_mode, sticky);
    atomic_store(&armed_at, n);
}

unsigned alloc_fault_disarm(void)
{
    atomic_store(&armed_at, 0);
    return atomic_load(&failed);
}

bool alloc_fault_hit(void)
{
    return atomic_load(&failed) > 0;
}

static bool should_fail(void)
{
    unsigned at = atomic_load(&armed_at);
    if (at == 0)
        return false;
    unsigned ordinal = atomic_fetch_add(&seen, 1) + 1;
    if (ordinal == at || (ordinal > at && atomic_load(&sticky_mode))) {
        atomic_fetch_add(&failed, 1);
        errno = ENOMEM;
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t size)
{
    return should_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    return should_fail() ? NULL : __real_realloc(p, size);
}

char *__wrap_strdup(const char *s)
{
    return should_fail() ? NULL : __real_strdup(s);
}

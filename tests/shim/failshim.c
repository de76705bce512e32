/* failshim.so: failure injection for the end-to-end tests (LD_PRELOAD).
 *
 * The unit tests fail allocations with the linker's --wrap (tests/unit/alloc_fault.c); the
 * master and the workers are only ever run as the real binary, so for them this library
 * is preloaded into `fdtserver` and fails, on demand, the n-th allocation made by our own
 * code or the n-th call of a named C library function, in the processes a test names:
 *
 *     FDT_FAIL=alloc@3                  the 3rd allocation of fdtserver's own code fails
 *     FDT_FAIL=alloc@3+                 ... and every one after it
 *     FDT_FAIL=epoll_create1@1:EMFILE   the first epoll_create1 fails with EMFILE
 *     FDT_FAIL=alloc@5/child            counted in each forked child (a worker), not
 *                                       in the process that loaded the library (/master,
 *                                       the default), or in both (/any)
 *     FDT_FAIL=eventfd@1/child,pthread_create@2:EAGAIN/child   several at once
 *
 * An allocation (malloc, calloc, realloc, strdup, strndup, posix_memalign, aligned_alloc)
 * counts only when it is called from an object whose path contains one of the
 * colon-separated names of FDT_FAIL_OBJS (default: libfdt.so, /fdtserver, fdt_rm_,
 * fdt_python.so, /apps/): the C library's and OpenSSL's own allocations never count, so
 * the n-th allocation is the same one from run to run. A function counts every call.
 * In a forked child the counts start again from zero (pthread_atfork). A process started
 * with exec (a new master) loads the library again and counts as a "master".
 *
 * FDT_FAIL_BACKTRACE=1 adds the callers of each failure to that log.
 *
 * FDT_FAIL_LOG=PATH appends a line per failure made ("pid 123 alloc #3 (libfdt.so.0) at
 * +0x1a2b3", the offset of the call in that object, for `addr2line -e OBJ -f -i 0x1a2b3`), so
 * that a test knows its failure happened (and when n is past the last allocation, that
 * nothing failed: a walk over n ends there).
 *
 * FDT_FAIL_COUNTDOWN=PATH (a file of 8 bytes, a native int64) arms the master's allocations
 * from outside while it runs: the file is mapped shared, and each allocation counted in the
 * master (not in its children) takes one from a positive count; the one that takes it to 0
 * fails (and is logged as "countdown"). A test writes k there, makes the master do
 * something, and reads it back: 0 when the k-th allocation from then on failed, else how
 * many more it would have taken. So one running master walks the allocations of a request
 * or a reload, k = 1, 2, ..., until the count stays above 0. The variable is removed from
 * the environment, so that a new master (binary upgrade) does not share the count.
 * FDT_FAIL_COUNTDOWN_OF=NAME[:ERRNO] counts the calls of one of the functions below instead
 * (socketpair:EMFILE; the error is EMFILE when not named). FDT_FAIL_COUNTDOWN_IN=child
 * counts in the forked children (the workers: with one worker, k walks the allocations of
 * one request) instead of the master.
 *
 * FDT_FAIL_EXEC=SPEC is the FDT_FAIL of a program this one executes (a new master at a binary
 * upgrade), this one's own being FDT_FAIL (or none): the library moves it there at load.
 *
 * Nothing fails once the process calls exit (gcov writes its counters then).
 *
 * Test code only: never built into the server, and not usable under ASan or TSan, whose
 * runtimes must come first (the tests skip there). */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* glibc's own entry points: no dlsym (which may allocate) on the allocation path. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define MAX_RULES 8
#define MAX_OBJS  8

enum who { WHO_MASTER, WHO_CHILD, WHO_ANY };

struct rule {
    char what[32];
    unsigned long n;
    bool sticky;
    int err;
    enum who who;
    atomic_ulong calls;
};

static struct rule rules[MAX_RULES];
static int n_rules;
static char objs[MAX_OBJS][64];
static int n_objs;
static char log_path[512];
static bool with_backtrace; /* FDT_FAIL_BACKTRACE=1: each failure's callers in the log */
static bool is_child;
static bool armed;                      /* set once the constructor has read the environment */
static _Atomic int64_t *countdown;      /* FDT_FAIL_COUNTDOWN's mapping, or NULL */
static char countdown_of[32] = "alloc"; /* what it counts */
static int countdown_err = ENOMEM;
static bool countdown_child; /* FDT_FAIL_COUNTDOWN_IN=child */
static __thread __attribute__((tls_model("initial-exec"))) int in_shim;

static int errno_named(const char *s, int dflt)
{
    static const struct {
        const char *name;
        int value;
    } names[] = {{"ENOMEM", ENOMEM},        {"EMFILE", EMFILE}, {"ENFILE", ENFILE},
                 {"EAGAIN", EAGAIN},        {"EINVAL", EINVAL}, {"EINTR", EINTR},
                 {"ENOBUFS", ENOBUFS},      {"EPERM", EPERM},   {"EACCES", EACCES},
                 {"ENOSPC", ENOSPC},        {"EIO", EIO},       {"ECONNABORTED", ECONNABORTED},
                 {"EPROTO", EPROTO},        {"ENOENT", ENOENT}, {"EPIPE", EPIPE},
                 {"ECONNRESET", ECONNRESET}};
    if (!s || !*s)
        return dflt;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i].name) == 0)
            return names[i].value;
    char *end;
    long v = strtol(s, &end, 10);
    return *end == '\0' && v > 0 ? (int)v : dflt;
}

static void on_fork_child(void)
{
    is_child = true;
    for (int i = 0; i < n_rules; i++)
        atomic_store(&rules[i].calls, 0);
}

/* FDT_FAIL: what@n[+][:ERRNO][/who], comma-separated. */
static void parse_rules(const char *spec)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok && n_rules < MAX_RULES;
         tok = strtok_r(NULL, ",", &save)) {
        struct rule *r = &rules[n_rules];
        char *slash = strchr(tok, '/');
        r->who = WHO_MASTER;
        if (slash) {
            *slash = '\0';
            r->who = strcmp(slash + 1, "child") == 0 ? WHO_CHILD
                     : strcmp(slash + 1, "any") == 0 ? WHO_ANY
                                                     : WHO_MASTER;
        }
        char *colon = strchr(tok, ':');
        if (colon)
            *colon = '\0';
        char *at = strchr(tok, '@');
        if (!at)
            continue;
        *at = '\0';
        snprintf(r->what, sizeof(r->what), "%s", tok);
        char *end;
        r->n = strtoul(at + 1, &end, 10);
        r->sticky = *end == '+';
        r->err =
            errno_named(colon ? colon + 1 : NULL, strcmp(r->what, "alloc") == 0 ? ENOMEM : EMFILE);
        if (r->n > 0)
            n_rules++;
    }
}

static void map_countdown(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    void *p = mmap(NULL, sizeof(int64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED)
        countdown = p;
}

/* Nothing fails once the process exits: gcov writes the coverage counters then, from a
 * handler of its own registered with atexit by the objects' constructors (and allocates in
 * our objects in a coverage build: it would crash on a failed allocation). Handlers run last
 * registered first, so this one is registered at the first allocation of our code, after
 * the constructors. */
static void stop_at_exit(void)
{
    armed = false;
}

__attribute__((constructor)) static void failshim_init(void)
{
    const char *cd = getenv("FDT_FAIL_COUNTDOWN");
    if (cd && *cd) {
        map_countdown(cd);
        unsetenv("FDT_FAIL_COUNTDOWN");
        const char *of = getenv("FDT_FAIL_COUNTDOWN_OF");
        if (of && *of) {
            snprintf(countdown_of, sizeof(countdown_of), "%s", of);
            char *colon = strchr(countdown_of, ':');
            if (colon)
                *colon = '\0';
            countdown_err = errno_named(colon ? colon + 1 : NULL, EMFILE);
        }
        const char *in = getenv("FDT_FAIL_COUNTDOWN_IN");
        countdown_child = in && strcmp(in, "child") == 0;
    }
    const char *spec = getenv("FDT_FAIL");
    char own[1024] = "";
    if (spec)
        snprintf(own, sizeof(own), "%s", spec);
    spec = own;
    const char *next = getenv("FDT_FAIL_EXEC");
    if (next) {
        setenv("FDT_FAIL", next, 1);
        unsetenv("FDT_FAIL_EXEC");
    }
    if (!*spec && !countdown)
        return;
    parse_rules(spec);
    const char *o = getenv("FDT_FAIL_OBJS");
    if (!o || !*o)
        o = "libfdt.so:/fdtserver:fdt_rm_:fdt_python.so:/apps/";
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", o);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ":", &save); tok && n_objs < MAX_OBJS;
         tok = strtok_r(NULL, ":", &save))
        snprintf(objs[n_objs++], sizeof(objs[0]), "%s", tok);
    with_backtrace = getenv("FDT_FAIL_BACKTRACE") != NULL;
    const char *lp = getenv("FDT_FAIL_LOG");
    if (lp)
        snprintf(log_path, sizeof(log_path), "%s", lp);
    pthread_atfork(NULL, NULL, on_fork_child);
    armed = true;
}

static void note(const char *what, unsigned long n, const char *obj, unsigned long off)
{
    if (!log_path[0])
        return;
    char line[256];
    int len = off ? snprintf(line, sizeof(line), "pid %d %s #%lu (%s) at +0x%lx\n", (int)getpid(),
                             what, n, obj ? obj : "-", off)
                  : snprintf(line, sizeof(line), "pid %d %s #%lu (%s)\n", (int)getpid(), what, n,
                             obj ? obj : "-");
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
        (void)!write(fd, line, (size_t)len);
        if (with_backtrace) {
            /* The callers, as OBJ+0xOFF, for `addr2line -e OBJ -f -i OFF`. */
            void *frames[16];
            int n_frames = backtrace(frames, 16);
            for (int i = 2; i < n_frames; i++) {
                Dl_info info;
                if (!dladdr(frames[i], &info) || !info.dli_fname)
                    continue;
                const char *base = strrchr(info.dli_fname, '/');
                len =
                    snprintf(line, sizeof(line), "    %s+0x%lx\n", base ? base + 1 : info.dli_fname,
                             (unsigned long)((char *)frames[i] - (char *)info.dli_fbase) - 1);
                (void)!write(fd, line, (size_t)len);
            }
        }
        close(fd);
    }
}

/* Whether this call of `what` fails: counts it when a rule applies here. */
/* Whether this call of `what` takes the countdown to 0. */
static bool countdown_fails(const char *what, const char *obj, unsigned long off)
{
    if (!countdown || is_child != countdown_child || strcmp(what, countdown_of) != 0)
        return false;
    int64_t v = atomic_load(countdown);
    while (v > 0) {
        if (atomic_compare_exchange_weak(countdown, &v, v - 1)) {
            if (v != 1)
                return false;
            char name[48];
            snprintf(name, sizeof(name), "%s countdown", what);
            note(name, 0, obj, off);
            return true;
        }
    }
    return false;
}

static bool should_fail(const char *what, int *err, const char *obj, unsigned long off)
{
    for (int i = 0; i < n_rules; i++) {
        struct rule *r = &rules[i];
        if (strcmp(r->what, what) != 0)
            continue;
        if ((r->who == WHO_MASTER && is_child) || (r->who == WHO_CHILD && !is_child))
            continue;
        unsigned long k = atomic_fetch_add(&r->calls, 1) + 1;
        if (k == r->n || (r->sticky && k > r->n)) {
            *err = r->err;
            note(what, k, obj, off);
            return true;
        }
    }
    return false;
}

/* Whether the allocation called from `caller` is our code's, and fails. */
static bool alloc_fails(void *caller)
{
    if (!armed || in_shim)
        return false;
    in_shim++;
    static atomic_bool exit_hooked;
    if (!atomic_exchange(&exit_hooked, true))
        atexit(stop_at_exit);
    bool fail = false;
    Dl_info info;
    if (dladdr(caller, &info) && info.dli_fname) {
        for (int i = 0; i < n_objs && !fail; i++) {
            if (strstr(info.dli_fname, objs[i])) {
                int err;
                const char *base = strrchr(info.dli_fname, '/');
                /* The caller's offset in its object: `addr2line -e OBJ OFF` names the line. */
                const char *obj = base ? base + 1 : info.dli_fname;
                unsigned long off = (unsigned long)((char *)caller - (char *)info.dli_fbase) - 1;
                fail = countdown_fails("alloc", obj, off) || should_fail("alloc", &err, obj, off);
                break;
            }
        }
    }
    in_shim--;
    return fail;
}

void *malloc(size_t size)
{
    if (alloc_fails(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    if (alloc_fails(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    if (alloc_fails(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_realloc(p, size);
}

char *strdup(const char *s)
{
    if (alloc_fails(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    size_t len = strlen(s) + 1;
    char *d = __libc_malloc(len);
    if (d)
        memcpy(d, s, len);
    return d;
}

char *strndup(const char *s, size_t max)
{
    if (alloc_fails(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    size_t len = strnlen(s, max);
    char *d = __libc_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

int posix_memalign(void **out, size_t align, size_t size)
{
    if (alloc_fails(__builtin_return_address(0)))
        return ENOMEM;
    void *p = __libc_memalign(align, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t size)
{
    if (alloc_fails(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_memalign(align, size);
}

/* The C library functions a rule may name: each looks up the next definition once. */
#define NEXT(name)                                                                                 \
    static __typeof__(name) *next_##name;                                                          \
    if (!next_##name) {                                                                            \
        void *p_ = dlsym(RTLD_NEXT, #name);                                                        \
        memcpy(&next_##name, &p_, sizeof(p_)); /* object to function pointer, as POSIX allows */   \
    }

#define FAIL_OR(name, ret)                                                                         \
    do {                                                                                           \
        int err_;                                                                                  \
        if (armed && countdown_fails(#name, NULL, 0)) {                                            \
            errno = countdown_err;                                                                 \
            return ret;                                                                            \
        }                                                                                          \
        if (armed && should_fail(#name, &err_, NULL, 0)) {                                         \
            errno = err_;                                                                          \
            return ret;                                                                            \
        }                                                                                          \
    } while (0)

int epoll_create1(int flags)
{
    NEXT(epoll_create1);
    FAIL_OR(epoll_create1, -1);
    return next_epoll_create1(flags);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    NEXT(epoll_ctl);
    FAIL_OR(epoll_ctl, -1);
    return next_epoll_ctl(epfd, op, fd, ev);
}

int eventfd(unsigned int initval, int flags)
{
    NEXT(eventfd);
    FAIL_OR(eventfd, -1);
    return next_eventfd(initval, flags);
}

int signalfd(int fd, const sigset_t *mask, int flags)
{
    NEXT(signalfd);
    FAIL_OR(signalfd, -1);
    return next_signalfd(fd, mask, flags);
}

int timerfd_create(int clockid, int flags)
{
    NEXT(timerfd_create);
    FAIL_OR(timerfd_create, -1);
    return next_timerfd_create(clockid, flags);
}

int socketpair(int domain, int type, int protocol, int sv[2])
{
    NEXT(socketpair);
    FAIL_OR(socketpair, -1);
    return next_socketpair(domain, type, protocol, sv);
}

int pipe2(int fds[2], int flags)
{
    NEXT(pipe2);
    FAIL_OR(pipe2, -1);
    return next_pipe2(fds, flags);
}

int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *len, int flags)
{
    NEXT(accept4);
    FAIL_OR(accept4, -1);
    return next_accept4(fd, addr, len, flags);
}

DIR *opendir(const char *name)
{
    NEXT(opendir);
    FAIL_OR(opendir, NULL);
    return next_opendir(name);
}

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    NEXT(pthread_create);
    int err;
    if (armed && countdown_fails("pthread_create", NULL, 0))
        return countdown_err;
    if (armed && should_fail("pthread_create", &err, NULL, 0))
        return err;
    return next_pthread_create(t, attr, fn, arg);
}

/* A failing recvmsg does what Linux does when the receiver has no descriptor free for what
 * was passed (SCM_RIGHTS): the message arrives, the descriptors do not, MSG_CTRUNC says so.
 * (FDT_FAIL=recvmsg@1/child: the first message a worker reads loses its descriptor.) */
ssize_t recvmsg(int fd, struct msghdr *mh, int flags)
{
    NEXT(recvmsg);
    int err;
    bool fail = armed && should_fail("recvmsg", &err, NULL, 0);
    ssize_t n = next_recvmsg(fd, mh, flags);
    if (!fail || n < 0)
        return n;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int got;
            memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            close(got);
        }
    }
    mh->msg_controllen = 0;
    mh->msg_flags |= MSG_CTRUNC;
    return n;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    NEXT(send);
    FAIL_OR(send, -1);
    return next_send(fd, buf, len, flags);
}

/* sendmsg (added by the master tests): the channel messages between processes (a
 * worker's, the old master's answer to a new one at a binary upgrade). */
ssize_t sendmsg(int fd, const struct msghdr *mh, int flags)
{
    NEXT(sendmsg);
    FAIL_OR(sendmsg, -1);
    return next_sendmsg(fd, mh, flags);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    NEXT(recv);
    FAIL_OR(recv, -1);
    return next_recv(fd, buf, len, flags);
}

int dup(int fd)
{
    NEXT(dup);
    FAIL_OR(dup, -1);
    return next_dup(fd);
}

#include <sys/random.h>

/* getrandom (added by the data helper, session 7): fails as the others do
 * (FDT_FAIL=getrandom@1+:EAGAIN/child). With FDT_FAIL_GETRANDOM_ZERO set (and FDT_FAIL
 * armed), every call instead succeeds with zero bytes, so the "random" values of the
 * server repeat: a test can make a claim code collide with the live one every time. */
ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
    NEXT(getrandom);
    FAIL_OR(getrandom, -1);
    if (armed && getenv("FDT_FAIL_GETRANDOM_ZERO")) {
        memset(buf, 0, len);
        return (ssize_t)len;
    }
    return next_getrandom(buf, len, flags);
}

/* FDT_FAIL_FORK=K (added by the worker tests): a process that forks several children (the
 * master its workers) fails only in the K-th child it forks (1 = the first), and not in
 * the others: a failure that fires once, in one worker, and not in its replacement. Each
 * process counts its own forks, so a worker (which never forks) is unaffected. */
static atomic_int forks_made;
static int fork_wanted;

static void fork_prepare(void)
{
    atomic_fetch_add(&forks_made, 1);
}

static void fork_child_select(void)
{
    if (atomic_load(&forks_made) != fork_wanted)
        armed = false;
    atomic_store(&forks_made, 0);
}

__attribute__((constructor)) static void failshim_fork_init(void)
{
    const char *k = getenv("FDT_FAIL_FORK");
    const char *spec = getenv("FDT_FAIL"); /* not `armed`: constructors run in either order */
    if (!spec || !*spec || !k || !*k)
        return;
    fork_wanted = atoi(k);
    if (fork_wanted > 0)
        pthread_atfork(fork_prepare, NULL, fork_child_select);
}

/* In a coverage build libgcov is linked into libfdt.so, so its allocations while it writes
 * the counters (fdt__exit calls __gcov_dump) looked like ours: a walk over alloc@n failed
 * one of them and the dump crashed (SIGSEGV) after the worker's clean exit. The process is
 * leaving: nothing fails from here on. (Added by the worker tests.) */
void __gcov_dump(void);
void __gcov_dump(void)
{
    static void (*next_dump)(void);
    armed = false;
    if (!next_dump) {
        void *p = dlsym(RTLD_NEXT, "__gcov_dump");
        memcpy(&next_dump, &p, sizeof(p));
    }
    if (next_dump)
        next_dump();
}

/* The C library's own calls (malloc's) do not come through here: only those of the objects. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    NEXT(mmap);
    FAIL_OR(mmap, MAP_FAILED);
    return next_mmap(addr, len, prot, flags, fd, off);
}

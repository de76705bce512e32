#include "fdt_config.h"

#define FDT_LOG_MODULE "master"
#include "log/log.h"
#include "master/master.h"
#include "tls/tls.h"
#include "util/util.h"
#include "worker/worker.h"

#include <errno.h>
#include <fdt/log.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#define BACKOFF_MAX_MS  10000
#define STABLE_AFTER_MS 5000
#define KILL_GRACE_MS   5000
/* A worker that could not be started (no descriptor, no process left) is tried again. */
#define SPAWN_RETRY_MS 1000

struct fdt_generation *fdt__gen_new(struct fdt_master *m, struct fdt_cfg *cfg)
{
    struct fdt_generation *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->id = ++m->next_gen_id;
    g->cfg = cfg;
    g->target = cfg->workers;
    g->state = FDT_GEN_STARTING;
    g->next = m->gens;
    m->gens = g;
    return g;
}

int fdt__gen_tls_load(struct fdt_generation *g, struct fdt_error *err)
{
    unsigned char key[FDT_TLS_TICKET_KEY_LEN];
    bool have_key = false;
    int rc = 0;
    for (int i = 0; i < g->n_listeners && rc == 0; i++) {
        struct fdt_listener *l = &g->listeners[i];
        if (!l->cfg.tls || l->tls)
            continue;
        if (!have_key) {
            rc = fdt__tls_ticket_key_new(key);
            if (rc < 0) {
                /* GCOVR_EXCL_START: not reached: OpenSSL's random generator failing */
                fdt_error_set(err, rc, "cannot make a TLS session ticket key");
                break;
                /* GCOVR_EXCL_STOP */
            }
            have_key = true;
        }
        rc = fdt__tls_ctx_new(&l->cfg, key, &l->tls, err);
    }
    explicit_bzero(key, sizeof(key));
    return rc;
}

void fdt__gen_tls_free(struct fdt_generation *g)
{
    for (int i = 0; i < g->n_listeners; i++) {
        fdt__tls_ctx_free(g->listeners[i].tls);
        g->listeners[i].tls = NULL;
    }
}

static void gen_free(struct fdt_master *m, struct fdt_generation *g)
{
    struct fdt_generation **pp = &m->gens;
    while (*pp && *pp != g)
        pp = &(*pp)->next;
    if (*pp)
        *pp = g->next;
    if (m->active == g)
        m->active = NULL;
    if (m->starting == g)
        m->starting = NULL;
    if (m->confirming == g)
        m->confirming = NULL; /* GCOVR_EXCL_LINE: unreachable: the reap of g's last worker
                               * ended the confirmation (it waits only for workers still there) */
    if (g->cfg != m->cfg) {
        fdt__cfg_deinit(g->cfg);
        free(g->cfg);
    }
    fdt__gen_tls_free(g);
    free(g);
}

void fdt__master_free_dead(struct fdt_master *m)
{
    while (m->dead) {
        struct fdt_mworker *w = m->dead;
        m->dead = w->next;
        free(w);
    }
}

void fdt__master_free(struct fdt_master *m)
{
    fdt__master_free_dead(m);
    while (m->workers) {
        /* GCOVR_EXCL_START: unreachable: the loop ends only once the last worker was reaped,
         * and a start that failed made none */
        struct fdt_mworker *w = m->workers;
        m->workers = w->next;
        fdt__close(w->chan);
        free(w);
        /* GCOVR_EXCL_STOP */
    }
    struct fdt_cfg *cfg = m->cfg;
    while (m->gens)
        gen_free(m, m->gens);
    if (cfg) {
        fdt__cfg_deinit(cfg);
        free(cfg);
    }
    m->cfg = NULL;
    fdt__scoreboard_free(m->sb);
    m->sb = NULL;
}

int fdt__master_set_workers(struct fdt_master *m, int target, const char *why)
{
    struct fdt_generation *g = m->active;
    if (!g || m->stopping)
        return FDT_EAGAIN;
    if (target < 1 || target > FDT_MAX_WORKERS)
        return FDT_EINVAL;
    if (target != g->target)
        fdt_log(FDT_LOG_INFO, "%s: %d workers", why, target);
    while (g->target < target) {
        int idx = g->target++;
        g->fails[idx] = 0;
        g->respawn_at[idx] = 0;
        if (fdt__master_spawn(m, g, (unsigned)idx) < 0)
            g->respawn_at[idx] = fdt__now_ms() + SPAWN_RETRY_MS;
    }
    while (g->target > target) {
        int idx = --g->target;
        g->respawn_at[idx] = 0;
        for (struct fdt_mworker *w = m->workers; w; w = w->next) {
            if (w->gen == g && (int)w->index == idx)
                fdt__master_drain_worker(m, w, SIGHUP); /* the others keep serving */
        }
    }
    return 0;
}

/* Drop root in the child when [server] user/group are set. */
static int drop_privileges(const struct fdt_cfg *cfg, char *reason, size_t rsize)
{
    if (!cfg->user[0] && !cfg->group[0])
        return 0;
    gid_t gid = getgid();
    uid_t uid = getuid();
    if (cfg->group[0]) {
        struct group *gr = getgrnam(cfg->group);
        if (!gr) {
            snprintf(reason, rsize, "unknown group %s", cfg->group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    if (cfg->user[0]) {
        struct passwd *pw = getpwnam(cfg->user);
        if (!pw) {
            snprintf(reason, rsize, "unknown user %s", cfg->user);
            return -1;
        }
        uid = pw->pw_uid;
        if (!cfg->group[0])
            gid = pw->pw_gid;
    }
    if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
        snprintf(reason, rsize, "cannot switch to user %s: %s", cfg->user, fdt_strerror(-errno));
        return -1;
    }
    return 0;
}

/* Close the worker's own reuseport sockets in `mine` (the anchors belong to the generation)
 * and free the array. NULL is a no-op. */
static void worker_listeners_free(const struct fdt_generation *g, struct fdt_listener *mine)
{
    if (!mine)
        return;
    for (int i = 0; i < g->n_listeners; i++) {
        if (mine[i].cfg.reuseport)
            fdt__close(mine[i].fd);
    }
    free(mine);
}

/* The worker's view of the listeners: reuseport listeners get a socket of its own, the others
 * are shared. On success *out is owned by the caller (worker_listeners_free). */
static int worker_listeners_open(const struct fdt_generation *g, struct fdt_listener **out)
{
    struct fdt_listener *mine = calloc((size_t)g->n_listeners + 1, sizeof(*mine));
    if (!mine)
        return FDT_ENOMEM;
    for (int i = 0; i < g->n_listeners; i++) {
        mine[i] = g->listeners[i];
        if (mine[i].cfg.reuseport)
            mine[i].fd = -1; /* not the anchor: only a socket opened here is closed later */
    }
    for (int i = 0; i < g->n_listeners; i++) {
        if (!mine[i].cfg.reuseport)
            continue;
        struct fdt_error err = {0};
        if (fdt__listener_open_member(&g->listeners[i], &mine[i].fd, &err) < 0) {
            fdt_log(FDT_LOG_ERROR, "%s", err.msg);
            worker_listeners_free(g, mine);
            return err.code ? err.code : FDT_EINVAL;
        }
    }
    *out = mine;
    return 0;
}

/* In the forked child: become worker `index` of g. Never returns. */
__attribute__((noreturn)) static void worker_child(struct fdt_master *m, struct fdt_generation *g,
                                                   unsigned index, int slot, const int fds[2],
                                                   struct fdt_listener *mine, pid_t master_pid)
{
    fdt__close(fds[0]);
    char reason[256];
    if (drop_privileges(g->cfg, reason, sizeof(reason)) < 0) {
        fdt__channel_send(fds[1], FDT_MSG_FAILED, 0, reason);
        fdt__exit(3);
    }
    struct fdt_worker_args a = {
        .cfg = g->cfg,
        .sb = m->sb,
        .slot = slot,
        .channel_fd = fds[1],
        .generation = g->id,
        .index = index,
        .listeners = mine,
        .n_listeners = g->n_listeners,
        .master_pid = master_pid,
    };
    fdt__worker_main(&a);
}

/* In the master: start supervising the forked worker mw (takes its channel end chan). */
static void worker_track(struct fdt_master *m, struct fdt_generation *g, struct fdt_mworker *mw,
                         pid_t pid, int slot, int chan, unsigned index)
{
    fdt__fd_nonblock(chan, true);
    mw->kind = FDT_POLL_CHANNEL;
    mw->pid = pid;
    mw->slot = slot;
    mw->chan = chan;
    mw->index = index;
    mw->state = FDT_MW_STARTING;
    mw->spawned_ms = fdt__now_ms();
    mw->ready_deadline_ms = mw->spawned_ms + (int64_t)(g->cfg->ready_timeout * 1000.0);
    mw->gen = g;
    mw->next = m->workers;
    m->workers = mw;
    atomic_store(&m->sb->slots[slot].pid, pid);
    g->n_workers++;
    g->index_alive[index] = true;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = mw};
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, mw->chan, &ev);
    fdt_log(FDT_LOG_INFO, "spawned worker %u of generation %u: pid %d", index, g->id, (int)pid);
}

int fdt__master_spawn(struct fdt_master *m, struct fdt_generation *g, unsigned index)
{
    int rc = FDT_ENOMEM;
    int fds[2] = {-1, -1};
    int slot = -1;
    struct fdt_listener *mine = NULL;
    struct fdt_mworker *mw = calloc(1, sizeof(*mw));
    if (!mw)
        goto out;
    rc = fdt__channel_pair(fds);
    if (rc < 0) {
        fds[0] = fds[1] = -1;
        fdt_log(FDT_LOG_ERROR, "socketpair: %s", fdt_strerror(rc));
        goto out;
    }
    slot = fdt__scoreboard_claim(m->sb, g->id, index, (unsigned)g->cfg->threads);
    if (slot < 0) {
        rc = FDT_ELIMIT;
        fdt_log(FDT_LOG_ERROR, "scoreboard full: cannot start another worker");
        goto out;
    }
    rc = worker_listeners_open(g, &mine);
    if (rc < 0)
        goto out;
    pid_t master_pid = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        /* GCOVR_EXCL_START: not reached: fork fails only out of memory or processes (the
         * test runs as root, which RLIMIT_NPROC does not limit) */
        rc = -errno;
        fdt_log(FDT_LOG_ERROR, "fork: %s", fdt_strerror(rc));
        goto out;
        /* GCOVR_EXCL_STOP */
    }
    if (pid == 0)
        worker_child(m, g, index, slot, fds, mine, master_pid);
    worker_track(m, g, mw, pid, slot, fds[0], index);
    mw = NULL; /* the worker list owns it, the channel end and the slot now */
    fds[0] = -1;
    slot = -1;
    rc = 0;
out:
    /* The worker's own reuseport sockets and its channel end are the child's: the master
     * keeps only the anchors and its own end. */
    worker_listeners_free(g, mine);
    if (slot >= 0)
        fdt__scoreboard_release(m->sb, slot);
    fdt__close(fds[1]);
    fdt__close(fds[0]);
    free(mw);
    return rc;
}

void fdt__master_drain_worker(struct fdt_master *m, struct fdt_mworker *mw, int sig)
{
    if (mw->state == FDT_MW_DRAINING)
        return;
    if (mw->state == FDT_MW_READY && mw->gen->n_ready > 0)
        mw->gen->n_ready--;
    mw->state = FDT_MW_DRAINING;
    mw->kill_at_ms =
        fdt__now_ms() + (int64_t)(mw->gen->cfg->graceful_timeout * 1000.0) + KILL_GRACE_MS;
    kill(mw->pid, sig);
}

void fdt__master_signal_gen(struct fdt_master *m, struct fdt_generation *g, int sig)
{
    for (struct fdt_mworker *w = m->workers; w; w = w->next) {
        if (w->gen == g)
            fdt__master_drain_worker(m, w, sig);
    }
}

void fdt__describe_status(int status, char *out, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(out, size, "killed by signal %d (%s)%s", WTERMSIG(status),
                 sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?",
                 WCOREDUMP(status) ? ", core dumped" : "");
    else if (WIFEXITED(status))
        snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
    else /* GCOVR_EXCL_START: unreachable: waitpid without WUNTRACED: an exit or a signal */
        snprintf(out, size, "ended (status 0x%x)", status);
    /* GCOVR_EXCL_STOP */
}

/* An idle connection from a retiring worker (FDT_MSG_CONN): on to a ready worker of the
 * serving generation, in turn, never back to the sender. The master only carries the
 * descriptor; it reads and writes nothing on it. With no taker, or a taker's channel full,
 * the connection is closed, as the retiring worker would have done without hand-offs. */
void fdt__master_pass_conn(struct fdt_master *m, const struct fdt_mworker *from, int fd,
                           const char *listener)
{
    /* Retiring after a binary upgrade: the serving generation is the new master's. */
    if (m->retiring && fdt__upgrade_pass_conn(m, fd, listener)) {
        fdt__close(fd);
        return;
    }
    struct fdt_mworker *ready[FDT_MAX_SLOTS];
    int n = 0;
    for (struct fdt_mworker *w = m->workers; w && n < FDT_MAX_SLOTS; w = w->next)
        if (w != from && !w->gone && w->state == FDT_MW_READY && w->gen == m->active)
            ready[n++] = w;
    int rc = FDT_EAGAIN;
    for (int i = 0; i < n && rc != 0; i++) {
        struct fdt_mworker *to = ready[m->handoff_next++ % (unsigned)n];
        rc = fdt__channel_send_fd(to->chan, FDT_MSG_CONN, 0, listener, fd, MSG_DONTWAIT);
    }
    /* Retiring, this master's own workers are all draining: the new master was the taker. */
    const char *none = m->retiring ? "the new master did not take it"
                                   : "no ready worker of the serving generation";
    if (rc != 0 && from)
        fdt_log(FDT_LOG_WARN, "a connection of listener %s from worker %u (pid %d): %s: closed",
                listener, from->index, (int)from->pid, n == 0 ? none : fdt_strerror(rc));
    else if (rc != 0)
        fdt_log(FDT_LOG_WARN, "a connection of listener %s from the old master: %s: closed",
                listener, n == 0 ? "no ready worker of the serving generation" : fdt_strerror(rc));
    fdt__close(fd);
}

static void worker_gone(struct fdt_master *m, struct fdt_mworker *mw, int status)
{
    struct fdt_generation *g = mw->gen;
    char how[128];
    fdt__describe_status(status, how, sizeof(how));
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    int64_t now = fdt__now_ms();

    /* Read a last FAILED message if the worker sent one before dying. */
    struct fdt_msg msg;
    char failed[sizeof(msg.text)] = "";
    int fd;
    while (fdt__channel_recv_fd(mw->chan, &msg, &fd) == 1) {
        if (fd >= 0 && msg.type == FDT_MSG_CONN)
            fdt__master_pass_conn(m, mw, fd, msg.text); /* handed over just before it exited */
        else if (fd >= 0)
            fdt__close(fd); /* GCOVR_EXCL_LINE: unreachable: workers pass descriptors only with
                             * FDT_MSG_CONN */
        else if (msg.type == FDT_MSG_FAILED)
            fdt__strlcpy(failed, msg.text, sizeof(failed));
        else if (msg.type == FDT_MSG_READY && mw->state == FDT_MW_STARTING)
            mw->state = FDT_MW_READY; /* ready, then died: count it as a crash */
    }
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, mw->chan, NULL);
    fdt__close(mw->chan);
    fdt__scoreboard_fold(m->sb, mw->slot);
    fdt__scoreboard_release(m->sb, mw->slot);

    struct fdt_mworker **pp = &m->workers;
    while (*pp && *pp != mw)
        pp = &(*pp)->next;
    if (*pp)
        *pp = mw->next;
    g->n_workers--;
    g->index_alive[mw->index] = false;
    /* A recycled worker and its successor share an index. */
    for (struct fdt_mworker *o = m->workers; o; o = o->next) {
        if (o->gen == g && o->index == mw->index)
            g->index_alive[mw->index] = true;
    }
    if (mw->state == FDT_MW_READY && g->n_ready > 0)
        g->n_ready--;

    struct fdt_mworker *successor = NULL;
    for (struct fdt_mworker *o = m->workers; o; o = o->next) {
        if (o->replaces == mw->pid)
            successor = o;
    }
    if (successor)
        successor->replaces = 0; /* nothing left to replace: it simply serves */
    if (mw->state == FDT_MW_DRAINING || m->stopping || g->state == FDT_GEN_FAILED) {
        fdt_log(clean ? FDT_LOG_INFO : FDT_LOG_WARN, "worker %u (pid %d, generation %u) %s",
                mw->index, (int)mw->pid, g->id, how);
    } else if (g->state == FDT_GEN_STARTING) {
        char why[700];
        if (failed[0])
            snprintf(why, sizeof(why), "worker %u: %s", mw->index, failed);
        else
            snprintf(why, sizeof(why), "worker %u (pid %d) %s %s", mw->index, (int)mw->pid, how,
                     mw->state == FDT_MW_READY ? "while its generation was starting"
                                               : "before it was ready");
        fdt_log(FDT_LOG_ERROR, "generation %u: %s", g->id, why);
        fdt__master_gen_failed(m, g, why);
    } else if (successor || mw->replaces) {
        /* A recycled worker died before its successor was ready, which serves in its place;
         * or a successor died before it was ready, and the recycled worker serves on (it
         * will ask again). Either way the index keeps a worker: nothing to respawn. */
        fdt_log(FDT_LOG_ERROR, "worker %u (pid %d, generation %u) %s%s%s while %s", mw->index,
                (int)mw->pid, g->id, how, failed[0] ? ": " : "", failed,
                successor ? "its successor was starting" : "starting as a successor");
        for (struct fdt_mworker *o = m->workers; o; o = o->next) {
            if (o->pid == mw->replaces)
                o->recycling = false;
        }
        atomic_fetch_add(
            &m->sb->master.restarts[mw->timed_out ? FDT_RESTART_TIMEOUT : FDT_RESTART_CRASH], 1);
    } else {
        /* A serving worker died: replace it, backing off if it keeps dying. */
        atomic_fetch_add(
            &m->sb->master.restarts[mw->timed_out ? FDT_RESTART_TIMEOUT : FDT_RESTART_CRASH], 1);
        int idx = (int)mw->index;
        if (now - mw->spawned_ms > STABLE_AFTER_MS)
            g->fails[idx] = 0;
        int64_t delay = 0;
        if (g->fails[idx] > 0) {
            delay = 100LL << (g->fails[idx] - 1 < 7 ? g->fails[idx] - 1 : 7);
            if (delay > BACKOFF_MAX_MS)
                delay = BACKOFF_MAX_MS;
        }
        g->fails[idx]++;
        g->respawn_at[idx] = now + delay;
        /* A clean exit nobody asked for (an outside SIGHUP or SIGTERM to the worker) is
         * worth a warning, not an error. */
        fdt_log(clean ? FDT_LOG_WARN : FDT_LOG_ERROR,
                "worker %u (pid %d, generation %u) %s%s%s; restarting in %lld ms", mw->index,
                (int)mw->pid, g->id, how, failed[0] ? ": " : "", failed, (long long)delay);
    }
    /* An event for this worker may still sit in the master's current epoll batch. */
    mw->gone = true;
    mw->next = m->dead;
    m->dead = mw;

    if (m->confirming == g)
        fdt__master_check_confirm(m); /* a gone worker accepts no more either */
    if (g->n_workers == 0 && (g->state == FDT_GEN_DRAINING || g->state == FDT_GEN_FAILED)) {
        fdt_log(FDT_LOG_INFO, "generation %u has ended", g->id);
        gen_free(m, g);
        if (m->reload_pending && !m->stopping)
            fdt__master_reload(m);
    }
}

void fdt__master_reap(struct fdt_master *m)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        struct fdt_mworker *mw = m->workers;
        while (mw && mw->pid != pid)
            mw = mw->next;
        if (mw)
            worker_gone(m, mw, status);
        else
            (void)fdt__upgrade_reaped(m, pid, status);
    }
}

/* The successor mw of a recycled worker is ready: the recycled one drains as on a reload
 * (idle keep-alive connections are kept until their advertised time runs out). */
static void retire_replaced(struct fdt_master *m, struct fdt_mworker *mw)
{
    for (struct fdt_mworker *o = m->workers; o; o = o->next) {
        if (o->pid == mw->replaces && !o->gone) {
            fdt_log(FDT_LOG_INFO, "worker %u (pid %d) replaced by pid %d: draining it", o->index,
                    (int)o->pid, (int)mw->pid);
            fdt__master_drain_worker(m, o, SIGHUP);
        }
    }
    mw->replaces = 0;
}

/* Worker mw asks to be replaced ([server] max_requests or max_worker_memory): start its
 * successor; mw serves until the successor is ready (retire_replaced). */
static void recycle(struct fdt_master *m, struct fdt_mworker *mw, uint32_t cause, const char *why)
{
    struct fdt_generation *g = mw->gen;
    if (mw->recycling || mw->state != FDT_MW_READY || g != m->active ||
        g->state != FDT_GEN_ACTIVE || m->stopping || (int)mw->index >= g->target)
        return; /* draining already, or about to: its end needs no successor */
    if (cause != FDT_RESTART_MAX_REQUESTS && cause != FDT_RESTART_MAX_MEMORY)
        cause = FDT_RESTART_MAX_REQUESTS; /* GCOVR_EXCL_LINE: unreachable: workers send these */
    mw->recycling = true;
    fdt_log(FDT_LOG_INFO, "worker %u (pid %d, generation %u) recycled: %s; starting its successor",
            mw->index, (int)mw->pid, g->id, why[0] ? why : "limit reached");
    atomic_fetch_add(&m->sb->master.restarts[cause], 1);
    if (fdt__master_spawn(m, g, mw->index) < 0) {
        mw->recycling = false; /* it serves on, and asks again later */
        return;
    }
    m->workers->replaces = mw->pid; /* fdt__master_spawn puts the new worker first */
}

void fdt__master_on_channel(struct fdt_master *m, struct fdt_mworker *mw)
{
    if (mw->gone)
        return;
    struct fdt_msg msg;
    int rc, fd;
    while ((rc = fdt__channel_recv_fd(mw->chan, &msg, &fd)) == 1) {
        if (fd >= 0) {
            if (msg.type == FDT_MSG_CONN)
                fdt__master_pass_conn(m, mw, fd, msg.text);
            else
                fdt__close(fd); /* GCOVR_EXCL_LINE: unreachable: as in worker_gone */
        } else if (msg.type == FDT_MSG_CONN) {
            /* Its descriptor did not come (MSG_CTRUNC: the master had none free). */
            fdt_log(FDT_LOG_WARN,
                    "worker %u (pid %d) handed over a connection for listener %s: its "
                    "descriptor did not arrive (out of descriptors?): lost",
                    mw->index, (int)mw->pid, msg.text);
        } else if (msg.type == FDT_MSG_READY && mw->state == FDT_MW_STARTING) {
            mw->state = FDT_MW_READY;
            struct fdt_generation *g = mw->gen;
            g->n_ready++;
            if (g->state == FDT_GEN_STARTING && g->n_ready >= g->target)
                fdt__master_gen_ready(m, g);
            else if (g->state == FDT_GEN_DRAINING || m->stopping)
                fdt__master_drain_worker(m, mw, m->stopping ? SIGTERM : SIGHUP);
            else if (mw->replaces)
                retire_replaced(m, mw);
        } else if (msg.type == FDT_MSG_RECYCLE) {
            recycle(m, mw, msg.arg, msg.text);
        } else if (msg.type == FDT_MSG_DRAINING) {
            mw->drain_confirmed = true;
            fdt__master_check_confirm(m);
        } else if (msg.type == FDT_MSG_FAILED) {
            /* The worker exits right after. The message is read here, so worker_gone() will
             * not see it: log the reason now, and fail a generation that is starting. */
            fdt_log(FDT_LOG_ERROR, "worker %u (pid %d) failed to start: %s", mw->index,
                    (int)mw->pid, msg.text);
            if (mw->gen->state == FDT_GEN_STARTING) {
                char why[700];
                snprintf(why, sizeof(why), "worker %u: %s", mw->index, msg.text);
                fdt__master_gen_failed(m, mw->gen, why);
            }
        }
    }
    if (rc == 0) {
        /* EOF: the worker is exiting; SIGCHLD will tell us how. */
        epoll_ctl(m->epfd, EPOLL_CTL_DEL, mw->chan, NULL);
    }
}

/* What the metrics show of the master, published in the scoreboard (see fdt_master_stats). */
void fdt__master_publish_stats(struct fdt_master *m)
{
    struct fdt_master_stats *st = &m->sb->master;
    atomic_store(&st->master_pid, (int32_t)getpid());
    atomic_store(&st->serving, m->active && !m->stopping);
    atomic_store(&st->active_generation, m->active ? m->active->id : 0);
    atomic_store(&st->generations_started, m->next_gen_id);
    atomic_store(&st->reloads_ok, m->reloads_ok);
    atomic_store(&st->reloads_failed, m->reloads_failed);
    atomic_store(&st->started_wall_ms, m->started_wall_ms);
}

void fdt__master_supervise(struct fdt_master *m, int64_t now)
{
    fdt__master_publish_stats(m);
    for (struct fdt_mworker *w = m->workers; w; w = w->next) {
        if (w->killed)
            continue;
        struct fdt_slot *s = &m->sb->slots[w->slot];
        const struct fdt_cfg *cfg = w->gen->cfg;
        int64_t limit = (int64_t)(cfg->worker_timeout * 1000.0);
        const char *why = NULL;
        char buf[160];
        if (w->state == FDT_MW_STARTING && now > w->ready_deadline_ms) {
            snprintf(buf, sizeof(buf), "not ready after ready_timeout (%.1fs)", cfg->ready_timeout);
            why = buf;
        } else if (w->state != FDT_MW_STARTING) {
            int64_t hb = atomic_load(&s->heartbeat_ms);
            if (now - hb > limit) {
                snprintf(buf, sizeof(buf), "event loop silent for %.1fs", (double)(now - hb) / 1e3);
                why = buf;
            }
            for (unsigned t = 0; t < s->threads && !why; t++) {
                /* Negative: the thread waits for its client (fdt__conn_client_wait_begin). */
                int64_t since = atomic_load(&s->busy_since[t]);
                if (since > 0 && now - since > limit) {
                    snprintf(buf, sizeof(buf), "thread %u stuck for %.1fs (worker_timeout %.1fs)",
                             t, (double)(now - since) / 1e3, cfg->worker_timeout);
                    why = buf;
                }
            }
            if (!why && w->kill_at_ms && now > w->kill_at_ms) {
                snprintf(buf, sizeof(buf), "still draining after graceful_timeout");
                why = buf;
            }
        }
        if (why) {
            fdt_log(FDT_LOG_ERROR, "worker %u (pid %d, generation %u) %s: killing it", w->index,
                    (int)w->pid, w->gen->id, why);
            kill(w->pid, SIGKILL);
            w->killed = true;
            w->timed_out = true;
            if (w->state == FDT_MW_STARTING && w->gen->state == FDT_GEN_STARTING) {
                char msg[300];
                snprintf(msg, sizeof(msg), "worker %u %s", w->index, why);
                fdt__master_gen_failed(m, w->gen, msg);
            }
        }
    }
    /* Respawns that are due. */
    struct fdt_generation *g = m->active;
    if (g && !m->stopping && g->state == FDT_GEN_ACTIVE) {
        for (int i = 0; i < g->target; i++) {
            if (!g->index_alive[i] && g->respawn_at[i] && now >= g->respawn_at[i]) {
                /* Failed (logged): try again rather than leave the index without a worker. */
                g->respawn_at[i] =
                    fdt__master_spawn(m, g, (unsigned)i) < 0 ? now + SPAWN_RETRY_MS : 0;
            }
        }
    }
    if (m->stopping && m->stop_kill_at_ms && now > m->stop_kill_at_ms) {
        for (struct fdt_mworker *w = m->workers; w; w = w->next) {
            if (!w->killed) {
                kill(w->pid, SIGKILL);
                w->killed = true;
            }
        }
    }
}

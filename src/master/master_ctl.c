#include "fdt_config.h"

#define FDT_LOG_MODULE "ctl"
#include "json/json.h"
#include "log/log.h"
#include "master/master.h"
#include "metrics/metrics.h"
#include "util/buf.h"
#include "util/util.h"

#include <errno.h>
#include <fdt/json.h>
#include <fdt/log.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_MAX_REQUEST 512
#define CTL_MAX_CLIENTS 64
#define CTL_MAX_ANSWER  (4 * 1024 * 1024) /* bytes queued for one client */

/* A control-socket client: one request line in, one answer out, then close. */
struct fdt_ctl_client {
    int kind; /* FDT_POLL_CTL_CLIENT */
    int fd;
    char req[CTL_MAX_REQUEST];
    size_t req_len;
    struct fdt_buf out;
    int out_rc; /* < 0: a part of the answer could not be added (no memory, too long) */
    bool waiting_reload;
    unsigned wait_seq;
    bool answered;
    struct fdt_ctl_client *next;
};

int fdt__ctl_open(struct fdt_master *m, struct fdt_error *err)
{
    m->ctl_fd = -1;
    const char *path = m->cfg->control_socket;
    if (!path[0])
        return 0;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(un.sun_path))
        return fdt_error_set(err, FDT_ECONFIG, "control_socket path too long: %s", path);
    memcpy(un.sun_path, path, strlen(path) + 1);
    /* A binary upgrade replaces the old master's socket file in one rename, so that the
     * path always answers. */
    char tmp[sizeof(un.sun_path)];
    bool takeover = m->predecessor > 0;
    if (takeover) {
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid()) >= sizeof(tmp))
            return fdt_error_set(err, FDT_ECONFIG, "control_socket path too long: %s", path);
        unlink(tmp);
        memcpy(un.sun_path, tmp, strlen(tmp) + 1);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fdt_error_set(err, -errno, "control socket: %s", fdt_strerror(-errno));
    /* Remove a stale socket left by a master that died, never a live one. */
    struct stat st;
    if (!takeover && stat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0) {
            if (connect(probe, (struct sockaddr *)&un, sizeof(un)) == 0) {
                close(probe);
                close(fd);
                return fdt_error_set(err, FDT_ECONFIG,
                                     "control socket %s is in use: another fdtserver runs there",
                                     path);
            }
            close(probe);
            unlink(path);
        }
    }
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&un, sizeof(un));
    umask(old);
    if (rc < 0 || chmod(un.sun_path, 0600) < 0 || listen(fd, 16) < 0 ||
        (takeover && rename(tmp, path) < 0)) {
        rc = -errno;
        close(fd);
        if (takeover)
            unlink(tmp);
        return fdt_error_set(err, rc, "control socket %s: %s", path, fdt_strerror(rc));
    }
    if (stat(path, &st) == 0) {
        m->ctl_dev = st.st_dev;
        m->ctl_ino = st.st_ino;
    }
    m->ctl_fd = fd;
    fdt__strlcpy(m->ctl_path, path, sizeof(m->ctl_path));
    m->ctl_kind = FDT_POLL_CTL;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &m->ctl_kind};
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

void fdt__ctl_tick(struct fdt_master *m, int64_t now)
{
    if (!m->ctl_resume_ms || now < m->ctl_resume_ms)
        return;
    m->ctl_resume_ms = 0;
    /* ctl_fd is open: a pause ends with the socket it paused (reclaim_paths, master_upgrade.c),
     * and the master closes its socket only after the loop. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &m->ctl_kind};
    epoll_ctl(m->epfd, EPOLL_CTL_MOD, m->ctl_fd, &ev);
}

static void client_free(struct fdt_master *m, struct fdt_ctl_client *c)
{
    struct fdt_ctl_client **pp = &m->clients;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    fdt__buf_deinit(&c->out);
    free(c);
}

void fdt__ctl_close_all(struct fdt_master *m)
{
    while (m->clients)
        client_free(m, m->clients);
    if (m->ctl_fd >= 0) {
        close(m->ctl_fd);
        /* Only the file this master made: after a binary upgrade it is the new master's. */
        struct stat st;
        if (lstat(m->ctl_path, &st) == 0 && st.st_dev == m->ctl_dev && st.st_ino == m->ctl_ino)
            unlink(m->ctl_path);
        m->ctl_fd = -1;
    }
}

void fdt__ctl_on_accept(struct fdt_master *m)
{
    for (;;) {
        int fd = accept4(m->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
            /* The client waits in the backlog, and level-triggered epoll would report it on
             * every turn of the loop: stop listening for a second. */
            fdt_log(FDT_LOG_WARN, "control socket: accept: %s: trying again in 1 s",
                    fdt_strerror(-errno));
            struct epoll_event ev = {.events = 0, .data.ptr = &m->ctl_kind};
            epoll_ctl(m->epfd, EPOLL_CTL_MOD, m->ctl_fd, &ev);
            m->ctl_resume_ms = fdt__now_ms() + 1000;
            return;
        }
        if (fd < 0)
            return;
        int n = 0;
        for (struct fdt_ctl_client *c = m->clients; c; c = c->next)
            n++;
        struct fdt_ctl_client *c = n < CTL_MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
        if (!c) {
            static const char busy[] = "ERR too many control clients\n";
            static const char oom[] = "ERR out of memory for a control client\n";
            if (n < CTL_MAX_CLIENTS)
                fdt_log(FDT_LOG_WARN, "control socket: a client refused: out of memory");
            const char *why = n < CTL_MAX_CLIENTS ? oom : busy;
            (void)!send(fd, why, strlen(why), MSG_NOSIGNAL);
            close(fd);
            continue;
        }
        c->kind = FDT_POLL_CTL_CLIENT;
        c->fd = fd;
        fdt__buf_init(&c->out, CTL_MAX_ANSWER);
        c->next = m->clients;
        m->clients = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

/* Add n bytes to the answer; a part that cannot be added spoils it (try_flush then sends
 * an error instead of an answer with a hole). */
static void put(struct fdt_ctl_client *c, const char *p, size_t n)
{
    int rc = fdt__buf_append(&c->out, p, n);
    if (rc < 0 && c->out_rc == 0)
        c->out_rc = rc;
}

static void say(struct fdt_ctl_client *c, const char *fmt, ...) FDT_PRINTF(2, 3);
static void say(struct fdt_ctl_client *c, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        put(c, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static const char *gen_state_name(enum fdt_gen_state s)
{
    switch (s) {
    case FDT_GEN_STARTING:
        return "starting";
    case FDT_GEN_ACTIVE:
        return "active";
    case FDT_GEN_DRAINING:
        return "draining";
    case FDT_GEN_FAILED:
        return "failed";
    }
    return "?"; /* GCOVR_EXCL_LINE: unreachable: every state returns above (-Wswitch) */
}

static const char *worker_state_name(enum fdt_mworker_state s)
{
    switch (s) {
    case FDT_MW_STARTING:
        return "starting";
    case FDT_MW_READY:
        return "ready";
    case FDT_MW_DRAINING:
        return "draining";
    }
    return "?"; /* GCOVR_EXCL_LINE: unreachable: every state returns above (-Wswitch) */
}

/* A string member. A string that is not valid UTF-8 (a message cut in the middle of a
 * character) is left out with its key, since JSON cannot carry it. */
static void put_str(struct fdt_json_writer *w, const char *key, const char *s)
{
    if (!fdt__json_utf8_valid(s, strlen(s)))
        return;
    fdt_json_writer_key(w, key);
    fdt_json_writer_string(w, s);
}

static void put_int(struct fdt_json_writer *w, const char *key, int64_t i)
{
    fdt_json_writer_key(w, key);
    fdt_json_writer_int(w, i);
}

static void put_double(struct fdt_json_writer *w, const char *key, double d)
{
    fdt_json_writer_key(w, key);
    fdt_json_writer_double(w, d);
}

static int threads_busy(struct fdt_slot *s)
{
    int busy = 0;
    for (unsigned t = 0; t < s->threads && t < FDT_MAX_THREADS; t++)
        busy += atomic_load(&s->busy_since[t]) != 0;
    return busy;
}

static void write_worker(struct fdt_json_writer *w, struct fdt_master *m,
                         const struct fdt_mworker *mw, int64_t now)
{
    struct fdt_slot *s = &m->sb->slots[mw->slot];
    fdt_json_writer_begin_object(w);
    put_int(w, "index", mw->index);
    put_int(w, "pid", mw->pid);
    put_str(w, "state", worker_state_name(mw->state));
    put_double(w, "heartbeat_age_s", (double)(now - atomic_load(&s->heartbeat_ms)) / 1000.0);
    put_int(w, "connections_open", atomic_load(&s->conns_open));
    put_int(w, "connections_accepted", (int64_t)atomic_load(&s->accepted));
    put_int(w, "requests", (int64_t)atomic_load(&s->requests));
    put_int(w, "listen_wakeups", (int64_t)atomic_load(&s->listen_wakeups));
    put_int(w, "accept_eagain", (int64_t)atomic_load(&s->accept_eagain));
    put_int(w, "refused_busy", (int64_t)atomic_load(&s->refused_busy));
    put_int(w, "transactions_open", atomic_load(&s->txn_open));
    put_int(w, "transactions_in_doubt", atomic_load(&s->txn_in_doubt));
    put_double(w, "in_doubt_oldest_s", (double)atomic_load(&s->txn_in_doubt_oldest_ms) / 1000.0);
    put_int(w, "threads_busy", threads_busy(s));
    if (atomic_load(&s->rss_bytes) > 0)
        put_int(w, "resident_bytes", atomic_load(&s->rss_bytes));
    fdt_json_writer_key(w, "recycling");
    fdt_json_writer_bool(w, mw->recycling);
    fdt_json_writer_end_object(w);
}

static void write_generation(struct fdt_json_writer *w, struct fdt_master *m,
                             const struct fdt_generation *g, int64_t now)
{
    fdt_json_writer_begin_object(w);
    put_int(w, "id", g->id);
    put_str(w, "state", gen_state_name(g->state));
    put_int(w, "workers_wanted", g->target);
    put_int(w, "threads", g->cfg->threads);
    fdt_json_writer_key(w, "workers");
    fdt_json_writer_begin_array(w);
    for (struct fdt_mworker *mw = m->workers; mw; mw = mw->next) {
        if (mw->gen == g)
            write_worker(w, m, mw, now);
    }
    fdt_json_writer_end_array(w);
    if (g->fail_reason[0])
        put_str(w, "error", g->fail_reason);
    fdt_json_writer_end_object(w);
}

static void write_last_reload(struct fdt_json_writer *w, const struct fdt_master *m)
{
    fdt_json_writer_key(w, "last_reload");
    fdt_json_writer_begin_object(w);
    fdt_json_writer_key(w, "ok");
    if (m->last_reload[0])
        fdt_json_writer_bool(w, m->last_reload_ok);
    else
        fdt_json_writer_null(w);
    put_str(w, "message", m->last_reload);
    put_int(w, "reloads_ok", m->reloads_ok);
    put_int(w, "reloads_failed", m->reloads_failed);
    fdt_json_writer_key(w, "in_progress");
    fdt_json_writer_bool(w, m->starting != NULL);
    fdt_json_writer_end_object(w);
}

static const char *const restart_causes[FDT_RESTART_N] = {"crash", "timeout", "max_requests",
                                                          "max_memory"};

/* Workers replaced since the master started, by cause (as fdt_worker_restarts_total). */
static void write_restarts(struct fdt_json_writer *w, const struct fdt_master *m)
{
    fdt_json_writer_key(w, "worker_restarts");
    fdt_json_writer_begin_object(w);
    for (int i = 0; i < FDT_RESTART_N; i++)
        put_int(w, restart_causes[i], (int64_t)atomic_load(&m->sb->master.restarts[i]));
    fdt_json_writer_end_object(w);
}

/* The listeners of the active generation (none while the first one starts). */
static void write_listeners(struct fdt_json_writer *w, const struct fdt_master *m)
{
    fdt_json_writer_key(w, "listeners");
    fdt_json_writer_begin_array(w);
    for (int i = 0; m->active && i < m->active->n_listeners; i++) {
        const struct fdt_listener *l = &m->active->listeners[i];
        fdt_json_writer_begin_object(w);
        put_str(w, "name", l->cfg.name);
        put_str(w, "address", l->cfg.address);
        if (l->fd >= 0) {
            char addr[256];
            fdt__addr_format_fd(l->fd, addr, sizeof(addr));
            put_str(w, "bound", addr);
        }
        put_str(w, "protocol", fdt__proto_name(l->cfg.protocol));
        fdt_json_writer_key(w, "tls");
        fdt_json_writer_bool(w, l->cfg.tls);
        put_str(w, "socket", fdt__listen_origin_name(l->origin));
        fdt_json_writer_end_object(w);
    }
    fdt_json_writer_end_array(w);
}

/* The first line of a status answer: "OK" while a generation serves, else "OK not serving:
 * REASON" (fdtctl then exits 3, for health checks and scripts). */
static void status_line(struct fdt_master *m, struct fdt_ctl_client *c)
{
    if (m->stopping)
        say(c, "OK not serving: the server is stopping\n");
    else if (!m->active && m->starting)
        say(c, "OK not serving: the first generation is starting\n");
    else if (!m->active)
        /* GCOVR_EXCL_START: unreachable: active is NULL only while the first generation starts
         * (starting is set) or after it failed (stopping is set) */
        say(c, "OK not serving: no generation is active\n");
    /* GCOVR_EXCL_STOP */
    else
        say(c, "OK\n");
}

/* "status json": the whole state as one JSON object (docs/guide.md lists the fields). */
static void status_json(struct fdt_master *m, struct fdt_ctl_client *c)
{
    int64_t now = fdt__now_ms();
    struct fdt_json_writer w;
    fdt_json_writer_init(&w, CTL_MAX_ANSWER);
    fdt_json_writer_begin_object(&w);
    put_int(&w, "pid", getpid());
    put_str(&w, "version", FDT_VERSION);
    if (m->cfg && m->cfg->file[0]) {
        char real[PATH_MAX];
        put_str(&w, "config_file", realpath(m->cfg->file, real) ? real : m->cfg->file);
    }
    put_str(&w, "state", m->stopping ? "stopping" : "running");
    put_double(&w, "uptime_s", (double)(fdt__wall_ms() - m->started_wall_ms) / 1000.0);
    fdt_json_writer_key(&w, "generations");
    fdt_json_writer_begin_array(&w);
    for (struct fdt_generation *g = m->gens; g; g = g->next)
        write_generation(&w, m, g, now);
    fdt_json_writer_end_array(&w);
    write_last_reload(&w, m);
    write_restarts(&w, m);
    write_listeners(&w, m);
    fdt_json_writer_end_object(&w);
    const char *text;
    size_t len;
    int rc = fdt_json_writer_finish(&w, &text, &len);
    if (rc < 0) {
        say(c, "ERR cannot write the status: %s\n", fdt_strerror(rc));
    } else {
        status_line(m, c);
        put(c, text, len);
        say(c, "\n");
    }
    fdt_json_writer_deinit(&w);
}

static void status_text_worker(struct fdt_master *m, struct fdt_ctl_client *c,
                               const struct fdt_mworker *mw, int64_t now)
{
    struct fdt_slot *s = &m->sb->slots[mw->slot];
    say(c,
        "  worker %u pid %d %s heartbeat %.1fs ago, %lld connections open, %llu "
        "requests, %lld txn open, %lld in doubt\n",
        mw->index, (int)mw->pid, worker_state_name(mw->state),
        (double)(now - atomic_load(&s->heartbeat_ms)) / 1000.0,
        (long long)atomic_load(&s->conns_open), (unsigned long long)atomic_load(&s->requests),
        (long long)atomic_load(&s->txn_open), (long long)atomic_load(&s->txn_in_doubt));
}

/* "status": the same state as status_json, for people. */
static void status_text(struct fdt_master *m, struct fdt_ctl_client *c)
{
    int64_t now = fdt__now_ms();
    status_line(m, c);
    say(c, "master pid %d, %s, version %s\n", (int)getpid(), m->stopping ? "stopping" : "running",
        FDT_VERSION);
    for (int i = 0; m->active && i < m->active->n_listeners; i++) {
        const struct fdt_listener *l = &m->active->listeners[i];
        char addr[256];
        if (l->fd >= 0)
            fdt__addr_format_fd(l->fd, addr, sizeof(addr));
        say(c, "listener %s %s (%s%s)\n", l->cfg.name, l->fd >= 0 ? addr : l->cfg.address,
            fdt__proto_name(l->cfg.protocol), l->cfg.tls ? " over TLS" : "");
    }
    for (struct fdt_generation *g = m->gens; g; g = g->next) {
        say(c, "generation %u %s: %d workers x %d threads\n", g->id, gen_state_name(g->state),
            g->target, g->cfg->threads);
        if (g->fail_reason[0])
            say(c, "  error: %s\n", g->fail_reason);
        for (struct fdt_mworker *mw = m->workers; mw; mw = mw->next) {
            if (mw->gen == g)
                status_text_worker(m, c, mw, now);
        }
    }
    if (m->last_reload[0])
        say(c, "last reload: %s: %s\n", m->last_reload_ok ? "ok" : "failed", m->last_reload);
    else
        say(c, "last reload: none\n");
    say(c, "worker restarts:");
    for (int i = 0; i < FDT_RESTART_N; i++)
        say(c, " %s %llu", restart_causes[i],
            (unsigned long long)atomic_load(&m->sb->master.restarts[i]));
    say(c, "\n");
}

/* "workers +N | -N | N": change the number of workers of the active generation by N or set
 * it to N, then say how many there are. The master does it here, not through SIGTTIN and
 * SIGTTOU sent to itself: signals of one kind pending together are delivered once. */
static void workers_command(struct fdt_master *m, struct fdt_ctl_client *c, const char *arg)
{
    long n;
    if (fdt__parse_long(arg, -FDT_MAX_WORKERS, FDT_MAX_WORKERS, &n) < 0) {
        say(c, "ERR workers takes +N, -N or N\n");
        return;
    }
    if (m->stopping || !m->active) {
        say(c, "ERR %s\n", m->stopping ? "the server is stopping" : "no generation is serving");
        return;
    }
    int was = m->active->target;
    long target = (arg[0] == '+' || arg[0] == '-') ? was + n : n;
    if (fdt__master_set_workers(m, (int)target, "fdtctl workers") < 0) {
        say(c, "ERR %ld workers is out of range (1 to %d); %d workers now\n", target,
            FDT_MAX_WORKERS, was);
        return;
    }
    say(c, "OK %d workers (was %d)\n", m->active->target, was);
}

static void begin_stop(struct fdt_master *m, bool immediate)
{
    kill(getpid(), immediate ? SIGQUIT : SIGTERM);
}

static void handle(struct fdt_master *m, struct fdt_ctl_client *c, char *line)
{
    char *argv[8];
    int argc = 0;
    for (char *save = NULL, *tok = strtok_r(line, " \t", &save); tok && argc < 8;
         tok = strtok_r(NULL, " \t", &save))
        argv[argc++] = tok;
    if (argc == 0) {
        say(c, "ERR empty request\n");
        return;
    }
    if (strcmp(argv[0], "status") == 0) {
        if (argc > 1 && strcmp(argv[1], "json") == 0)
            status_json(m, c);
        else
            status_text(m, c);
    } else if (strcmp(argv[0], "reload") == 0) {
        if (m->stopping) {
            say(c, "ERR the server is stopping\n");
            return;
        }
        bool wait = argc > 1 && strcmp(argv[1], "wait") == 0;
        if (wait) {
            /* Wait for the reload that includes this request: the one about to start, or
             * the one queued behind the reload in progress; both get the next number. */
            c->waiting_reload = true;
            c->wait_seq = m->reload_seq + 1;
        }
        fdt__master_reload(m);
        if (wait)
            return;
        say(c, "OK reload started\n");
    } else if (strcmp(argv[0], "stop") == 0 || strcmp(argv[0], "quit") == 0) {
        say(c, "OK stopping\n");
        begin_stop(m, strcmp(argv[0], "quit") == 0);
    } else if (strcmp(argv[0], "reopen") == 0) {
        kill(getpid(), SIGUSR1);
        say(c, "OK reopening logs\n");
    } else if (strcmp(argv[0], "metrics") == 0) {
        /* "OK" then the exposition text; the answer ends when the master closes. */
        size_t mark = c->out.len;
        fdt__master_publish_stats(m);
        say(c, "OK\n");
        int rc = fdt__metrics_render(m->sb, &c->out);
        if (rc < 0) {
            c->out.len = mark; /* drop the partial text: nothing was sent yet */
            c->out_rc = 0;
            say(c, "ERR cannot render the metrics: %s\n", fdt_strerror(rc));
        }
    } else if (strcmp(argv[0], "workers") == 0 && argc == 2) {
        workers_command(m, c, argv[1]);
    } else {
        say(c,
            "ERR unknown command '%s' (status [json], metrics, reload [wait], stop, quit, "
            "reopen, workers +N|-N|N)\n",
            argv[0]);
    }
}

static void try_flush(struct fdt_master *m, struct fdt_ctl_client *c)
{
    if (c->out_rc < 0 && c->answered) {
        /* Nothing of the answer was sent yet (it is made whole before the first send): one
         * short line instead, which an empty unix socket always takes. */
        char line[160];
        int n = snprintf(line, sizeof(line), "ERR cannot make the answer: %s\n",
                         fdt_strerror(c->out_rc));
        fdt_log(FDT_LOG_WARN, "control socket: %.*s", n - 1, line);
        (void)!send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        client_free(m, c);
        return;
    }
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, fdt__buf_head(&c->out), c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            fdt__buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
            epoll_ctl(m->epfd, EPOLL_CTL_MOD, c->fd, &ev);
            return;
        }
        client_free(m, c);
        return;
    }
    if (c->answered)
        client_free(m, c);
}

void fdt__ctl_on_client(struct fdt_master *m, struct fdt_ctl_client *c, uint32_t events)
{
    if (events & EPOLLOUT) {
        try_flush(m, c);
        return;
    }
    if (c->waiting_reload) {
        /* Only EOF can come now: the client gave up waiting. */
        char tmp[64];
        if (recv(c->fd, tmp, sizeof(tmp), MSG_DONTWAIT) == 0)
            client_free(m, c);
        return;
    }
    for (;;) {
        if (c->req_len >= sizeof(c->req) - 1) {
            say(c, "ERR request too long\n");
            c->answered = true;
            try_flush(m, c);
            return;
        }
        ssize_t n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - 1 - c->req_len, MSG_DONTWAIT);
        if (n == 0) {
            client_free(m, c);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            /* GCOVR_EXCL_START: unreachable: a unix stream peer that closes gives EOF here;
             * ECONNRESET needs data it did not read, and nothing is sent before the request */
            client_free(m, c);
            return;
            /* GCOVR_EXCL_STOP */
        }
        c->req_len += (size_t)n;
        c->req[c->req_len] = '\0';
        char *nl = strchr(c->req, '\n');
        if (!nl)
            continue;
        *nl = '\0';
        if (nl > c->req && nl[-1] == '\r')
            nl[-1] = '\0';
        handle(m, c, c->req);
        if (c->waiting_reload)
            return;
        c->answered = true;
        try_flush(m, c);
        return;
    }
}

void fdt__ctl_reload_done(struct fdt_master *m, bool ok, const char *msg)
{
    struct fdt_ctl_client *c = m->clients;
    while (c) {
        struct fdt_ctl_client *next = c->next;
        if (c->waiting_reload && c->wait_seq <= m->reload_seq) {
            c->waiting_reload = false;
            say(c, "%s %s\n", ok ? "OK" : "ERR", msg);
            c->answered = true;
            /* Sent from the event loop: the caller may be inside this client's handler. */
            struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
            epoll_ctl(m->epfd, EPOLL_CTL_MOD, c->fd, &ev);
        }
        c = next;
    }
}

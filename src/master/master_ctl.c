#include "fdt_config.h"

#define FDT_LOG_MODULE "ctl"
#include "log/log.h"
#include "master/master.h"
#include "util/buf.h"
#include "util/util.h"

#include <errno.h>
#include <fdt/log.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_MAX_REQUEST 512
#define CTL_MAX_CLIENTS 64

/* A control-socket client: one request line in, one answer out, then close. */
struct fdt_ctl_client {
    int kind; /* FDT_POLL_CTL_CLIENT */
    int fd;
    char req[CTL_MAX_REQUEST];
    size_t req_len;
    struct fdt_buf out;
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
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fdt_error_set(err, -errno, "control socket: %s", fdt_strerror(-errno));
    /* Remove a stale socket left by a master that died, never a live one. */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
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
    if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 16) < 0) {
        rc = -errno;
        close(fd);
        return fdt_error_set(err, rc, "control socket %s: %s", path, fdt_strerror(rc));
    }
    m->ctl_fd = fd;
    fdt__strlcpy(m->ctl_path, path, sizeof(m->ctl_path));
    m->ctl_kind = FDT_POLL_CTL;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &m->ctl_kind};
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
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
        unlink(m->ctl_path);
        m->ctl_fd = -1;
    }
}

void fdt__ctl_on_accept(struct fdt_master *m)
{
    for (;;) {
        int fd = accept4(m->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int n = 0;
        for (struct fdt_ctl_client *c = m->clients; c; c = c->next)
            n++;
        struct fdt_ctl_client *c = n < CTL_MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
        if (!c) {
            static const char busy[] = "ERR too many control clients\n";
            (void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL);
            close(fd);
            continue;
        }
        c->kind = FDT_POLL_CTL_CLIENT;
        c->fd = fd;
        fdt__buf_init(&c->out, 4 * 1024 * 1024);
        c->next = m->clients;
        m->clients = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
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
        fdt__buf_append(&c->out, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
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
    return "?";
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
    return "?";
}

static json_t *status_json(struct fdt_master *m)
{
    int64_t now = fdt__now_ms();
    json_t *root = json_object();
    json_object_set_new(root, "pid", json_integer(getpid()));
    json_object_set_new(root, "version", json_string(FDT_VERSION));
    if (m->cfg && m->cfg->file[0]) {
        char real[PATH_MAX];
        json_object_set_new(root, "config_file",
                            json_string(realpath(m->cfg->file, real) ? real : m->cfg->file));
    }
    json_object_set_new(root, "state", json_string(m->stopping ? "stopping" : "running"));
    json_object_set_new(root, "uptime_s",
                        json_real((double)(fdt__wall_ms() - m->started_wall_ms) / 1000.0));
    json_t *gens = json_array();
    for (struct fdt_generation *g = m->gens; g; g = g->next) {
        json_t *jg = json_object();
        json_object_set_new(jg, "id", json_integer(g->id));
        json_object_set_new(jg, "state", json_string(gen_state_name(g->state)));
        json_object_set_new(jg, "workers_wanted", json_integer(g->target));
        json_object_set_new(jg, "threads", json_integer(g->cfg->threads));
        json_t *ws = json_array();
        for (struct fdt_mworker *w = m->workers; w; w = w->next) {
            if (w->gen != g)
                continue;
            struct fdt_slot *s = &m->sb->slots[w->slot];
            json_t *jw = json_object();
            json_object_set_new(jw, "index", json_integer(w->index));
            json_object_set_new(jw, "pid", json_integer(w->pid));
            json_object_set_new(jw, "state", json_string(worker_state_name(w->state)));
            json_object_set_new(jw, "heartbeat_age_s",
                                json_real((double)(now - atomic_load(&s->heartbeat_ms)) / 1000.0));
            json_object_set_new(jw, "connections_open", json_integer(atomic_load(&s->conns_open)));
            json_object_set_new(jw, "connections_accepted",
                                json_integer((json_int_t)atomic_load(&s->accepted)));
            json_object_set_new(jw, "requests",
                                json_integer((json_int_t)atomic_load(&s->requests)));
            json_object_set_new(jw, "listen_wakeups",
                                json_integer((json_int_t)atomic_load(&s->listen_wakeups)));
            json_object_set_new(jw, "accept_eagain",
                                json_integer((json_int_t)atomic_load(&s->accept_eagain)));
            json_object_set_new(jw, "refused_busy",
                                json_integer((json_int_t)atomic_load(&s->refused_busy)));
            json_object_set_new(jw, "transactions_open", json_integer(atomic_load(&s->txn_open)));
            json_object_set_new(jw, "transactions_in_doubt",
                                json_integer(atomic_load(&s->txn_in_doubt)));
            json_object_set_new(
                jw, "in_doubt_oldest_s",
                json_real((double)atomic_load(&s->txn_in_doubt_oldest_ms) / 1000.0));
            int busy = 0;
            for (unsigned t = 0; t < s->threads && t < FDT_MAX_THREADS; t++)
                busy += atomic_load(&s->busy_since[t]) != 0;
            json_object_set_new(jw, "threads_busy", json_integer(busy));
            json_array_append_new(ws, jw);
        }
        json_object_set_new(jg, "workers", ws);
        if (g->fail_reason[0])
            json_object_set_new(jg, "error", json_string(g->fail_reason));
        json_array_append_new(gens, jg);
    }
    json_object_set_new(root, "generations", gens);
    json_t *lr = json_object();
    json_object_set_new(lr, "ok",
                        m->last_reload[0] ? json_boolean(m->last_reload_ok) : json_null());
    json_object_set_new(lr, "message", json_string(m->last_reload));
    json_object_set_new(lr, "reloads_ok", json_integer(m->reloads_ok));
    json_object_set_new(lr, "reloads_failed", json_integer(m->reloads_failed));
    json_object_set_new(lr, "in_progress", json_boolean(m->starting != NULL));
    json_object_set_new(root, "last_reload", lr);
    json_t *ls = json_array();
    if (m->active) {
        for (int i = 0; i < m->active->n_listeners; i++) {
            struct fdt_listener *l = &m->active->listeners[i];
            char addr[256];
            json_t *jl = json_object();
            json_object_set_new(jl, "name", json_string(l->cfg.name));
            json_object_set_new(jl, "address", json_string(l->cfg.address));
            if (l->fd >= 0) {
                fdt__addr_format_fd(l->fd, addr, sizeof(addr));
                json_object_set_new(jl, "bound", json_string(addr));
            }
            json_object_set_new(jl, "protocol", json_string(fdt__proto_name(l->cfg.protocol)));
            json_array_append_new(ls, jl);
        }
    }
    json_object_set_new(root, "listeners", ls);
    return root;
}

static void status_text(struct fdt_master *m, struct fdt_ctl_client *c)
{
    json_t *st = status_json(m);
    say(c, "OK\nmaster pid %d, %s, version %s\n", (int)getpid(),
        m->stopping ? "stopping" : "running", FDT_VERSION);
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(st, "listeners"), i, l)
    {
        say(c, "listener %s %s (%s)\n", json_string_value(json_object_get(l, "name")),
            json_string_value(json_object_get(l, "bound"))
                ? json_string_value(json_object_get(l, "bound"))
                : json_string_value(json_object_get(l, "address")),
            json_string_value(json_object_get(l, "protocol")));
    }
    json_t *g;
    json_array_foreach(json_object_get(st, "generations"), i, g)
    {
        say(c, "generation %lld %s: %lld workers x %lld threads\n",
            (long long)json_integer_value(json_object_get(g, "id")),
            json_string_value(json_object_get(g, "state")),
            (long long)json_integer_value(json_object_get(g, "workers_wanted")),
            (long long)json_integer_value(json_object_get(g, "threads")));
        if (json_object_get(g, "error"))
            say(c, "  error: %s\n", json_string_value(json_object_get(g, "error")));
        size_t j;
        json_t *w;
        json_array_foreach(json_object_get(g, "workers"), j, w)
        {
            say(c,
                "  worker %lld pid %lld %s heartbeat %.1fs ago, %lld connections open, %lld "
                "requests, %lld txn open, %lld in doubt\n",
                (long long)json_integer_value(json_object_get(w, "index")),
                (long long)json_integer_value(json_object_get(w, "pid")),
                json_string_value(json_object_get(w, "state")),
                json_real_value(json_object_get(w, "heartbeat_age_s")),
                (long long)json_integer_value(json_object_get(w, "connections_open")),
                (long long)json_integer_value(json_object_get(w, "requests")),
                (long long)json_integer_value(json_object_get(w, "transactions_open")),
                (long long)json_integer_value(json_object_get(w, "transactions_in_doubt")));
        }
    }
    if (m->last_reload[0])
        say(c, "last reload: %s: %s\n", m->last_reload_ok ? "ok" : "failed", m->last_reload);
    else
        say(c, "last reload: none\n");
    json_decref(st);
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
        if (argc > 1 && strcmp(argv[1], "json") == 0) {
            json_t *st = status_json(m);
            char *s = json_dumps(st, JSON_COMPACT);
            say(c, "OK\n");
            if (s)
                fdt__buf_append(&c->out, s, strlen(s));
            say(c, "\n");
            free(s);
            json_decref(st);
        } else {
            status_text(m, c);
        }
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
    } else if (strcmp(argv[0], "workers") == 0 && argc == 2) {
        long n;
        if (fdt__parse_long(argv[1], -FDT_MAX_WORKERS, FDT_MAX_WORKERS, &n) < 0 || n == 0) {
            say(c, "ERR workers takes +N or -N\n");
            return;
        }
        for (long i = 0; i < (n > 0 ? n : -n); i++)
            kill(getpid(), n > 0 ? SIGTTIN : SIGTTOU);
        say(c, "OK\n");
    } else {
        say(c,
            "ERR unknown command '%s' (status [json], reload [wait], stop, quit, reopen, "
            "workers +N|-N)\n",
            argv[0]);
    }
}

static void try_flush(struct fdt_master *m, struct fdt_ctl_client *c)
{
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
            client_free(m, c);
            return;
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

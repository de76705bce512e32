#include "fdt_config.h"

#define FDT_LOG_MODULE "master"
#include "log/log.h"
#include "master/master.h"
#include "util/util.h"

#include <errno.h>
#include <fdt/fdt.h>
#include <fdt/log.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: fdtserver [-c FILE] [--listen ADDR[,PROTOCOL]]... [--app PATH.so]\n"
    "                 [--workers N] [--threads N] [--set SECTION.KEY=VALUE]...\n"
    "                 [--pid-file F] [--log-level LEVEL] [--check]\n"
    "       fdtserver -s stop|quit|reload|reopen|upgrade [-c FILE | --pid-file F]\n"
    "       fdtserver txn list | commit GID | rollback GID  -c FILE\n"
    "       fdtserver --version | --help\n"
    "options:\n"
    "  -c, --config FILE          the configuration file\n"
    "  --listen ADDR[,PROTOCOL]   listen on ADDR; repeatable, replaces the file's listeners\n"
    "  --app PATH.so              the application ([app] module)\n"
    "  --workers N                worker processes ([server] workers)\n"
    "  --threads N                threads per worker ([server] threads)\n"
    "  --set SECTION.KEY=VALUE    set any key of the configuration; repeatable\n"
    "  --pid-file F               the pid file ([server] pid_file)\n"
    "  --log-level LEVEL          error, warn, info or debug ([server] log_level)\n"
    "  -t, --check                check the configuration and exit\n"
    "  -s SIGNAL                  signal the running master (found by its pid file):\n"
    "                             stop (graceful), quit (immediate), reload, reopen (logs),\n"
    "                             upgrade (execute the binary anew, keeping the sockets)\n"
    "  -v, --version              print the version and exit\n"
    "  -h, --help                 print this help and exit\n"
    "commands:\n"
    "  txn list                   prepared (in-doubt) transactions of every node\n"
    "  txn commit|rollback GID    resolve one, asking the databases of FILE directly\n";

/* The command line, parsed. Kept as pointers into argv so a reload can re-apply it. */
struct opts {
    const char *file;
    const char *signal;
    const char *pid_file;
    bool check;
    bool help;
    bool version;
    const char *bad; /* first unknown or incomplete option */
};

static bool takes_value(const char *o)
{
    static const char *const with[] = {"-c",        "--config",   "--listen", "--app",
                                       "--workers", "--threads",  "--set",    "--pid-file",
                                       "-s",        "--log-level"};
    for (size_t i = 0; i < FDT_ARRAY_LEN(with); i++) {
        if (strcmp(o, with[i]) == 0)
            return true;
    }
    return false;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (takes_value(a)) {
            if (i + 1 >= argc) {
                o->bad = a;
                return;
            }
            const char *v = argv[++i];
            if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
                o->file = v;
            else if (strcmp(a, "-s") == 0)
                o->signal = v;
            else if (strcmp(a, "--pid-file") == 0)
                o->pid_file = v;
        } else if (strcmp(a, "--check") == 0 || strcmp(a, "-t") == 0) {
            o->check = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = true;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
            o->version = true;
        } else {
            o->bad = a;
            return;
        }
    }
}

/* Apply the options of the command line that set configuration keys, in their order. */
static int apply_options(int argc, char **argv, struct fdt_cfg *cfg, struct fdt_error *err)
{
    bool cli_listen = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!takes_value(a))
            continue;
        const char *v = argv[++i];
        int rc = 0;
        char buf[FDT_CFG_PATH_MAX + 64];
        if (strcmp(a, "--set") == 0) {
            rc = fdt__cfg_set(cfg, v, err);
        } else if (strcmp(a, "--listen") == 0) {
            if (!cli_listen) {
                /* Listeners on the command line replace those of the file. */
                cfg->n_listeners = 0;
                cli_listen = true;
            }
            rc = fdt__cfg_add_listen(cfg, v, err);
        } else if (strcmp(a, "--app") == 0) {
            snprintf(buf, sizeof(buf), "app.module=%s", v);
            rc = fdt__cfg_set(cfg, buf, err);
        } else if (strcmp(a, "--workers") == 0 || strcmp(a, "--threads") == 0 ||
                   strcmp(a, "--pid-file") == 0 || strcmp(a, "--log-level") == 0) {
            snprintf(buf, sizeof(buf), "server.%s=%s", a + 2, v);
            for (char *p = buf; *p && *p != '='; p++) {
                if (*p == '-')
                    *p = '_';
            }
            rc = fdt__cfg_set(cfg, buf, err);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int fdt__master_load_cfg(int argc, char **argv, struct fdt_cfg *cfg, struct fdt_error *err)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    fdt__cfg_init(cfg);
    if (o.bad)
        /* GCOVR_EXCL_START: unreachable: main refuses a bad option before the first load,
         * and a reload parses the same argv again */
        return fdt_error_set(err, FDT_ECONFIG, "bad option %s", o.bad);
    /* GCOVR_EXCL_STOP */
    if (o.file && fdt__cfg_load_file(cfg, o.file, err) < 0)
        return FDT_ECONFIG;
    if (err)
        err->file = NULL, err->line = 0;
    int rc = apply_options(argc, argv, cfg, err);
    if (rc < 0)
        return rc;
    return fdt__cfg_finish(cfg, err);
}

static void print_cfg_error(const struct fdt_error *err)
{
    if (err->file && err->line > 0)
        fprintf(stderr, "fdtserver: %s:%d: %s\n", err->file, err->line, err->msg);
    else if (err->file)
        fprintf(stderr, "fdtserver: %s: %s\n", err->file, err->msg);
    else
        fprintf(stderr, "fdtserver: %s\n", err->msg);
}

static int signal_by_name(const char *name)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {{"stop", SIGTERM},
                {"quit", SIGQUIT},
                {"reload", SIGHUP},
                {"reopen", SIGUSR1},
                {"upgrade", SIGUSR2}};
    for (size_t i = 0; i < FDT_ARRAY_LEN(sigs); i++) {
        if (strcmp(name, sigs[i].name) == 0)
            return sigs[i].sig;
    }
    return 0;
}

/* The pid file of the running master: --pid-file, else [server] pid_file of -c FILE; and how
 * long a graceful stop may take (graceful_timeout of -c FILE, else the default). Returns 0,
 * or the exit status after printing why there is none. */
static int pid_file_of(const struct opts *o, char *path, size_t size, double *graceful)
{
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    struct fdt_error err = {0};
    if (!cfg) {
        fprintf(stderr, "fdtserver: cannot read the configuration: out of memory\n");
        return 1;
    }
    fdt__cfg_init(cfg);
    int code = 0;
    if (o->file && fdt__cfg_load_file(cfg, o->file, &err) < 0) {
        if (!o->pid_file) {
            print_cfg_error(&err);
            code = 2;
        }
        /* With --pid-file a broken file does not keep the master from being signalled. */
        fdt__cfg_deinit(cfg);
        fdt__cfg_init(cfg);
    }
    fdt__strlcpy(path, o->pid_file ? o->pid_file : cfg->pid_file, size);
    *graceful = cfg->graceful_timeout;
    fdt__cfg_deinit(cfg);
    free(cfg);
    if (code)
        return code;
    if (!path[0]) {
        fprintf(stderr, "fdtserver: -s needs a pid file: --pid-file F, or -c FILE with "
                        "[server] pid_file\n");
        return 2;
    }
    return 0;
}

/* Wait until the master holding the pid file open at fd has exited (its lock is gone), for at
 * most timeout_s seconds. Returns the exit status. */
static int wait_master_exit(int fd, pid_t pid, double timeout_s)
{
    int64_t deadline = fdt__now_ms() + (int64_t)(timeout_s * 1000.0);
    while (fdt__pidfile_held(fd)) {
        if (fdt__now_ms() >= deadline) {
            fprintf(stderr, "fdtserver: master %d still running after %.0f s\n", (int)pid,
                    timeout_s);
            return 1;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* fdtserver -s NAME: signal the running master, which is the process holding the lock on the
 * pid file (never just the pid written in it: a stale file may name any process). stop and
 * quit return once the master has exited. Returns the exit status. */
static int send_signal(const struct opts *o)
{
    int sig = signal_by_name(o->signal);
    if (!sig) {
        fprintf(stderr, "fdtserver: -s takes stop, quit, reload, reopen or upgrade\n");
        return 2;
    }
    char path[FDT_CFG_PATH_MAX];
    double graceful;
    int code = pid_file_of(o, path, sizeof(path), &graceful);
    if (code)
        return code;
    pid_t pid;
    struct fdt_error err = {0};
    int fd = fdt__pidfile_owner(path, &pid, &err);
    if (fd < 0) {
        fprintf(stderr, "fdtserver: %s; nothing signalled\n", err.msg);
        return 1;
    }
    if (kill(pid, sig) < 0) {
        fprintf(stderr, "fdtserver: kill %d: %s\n", (int)pid, fdt_strerror(-errno));
        code = 1;
    } else if (sig == SIGTERM) {
        /* The master cuts what is left at graceful_timeout; allow it time to reap. */
        code = wait_master_exit(fd, pid, graceful + 10.0);
    } else if (sig == SIGQUIT) {
        code = wait_master_exit(fd, pid, 10.0);
    }
    close(fd);
    return code;
}

/* Forget the descriptor fd everywhere it is named: generations that share a socket hold
 * the same number, and so does the set of sockets systemd passed. */
static void forget_fd(struct fdt_master *m, int fd)
{
    for (struct fdt_generation *h = m->gens; h; h = h->next) {
        for (int j = 0; j < h->n_listeners; j++) {
            if (h->listeners[j].fd == fd)
                h->listeners[j].fd = -1;
        }
    }
    for (int k = 0; k < m->inherit.n; k++) {
        if (m->inherit.fds[k].fd == fd)
            m->inherit.fds[k].fd = -1;
    }
}

/* Close every listening socket, so no worker accepts again. Unix socket files stay until
 * the master exits. A socket systemd passed stays open in systemd, which queues new
 * connections on it until the service runs again (that is socket activation). */
static void close_listeners(struct fdt_master *m)
{
    for (struct fdt_generation *g = m->gens; g; g = g->next) {
        for (int i = 0; i < g->n_listeners; i++) {
            int fd = g->listeners[i].fd;
            if (fd < 0)
                continue;
            fdt__close(fd);
            forget_fd(m, fd);
        }
    }
    for (int k = 0; k < m->inherit.n; k++) {
        int fd = m->inherit.fds[k].fd;
        if (fd >= 0) {
            fdt__close(fd);
            forget_fd(m, fd);
        }
    }
}

void fdt__master_retire(struct fdt_master *m)
{
    m->retiring = true;
    m->stopping = true;
    close_listeners(m);
    double grace = m->cfg ? m->cfg->graceful_timeout : 30.0;
    m->stop_kill_at_ms = fdt__now_ms() + (int64_t)(grace * 1000.0) + 5000;
    /* A new master serves on: drain as for a reload (promise 4). */
    for (struct fdt_mworker *w = m->workers; w; w = w->next)
        fdt__master_drain_worker(m, w, SIGHUP);
}

void fdt__master_announce_ready(struct fdt_master *m, const struct fdt_generation *g)
{
    fdt_log(FDT_LOG_INFO, "generation %u ready: %d workers x %d threads", g->id, g->target,
            g->cfg->threads);
    if (m->predecessor > 0) {
        /* Told to stop meanwhile (the old master's SIGTERM for being late): this master
         * exits, so it takes nothing over, and the old one serves on. */
        if (!m->stopping)
            fdt__upgrade_handover(m);
        return;
    }
    fdt__notify(&m->notify, "READY=1\nMAINPID=%d\nSTATUS=serving: generation %u, %d workers",
                (int)getpid(), g->id, g->target);
}

static void begin_stop(struct fdt_master *m, bool immediate)
{
    int64_t now = fdt__now_ms();
    if (m->retiring && !immediate && !m->retire_stop) {
        /* Retiring after a binary upgrade, and told to stop: close idle connections too. */
        m->retire_stop = true;
        fdt_log(FDT_LOG_INFO, "graceful stop of the retiring master");
        for (struct fdt_mworker *w = m->workers; w; w = w->next)
            kill(w->pid, SIGTERM);
        return;
    }
    if (!m->stopping) {
        fdt__notify(&m->notify, "STOPPING=1\nSTATUS=stopping");
        fdt__upgrade_abort(m);
    }
    if (m->stopping && !immediate) {
        immediate = true; /* a second TERM means: now */
    }
    if (!m->stopping) {
        fdt_log(FDT_LOG_INFO, "%s stop: closing listeners", immediate ? "immediate" : "graceful");
        close_listeners(m);
        m->stopping = true;
        double grace = m->cfg ? m->cfg->graceful_timeout : 30.0;
        m->stop_kill_at_ms = now + (int64_t)(grace * 1000.0) + 5000;
    }
    if (immediate) {
        if (!m->immediate)
            fdt_log(FDT_LOG_INFO, "immediate stop: workers exit now");
        m->immediate = true;
        m->stop_kill_at_ms = now + 2000;
        for (struct fdt_mworker *w = m->workers; w; w = w->next)
            kill(w->pid, SIGQUIT);
    } else {
        for (struct fdt_mworker *w = m->workers; w; w = w->next)
            fdt__master_drain_worker(m, w, SIGTERM);
    }
}

/* SIGTTIN and SIGTTOU: one worker more or less; ignored beyond the limits. */
static void change_workers(struct fdt_master *m, int delta, const char *why)
{
    if (m->active && fdt__master_set_workers(m, m->active->target + delta, why) == FDT_EAGAIN)
        fdt_log(FDT_LOG_INFO, "%s ignored: the server is stopping", why);
}

static void on_signals(struct fdt_master *m)
{
    struct signalfd_siginfo si;
    while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            fdt__master_reap(m);
            break;
        case SIGTERM:
            begin_stop(m, false);
            break;
        case SIGINT:
        case SIGQUIT:
            begin_stop(m, true);
            break;
        case SIGHUP:
            fdt__master_reload(m);
            break;
        case SIGTTIN:
            change_workers(m, +1, "SIGTTIN");
            break;
        case SIGTTOU:
            change_workers(m, -1, "SIGTTOU");
            break;
        case SIGUSR2:
            fdt__upgrade_start(m);
            break;
        case SIGUSR1:
            fdt_log(FDT_LOG_INFO, "SIGUSR1: reopening log files");
            fdt__log_reopen();
            for (struct fdt_mworker *w = m->workers; w; w = w->next)
                kill(w->pid, SIGUSR1);
            break;
        default:
            break;
        }
    }
}

static int run(struct fdt_master *m)
{
    struct epoll_event events[64];
    for (;;) {
        if (m->stopping && !m->workers)
            break;
        int timeout = fdt__notify_tick(&m->notify, fdt__now_ms(), 200);
        int n = epoll_wait(m->epfd, events, 64, timeout);
        if (n < 0 && errno == EINTR)
            continue; /* SIGSTOP and SIGCONT: read what came meanwhile before supervising (a
                       * worker's READY, not a ready_timeout) */
        if (n < 0) {
            /* GCOVR_EXCL_START: unreachable: the master's own epoll and a local array: no
             * EBADF, EFAULT or EINVAL, and EINTR is handled */
            fdt_log(FDT_LOG_ERROR, "epoll_wait: %s", fdt_strerror(-errno));
            return 1;
            /* GCOVR_EXCL_STOP */
        }
        for (int i = 0; i < n; i++) {
            int kind = *(int *)events[i].data.ptr;
            switch (kind) {
            case FDT_POLL_MSIGNAL:
                on_signals(m);
                break;
            case FDT_POLL_CHANNEL:
                fdt__master_on_channel(m, events[i].data.ptr);
                break;
            case FDT_POLL_CTL:
                fdt__ctl_on_accept(m);
                break;
            case FDT_POLL_CTL_CLIENT:
                fdt__ctl_on_client(m, events[i].data.ptr, events[i].events);
                break;
            case FDT_POLL_UPGRADE:
                fdt__upgrade_on_event(m);
                break;
            case FDT_POLL_PREDECESSOR:
                fdt__upgrade_on_predecessor(m);
                break;
            default:   /* GCOVR_EXCL_LINE: unreachable: the master registers only the kinds above */
                break; /* GCOVR_EXCL_LINE: unreachable: as above */
            }
        }
        fdt__master_free_dead(m);
        fdt__master_supervise(m, fdt__now_ms());
        fdt__upgrade_supervise(m, fdt__now_ms());
        fdt__ctl_tick(m, fdt__now_ms());
    }
    return 0;
}

/* Connections are file descriptors: allow as many as the hard limit does (nginx's
 * worker_rlimit_nofile, without a setting). */
static void raise_nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Signals are read from a signalfd in the loop; block them before anything forks. */
static int open_signals_and_poll(struct fdt_master *m)
{
    sigset_t set;
    sigemptyset(&set);
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT,  SIGQUIT, SIGHUP,
                               SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGPIPE};
    for (size_t i = 0; i < FDT_ARRAY_LEN(sigs); i++)
        sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    const char *what = NULL;
    if ((m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
        what = "signalfd";
    else if ((m->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        what = "epoll_create1";
    else if (!(m->sb = fdt__scoreboard_new()))
        what = "the scoreboard (shared memory)";
    if (what) {
        int rc = -errno;
        fdt_log(FDT_LOG_ERROR, "cannot start: %s (%s)", fdt_strerror(rc), what);
        return rc;
    }
    m->sig_kind = FDT_POLL_MSIGNAL;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &m->sig_kind};
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->sigfd, &ev);
    return 0;
}

/* The sockets passed at start that no listener of the configuration uses: systemd's are
 * kept (a reload may name them), the old master's are closed (the new configuration
 * dropped them). */
static void sort_unused_inherited(struct fdt_master *m)
{
    int kept = 0;
    for (int k = 0; k < m->inherit.n; k++) {
        struct fdt_inherited *e = &m->inherit.fds[k];
        if (e->origin == FDT_LISTEN_SYSTEMD) {
            if (!e->used)
                fdt_log(FDT_LOG_WARN,
                        "the socket %s%s%s passed by systemd matches no [listen.NAME] by name "
                        "or address: kept open, unused",
                        e->addr, e->name[0] ? " named " : "", e->name);
            m->inherit.fds[kept++] = *e;
        } else if (!e->used) {
            fdt_log(FDT_LOG_INFO, "the old master's socket %s is not in the configuration: closed",
                    e->addr);
            fdt__close(e->fd);
        }
        /* The old master's sockets in use belong to the generation from now on. */
    }
    m->inherit.n = kept;
}

static int bind_listeners(struct fdt_master *m, struct fdt_generation *g, struct fdt_error *err)
{
    const struct fdt_cfg *cfg = g->cfg;
    int rc = fdt__inherit_assign(&m->inherit, cfg, g->listeners, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < cfg->n_listeners; i++) {
        struct fdt_listener *l = &g->listeners[i];
        g->n_listeners = i + 1;
        if (l->fd < 0) {
            rc = fdt__listener_bind(l, err);
            if (rc < 0)
                return rc;
        }
        char addr[256];
        fdt__addr_format_fd(l->fd, addr, sizeof(addr));
        fdt_log(FDT_LOG_INFO, "listening on %s (%s, %s%s%s)", addr, l->cfg.name,
                fdt__proto_name(l->cfg.protocol), l->cfg.tls ? " over TLS" : "",
                l->origin == FDT_LISTEN_SYSTEMD   ? ", socket passed by systemd"
                : l->origin == FDT_LISTEN_UPGRADE ? ", socket of the old master"
                                                  : "");
    }
    sort_unused_inherited(m);
    return fdt__gen_tls_load(g, err);
}

/* Sockets, control socket and pid file of the first generation, then its workers. On failure
 * the caller undoes it all with abandon_start(). */
static int start_first_generation(struct fdt_master *m)
{
    const struct fdt_cfg *cfg = m->cfg;
    struct fdt_generation *g = fdt__gen_new(m, m->cfg);
    if (!g) {
        fdt_log(FDT_LOG_ERROR, "cannot start: the first generation: %s", fdt_strerror(FDT_ENOMEM));
        return FDT_ENOMEM;
    }
    struct fdt_error err = {0};
    int rc = bind_listeners(m, g, &err);
    /* A master that replaces another (binary upgrade) takes the control socket and the pid
     * file only once it serves: until then they stay the old master's. */
    if (rc == 0 && m->predecessor <= 0)
        rc = fdt__ctl_open(m, &err);
    if (rc == 0 && m->predecessor <= 0) {
        fdt__strlcpy(m->pid_path, cfg->pid_file, sizeof(m->pid_path));
        rc = fdt__pidfile_write(m->pid_path, &m->pid_fd, 0, &err);
    }
    if (rc < 0) {
        fdt_log(FDT_LOG_ERROR, "%s", err.msg);
        return rc;
    }
    prctl(PR_SET_NAME, "fdt-master");
    fdt_log(FDT_LOG_INFO, "fdtserver %s master pid %d: %d workers x %d threads, app %s",
            FDT_VERSION, (int)getpid(), cfg->workers, cfg->threads,
            cfg->app_module[0] ? cfg->app_module
                               : (cfg->app_wsgi[0] ? cfg->app_wsgi : cfg->app_jsonrpc));
    m->starting = g;
    for (int i = 0; i < g->target; i++) {
        int spawned = fdt__master_spawn(m, g, (unsigned)i);
        if (spawned < 0) {
            char why[160];
            snprintf(why, sizeof(why), "cannot start worker %d: %s", i, fdt_strerror(spawned));
            fdt__master_gen_failed(m, g, why);
            break;
        }
    }
    return 0;
}

/* Everything the master needs before its loop runs. */
static int master_start(struct fdt_master *m)
{
    const struct fdt_cfg *cfg = m->cfg;
    fdt__log_set_level(cfg->log_level);
    fdt__log_set_json(cfg->log_format == FDT_LOG_FORMAT_JSON);
    fdt__log_set_role("master", 0);
    raise_nofile_limit();
    fdt__log_set_file_mode(cfg->group[0] != '\0');
    if (fdt__log_open(cfg->error_log) < 0) {
        int rc = -errno;
        fprintf(stderr, "fdtserver: cannot open error_log %s: %s\n", cfg->error_log,
                fdt_strerror(rc));
        return rc;
    }
    int rc = open_signals_and_poll(m);
    if (rc < 0)
        return rc;
    struct fdt_error err = {0};
    fdt__notify_init(&m->notify);
    rc = fdt__inherit_systemd(&m->inherit, &err);
    if (rc >= 0)
        rc = fdt__upgrade_adopt(m, &err);
    if (rc < 0) {
        fdt_log(FDT_LOG_ERROR, "%s", err.msg);
        return rc;
    }
    return start_first_generation(m);
}

/* Start-up failed before any worker ran: undo what was set up. */
static void abandon_start(struct fdt_master *m)
{
    for (struct fdt_generation *g = m->gens; g; g = g->next) {
        for (int i = 0; i < g->n_listeners; i++)
            fdt__listener_close(&g->listeners[i], true);
    }
    fdt__ctl_close_all(m);
}

/* After the loop: remove what the master left in the file system. Returns the exit status:
 * 0 if the server ever served, else 1. */
static int master_finish(struct fdt_master *m)
{
    bool ever_served = m->active != NULL || m->reloads_ok > 0;
    /* The files of unix sockets this master bound; after a binary upgrade they are the new
     * master's. */
    for (struct fdt_generation *g = m->gens; g && !m->retiring; g = g->next) {
        for (int i = 0; i < g->n_listeners; i++) {
            const char *a = g->listeners[i].cfg.address;
            if (g->listeners[i].origin == FDT_LISTEN_BOUND && strncmp(a, "unix:", 5) == 0)
                unlink(a + 5);
        }
    }
    fdt__ctl_close_all(m);
    fdt__pidfile_remove(m->pid_path, m->pid_fd);
    m->pid_fd = -1;
    int code = ever_served ? 0 : 1;
    fdt_log(FDT_LOG_INFO, "master exiting (%d)", code);
    return code;
}

/* Run the server with cfg (taken) until it stops. Returns the exit status. */
static int serve(int argc, char **argv, struct fdt_cfg *cfg)
{
    /* The master's whole state: one struct, owned here and passed down. */
    struct fdt_master *m = calloc(1, sizeof(*m));
    if (!m) {
        fprintf(stderr, "fdtserver: cannot start: out of memory\n");
        fdt__cfg_deinit(cfg);
        free(cfg);
        return 1;
    }
    m->argc = argc;
    m->argv = argv;
    m->epfd = -1;
    m->sigfd = -1;
    m->ctl_fd = -1;
    m->pid_fd = -1;
    m->notify.fd = -1;
    m->upgrade_fd = -1;
    m->predecessor_fd = -1;
    m->started_wall_ms = fdt__wall_ms();
    fdt__upgrade_init_exe(m, argv[0]);
    m->cfg = cfg;
    int code = 1;
    if (master_start(m) == 0) {
        (void)run(m);
        code = master_finish(m);
    } else {
        abandon_start(m);
    }
    fdt__notify_deinit(&m->notify);
    fdt__master_free(m);
    free(m);
    return code;
}

/* The configuration to start with. Returns it (owned by the caller), or NULL after printing
 * why, with *code set to the exit status. */
static struct fdt_cfg *start_cfg(int argc, char **argv, int *code)
{
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    if (!cfg) {
        fprintf(stderr, "fdtserver: cannot read the configuration: out of memory\n");
        *code = 1;
        return NULL;
    }
    struct fdt_error err = {0};
    if (fdt__master_load_cfg(argc, argv, cfg, &err) < 0) {
        print_cfg_error(&err);
        fdt__cfg_deinit(cfg);
        free(cfg);
        *code = 2;
        return NULL;
    }
    return cfg;
}

int fdt_server_main(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    if (o.help) {
        fputs(usage, stdout);
        return 0;
    }
    if (o.version) {
        printf("fdtserver %s\n", FDT_VERSION);
        return 0;
    }
    if (o.bad) {
        fprintf(stderr, "fdtserver: bad option %s\n%s", o.bad, usage);
        return 2;
    }
    if (o.signal)
        return send_signal(&o);
    int code = 0;
    struct fdt_cfg *cfg = start_cfg(argc, argv, &code);
    if (!cfg)
        return code;
    if (o.check) {
        /* What would be loaded (stdout only: a dsn may hold a password), then whether it
         * can be: accounts, files, and the application loaded in a throwaway child. */
        printf("# fdtserver --check: the effective configuration (settings that differ from "
               "their defaults)\n");
        fdt__cfg_describe(cfg, stdout);
        int rc = fdt__master_check(cfg);
        if (rc == 0)
            printf("fdtserver: configuration ok\n");
        fdt__cfg_deinit(cfg);
        free(cfg);
        return rc == 0 ? 0 : 2;
    }
    return serve(argc, argv, cfg);
}

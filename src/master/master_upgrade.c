#include "fdt_config.h"

#define FDT_LOG_MODULE "master"
#include "master/master.h"
#include "proc/proc.h"
#include "util/util.h"

#include <errno.h>
#include <fdt/log.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Binary upgrade (nginx's and unicorn's SIGUSR2). The old master forks a child that
 * executes the binary at the path the old one was started as, with the listening sockets
 * left open across exec and named in FDT_UPGRADE_FDS, and one end of a channel
 * (FDT_UPGRADE_CHANNEL). The new master starts its first generation on those sockets; the
 * old one serves meanwhile. When every new worker is ready, the new master takes the pid
 * file and the control socket and sends 'R'; the old master tells systemd the new main pid
 * (MAINPID=, which systemd accepts from its main process), answers 'A', and drains its
 * workers as for a reload, then exits. Only after 'A' does the new master speak to systemd
 * (MAINPID, READY), so every notification comes from the main process of the moment. A new
 * master that exits, or closes the channel, before 'R' has failed: the old one keeps
 * serving and logs how it ended. On the channel (struct fdt_msg), 'R' is FDT_MSG_READY and
 * 'A' FDT_MSG_DRAINING; after 'A' the old master sends on it, as FDT_MSG_CONN, the idle
 * connections its retiring workers hand over (as in a reload, promise 4), until it exits. */

#define ENV_FROM    "FDT_UPGRADE_FROM"
#define ENV_CHANNEL "FDT_UPGRADE_CHANNEL"
#define ENV_FDS     "FDT_UPGRADE_FDS"
#define ENV_GEN     "FDT_UPGRADE_GENERATION"

/* Time for a new master to get ready beyond its workers' ready_timeout, then for it to stop
 * once told to. */
#define UPGRADE_SLACK_MS 30000
#define UPGRADE_STOP_MS  10000

void fdt__upgrade_init_exe(struct fdt_master *m, const char *argv0)
{
    m->exe_path[0] = '\0';
    if (argv0 && argv0[0] == '/') {
        fdt__strlcpy(m->exe_path, argv0, sizeof(m->exe_path));
    } else if (argv0 && strchr(argv0, '/')) {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)))
            snprintf(m->exe_path, sizeof(m->exe_path), "%s/%s", cwd, argv0);
    }
    if (!m->exe_path[0]) {
        /* Found through PATH: the file the kernel executed. */
        ssize_t n = readlink("/proc/self/exe", m->exe_path, sizeof(m->exe_path) - 1);
        m->exe_path[n > 0 ? n : 0] = '\0';
    }
}

static void close_channel(struct fdt_master *m)
{
    if (m->upgrade_fd < 0)
        return;
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->upgrade_fd, NULL);
    fdt__close(m->upgrade_fd);
    m->upgrade_fd = -1;
}

/* The sockets a new master inherits: the active generation's, and systemd's that it does
 * not use (a later configuration may). Writes FDT_UPGRADE_FDS into out. */
static int passed_fds(struct fdt_master *m, char *out, size_t size)
{
    out[0] = '\0';
    const struct fdt_generation *g = m->active;
    for (int i = 0; i < g->n_listeners; i++) {
        const struct fdt_listener *l = &g->listeners[i];
        if (l->fd < 0)
            continue; /* GCOVR_EXCL_LINE: unreachable: the serving generation's are all open */
        const char *name = l->cfg.name;
        /* A systemd socket keeps systemd's name, which may differ from the listener's. */
        for (int k = 0; k < m->inherit.n; k++) {
            if (m->inherit.fds[k].fd == l->fd)
                name = m->inherit.fds[k].name;
        }
        enum fdt_listen_origin o =
            l->origin == FDT_LISTEN_SYSTEMD ? FDT_LISTEN_SYSTEMD : FDT_LISTEN_UPGRADE;
        if (fdt__inherit_format(out, size, l->fd, o, name) < 0)
            return FDT_ELIMIT; /* GCOVR_EXCL_LINE: unreachable: 32 listeners of names < 64
                                * bytes take < 2600 of the 4096 (only the unused ones
                                * systemd passed can exceed it, below) */
    }
    for (int k = 0; k < m->inherit.n; k++) {
        const struct fdt_inherited *e = &m->inherit.fds[k];
        bool in_active = false;
        for (int i = 0; i < g->n_listeners; i++)
            in_active = in_active || g->listeners[i].fd == e->fd;
        if (e->fd >= 0 && !in_active &&
            fdt__inherit_format(out, size, e->fd, e->origin, e->name) < 0)
            return FDT_ELIMIT;
    }
    return 0;
}

/* In the forked child: become the new master. Never returns. */
__attribute__((noreturn)) static void exec_new_master(struct fdt_master *m, int chan,
                                                      const char *fds)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    const struct fdt_generation *g = m->active;
    for (int i = 0; i < g->n_listeners; i++) {
        if (g->listeners[i].fd >= 0)
            fdt__fd_cloexec(g->listeners[i].fd, false);
    }
    for (int k = 0; k < m->inherit.n; k++) {
        if (m->inherit.fds[k].fd >= 0)
            fdt__fd_cloexec(m->inherit.fds[k].fd, false);
    }
    fdt__fd_cloexec(chan, false);
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", (int)getppid());
    setenv(ENV_FROM, buf, 1);
    snprintf(buf, sizeof(buf), "%d", chan);
    setenv(ENV_CHANNEL, buf, 1);
    setenv(ENV_FDS, fds, 1);
    /* Generation numbers go on from the old master's, so logs and status never repeat one. */
    snprintf(buf, sizeof(buf), "%u", m->next_gen_id);
    setenv(ENV_GEN, buf, 1);
    fdt__notify_export(&m->notify);
    execv(m->exe_path, m->argv);
    fdt_log(FDT_LOG_ERROR, "binary upgrade: cannot execute %s: %s", m->exe_path,
            fdt_strerror(-errno));
    fdt__exit(127);
}

void fdt__upgrade_start(struct fdt_master *m)
{
    const char *refuse = NULL;
    if (m->stopping)
        refuse = "the server is stopping";
    else if (m->upgrade_pid > 0)
        refuse = "an upgrade is already in progress";
    else if (m->predecessor > 0)
        refuse = "this master is still taking over from the old one";
    else if (!m->active || m->starting)
        refuse = "a generation is starting; try again when it serves";
    else if (!m->exe_path[0])
        refuse = "the path of the binary is unknown";
    if (refuse) {
        fdt_log(FDT_LOG_WARN, "SIGUSR2: binary upgrade refused: %s", refuse);
        fdt__notify(&m->notify, "STATUS=binary upgrade refused: %s", refuse);
        return;
    }
    char fds[4096];
    int sp[2] = {-1, -1};
    if (passed_fds(m, fds, sizeof(fds)) < 0) {
        fdt_log(FDT_LOG_ERROR, "binary upgrade refused: too many listening sockets");
        return;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
        fdt_log(FDT_LOG_ERROR, "binary upgrade: socketpair: %s", fdt_strerror(-errno));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        /* GCOVR_EXCL_START: not reached: fork fails only out of memory or processes (the
         * test runs as root, which RLIMIT_NPROC does not limit) */
        fdt_log(FDT_LOG_ERROR, "binary upgrade: fork: %s", fdt_strerror(-errno));
        fdt__close(sp[0]);
        fdt__close(sp[1]);
        return;
        /* GCOVR_EXCL_STOP */
    }
    if (pid == 0) {
        fdt__close(sp[0]);
        exec_new_master(m, sp[1], fds);
    }
    fdt__close(sp[1]);
    fdt__fd_nonblock(sp[0], true);
    m->upgrade_pid = pid;
    m->upgrade_fd = sp[0];
    m->upgrade_kind = FDT_POLL_UPGRADE;
    m->upgrade_handed_over = false;
    m->upgrade_kills = 0;
    m->upgrade_deadline_ms =
        fdt__now_ms() + (int64_t)(m->cfg->ready_timeout * 1000.0) + UPGRADE_SLACK_MS;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &m->upgrade_kind};
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->upgrade_fd, &ev);
    fdt_log(FDT_LOG_INFO,
            "SIGUSR2: binary upgrade: started %s as pid %d; this master serves until it is ready",
            m->exe_path, (int)pid);
    fdt__notify(&m->notify, "STATUS=binary upgrade: new master %d starting", (int)pid);
}

/* Old side: answer 'A' and retire. */
static void acknowledge(struct fdt_master *m)
{
    m->upgrade_ack_pending = false;
    /* The channel stays open: idle connections go to the new master on it. */
    int rc = m->upgrade_fd >= 0 ? fdt__channel_send(m->upgrade_fd, FDT_MSG_DRAINING, 0, "") : 0;
    if (rc < 0) {
        /* Closing the channel tells it too: the new master takes over when it ends. */
        fdt_log(FDT_LOG_WARN,
                "binary upgrade: cannot answer new master %d: %s; its idle connections "
                "are closed instead of handed over",
                (int)m->upgrade_pid, fdt_strerror(rc));
        close_channel(m);
    }
    fdt_log(FDT_LOG_INFO, "binary upgrade: new master %d serves; this master drains and exits",
            (int)m->upgrade_pid);
    fdt__master_retire(m);
}

bool fdt__upgrade_pass_conn(struct fdt_master *m, int fd, const char *listener)
{
    if (!m->upgrade_handed_over || m->upgrade_ack_pending || m->upgrade_fd < 0)
        return false;
    return fdt__channel_send_fd(m->upgrade_fd, FDT_MSG_CONN, 0, listener, fd, MSG_DONTWAIT) == 0;
}

void fdt__upgrade_on_event(struct fdt_master *m)
{
    struct fdt_msg msg;
    int rc = fdt__channel_recv(m->upgrade_fd, &msg);
    if (rc == FDT_EAGAIN)
        return;
    /* Ready after it was sent SIGTERM for being late: it is stopping, not taking over. */
    if (rc == 1 && msg.type == FDT_MSG_READY && m->upgrade_kills > 0)
        fdt_log(FDT_LOG_WARN,
                "binary upgrade: new master %d ready after it was told to stop: not taken; "
                "this master keeps serving",
                (int)m->upgrade_pid);
    else if (rc == 1 && msg.type == FDT_MSG_READY && !m->stopping && !m->upgrade_handed_over) {
        /* Tell systemd before answering: the new master speaks only after the answer. */
        fdt__notify(&m->notify, "MAINPID=%d\nSTATUS=binary upgrade: master %d serves",
                    (int)m->upgrade_pid, (int)m->upgrade_pid);
        m->notify.muted = true;
        m->upgrade_handed_over = true;
        /* The answer lets the new master speak: only once systemd has MAINPID= (it waits
         * in our queue when systemd's is full), or after 5 s whatever happens. */
        m->upgrade_ack_pending = true;
        m->upgrade_ack_by_ms = fdt__now_ms() + 5000;
        if (fdt__notify_flushed(&m->notify))
            acknowledge(m);
        return;
    }
    /* End of file (or nonsense): the new master gave up. How it ended comes with SIGCHLD. */
    close_channel(m);
}

/* The file at path is no longer the one open at fd (or is gone). */
static bool replaced(const char *path, int fd)
{
    struct stat mine, now;
    return fstat(fd, &mine) < 0 || lstat(path, &now) < 0 || mine.st_dev != now.st_dev ||
           mine.st_ino != now.st_ino;
}

/* A new master that failed had made the control socket and the pid file its own just
 * before it said it was ready: this master, serving on, makes them again, or nothing could
 * reach it there (fdtctl, fdtserver -s). */
static void reclaim_paths(struct fdt_master *m)
{
    struct fdt_error err = {0};
    /* The socket's file, not the socket (whose fstat is sockfs's inode): as fdt__ctl_open
     * found it after bind. */
    struct stat now;
    bool ctl_replaced =
        lstat(m->ctl_path, &now) < 0 || now.st_dev != m->ctl_dev || now.st_ino != m->ctl_ino;
    if (m->ctl_fd >= 0 && ctl_replaced) {
        epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->ctl_fd, NULL);
        fdt__close(m->ctl_fd);
        m->ctl_fd = -1;
        m->ctl_resume_ms = 0; /* a pause of accept was the old socket's */
        if (fdt__ctl_open(m, &err) < 0)
            fdt_log(FDT_LOG_ERROR,
                    "binary upgrade failed, and the control socket cannot be made again "
                    "(fdtctl cannot reach this master): %s",
                    err.msg);
        else
            fdt_log(FDT_LOG_INFO, "binary upgrade failed: control socket %s made again",
                    m->ctl_path);
    }
    if (m->pid_fd >= 0 && replaced(m->pid_path, m->pid_fd)) {
        int fd = -1;
        if (fdt__pidfile_write(m->pid_path, &fd, 0, &err) < 0) {
            fdt_log(FDT_LOG_ERROR,
                    "binary upgrade failed, and the pid file cannot be written again "
                    "(fdtserver -s cannot find this master): %s",
                    err.msg);
        } else {
            fdt__close(m->pid_fd);
            m->pid_fd = fd;
            fdt_log(FDT_LOG_INFO, "binary upgrade failed: pid file %s written again", m->pid_path);
        }
    }
}

bool fdt__upgrade_reaped(struct fdt_master *m, pid_t pid, int status)
{
    if (pid <= 0 || pid != m->upgrade_pid)
        return false;
    char how[128];
    fdt__describe_status(status, how, sizeof(how));
    close_channel(m);
    if (m->upgrade_ack_pending) {
        /* Gone between its 'R' and our answer: this master is the service again. */
        m->upgrade_ack_pending = false;
        m->upgrade_handed_over = false;
        m->notify.muted = false;
        fdt_log(FDT_LOG_ERROR,
                "binary upgrade failed: the new master (pid %d) %s as it took "
                "over; this master keeps serving",
                (int)pid, how);
        fdt__notify(&m->notify, "MAINPID=%d\nSTATUS=binary upgrade failed: new master %s",
                    (int)getpid(), how);
        reclaim_paths(m);
    } else if (m->upgrade_handed_over) {
        fdt_log(FDT_LOG_INFO, "new master %d %s", (int)pid, how);
    } else {
        fdt_log(FDT_LOG_ERROR,
                "binary upgrade failed: the new master (pid %d, %s) %s before it was ready; "
                "this master keeps serving",
                (int)pid, m->exe_path, how);
        fdt__notify(&m->notify, "STATUS=binary upgrade failed: new master %s; still serving", how);
        reclaim_paths(m); /* it may have died between making them and saying so */
    }
    m->upgrade_pid = 0;
    m->upgrade_handed_over = false;
    return true;
}

void fdt__upgrade_supervise(struct fdt_master *m, int64_t now)
{
    if (m->upgrade_ack_pending &&
        (fdt__notify_flushed(&m->notify) || now >= m->upgrade_ack_by_ms)) {
        acknowledge(m);
        return;
    }
    if (m->upgrade_pid <= 0 || m->upgrade_handed_over || now < m->upgrade_deadline_ms)
        return;
    int sig = m->upgrade_kills == 0 ? SIGTERM : SIGKILL;
    fdt_log(FDT_LOG_ERROR, "binary upgrade: new master %d not ready in time: sending %s",
            (int)m->upgrade_pid, sig == SIGTERM ? "SIGTERM" : "SIGKILL");
    kill(m->upgrade_pid, sig);
    m->upgrade_kills++;
    m->upgrade_deadline_ms = now + (int64_t)(m->cfg->graceful_timeout * 1000.0) + UPGRADE_STOP_MS;
}

void fdt__upgrade_abort(struct fdt_master *m)
{
    if (m->upgrade_pid <= 0 || m->upgrade_handed_over)
        return;
    fdt_log(FDT_LOG_INFO, "stopping: the binary upgrade is abandoned (new master %d stops)",
            (int)m->upgrade_pid);
    kill(m->upgrade_pid, SIGTERM);
    close_channel(m);
}

int fdt__upgrade_adopt(struct fdt_master *m, struct fdt_error *err)
{
    m->predecessor_fd = -1;
    const char *from_s = getenv(ENV_FROM);
    const char *chan_s = getenv(ENV_CHANNEL);
    const char *fds_s = getenv(ENV_FDS);
    const char *gen_s = getenv(ENV_GEN);
    long from = 0, chan = -1, gen = 0;
    bool ok = from_s && chan_s && fds_s && fdt__parse_long(from_s, 1, 1L << 30, &from) == 0 &&
              fdt__parse_long(chan_s, 0, 1L << 20, &chan) == 0;
    int rc = 0;
    if (from_s && !ok) {
        rc = fdt_error_set(err, FDT_ECONFIG, "binary upgrade: bad %s, %s or %s", ENV_FROM,
                           ENV_CHANNEL, ENV_FDS);
    } else if (ok && from != (long)getppid()) {
        /* Left in the environment by something else: these descriptors are not ours. */
        fdt_log(FDT_LOG_WARN, "ignoring %s=%ld: that process is not this master's parent", ENV_FROM,
                from);
        ok = false;
    } else if (ok) {
        int n = fdt__inherit_parse(&m->inherit, fds_s, err);
        rc = n < 0 ? n : 0;
    }
    if (rc == 0 && ok) {
        m->predecessor = (pid_t)from;
        m->predecessor_fd = (int)chan;
        fdt__fd_cloexec(m->predecessor_fd, true);
        fdt__fd_nonblock(m->predecessor_fd, true);
        m->predecessor_kind = FDT_POLL_PREDECESSOR;
        if (gen_s && fdt__parse_long(gen_s, 0, 1L << 30, &gen) == 0)
            m->next_gen_id = (unsigned)gen;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &m->predecessor_kind};
        epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->predecessor_fd, &ev);
        /* Not systemd's main process until the old master says so. */
        m->notify.muted = true;
        fdt_log(FDT_LOG_INFO, "binary upgrade: taking over from master %d (%d sockets)",
                (int)m->predecessor, m->inherit.n);
    }
    unsetenv(ENV_FROM);
    unsetenv(ENV_CHANNEL);
    unsetenv(ENV_FDS);
    unsetenv(ENV_GEN);
    return rc;
}

/* New side: this master is the service from now on. */
static void take_over(struct fdt_master *m)
{
    pid_t old = m->predecessor;
    m->predecessor = 0;
    m->notify.muted = false;
    fdt_log(FDT_LOG_INFO, "binary upgrade: master %d serves in place of master %d", (int)getpid(),
            (int)old);
    fdt__notify(&m->notify, "MAINPID=%d\nREADY=1\nSTATUS=serving: generation %u, %d workers",
                (int)getpid(), m->active->id, m->active->target);
}

static void close_predecessor(struct fdt_master *m)
{
    if (m->predecessor_fd < 0)
        return;
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->predecessor_fd, NULL);
    fdt__close(m->predecessor_fd);
    m->predecessor_fd = -1;
}

void fdt__upgrade_handover(struct fdt_master *m)
{
    struct fdt_error err = {0};
    fdt__strlcpy(m->pid_path, m->cfg->pid_file, sizeof(m->pid_path));
    if (fdt__pidfile_write(m->pid_path, &m->pid_fd, m->predecessor, &err) < 0)
        fdt_log(FDT_LOG_ERROR, "binary upgrade: %s", err.msg);
    if (fdt__ctl_open(m, &err) < 0)
        fdt_log(FDT_LOG_ERROR, "binary upgrade: %s", err.msg);
    /* The sockets are this master's now: it removes their files when it stops. */
    for (int i = 0; i < m->active->n_listeners; i++) {
        if (m->active->listeners[i].origin == FDT_LISTEN_UPGRADE)
            m->active->listeners[i].origin = FDT_LISTEN_BOUND;
    }
    if (m->predecessor_fd < 0 ||
        fdt__channel_send(m->predecessor_fd, FDT_MSG_READY, (uint32_t)getpid(), "") < 0) {
        close_predecessor(m); /* the old master is gone: serve on alone */
        take_over(m);
    }
}

void fdt__upgrade_on_predecessor(struct fdt_master *m)
{
    struct fdt_msg msg;
    int fd = -1, rc = 0;
    while (m->predecessor_fd >= 0 &&
           (rc = fdt__channel_recv_fd(m->predecessor_fd, &msg, &fd)) == 1) {
        if (fd >= 0 && msg.type == FDT_MSG_CONN && m->active)
            fdt__master_pass_conn(m, NULL, fd, msg.text);
        else if (fd >= 0)
            fdt__close(fd); /* GCOVR_EXCL_LINE: unreachable: descriptors come only with CONN */
        else if (msg.type == FDT_MSG_DRAINING && m->active && m->predecessor > 0)
            take_over(m);
    }
    if (m->predecessor_fd < 0 || rc == FDT_EAGAIN)
        return;
    /* The old master is gone (it exited after its workers, or died). */
    close_predecessor(m);
    if (m->active && m->predecessor > 0)
        take_over(m);
}

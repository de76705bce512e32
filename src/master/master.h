/* The master process: sockets, signals, fork, supervision, configuration. It never loads
 * the application and never reads or writes a client byte (it only carries the descriptor
 * of an idle connection from a retiring worker to its successor: promise 4). */
#ifndef FDT_SRC_MASTER_H
#define FDT_SRC_MASTER_H

#include "config/config.h"
#include "listen/listen.h"
#include "proc/proc.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

enum fdt_gen_state {
    FDT_GEN_STARTING = 0, /* workers forked, waiting for every one to be ready */
    FDT_GEN_ACTIVE = 1,   /* serving */
    FDT_GEN_DRAINING = 2, /* told to stop; waiting for its workers to exit */
    FDT_GEN_FAILED = 3,   /* start failed; waiting for its workers to exit */
};

enum fdt_mworker_state {
    FDT_MW_STARTING = 0,
    FDT_MW_READY = 1,
    FDT_MW_DRAINING = 2,
};

struct fdt_generation;

struct fdt_mworker {
    int kind; /* poll kind for the channel */
    pid_t pid;
    int slot;
    int chan;
    unsigned index;
    enum fdt_mworker_state state;
    int64_t spawned_ms;
    int64_t ready_deadline_ms;
    int64_t kill_at_ms; /* 0, or when a draining worker gets SIGKILL */
    bool killed;
    bool gone;            /* reaped; freed after the current batch of events */
    bool drain_confirmed; /* said FDT_MSG_DRAINING */
    bool recycling;       /* asked to be replaced (FDT_MSG_RECYCLE); a successor starts */
    bool timed_out;       /* killed by the supervisor (worker_timeout, ready_timeout) */
    pid_t replaces;       /* a recycled worker this one replaces once ready (0: none) */
    struct fdt_generation *gen;
    struct fdt_mworker *next; /* all workers of the master */
};

struct fdt_generation {
    unsigned id;
    enum fdt_gen_state state;
    struct fdt_cfg *cfg; /* owned */
    struct fdt_listener listeners[FDT_CFG_MAX_LISTENERS];
    int n_listeners;
    int target;    /* workers wanted (ACTIVE) */
    int n_workers; /* alive */
    int n_ready;
    int fails[FDT_MAX_WORKERS];
    int64_t respawn_at[FDT_MAX_WORKERS]; /* 0: nothing scheduled */
    bool index_alive[FDT_MAX_WORKERS];
    char fail_reason[512];
    struct fdt_generation *next;
};

struct fdt_ctl_client;

/* The master's side of systemd's notification protocol (master_notify.c). */
#define FDT_NOTIFY_QUEUE 16
#define FDT_NOTIFY_MAX   512

struct fdt_notify {
    int fd; /* datagram socket, -1 when NOTIFY_SOCKET was not set */
    struct sockaddr_un addr;
    socklen_t len;
    char socket_env[sizeof(((struct sockaddr_un *)0)->sun_path) + 1]; /* NOTIFY_SOCKET */
    int64_t watchdog_usec; /* 0: no watchdog for this process */
    int64_t next_ping_ms;
    bool muted; /* not the service's main process (yet, or any more): say nothing */
    /* Messages systemd's queue had no room for, oldest first, resent from the loop. */
    char queue[FDT_NOTIFY_QUEUE][FDT_NOTIFY_MAX];
    int queued;
};

struct fdt_master {
    struct fdt_cfg *cfg; /* of the active generation */
    char cfg_file[FDT_CFG_PATH_MAX];
    int argc;
    char **argv; /* to re-read the command line on reload */
    struct fdt_scoreboard *sb;
    int epfd;
    int sigfd;
    int sig_kind;
    int ctl_kind;
    int ctl_fd;
    int64_t ctl_resume_ms; /* accepting paused (out of descriptors) until then; 0: not paused */
    char ctl_path[FDT_CFG_PATH_MAX];
    char pid_path[FDT_CFG_PATH_MAX];
    int pid_fd;                  /* holds the pid file's lock; -1 without a pid file */
    struct fdt_generation *gens; /* newest first */
    struct fdt_generation *active;
    struct fdt_generation *starting;
    unsigned next_gen_id;
    struct fdt_mworker *workers;
    struct fdt_mworker *dead; /* reaped, waiting to be freed between event batches */
    bool stopping;
    bool immediate;
    int64_t stop_kill_at_ms;
    bool reload_pending;
    /* The generation a reload is replacing, until each of its workers stops accepting. */
    struct fdt_generation *confirming;
    char confirm_msg[200];
    unsigned reload_seq;   /* number of the last reload started */
    unsigned handoff_next; /* round robin of handed-over connections (pass_conn) */
    struct fdt_ctl_client *clients;
    /* Last reload, for status. */
    char last_reload[600];
    bool last_reload_ok;
    int64_t last_reload_wall_ms;
    unsigned reloads_ok;
    unsigned reloads_failed;
    int64_t started_wall_ms;
    /* The control socket file this master made (to remove only that one). */
    dev_t ctl_dev;
    ino_t ctl_ino;
    struct fdt_notify notify;
    /* Sockets passed at start: systemd's stay here for the master's life. */
    struct fdt_inherit inherit;
    /* The binary to execute on SIGUSR2: the path this one was started as. */
    char exe_path[FDT_CFG_PATH_MAX];
    /* Binary upgrade, old side: the new master, from fork until it is reaped. */
    pid_t upgrade_pid;
    int upgrade_fd; /* channel to it; -1 once closed */
    int upgrade_kind;
    int64_t upgrade_deadline_ms;
    int upgrade_kills; /* signals sent to a new master that took too long */
    bool upgrade_handed_over;
    bool upgrade_ack_pending;  /* 'A' waits until MAINPID= has reached systemd */
    int64_t upgrade_ack_by_ms; /* ... or until then */
    bool retiring;             /* a new master serves: drain the workers, then exit */
    bool retire_stop;          /* a SIGTERM came while retiring */
    /* Binary upgrade, new side: the master this one replaces, until the handover. */
    pid_t predecessor;
    int predecessor_fd;
    int predecessor_kind;
};

/* master_workers.c */
int fdt__master_spawn(struct fdt_master *m, struct fdt_generation *g, unsigned index);
void fdt__master_reap(struct fdt_master *m);
void fdt__master_on_channel(struct fdt_master *m, struct fdt_mworker *mw);
void fdt__master_supervise(struct fdt_master *m, int64_t now);
/* Drain every worker of g (fdt__master_drain_worker with sig: SIGHUP or SIGTERM). */
void fdt__master_signal_gen(struct fdt_master *m, struct fdt_generation *g, int sig);
/* Tell a worker to drain: sig SIGTERM when the service stops (idle connections are closed,
 * promise 3), SIGHUP when a successor serves on (a reload, one worker fewer: idle keep-alive
 * connections are kept until the idle time the protocol advertised, promise 4). */
void fdt__master_drain_worker(struct fdt_master *m, struct fdt_mworker *mw, int sig);
struct fdt_generation *fdt__gen_new(struct fdt_master *m, struct fdt_cfg *cfg);
/* Read the certificates and keys of g's TLS listeners into TLS contexts, with one new
 * session ticket key for the whole generation (its workers inherit both across fork: files
 * readable by root only are read here, before workers drop privileges). Returns 0, or a
 * negative code with err saying which file and why (the start or reload is then refused).
 * Thread: main. */
int fdt__gen_tls_load(struct fdt_generation *g, struct fdt_error *err);
/* Free the TLS contexts of g (its workers keep their copies). */
void fdt__gen_tls_free(struct fdt_generation *g);
/* Set the number of workers of the active generation to target (1 to FDT_MAX_WORKERS):
 * spawn the missing ones or drain the highest indexes; `why` starts the log line. Returns 0,
 * FDT_EINVAL for a target out of range, or FDT_EAGAIN when no generation is active or the
 * server is stopping. */
int fdt__master_set_workers(struct fdt_master *m, int target, const char *why);
/* Publish what the metrics show of the master (generations, reloads) in the scoreboard's
 * struct fdt_master_stats. Called from the master's loop and before it renders metrics. */
void fdt__master_publish_stats(struct fdt_master *m);
/* Free every generation and the scoreboard (at exit). */
void fdt__master_free(struct fdt_master *m);
/* Free reaped workers (between event batches, when no event can point at them). */
void fdt__master_free_dead(struct fdt_master *m);

/* Carry an idle connection (fd, closed here) of listener to a ready worker of the serving
 * generation; from is the retiring worker that handed it over, NULL for the old master of
 * a binary upgrade. */
void fdt__master_pass_conn(struct fdt_master *m, const struct fdt_mworker *from, int fd,
                           const char *listener);
/* "exited with status N" / "killed by signal N (NAME)" for a wait status. */
void fdt__describe_status(int status, char *out, size_t size);

/* master_main.c: stop serving because a new master (binary upgrade) serves: close the
 * listening sockets (their files stay), drain the workers as a reload does, exit after. */
void fdt__master_retire(struct fdt_master *m);
/* Announce (log, systemd) that a generation serves; the first generation of a master that
 * replaces another first takes over the pid file and control socket. */
void fdt__master_announce_ready(struct fdt_master *m, const struct fdt_generation *g);

/* master_notify.c: systemd's notification protocol. Thread: main. */
/* Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, then unset them. */
void fdt__notify_init(struct fdt_notify *n);
void fdt__notify_deinit(struct fdt_notify *n);
/* Send one notification (newline-separated VAR=VALUE lines); does nothing without
 * NOTIFY_SOCKET or while muted. Never blocks: when systemd's queue is full the message
 * waits in ours (in order) and fdt__notify_tick resends it. */
void fdt__notify(struct fdt_notify *n, const char *fmt, ...) FDT_PRINTF(2, 3);
/* Whether every notification has been sent. */
bool fdt__notify_flushed(const struct fdt_notify *n);
/* CLOCK_MONOTONIC in microseconds, for MONOTONIC_USEC. */
int64_t fdt__notify_monotonic_usec(void);
/* From the master's loop: resend what waits, send WATCHDOG=1 when due (every half period);
 * returns timeout_ms, or less so that the loop wakes for the next ping or resend. */
int fdt__notify_tick(struct fdt_notify *n, int64_t now, int timeout_ms);
/* Put NOTIFY_SOCKET and the watchdog (for this process) back into the environment: in a
 * new master's process, before it executes. */
void fdt__notify_export(const struct fdt_notify *n);

/* master_upgrade.c: binary upgrade (SIGUSR2). Thread: main. */
/* Remember the binary to execute: argv0 made absolute (symbolic links not resolved, so a
 * link switched to a new release is followed), or /proc/self/exe when argv0 has no '/'. */
void fdt__upgrade_init_exe(struct fdt_master *m, const char *argv0);
/* New side, at start: take the sockets and channel of the old master when this process is
 * one started by a binary upgrade (else nothing). Returns 0 or FDT_ECONFIG with err. */
int fdt__upgrade_adopt(struct fdt_master *m, struct fdt_error *err);
/* Old side: SIGUSR2. */
void fdt__upgrade_start(struct fdt_master *m);
/* Old side: the channel to the new master is readable. */
void fdt__upgrade_on_event(struct fdt_master *m);
/* Old side: a child was reaped; returns whether it was the new master. */
bool fdt__upgrade_reaped(struct fdt_master *m, pid_t pid, int status);
/* Old side, retiring: hand an idle connection of a retiring worker to the new master (fd
 * stays the caller's). Returns whether it was sent. */
bool fdt__upgrade_pass_conn(struct fdt_master *m, int fd, const char *listener);
/* Old side: a new master that takes too long is stopped. */
void fdt__upgrade_supervise(struct fdt_master *m, int64_t now);
/* Old side: the server stops; a new master not yet serving is stopped too. */
void fdt__upgrade_abort(struct fdt_master *m);
/* New side: the first generation is ready: take the pid file and control socket and tell
 * the old master. */
void fdt__upgrade_handover(struct fdt_master *m);
/* New side: the old master answered (or is gone). */
void fdt__upgrade_on_predecessor(struct fdt_master *m);

/* master_reload.c */
void fdt__master_reload(struct fdt_master *m);
void fdt__master_gen_ready(struct fdt_master *m, struct fdt_generation *g);
void fdt__master_gen_failed(struct fdt_master *m, struct fdt_generation *g, const char *why);
/* Finish a reload once every old worker stopped accepting (or is gone). */
void fdt__master_check_confirm(struct fdt_master *m);
/* Build cfg (initialised here) from the command line as at start: the file of -c, then the
 * options of the command line over it. A reload calls it again with the same argv, so the
 * file is read anew. Returns 0 or a negative code with err filled; the caller deinits cfg
 * in both cases once done with it. */
int fdt__master_load_cfg(int argc, char **argv, struct fdt_cfg *cfg, struct fdt_error *err);

/* master_ctl.c */
int fdt__ctl_open(struct fdt_master *m, struct fdt_error *err);
void fdt__ctl_on_accept(struct fdt_master *m);
/* Accept again once a pause for want of descriptors is over (every loop turn). */
void fdt__ctl_tick(struct fdt_master *m, int64_t now);
void fdt__ctl_on_client(struct fdt_master *m, struct fdt_ctl_client *c, uint32_t events);
/* Answer every "reload --wait" client once a reload ends. */
void fdt__ctl_reload_done(struct fdt_master *m, bool ok, const char *msg);
void fdt__ctl_close_all(struct fdt_master *m);

/* pidfile.c: the master holds a write lock (F_SETLK) on its pid file for its life; a file
 * nobody holds is stale. Thread: main. */
/* Write the pid file at path (nothing when path is empty) and lock it: *fd (-1 when there
 * is no file) keeps the lock until fdt__pidfile_remove; the master must not open the file
 * again. Refuses (FDT_ECONFIG) when a live master other than predecessor (the master a binary
 * upgrade replaces; 0 for none) holds the file; replaces a stale one.
 * Never follows a symbolic link or writes into an existing file. Returns 0 or a negative
 * code with err filled. */
int fdt__pidfile_write(const char *path, int *fd, pid_t predecessor, struct fdt_error *err);
/* Remove the pid file if it is still the one behind fd, and close fd (-1: nothing). */
void fdt__pidfile_remove(const char *path, int fd);
/* The running master of the pid file at path: returns a descriptor of the file (owned by
 * the caller; see fdt__pidfile_held) with *pid the master that holds it, or a negative
 * code with err filled: FDT_ENOENT no file, -ESRCH a stale file (nobody holds it), FDT_EINVAL
 * the holder is not the pid the file names. */
int fdt__pidfile_owner(const char *path, pid_t *pid, struct fdt_error *err);
/* Whether a master still holds the pid file open at fd (from fdt__pidfile_owner). */
bool fdt__pidfile_held(int fd);

/* fdtserver --check: resolve [server] user and group, load [app] module in a throwaway
 * child, and find the directory of every SQLite database. Prints each problem on stderr.
 * Returns 0, or FDT_ECONFIG when anything is wrong. Thread: main (forks). */
int fdt__master_check(const struct fdt_cfg *cfg);

#define FDT_POLL_CHANNEL     10
#define FDT_POLL_CTL         11
#define FDT_POLL_CTL_CLIENT  12
#define FDT_POLL_MSIGNAL     13
#define FDT_POLL_UPGRADE     14 /* old master: channel to the new one */
#define FDT_POLL_PREDECESSOR 15 /* new master: channel to the old one */

#endif

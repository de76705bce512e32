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
};

/* master_workers.c */
int fdt__master_spawn(struct fdt_master *m, struct fdt_generation *g, unsigned index);
void fdt__master_reap(struct fdt_master *m);
void fdt__master_on_channel(struct fdt_master *m, struct fdt_mworker *mw);
void fdt__master_supervise(struct fdt_master *m, int64_t now);
void fdt__master_signal_gen(struct fdt_master *m, struct fdt_generation *g, int sig);
/* Tell a worker to drain: sig SIGTERM when the service stops (idle connections are closed,
 * promise 3), SIGHUP when a successor serves on (a reload, one worker fewer: idle keep-alive
 * connections are kept until the idle time the protocol advertised, promise 4). */
void fdt__master_drain_worker(struct fdt_master *m, struct fdt_mworker *mw, int sig);
struct fdt_generation *fdt__gen_new(struct fdt_master *m, struct fdt_cfg *cfg);
/* Set the number of workers of the active generation to target (1 to FDT_MAX_WORKERS):
 * spawn the missing ones or drain the highest indexes; `why` starts the log line. Returns 0,
 * FDT_EINVAL for a target out of range, or FDT_EAGAIN when no generation is active or the
 * server is stopping. */
int fdt__master_set_workers(struct fdt_master *m, int target, const char *why);
int fdt__master_worker_count(const struct fdt_master *m);
/* Publish what the metrics show of the master (generations, reloads) in the scoreboard's
 * struct fdt_master_stats. Called from the master's loop and before it renders metrics. */
void fdt__master_publish_stats(struct fdt_master *m);
/* Free every generation and the scoreboard (at exit). */
void fdt__master_free(struct fdt_master *m);
/* Free reaped workers (between event batches, when no event can point at them). */
void fdt__master_free_dead(struct fdt_master *m);

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
void fdt__ctl_on_client(struct fdt_master *m, struct fdt_ctl_client *c, uint32_t events);
/* Answer every "reload --wait" client once a reload ends. */
void fdt__ctl_reload_done(struct fdt_master *m, bool ok, const char *msg);
void fdt__ctl_close_all(struct fdt_master *m);

/* pidfile.c: the master holds a write lock (F_SETLK) on its pid file for its life; a file
 * nobody holds is stale. Thread: main. */
/* Write the pid file at path (nothing when path is empty) and lock it: *fd (-1 when there
 * is no file) keeps the lock until fdt__pidfile_remove; the master must not open the file
 * again. Refuses (FDT_ECONFIG) when a live master holds the file; replaces a stale one.
 * Never follows a symbolic link or writes into an existing file. Returns 0 or a negative
 * code with err filled. */
int fdt__pidfile_write(const char *path, int *fd, struct fdt_error *err);
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

#define FDT_POLL_CHANNEL    10
#define FDT_POLL_CTL        11
#define FDT_POLL_CTL_CLIENT 12
#define FDT_POLL_MSIGNAL    13

#endif

#include "fdt_config.h"

#define FDT_LOG_MODULE "master"
#include "log/log.h"
#include "master/master.h"
#include "util/util.h"

#include <fdt/log.h>
#include <signal.h>
#include <string.h>

static int draining_generations(const struct fdt_master *m)
{
    int n = 0;
    for (const struct fdt_generation *g = m->gens; g; g = g->next) {
        if (g->state == FDT_GEN_DRAINING)
            n++;
    }
    return n;
}

static void record(struct fdt_master *m, bool ok, const char *msg)
{
    fdt__strlcpy(m->last_reload, msg, sizeof(m->last_reload));
    m->last_reload_ok = ok;
    m->last_reload_wall_ms = fdt__wall_ms();
    if (ok)
        m->reloads_ok++;
    else
        m->reloads_failed++;
    /* systemd (Type=notify-reload): the reload is over either way; the old generation
     * serves when it was refused. */
    if (ok)
        fdt__notify(&m->notify, "READY=1\nSTATUS=%s", msg);
    else
        fdt__notify(&m->notify, "READY=1\nSTATUS=reload refused: %s", msg);
    fdt__ctl_reload_done(m, ok, msg);
}

/* Give the new generation its listeners: keep the sockets of addresses that did not
 * change, bind the new ones. Nothing is closed here. */
static int prepare_listeners(struct fdt_master *m, struct fdt_generation *g, struct fdt_error *err)
{
    const struct fdt_generation *cur = m->active;
    /* Sockets systemd passed first: they stay the listeners' whatever the old one had. */
    int rc = fdt__inherit_assign(&m->inherit, g->cfg, g->listeners, err);
    if (rc < 0)
        return rc;
    for (int k = 0; k < m->inherit.n; k++) {
        if (!m->inherit.fds[k].used)
            fdt_log(FDT_LOG_WARN,
                    "the socket %s passed by systemd matches no [listen.NAME]: "
                    "kept open, unused",
                    m->inherit.fds[k].addr);
    }
    for (int i = 0; i < g->cfg->n_listeners; i++) {
        struct fdt_listener *l = &g->listeners[i];
        if (l->fd >= 0) {
            l->keep = true;
            g->n_listeners = i + 1;
            continue;
        }
        for (int j = 0; cur && j < cur->n_listeners; j++) {
            if (strcmp(cur->listeners[j].cfg.address, l->cfg.address) == 0 &&
                cur->listeners[j].fd >= 0) {
                l->fd = cur->listeners[j].fd;
                l->origin = cur->listeners[j].origin;
                l->keep = true;
                if (cur->listeners[j].cfg.reuseport != l->cfg.reuseport) {
                    /* The old socket holds the address, so a new one cannot be bound. */
                    l->fd = -1;
                    l->keep = false;
                    g->n_listeners = i;
                    return fdt_error_set(err, FDT_ECONFIG,
                                         "[listen.%s] reuseport cannot change on a reload of "
                                         "%s: restart the server to change it",
                                         l->cfg.name, l->cfg.address);
                }
                if (cur->listeners[j].cfg.backlog != l->cfg.backlog && !l->cfg.reuseport)
                    listen(l->fd, l->cfg.backlog);
            }
        }
        g->n_listeners = i + 1;
        if (l->fd < 0 && fdt__listener_bind(l, err) < 0)
            return err ? err->code : FDT_ECONFIG;
    }
    /* Certificates and keys are read anew: a renewed certificate is served from now on. */
    return fdt__gen_tls_load(g, err);
}

/* Close the sockets that g bound itself (reload abandoned). */
static void close_new_listeners(struct fdt_generation *g)
{
    for (int i = 0; i < g->n_listeners; i++) {
        if (!g->listeners[i].keep)
            fdt__listener_close(&g->listeners[i], true);
    }
}

/* Free a generation of this reload that has no worker (none to reap, which frees the others):
 * its new sockets are closed already. It is the newest, first in m->gens (fdt__gen_new), and
 * not m->starting (not set yet, or cleared by fdt__master_gen_failed). */
static void drop_generation(struct fdt_master *m, struct fdt_generation *g)
{
    m->gens = g->next;
    fdt__gen_tls_free(g);
    fdt__cfg_deinit(g->cfg);
    free(g->cfg);
    free(g);
}

void fdt__master_reload(struct fdt_master *m)
{
    if (m->stopping)
        return;
    if (m->starting || m->confirming || draining_generations(m) >= 2) {
        /* One reload at a time, and at most two generations draining: run it later. */
        m->reload_pending = true;
        fdt_log(FDT_LOG_INFO, "reload queued until the current one finishes");
        return;
    }
    m->reload_pending = false;
    m->reload_seq++;
    fdt_log(FDT_LOG_INFO, "reloading configuration (reload %u)", m->reload_seq);
    fdt__notify(&m->notify, "RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading (reload %u)",
                (long long)fdt__notify_monotonic_usec(), m->reload_seq);
    struct fdt_error err = {0};
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    if (!cfg) {
        fdt_log(FDT_LOG_ERROR, "reload failed, old generation keeps serving: out of memory");
        record(m, false, "out of memory");
        return;
    }
    if (fdt__master_load_cfg(m->argc, m->argv, cfg, &err) < 0) {
        char msg[600];
        if (err.file && err.line > 0)
            snprintf(msg, sizeof(msg), "configuration error: %s:%d: %s", err.file, err.line,
                     err.msg);
        else if (err.file)
            snprintf(msg, sizeof(msg), "configuration error: %s: %s", err.file, err.msg);
        else
            snprintf(msg, sizeof(msg), "configuration error: %s", err.msg);
        fdt_log(FDT_LOG_ERROR, "reload failed, old generation keeps serving: %s", msg);
        fdt__cfg_deinit(cfg);
        free(cfg);
        record(m, false, msg);
        return;
    }
    struct fdt_generation *g = fdt__gen_new(m, cfg);
    if (!g) {
        fdt_log(FDT_LOG_ERROR, "reload failed, old generation keeps serving: out of memory");
        fdt__cfg_deinit(cfg);
        free(cfg);
        record(m, false, "out of memory");
        return;
    }
    if (prepare_listeners(m, g, &err) < 0) {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s", err.msg);
        fdt_log(FDT_LOG_ERROR, "reload failed, old generation keeps serving: %s", msg);
        close_new_listeners(g);
        g->state = FDT_GEN_FAILED;
        /* No workers: free it through the normal path. */
        drop_generation(m, g);
        record(m, false, msg);
        return;
    }
    m->starting = g;
    fdt__log_set_level(cfg->log_level);
    fdt__log_set_json(cfg->log_format == FDT_LOG_FORMAT_JSON);
    for (int i = 0; i < g->target; i++) {
        int rc = fdt__master_spawn(m, g, (unsigned)i);
        if (rc < 0) {
            char why[160];
            snprintf(why, sizeof(why), "cannot start worker %d: %s", i, fdt_strerror(rc));
            fdt__master_gen_failed(m, g, why);
            if (g->n_workers == 0)
                drop_generation(m, g); /* else freed when its last worker is reaped */
            return;
        }
    }
}

void fdt__master_gen_ready(struct fdt_master *m, struct fdt_generation *g)
{
    struct fdt_generation *old = m->active;
    g->state = FDT_GEN_ACTIVE;
    if (m->starting == g)
        m->starting = NULL;
    m->active = g;
    struct fdt_cfg *old_cfg = m->cfg;
    m->cfg = g->cfg;
    if (!old) {
        fdt__master_announce_ready(m, g);
        return;
    }
    /* Every new worker is ready: now, and only now, the old generation drains. */
    old->state = FDT_GEN_DRAINING;
    fdt__master_signal_gen(m, old, SIGHUP); /* retire: the new generation serves on */
    /* The master's copies of listeners that the new configuration dropped. */
    for (int i = 0; i < old->n_listeners; i++) {
        bool kept = false;
        for (int j = 0; j < g->n_listeners; j++) {
            if (g->listeners[j].fd == old->listeners[i].fd)
                kept = true;
        }
        if (!kept)
            fdt__listener_close(&old->listeners[i], true);
        old->listeners[i].fd = -1;
    }
    (void)old_cfg; /* freed with its generation */
    char msg[200];
    snprintf(msg, sizeof(msg), "generation %u serving with %d workers; generation %u draining",
             g->id, g->target, old->id);
    /* Done when every old worker has stopped accepting: from then on every new connection
     * reaches the new generation. */
    m->confirming = old;
    fdt__strlcpy(m->confirm_msg, msg, sizeof(m->confirm_msg));
    fdt__master_check_confirm(m);
}

void fdt__master_check_confirm(struct fdt_master *m)
{
    if (!m->confirming)
        return;
    for (struct fdt_mworker *w = m->workers; w; w = w->next) {
        if (w->gen == m->confirming && !w->drain_confirmed)
            return;
    }
    m->confirming = NULL;
    fdt_log(FDT_LOG_INFO, "reload done: %s", m->confirm_msg);
    record(m, true, m->confirm_msg);
    if (m->reload_pending)
        fdt__master_reload(m);
}

void fdt__master_gen_failed(struct fdt_master *m, struct fdt_generation *g, const char *why)
{
    if (g->state != FDT_GEN_STARTING)
        return;
    g->state = FDT_GEN_FAILED;
    fdt__strlcpy(g->fail_reason, why, sizeof(g->fail_reason));
    if (m->starting == g)
        m->starting = NULL;
    /* Workers of the failed generation that were already ready may hold connections:
     * let them drain like any old worker. */
    fdt__master_signal_gen(m, g, SIGHUP);
    close_new_listeners(g);
    if (!m->active) {
        fdt_log(FDT_LOG_ERROR, "cannot start: %s", why);
        fdt__notify(&m->notify, "STATUS=cannot start: %s", why);
        m->stopping = true;
        m->stop_kill_at_ms = fdt__now_ms() + 5000;
        fdt__strlcpy(m->last_reload, why, sizeof(m->last_reload));
        m->last_reload_ok = false;
        return;
    }
    char msg[700];
    snprintf(msg, sizeof(msg), "reload failed, generation %u keeps serving: %s", m->active->id,
             why);
    fdt_log(FDT_LOG_ERROR, "%s", msg);
    record(m, false, msg);
    if (m->cfg) {
        fdt__log_set_level(m->cfg->log_level);
        fdt__log_set_json(m->cfg->log_format == FDT_LOG_FORMAT_JSON);
    }
    if (m->reload_pending)
        fdt__master_reload(m);
}

#include "fdt_config.h"

#include "config/config.h"

#include "listen/listen.h"
#include "log/log.h"
#include "util/util.h"

#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

void fdt__cfg_init(struct fdt_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->workers = 0;
    cfg->threads = 8;
    cfg->graceful_timeout = 30.0;
    cfg->worker_timeout = 30.0;
    cfg->ready_timeout = 30.0;
    cfg->idle_timeout = 60.0;
    cfg->max_connections = 1024;
    cfg->max_input = 64 * 1024;
    cfg->max_output = 8 * 1024 * 1024;
    cfg->max_header_size = 16 * 1024;
    cfg->max_body_size = 1024 * 1024;
    cfg->header_timeout = 10.0;
    cfg->body_timeout = 30.0;
    cfg->keepalive_timeout = 0.0; /* resolved to idle_timeout by fdt__cfg_finish */
    cfg->tcp_keepalive = true;
    cfg->tcp_keepidle = 60;
    cfg->tcp_keepintvl = 10;
    cfg->tcp_keepcnt = 6;
    cfg->log_level = FDT_LOG_INFO;
    fdt__strlcpy(cfg->control_socket, "fdtserver.ctl", sizeof(cfg->control_socket));
    fdt__strlcpy(cfg->node, "node1", sizeof(cfg->node));
    cfg->recovery_interval = 30.0;
    cfg->recovery_grace = 10.0;
    cfg->in_doubt_warn_age = 3600.0;
    cfg->transaction_timeout = 60.0;
}

void fdt__cfg_deinit(struct fdt_cfg *cfg)
{
    for (int i = 0; i < cfg->n_app_keys; i++) {
        free(cfg->app_keys[i].key);
        free(cfg->app_keys[i].value);
    }
    cfg->n_app_keys = 0;
}

const char *fdt__proto_name(enum fdt_protocol p)
{
    switch (p) {
    case FDT_PROTO_HTTP:
        return "http";
    case FDT_PROTO_JSONRPC:
        return "jsonrpc";
    case FDT_PROTO_RAW:
        return "raw";
    }
    return "?";
}

static int parse_proto(const char *s, enum fdt_protocol *p)
{
    if (strcmp(s, "http") == 0)
        *p = FDT_PROTO_HTTP;
    else if (strcmp(s, "jsonrpc") == 0)
        *p = FDT_PROTO_JSONRPC;
    else if (strcmp(s, "raw") == 0)
        *p = FDT_PROTO_RAW;
    else
        return FDT_EINVAL;
    return 0;
}

/* Context while applying settings: where relative paths are anchored. */
struct apply_ctx {
    struct fdt_cfg *cfg;
    struct fdt_error *err;
    char base[FDT_CFG_PATH_MAX]; /* directory of the file, "" for the command line */
};

static int set_path(const struct apply_ctx *ctx, char *dst, size_t size, const char *value,
                    const char *key)
{
    int rc;
    if (value[0] == '/' || !ctx->base[0] || value[0] == '\0' || strncmp(value, "unix:", 5) == 0) {
        rc = fdt__strlcpy(dst, value, size);
    } else {
        char tmp[FDT_CFG_PATH_MAX * 2];
        snprintf(tmp, sizeof(tmp), "%s/%s", ctx->base, value);
        rc = fdt__strlcpy(dst, tmp, size);
    }
    if (rc < 0)
        return fdt_error_set(ctx->err, FDT_ECONFIG, "%s: path too long", key);
    return 0;
}

static int bad_value(const struct apply_ctx *ctx, const char *section, const char *key,
                     const char *value, const char *expect)
{
    return fdt_error_set(ctx->err, FDT_ECONFIG, "[%s] %s = '%s': %s", section, key, value, expect);
}

static int apply_server(struct apply_ctx *ctx, const char *key, const char *value)
{
    struct fdt_cfg *cfg = ctx->cfg;
    long l;
    double d;
    size_t z;
    if (strcmp(key, "workers") == 0) {
        if (fdt__parse_long(value, 0, FDT_MAX_WORKERS, &l) < 0)
            return bad_value(ctx, "server", key, value, "expected 0 (one per CPU) to 128");
        cfg->workers = (int)l;
    } else if (strcmp(key, "threads") == 0) {
        if (fdt__parse_long(value, 1, FDT_MAX_THREADS, &l) < 0)
            return bad_value(ctx, "server", key, value, "expected 1 to 256");
        cfg->threads = (int)l;
    } else if (strcmp(key, "graceful_timeout") == 0 || strcmp(key, "worker_timeout") == 0 ||
               strcmp(key, "ready_timeout") == 0 || strcmp(key, "idle_timeout") == 0) {
        if (fdt__parse_double(value, 0.001, 86400.0, &d) < 0)
            return bad_value(ctx, "server", key, value, "expected seconds, 0.001 to 86400");
        if (key[0] == 'g')
            cfg->graceful_timeout = d;
        else if (key[0] == 'w')
            cfg->worker_timeout = d;
        else if (key[0] == 'r')
            cfg->ready_timeout = d;
        else
            cfg->idle_timeout = d;
    } else if (strcmp(key, "transaction_timeout") == 0) {
        if (fdt__parse_double(value, 0.001, 86400.0, &d) < 0)
            return bad_value(ctx, "server", key, value, "expected seconds, 0.001 to 86400");
        cfg->transaction_timeout = d;
    } else if (strcmp(key, "in_doubt_warn_age") == 0) {
        if (fdt__parse_double(value, 0.0, 1e9, &d) < 0)
            return bad_value(ctx, "server", key, value, "expected seconds");
        cfg->in_doubt_warn_age = d;
    } else if (strcmp(key, "recovery_interval") == 0 || strcmp(key, "recovery_grace") == 0) {
        if (fdt__parse_double(value, 0.0, 86400.0, &d) < 0)
            return bad_value(ctx, "server", key, value, "expected seconds, 0 to 86400");
        if (key[9] == 'i')
            cfg->recovery_interval = d;
        else
            cfg->recovery_grace = d;
    } else if (strcmp(key, "max_connections") == 0) {
        if (fdt__parse_long(value, 1, 1000000, &l) < 0)
            return bad_value(ctx, "server", key, value, "expected 1 to 1000000");
        cfg->max_connections = (int)l;
    } else if (strcmp(key, "max_input") == 0 || strcmp(key, "max_output") == 0) {
        if (fdt__parse_size(value, 64, (size_t)1 << 30, &z) < 0)
            return bad_value(ctx, "server", key, value, "expected a size from 64 to 1g");
        if (key[4] == 'i')
            cfg->max_input = z;
        else
            cfg->max_output = z;
    } else if (strcmp(key, "max_header_size") == 0) {
        if (fdt__parse_size(value, 256, (size_t)1 << 20, &z) < 0)
            return bad_value(ctx, "server", key, value, "expected a size from 256 to 1m");
        cfg->max_header_size = z;
    } else if (strcmp(key, "max_body_size") == 0) {
        if (fdt__parse_size(value, 0, (size_t)1 << 30, &z) < 0)
            return bad_value(ctx, "server", key, value, "expected a size from 0 to 1g");
        cfg->max_body_size = z;
    } else if (strcmp(key, "header_timeout") == 0 || strcmp(key, "body_timeout") == 0 ||
               strcmp(key, "keepalive_timeout") == 0) {
        if (fdt__parse_double(value, 0.001, 86400.0, &d) < 0)
            return bad_value(ctx, "server", key, value, "expected seconds, 0.001 to 86400");
        if (key[0] == 'h')
            cfg->header_timeout = d;
        else if (key[0] == 'b')
            cfg->body_timeout = d;
        else
            cfg->keepalive_timeout = d;
    } else if (strcmp(key, "tcp_keepalive") == 0) {
        if (fdt__parse_bool(value, &cfg->tcp_keepalive) < 0)
            return bad_value(ctx, "server", key, value, "expected yes or no");
    } else if (strcmp(key, "tcp_keepidle") == 0 || strcmp(key, "tcp_keepintvl") == 0) {
        /* Linux caps both at MAX_TCP_KEEPIDLE / MAX_TCP_KEEPINTVL = 32767 seconds. */
        if (fdt__parse_long(value, 1, 32767, &l) < 0)
            return bad_value(ctx, "server", key, value, "expected seconds, 1 to 32767");
        if (strcmp(key, "tcp_keepidle") == 0)
            cfg->tcp_keepidle = (int)l;
        else
            cfg->tcp_keepintvl = (int)l;
    } else if (strcmp(key, "tcp_keepcnt") == 0) {
        /* Linux caps it at MAX_TCP_KEEPCNT = 127. */
        if (fdt__parse_long(value, 1, 127, &l) < 0)
            return bad_value(ctx, "server", key, value, "expected 1 to 127");
        cfg->tcp_keepcnt = (int)l;
    } else if (strcmp(key, "pid_file") == 0) {
        return set_path(ctx, cfg->pid_file, sizeof(cfg->pid_file), value, key);
    } else if (strcmp(key, "control_socket") == 0) {
        return set_path(ctx, cfg->control_socket, sizeof(cfg->control_socket), value, key);
    } else if (strcmp(key, "error_log") == 0) {
        return set_path(ctx, cfg->error_log, sizeof(cfg->error_log), value, key);
    } else if (strcmp(key, "access_log") == 0) {
        return set_path(ctx, cfg->access_log, sizeof(cfg->access_log), value, key);
    } else if (strcmp(key, "user") == 0) {
        if (fdt__strlcpy(cfg->user, value, sizeof(cfg->user)) < 0)
            return bad_value(ctx, "server", key, value, "too long");
    } else if (strcmp(key, "group") == 0) {
        if (fdt__strlcpy(cfg->group, value, sizeof(cfg->group)) < 0)
            return bad_value(ctx, "server", key, value, "too long");
    } else if (strcmp(key, "node") == 0) {
        if (!value[0] || fdt__strlcpy(cfg->node, value, sizeof(cfg->node)) < 0)
            return bad_value(ctx, "server", key, value, "expected a name of 1 to 63 bytes");
    } else if (strcmp(key, "log_level") == 0) {
        int lv;
        if (fdt__log_level_parse(value, &lv) < 0)
            return bad_value(ctx, "server", key, value, "expected error, warn, info or debug");
        cfg->log_level = lv;
    } else {
        return fdt_error_set(ctx->err, FDT_ECONFIG, "[server] unknown key '%s'", key);
    }
    return 0;
}

static bool valid_name(const char *name)
{
    if (!*name || strlen(name) >= FDT_CFG_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static struct fdt_listen_cfg *listener_get(struct apply_ctx *ctx, const char *name)
{
    struct fdt_cfg *cfg = ctx->cfg;
    for (int i = 0; i < cfg->n_listeners; i++) {
        if (strcmp(cfg->listeners[i].name, name) == 0)
            return &cfg->listeners[i];
    }
    if (cfg->n_listeners >= FDT_CFG_MAX_LISTENERS) {
        fdt_error_set(ctx->err, FDT_ECONFIG, "too many listeners (at most %d)",
                      FDT_CFG_MAX_LISTENERS);
        return NULL;
    }
    struct fdt_listen_cfg *l = &cfg->listeners[cfg->n_listeners++];
    memset(l, 0, sizeof(*l));
    fdt__strlcpy(l->name, name, sizeof(l->name));
    l->protocol = FDT_PROTO_HTTP;
    l->backlog = 1024;
    return l;
}

static int apply_listen(struct apply_ctx *ctx, const char *name, const char *key, const char *value)
{
    char section[FDT_CFG_NAME_MAX + 8];
    snprintf(section, sizeof(section), "listen.%s", name);
    if (!valid_name(name))
        return fdt_error_set(ctx->err, FDT_ECONFIG,
                             "[%s] bad listener name (letters, digits, '_', '-')", section);
    struct fdt_listen_cfg *l = listener_get(ctx, name);
    if (!l)
        return FDT_ECONFIG;
    if (strcmp(key, "address") == 0) {
        struct fdt_addr a;
        if (fdt__addr_parse(value, &a) < 0)
            return bad_value(ctx, section, key, value,
                             "expected HOST:PORT, [V6]:PORT or unix:/path");
        if (strncmp(value, "unix:", 5) == 0 && value[5] != '/' && ctx->base[0]) {
            char tmp[FDT_CFG_PATH_MAX * 2];
            snprintf(tmp, sizeof(tmp), "unix:%s/%s", ctx->base, value + 5);
            if (fdt__strlcpy(l->address, tmp, sizeof(l->address)) < 0)
                return bad_value(ctx, section, key, value, "path too long");
        } else if (fdt__strlcpy(l->address, value, sizeof(l->address)) < 0) {
            return bad_value(ctx, section, key, value, "too long");
        }
    } else if (strcmp(key, "protocol") == 0) {
        if (parse_proto(value, &l->protocol) < 0)
            return bad_value(ctx, section, key, value, "expected http, jsonrpc or raw");
    } else if (strcmp(key, "reuseport") == 0) {
        if (fdt__parse_bool(value, &l->reuseport) < 0)
            return bad_value(ctx, section, key, value, "expected yes or no");
    } else if (strcmp(key, "backlog") == 0) {
        long b;
        if (fdt__parse_long(value, 1, 65535, &b) < 0)
            return bad_value(ctx, section, key, value, "expected 1 to 65535");
        l->backlog = (int)b;
    } else {
        return fdt_error_set(ctx->err, FDT_ECONFIG, "[%s] unknown key '%s'", section, key);
    }
    return 0;
}

static int apply_resource(struct apply_ctx *ctx, const char *name, const char *key,
                          const char *value)
{
    struct fdt_cfg *cfg = ctx->cfg;
    char section[FDT_CFG_NAME_MAX + 16];
    snprintf(section, sizeof(section), "resource.%s", name);
    if (!valid_name(name))
        return fdt_error_set(ctx->err, FDT_ECONFIG,
                             "[%s] bad resource name (letters, digits, '_', '-')", section);
    struct fdt_resource_cfg *r = NULL;
    for (int i = 0; i < cfg->n_resources; i++) {
        if (strcmp(cfg->resources[i].name, name) == 0)
            r = &cfg->resources[i];
    }
    if (!r) {
        if (cfg->n_resources >= FDT_CFG_MAX_RESOURCES)
            return fdt_error_set(ctx->err, FDT_ECONFIG, "too many resources (at most %d)",
                                 FDT_CFG_MAX_RESOURCES);
        r = &cfg->resources[cfg->n_resources++];
        memset(r, 0, sizeof(*r));
        fdt__strlcpy(r->name, name, sizeof(r->name));
    }
    if (strcmp(key, "driver") == 0) {
        if (strcmp(value, "postgresql") != 0 && strcmp(value, "sqlite") != 0)
            return bad_value(ctx, section, key, value, "expected postgresql or sqlite");
        fdt__strlcpy(r->driver, value, sizeof(r->driver));
    } else if (strcmp(key, "dsn") == 0) {
        if (fdt__strlcpy(r->dsn, value, sizeof(r->dsn)) < 0)
            return bad_value(ctx, section, key, value, "too long");
    } else if (strcmp(key, "path") == 0) {
        return set_path(ctx, r->path, sizeof(r->path), value, key);
    } else if (strcmp(key, "log") == 0) {
        if (fdt__parse_bool(value, &r->log) < 0)
            return bad_value(ctx, section, key, value, "expected yes or no");
    } else {
        return fdt_error_set(ctx->err, FDT_ECONFIG, "[%s] unknown key '%s'", section, key);
    }
    return 0;
}

static int apply_app(struct apply_ctx *ctx, const char *key, const char *value)
{
    struct fdt_cfg *cfg = ctx->cfg;
    if (strcmp(key, "module") == 0)
        return set_path(ctx, cfg->app_module, sizeof(cfg->app_module), value, key);
    for (int i = 0; i < cfg->n_app_keys; i++) {
        if (strcmp(cfg->app_keys[i].key, key) == 0) {
            char *v = fdt__strdup(value);
            if (!v)
                return fdt_error_set(ctx->err, FDT_ENOMEM, "out of memory");
            free(cfg->app_keys[i].value);
            cfg->app_keys[i].value = v;
            return 0;
        }
    }
    if (cfg->n_app_keys >= FDT_CFG_MAX_APP_KEYS)
        return fdt_error_set(ctx->err, FDT_ECONFIG, "[app] too many keys (at most %d)",
                             FDT_CFG_MAX_APP_KEYS);
    char *k = fdt__strdup(key);
    char *v = fdt__strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return fdt_error_set(ctx->err, FDT_ENOMEM, "out of memory");
    }
    cfg->app_keys[cfg->n_app_keys].key = k;
    cfg->app_keys[cfg->n_app_keys].value = v;
    cfg->n_app_keys++;
    return 0;
}

/* inih keeps at most 49 characters of a section name and drops the rest silently. */
#define SECTION_MAX 48

static int apply(struct apply_ctx *ctx, const char *section, const char *key, const char *value)
{
    if (strlen(section) > SECTION_MAX)
        return fdt_error_set(ctx->err, FDT_ECONFIG,
                             "section name [%s...] too long (at most %d characters)", section,
                             SECTION_MAX);
    if (strcmp(section, "server") == 0)
        return apply_server(ctx, key, value);
    if (strcmp(section, "app") == 0)
        return apply_app(ctx, key, value);
    if (strncmp(section, "listen.", 7) == 0)
        return apply_listen(ctx, section + 7, key, value);
    if (strncmp(section, "resource.", 9) == 0)
        return apply_resource(ctx, section + 9, key, value);
    if (section[0] == '\0')
        return fdt_error_set(ctx->err, FDT_ECONFIG, "key '%s' outside any section", key);
    return fdt_error_set(ctx->err, FDT_ECONFIG, "unknown section [%s]", section);
}

int fdt__cfg_apply(struct fdt_cfg *cfg, const char *section, const char *key, const char *value,
                   struct fdt_error *err)
{
    struct apply_ctx ctx = {.cfg = cfg, .err = err};
    return apply(&ctx, section, key, value);
}

static int on_ini_key(void *user, const char *section, const char *name, const char *value)
{
    struct apply_ctx *ctx = user;
    /* inih reports a section header with no keys as name == NULL only when built with
     * INI_CALL_HANDLER_ON_NEW_SECTION; plain keys are all we see here. */
    if (!name)
        return 1;
    return apply(ctx, section, name, value ? value : "") == 0;
}

int fdt__cfg_load_file(struct fdt_cfg *cfg, const char *path, struct fdt_error *err)
{
    struct apply_ctx ctx = {.cfg = cfg, .err = err};
    if (fdt__strlcpy(cfg->file, path, sizeof(cfg->file)) < 0)
        return fdt_error_set(err, FDT_ECONFIG, "%s: path too long", path);
    char tmp[FDT_CFG_PATH_MAX];
    fdt__strlcpy(tmp, path, sizeof(tmp));
    char *dir = dirname(tmp);
    if (dir[0] == '/') {
        fdt__strlcpy(ctx.base, dir, sizeof(ctx.base));
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            return fdt_error_set(err, FDT_ECONFIG, "getcwd: %s", fdt_strerror(-errno));
        char full[PATH_MAX * 2];
        if (strcmp(dir, ".") == 0)
            snprintf(full, sizeof(full), "%s", cwd);
        else
            snprintf(full, sizeof(full), "%s/%s", cwd, dir);
        if (fdt__strlcpy(ctx.base, full, sizeof(ctx.base)) < 0)
            return fdt_error_set(err, FDT_ECONFIG, "%s: path too long", path);
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        fdt_error_set(err, FDT_ECONFIG, "cannot open configuration file: %s", fdt_strerror(-e));
        if (err) {
            err->file = cfg->file;
            err->line = 0;
        }
        return FDT_ECONFIG;
    }
    if (err)
        err->msg[0] = '\0';
    int line = ini_parse_file(f, on_ini_key, &ctx);
    fclose(f);
    if (line != 0) {
        if (err) {
            if (err->msg[0] == '\0' || line < 0)
                fdt_error_set(err, FDT_ECONFIG, "syntax error");
            err->code = FDT_ECONFIG;
            err->file = cfg->file;
            err->line = line > 0 ? line : 0;
        }
        return FDT_ECONFIG;
    }
    return 0;
}

int fdt__cfg_set(struct fdt_cfg *cfg, const char *assignment, struct fdt_error *err)
{
    const char *eq = strchr(assignment, '=');
    const char *dot = NULL;
    for (const char *p = assignment; eq && p < eq; p++) {
        if (*p == '.')
            dot = p; /* the last dot before '=' splits section and key */
    }
    if (!eq || !dot || dot == assignment)
        return fdt_error_set(err, FDT_ECONFIG, "--set %s: expected SECTION.KEY=VALUE", assignment);
    char section[FDT_CFG_NAME_MAX * 2];
    char key[FDT_CFG_NAME_MAX];
    size_t slen = (size_t)(dot - assignment);
    size_t klen = (size_t)(eq - dot - 1);
    if (slen >= sizeof(section) || klen >= sizeof(key) || klen == 0)
        return fdt_error_set(err, FDT_ECONFIG, "--set %s: bad section or key", assignment);
    memcpy(section, assignment, slen);
    section[slen] = '\0';
    memcpy(key, dot + 1, klen);
    key[klen] = '\0';
    struct apply_ctx ctx = {.cfg = cfg, .err = err};
    int rc = apply(&ctx, section, key, eq + 1);
    if (rc < 0 && err) {
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "--set: %s", err->msg);
        memcpy(err->msg, msg, sizeof(msg));
    }
    return rc;
}

int fdt__cfg_add_listen(struct fdt_cfg *cfg, const char *spec, struct fdt_error *err)
{
    char addr[FDT_CFG_PATH_MAX];
    if (fdt__strlcpy(addr, spec, sizeof(addr)) < 0)
        return fdt_error_set(err, FDT_ECONFIG, "--listen: address too long");
    char *comma = strrchr(addr, ',');
    const char *proto = "http";
    if (comma) {
        *comma = '\0';
        proto = comma + 1;
    }
    char name[32];
    snprintf(name, sizeof(name), "cli%d", cfg->n_listeners);
    struct apply_ctx ctx = {.cfg = cfg, .err = err};
    int rc = apply_listen(&ctx, name, "address", addr);
    if (rc == 0)
        rc = apply_listen(&ctx, name, "protocol", proto);
    if (rc < 0 && err) {
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "--listen %s: %s", spec, err->msg);
        memcpy(err->msg, msg, sizeof(msg));
    }
    return rc;
}

int fdt__cfg_finish(struct fdt_cfg *cfg, struct fdt_error *err)
{
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n > 0 ? (int)(n < FDT_MAX_WORKERS ? n : FDT_MAX_WORKERS) : 1;
    }
    if (cfg->keepalive_timeout <= 0.0)
        cfg->keepalive_timeout = cfg->idle_timeout;
    if (cfg->n_listeners == 0)
        return fdt_error_set(err, FDT_ECONFIG,
                             "no listener: add a [listen.NAME] section or --listen");
    for (int i = 0; i < cfg->n_listeners; i++) {
        struct fdt_listen_cfg *l = &cfg->listeners[i];
        if (!l->address[0])
            return fdt_error_set(err, FDT_ECONFIG, "[listen.%s] address is missing", l->name);
        if (l->reuseport && strncmp(l->address, "unix:", 5) == 0)
            return fdt_error_set(err, FDT_ECONFIG,
                                 "[listen.%s] reuseport applies to TCP addresses only", l->name);
        for (int j = 0; j < i; j++) {
            if (strcmp(cfg->listeners[j].address, l->address) == 0)
                return fdt_error_set(err, FDT_ECONFIG,
                                     "[listen.%s] address %s is also used by [listen.%s]", l->name,
                                     l->address, cfg->listeners[j].name);
        }
    }
    if (!cfg->app_module[0])
        return fdt_error_set(err, FDT_ECONFIG, "no application: set [app] module or --app");
    for (int i = 0; i < cfg->n_resources; i++) {
        struct fdt_resource_cfg *r = &cfg->resources[i];
        if (!r->driver[0])
            return fdt_error_set(err, FDT_ECONFIG, "[resource.%s] driver is missing", r->name);
        if (strcmp(r->driver, "postgresql") == 0 && !r->dsn[0])
            return fdt_error_set(err, FDT_ECONFIG, "[resource.%s] dsn is missing", r->name);
        if (strcmp(r->driver, "sqlite") == 0 && !r->path[0])
            return fdt_error_set(err, FDT_ECONFIG, "[resource.%s] path is missing", r->name);
    }
    return 0;
}

const char *fdt__cfg_app_get(const struct fdt_cfg *cfg, const char *key)
{
    for (int i = 0; i < cfg->n_app_keys; i++) {
        if (strcmp(cfg->app_keys[i].key, key) == 0)
            return cfg->app_keys[i].value;
    }
    return NULL;
}

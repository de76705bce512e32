#include "fdt_config.h"

/* Reading settings: every key is a row of the table in config_table.c, which says how its
 * value is parsed, its bounds and its default. */

#include "config/config.h"
#include "config/config_int.h"
#include "util/util.h"

#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Write the default of row k into the field inside base. */
static void store_default(const struct fdt__cfg_key *k, void *base)
{
    void *field = fdt__cfg_field(k, base);
    int i = (int)k->def.i;
    switch (k->type) {
    case FDT__CFG_INT:
    case FDT__CFG_ENUM:
        memcpy(field, &i, sizeof(i));
        break;
    case FDT__CFG_DOUBLE:
        memcpy(field, &k->def.d, sizeof(k->def.d));
        break;
    case FDT__CFG_SIZE:
        memcpy(field, &k->def.z, sizeof(k->def.z));
        break;
    case FDT__CFG_BOOL:
        memcpy(field, &k->def.b, sizeof(k->def.b));
        break;
    case FDT__CFG_STRING:
    case FDT__CFG_PATH:
    case FDT__CFG_ADDRESS:
        fdt__strlcpy(field, k->def.s ? k->def.s : "", k->size);
        break;
    }
}

static void store_defaults(enum fdt__cfg_section s, void *base)
{
    for (size_t i = 0; i < fdt__cfg_n_keys; i++) {
        if (fdt__cfg_keys[i].section == s)
            store_default(&fdt__cfg_keys[i], base);
    }
}

void fdt__cfg_init(struct fdt_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    store_defaults(FDT__CFG_SERVER, cfg);
    store_defaults(FDT__CFG_APP, cfg);
    store_defaults(FDT__CFG_PYTHON, cfg);
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
    case FDT_PROTO_METRICS:
        return "metrics";
    }
    return "?"; /* GCOVR_EXCL_LINE: unreachable: every protocol returns above (-Wswitch) */
}

/* Context while applying settings: where relative paths are anchored. */
struct apply_ctx {
    struct fdt_cfg *cfg;
    struct fdt_error *err;
    char base[FDT_CFG_PATH_MAX]; /* directory of the file, "" for the command line */
};

/* Why a value was refused. */
enum verdict {
    VALUE_OK,
    VALUE_BAD,      /* "expected " and the values the row accepts */
    VALUE_TOO_LONG, /* "too long" */
    VALUE_PATH_TOO_LONG,
};

/* Copy prefix and value into dst; a relative value is anchored at base unless base is "". */
static enum verdict copy_path(const char *base, char *dst, size_t size, const char *prefix,
                              const char *value)
{
    char tmp[FDT_CFG_PATH_MAX * 2];
    if (value[0] == '/' || !base[0] || value[0] == '\0')
        snprintf(tmp, sizeof(tmp), "%s%s", prefix, value);
    else
        snprintf(tmp, sizeof(tmp), "%s%s/%s", prefix, base, value);
    if (strlen(tmp) >= size)
        return VALUE_PATH_TOO_LONG;
    fdt__strlcpy(dst, tmp, size);
    return VALUE_OK;
}

static bool match_choice(const struct fdt__cfg_key *k, const char *value, int *out)
{
    for (const struct fdt__cfg_choice *c = k->choices; c->name; c++) {
        if (k->nocase ? strcasecmp(c->name, value) == 0 : strcmp(c->name, value) == 0) {
            *out = c->value;
            return true;
        }
    }
    return false;
}

/* INT, DOUBLE, SIZE, BOOL and ENUM: parse within the row's bounds, then store. */
static enum verdict parse_scalar(const struct fdt__cfg_key *k, void *field, const char *value)
{
    long l;
    double d;
    size_t z;
    bool b;
    int i;
    switch (k->type) {
    case FDT__CFG_INT:
        if (fdt__parse_long(value, (long)k->min, (long)k->max, &l) < 0)
            return VALUE_BAD;
        i = (int)l;
        memcpy(field, &i, sizeof(i));
        return VALUE_OK;
    case FDT__CFG_DOUBLE:
        if (fdt__parse_double(value, k->min, k->max, &d) < 0)
            return VALUE_BAD;
        memcpy(field, &d, sizeof(d));
        return VALUE_OK;
    case FDT__CFG_SIZE:
        if (fdt__parse_size(value, (size_t)k->min, (size_t)k->max, &z) < 0)
            return VALUE_BAD;
        memcpy(field, &z, sizeof(z));
        return VALUE_OK;
    case FDT__CFG_BOOL:
        if (fdt__parse_bool(value, &b) < 0)
            return VALUE_BAD;
        memcpy(field, &b, sizeof(b));
        return VALUE_OK;
    case FDT__CFG_ENUM:
        if (!match_choice(k, value, &i))
            return VALUE_BAD;
        memcpy(field, &i, sizeof(i));
        return VALUE_OK;
    default:              /* GCOVR_EXCL_LINE: unreachable: parse_value took the other types */
        return VALUE_BAD; /* GCOVR_EXCL_LINE: unreachable: as above */
    }
}

/* Check value for row k and store it in field: STRING, PATH and ADDRESS here, the other
 * types in parse_scalar. */
static enum verdict parse_value(const struct apply_ctx *ctx, const struct fdt__cfg_key *k,
                                char *field, const char *value)
{
    struct fdt_addr a;
    int unused;
    switch (k->type) {
    case FDT__CFG_STRING:
        if (k->choices && !match_choice(k, value, &unused))
            return VALUE_BAD;
        if (k->name && !fdt__cfg_name_ok(value))
            return VALUE_BAD;
        if (strlen(value) < (size_t)k->min)
            return VALUE_BAD; /* GCOVR_EXCL_LINE: unreachable: the one string with a minimum
                               * ([server] node) is a name, refused empty just above */
        if (strlen(value) >= k->size)
            return k->min > 0 ? VALUE_BAD : VALUE_TOO_LONG;
        fdt__strlcpy(field, value, k->size);
        return VALUE_OK;
    case FDT__CFG_PATH:
        /* "unix:..." is kept as given (the control socket may be written so). */
        return copy_path(strncmp(value, "unix:", 5) == 0 ? "" : ctx->base, field, k->size, "",
                         value);
    case FDT__CFG_ADDRESS:
        if (fdt__addr_parse(value, &a) < 0)
            return VALUE_BAD;
        if (strncmp(value, "unix:", 5) == 0 && value[5] != '/')
            return copy_path(ctx->base, field, k->size, "unix:", value + 5);
        if (strlen(value) >= k->size)
            return VALUE_TOO_LONG;
        fdt__strlcpy(field, value, k->size);
        return VALUE_OK;
    default:
        return parse_scalar(k, field, value);
    }
}

/* Parse value for row k into its field inside base. A refused value leaves the field as it
 * was, and the message names section, key and value. */
static int store(const struct apply_ctx *ctx, const char *section, const struct fdt__cfg_key *k,
                 void *base, const char *value)
{
    enum verdict v = parse_value(ctx, k, fdt__cfg_field(k, base), value);
    char values[192];
    /* A long value (--set takes any length) is shown cut, or the reason after it would be
     * cut off the message. */
    char shown[72];
    if (strlen(value) < sizeof(shown))
        fdt__strlcpy(shown, value, sizeof(shown));
    else
        snprintf(shown, sizeof(shown), "%.64s...", value);
    switch (v) {
    case VALUE_OK:
        return 0;
    case VALUE_BAD:
        fdt__cfg_values_format(k, values, sizeof(values));
        return fdt_error_set(ctx->err, FDT_ECONFIG, "[%s] %s = '%s': expected %s", section, k->key,
                             shown, values);
    case VALUE_TOO_LONG:
        break;
    case VALUE_PATH_TOO_LONG:
        /* The reason before the value: a long value would cut it off the message. */
        return fdt_error_set(ctx->err, FDT_ECONFIG, "[%s] %s: path too long: '%s'", section, k->key,
                             value);
    }
    return fdt_error_set(ctx->err, FDT_ECONFIG, "[%s] %s = '%s': too long (at most %zu bytes)",
                         section, k->key, shown, k->size - 1);
}

static int unknown_key(const struct apply_ctx *ctx, enum fdt__cfg_section s, const char *section,
                       const char *key)
{
    const char *near = fdt__cfg_key_suggest(s, key);
    if (near)
        return fdt_error_set(ctx->err, FDT_ECONFIG, "[%s] unknown key '%s' (did you mean '%s'?)",
                             section, key, near);
    return fdt_error_set(ctx->err, FDT_ECONFIG, "[%s] unknown key '%s'", section, key);
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

/* The listener called name, added with its defaults when it is new. */
static struct fdt_listen_cfg *listener_get(const struct apply_ctx *ctx, const char *name)
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
    store_defaults(FDT__CFG_LISTEN, l);
    return l;
}

/* The resource called name, added with its defaults when it is new. */
static struct fdt_resource_cfg *resource_get(const struct apply_ctx *ctx, const char *name)
{
    struct fdt_cfg *cfg = ctx->cfg;
    for (int i = 0; i < cfg->n_resources; i++) {
        if (strcmp(cfg->resources[i].name, name) == 0)
            return &cfg->resources[i];
    }
    if (cfg->n_resources >= FDT_CFG_MAX_RESOURCES) {
        fdt_error_set(ctx->err, FDT_ECONFIG, "too many resources (at most %d)",
                      FDT_CFG_MAX_RESOURCES);
        return NULL;
    }
    struct fdt_resource_cfg *r = &cfg->resources[cfg->n_resources++];
    memset(r, 0, sizeof(*r));
    fdt__strlcpy(r->name, name, sizeof(r->name));
    store_defaults(FDT__CFG_RESOURCE, r);
    return r;
}

/* The nearest section name for a misspelt one ("sever" -> "server", "lisen.a" ->
 * "listen.a"), written into out; false when none is close. */
static bool suggest_section(const char *section, char *out, size_t size)
{
    static const char *plain[] = {"server", "app", "python"};
    static const char *named[] = {"listen", "resource"};
    const char *dot = strchr(section, '.');
    char head[FDT_CFG_NAME_MAX];
    snprintf(head, sizeof(head), "%.*s", dot ? (int)(dot - section) : (int)strlen(section),
             section);
    const char **names = dot ? named : plain;
    for (size_t i = 0; i < (dot ? FDT_ARRAY_LEN(named) : FDT_ARRAY_LEN(plain)); i++) {
        if (fdt__cfg_distance(head, names[i], 2) <= 2) {
            snprintf(out, size, "%s%s", names[i], dot ? dot : "");
            return true;
        }
    }
    return false;
}

static int unknown_section(const struct apply_ctx *ctx, const char *section, const char *key)
{
    char near[FDT_CFG_NAME_MAX * 2];
    if (section[0] == '\0')
        return fdt_error_set(ctx->err, FDT_ECONFIG, "key '%s' outside any section", key);
    if (suggest_section(section, near, sizeof(near)))
        return fdt_error_set(ctx->err, FDT_ECONFIG, "unknown section [%s] (did you mean [%s]?)",
                             section, near);
    return fdt_error_set(ctx->err, FDT_ECONFIG, "unknown section [%s]", section);
}

/* Which kind of section this is and the struct its keys' offsets point into. */
static int section_resolve(const struct apply_ctx *ctx, const char *section, const char *key,
                           enum fdt__cfg_section *s, void **base)
{
    *base = ctx->cfg;
    if (strcmp(section, "server") == 0) {
        *s = FDT__CFG_SERVER;
        return 0;
    }
    if (strcmp(section, "app") == 0) {
        *s = FDT__CFG_APP;
        return 0;
    }
    if (strcmp(section, "python") == 0) {
        *s = FDT__CFG_PYTHON;
        return 0;
    }
    bool listen = strncmp(section, "listen.", 7) == 0;
    if (!listen && strncmp(section, "resource.", 9) != 0)
        return unknown_section(ctx, section, key);
    const char *name = section + (listen ? 7 : 9);
    if (!valid_name(name))
        return fdt_error_set(ctx->err, FDT_ECONFIG, "[%s] bad %s name (letters, digits, '_', '-')",
                             section, listen ? "listener" : "resource");
    *s = listen ? FDT__CFG_LISTEN : FDT__CFG_RESOURCE;
    *base = listen ? (void *)listener_get(ctx, name) : (void *)resource_get(ctx, name);
    return *base ? 0 : FDT_ECONFIG;
}

/* An [app] key other than module: kept as text for the application. */
static int app_key_set(const struct apply_ctx *ctx, const char *key, const char *value)
{
    struct fdt_cfg *cfg = ctx->cfg;
    int i = 0;
    while (i < cfg->n_app_keys && strcmp(cfg->app_keys[i].key, key) != 0)
        i++;
    if (i == FDT_CFG_MAX_APP_KEYS)
        return fdt_error_set(ctx->err, FDT_ECONFIG, "[app] too many keys (at most %d)",
                             FDT_CFG_MAX_APP_KEYS);
    bool is_new = i == cfg->n_app_keys;
    char *k = is_new ? fdt__strdup(key) : NULL;
    char *v = fdt__strdup(value);
    if (!v || (is_new && !k)) {
        free(k);
        free(v);
        return fdt_error_set(ctx->err, FDT_ENOMEM, "out of memory");
    }
    if (is_new) {
        cfg->app_keys[i].key = k;
        cfg->app_keys[i].value = NULL;
        cfg->n_app_keys++;
    }
    free(cfg->app_keys[i].value);
    cfg->app_keys[i].value = v;
    return 0;
}

/* "pkg.module:callable": dotted Python names on both sides of one ':'. */
static bool wsgi_spec_ok(const char *v)
{
    const char *colon = strchr(v, ':');
    if (!colon || strchr(colon + 1, ':'))
        return false;
    bool start = true; /* at the start of a name */
    for (const char *p = v; *p; p++) {
        char ch = *p;
        bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
        if (ch == '.' || ch == ':') {
            if (start)
                return false;
            start = true;
        } else if (alpha || (!start && ch >= '0' && ch <= '9')) {
            start = false;
        } else {
            return false;
        }
    }
    return !start;
}

/* [app] module, or wsgi and/or jsonrpc: an application is a C module or Python, never
 * both. */
static int app_choose(const struct apply_ctx *ctx, const struct fdt__cfg_key *k, const char *value)
{
    struct fdt_cfg *cfg = ctx->cfg;
    bool module = strcmp(k->key, "module") == 0;
    const char *other_key = module ? (cfg->app_wsgi[0] ? "wsgi" : "jsonrpc") : "module";
    const char *other =
        module ? (cfg->app_wsgi[0] ? cfg->app_wsgi : cfg->app_jsonrpc) : cfg->app_module;
    if (value[0] && other[0])
        return fdt_error_set(ctx->err, FDT_ECONFIG,
                             "[app] %s = '%s': the application is already %s = '%s'; a C "
                             "module and a Python application cannot be served together",
                             k->key, value, other_key, other);
    return store(ctx, "app", k, cfg, value);
}

/* inih keeps at most 49 characters of a section name and drops the rest silently. */
#define SECTION_MAX 48

static int apply(const struct apply_ctx *ctx, const char *section, const char *key,
                 const char *value)
{
    if (strlen(section) > SECTION_MAX)
        return fdt_error_set(ctx->err, FDT_ECONFIG,
                             "section name [%s...] too long (at most %d characters)", section,
                             SECTION_MAX);
    enum fdt__cfg_section s = FDT__CFG_SERVER;
    void *base;
    int rc = section_resolve(ctx, section, key, &s, &base);
    if (rc < 0)
        return rc;
    const struct fdt__cfg_key *k = fdt__cfg_key_find(s, key);
    if (k && s == FDT__CFG_APP)
        return app_choose(ctx, k, value);
    if (k)
        return store(ctx, section, k, base, value);
    if (s == FDT__CFG_APP)
        return app_key_set(ctx, key, value);
    return unknown_key(ctx, s, section, key);
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
    /* Keys only: inih reports a section without keys (name NULL) only when built with
     * INI_CALL_HANDLER_ON_NEW_SECTION, which this build does not define. */
    return apply(ctx, section, name, value ? value : "") == 0;
}

/* inih's line reader (fgets), noticing a line longer than inih's buffer (INI_MAX_LINE,
 * fixed when the library was built): parsing stops there, and the caller says so. */
struct ini_lines {
    FILE *f;
    int line;
    int too_long; /* the number of the first line too long, or 0 */
    int max;
};

static char *read_ini_line(char *str, int num, void *stream)
{
    struct ini_lines *l = stream;
    if (l->too_long || !fgets(str, num, l->f))
        return NULL;
    l->line++;
    l->max = num;
    size_t n = strlen(str);
    if (n > 0 && str[n - 1] != '\n' && !feof(l->f)) {
        l->too_long = l->line;
        return NULL;
    }
    return str;
}

/* The absolute directory of path, where its relative paths are anchored. */
static int file_base(const char *path, char *base, size_t size, struct fdt_error *err)
{
    char tmp[FDT_CFG_PATH_MAX];
    fdt__strlcpy(tmp, path, sizeof(tmp));
    char *dir = dirname(tmp);
    if (dir[0] == '/') {
        fdt__strlcpy(base, dir, size);
        return 0;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return fdt_error_set(err, FDT_ECONFIG, "getcwd: %s", fdt_strerror(-errno));
    char full[PATH_MAX * 2];
    if (strcmp(dir, ".") == 0)
        snprintf(full, sizeof(full), "%s", cwd);
    else
        snprintf(full, sizeof(full), "%s/%s", cwd, dir);
    if (fdt__strlcpy(base, full, size) < 0)
        return fdt_error_set(err, FDT_ECONFIG, "configuration file path too long: %s", path);
    return 0;
}

int fdt__cfg_load_file(struct fdt_cfg *cfg, const char *path, struct fdt_error *err)
{
    struct apply_ctx ctx = {.cfg = cfg, .err = err};
    if (fdt__strlcpy(cfg->file, path, sizeof(cfg->file)) < 0)
        return fdt_error_set(err, FDT_ECONFIG, "configuration file path too long: %s", path);
    if (file_base(path, ctx.base, sizeof(ctx.base), err) < 0)
        return FDT_ECONFIG;
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
    struct ini_lines lines = {.f = f};
    int line = ini_parse_stream(read_ini_line, &lines, on_ini_key, &ctx);
    fclose(f);
    if (lines.too_long) {
        /* inih cuts a line at its buffer and would parse the rest as a line of its own. */
        fdt_error_set(err, FDT_ECONFIG, "line longer than %d bytes", lines.max - 2);
        line = lines.too_long;
    }
    if (line == 0)
        return 0;
    if (err) {
        if (err->msg[0] == '\0' || line < 0)
            fdt_error_set(err, FDT_ECONFIG, "syntax error");
        err->code = FDT_ECONFIG;
        err->file = cfg->file;
        err->line = line > 0 ? line : 0;
    }
    return FDT_ECONFIG;
}

/* Put "WHAT[ ARG]: " in front of the message in err. */
static void error_prefix(struct fdt_error *err, const char *what, const char *arg)
{
    if (!err)
        return;
    char msg[sizeof(err->msg)];
    snprintf(msg, sizeof(msg), "%s%s%s: %s", what, arg ? " " : "", arg ? arg : "", err->msg);
    memcpy(err->msg, msg, sizeof(msg));
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
    if (rc < 0)
        error_prefix(err, "--set", NULL);
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
    char section[32];
    snprintf(section, sizeof(section), "listen.cli%d", cfg->n_listeners);
    struct apply_ctx ctx = {.cfg = cfg, .err = err};
    int rc = apply(&ctx, section, "address", addr);
    if (rc == 0)
        rc = apply(&ctx, section, "protocol", proto);
    if (rc < 0)
        error_prefix(err, "--listen", spec);
    return rc;
}

/* The TLS keys of a listener go together; the files themselves are read by the master
 * (src/tls), which says what is wrong with them. */
static int check_tls(const struct fdt_listen_cfg *l, struct fdt_error *err)
{
    if (!l->tls) {
        const char *set = l->certificate[0]   ? "certificate"
                          : l->private_key[0] ? "private_key"
                          : l->ca[0]          ? "ca"
                          : l->verify_client  ? "verify_client"
                                              : NULL;
        if (set)
            return fdt_error_set(err, FDT_ECONFIG, "[listen.%s] %s is set but tls is not yes",
                                 l->name, set);
        return 0;
    }
    if (!l->certificate[0])
        return fdt_error_set(err, FDT_ECONFIG, "[listen.%s] tls = yes needs certificate", l->name);
    if (!l->private_key[0])
        return fdt_error_set(err, FDT_ECONFIG, "[listen.%s] tls = yes needs private_key", l->name);
    if (l->verify_client != FDT_TLS_VERIFY_NO && !l->ca[0])
        return fdt_error_set(err, FDT_ECONFIG,
                             "[listen.%s] verify_client needs ca (the CAs of client certificates)",
                             l->name);
    return 0;
}

static int check_listeners(const struct fdt_cfg *cfg, struct fdt_error *err)
{
    if (cfg->n_listeners == 0)
        return fdt_error_set(err, FDT_ECONFIG,
                             "no listener: add a [listen.NAME] section or --listen");
    for (int i = 0; i < cfg->n_listeners; i++) {
        const struct fdt_listen_cfg *l = &cfg->listeners[i];
        if (!l->address[0])
            return fdt_error_set(err, FDT_ECONFIG, "[listen.%s] address is missing", l->name);
        if (l->reuseport && strncmp(l->address, "unix:", 5) == 0)
            return fdt_error_set(err, FDT_ECONFIG,
                                 "[listen.%s] reuseport applies to TCP addresses only", l->name);
        if (l->defer_accept && strncmp(l->address, "unix:", 5) == 0)
            return fdt_error_set(err, FDT_ECONFIG,
                                 "[listen.%s] defer_accept applies to TCP addresses only", l->name);
        int rc = check_tls(l, err);
        if (rc < 0)
            return rc;
        for (int j = 0; j < i; j++) {
            if (strcmp(cfg->listeners[j].address, l->address) == 0)
                return fdt_error_set(err, FDT_ECONFIG,
                                     "[listen.%s] address %s is also used by [listen.%s]", l->name,
                                     l->address, cfg->listeners[j].name);
        }
    }
    return 0;
}

static int check_resources(const struct fdt_cfg *cfg, struct fdt_error *err)
{
    for (int i = 0; i < cfg->n_resources; i++) {
        const struct fdt_resource_cfg *r = &cfg->resources[i];
        if (!r->driver[0])
            return fdt_error_set(err, FDT_ECONFIG, "[resource.%s] driver is missing", r->name);
        if (strcmp(r->driver, "postgresql") == 0 && !r->dsn[0])
            return fdt_error_set(err, FDT_ECONFIG, "[resource.%s] dsn is missing", r->name);
        if (strcmp(r->driver, "sqlite") == 0 && !r->path[0])
            return fdt_error_set(err, FDT_ECONFIG, "[resource.%s] path is missing", r->name);
    }
    return 0;
}

int fdt__cfg_finish(struct fdt_cfg *cfg, struct fdt_error *err)
{
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n > 0 ? (int)(n < FDT_MAX_WORKERS ? n : FDT_MAX_WORKERS) : 1;
    }
    int rc = check_listeners(cfg, err);
    if (rc < 0)
        return rc;
    if (!cfg->app_module[0] && !cfg->app_wsgi[0] && !cfg->app_jsonrpc[0])
        return fdt_error_set(
            err, FDT_ECONFIG,
            "no application: set [app] module (or --app), or [app] wsgi and/or jsonrpc");
    if (cfg->app_wsgi[0] && !wsgi_spec_ok(cfg->app_wsgi))
        return fdt_error_set(err, FDT_ECONFIG, "[app] wsgi = '%s': expected pkg.module:callable",
                             cfg->app_wsgi);
    if (cfg->app_jsonrpc[0] && !wsgi_spec_ok(cfg->app_jsonrpc))
        return fdt_error_set(err, FDT_ECONFIG, "[app] jsonrpc = '%s': expected pkg.module:mapping",
                             cfg->app_jsonrpc);
    for (int i = 0; !cfg->app_module[0] && !cfg->app_wsgi[0] && i < cfg->n_listeners; i++) {
        if (cfg->listeners[i].protocol == FDT_PROTO_HTTP)
            return fdt_error_set(err, FDT_ECONFIG,
                                 "[listen.%s] protocol = http, but the Python application has "
                                 "no [app] wsgi (set protocol = jsonrpc, or wsgi)",
                                 cfg->listeners[i].name);
    }
    if (!cfg->app_wsgi[0] && !cfg->app_jsonrpc[0] && (cfg->python_path[0] || cfg->python_home[0]))
        return fdt_error_set(err, FDT_ECONFIG,
                             "[python] is set but neither [app] wsgi nor jsonrpc");
    return check_resources(cfg, err);
}

const char *fdt__cfg_app_get(const struct fdt_cfg *cfg, const char *key)
{
    for (int i = 0; i < cfg->n_app_keys; i++) {
        if (strcmp(cfg->app_keys[i].key, key) == 0)
            return cfg->app_keys[i].value;
    }
    return NULL;
}

bool fdt__cfg_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= FDT_CFG_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

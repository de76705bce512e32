#include "fdt_config.h"

#include "txn/txn_cli.h"

#include "txn/rm.h"
#include "txn/txn.h"
#include "txn/txn_gid.h"
#include "util/util.h"

#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The log key of a branch GID: the same GID with "_" as the resource. */
static int log_key_of(const char *gid, char *key, size_t size, struct fdt_gid *parsed)
{
    if (fdt__gid_parse(gid, parsed) < 0)
        return FDT_EINVAL;
    return fdt__gid_format(key, size, parsed->node, "_", &parsed->xid);
}

/* Look the key up in every resource's log; fills role/outcome ("" when not found). */
static void log_lookup(const struct fdt_cfg *cfg, const char *key, char *role, char *outcome,
                       size_t size)
{
    role[0] = outcome[0] = '\0';
    for (int i = 0; i < cfg->n_resources; i++) {
        const struct fdt_resource_cfg *rc = &cfg->resources[i];
        const struct fdt_rm_driver *drv = fdt__rm_driver_find(rc->driver);
        void *s = NULL;
        struct fdt_error err = {0};
        if (!drv || drv->open(rc, &s, &err) < 0)
            continue;
        char sql[400];
        snprintf(sql, sizeof(sql),
                 "SELECT role || ' ' || outcome FROM fdt_txn_log WHERE gid = '%s'", key);
        char out[128] = "";
        if (drv->query_text(s, sql, out, sizeof(out), &err) == 0 && out[0]) {
            char *sp = strchr(out, ' ');
            if (sp) {
                *sp = '\0';
                fdt__strlcpy(role, out, size);
                fdt__strlcpy(outcome, sp + 1, size);
            }
        }
        drv->close(s);
        if (role[0])
            return;
    }
}

static int record_outcome(const struct fdt_cfg *cfg, const char *key, const char *outcome,
                          const char *comment)
{
    for (int i = 0; i < cfg->n_resources; i++) {
        const struct fdt_resource_cfg *rc = &cfg->resources[i];
        const struct fdt_rm_driver *drv = fdt__rm_driver_find(rc->driver);
        void *s = NULL;
        struct fdt_error err = {0};
        if (!drv || drv->open(rc, &s, &err) < 0)
            continue;
        char sql[900];
        snprintf(sql, sizeof(sql),
                 "UPDATE fdt_txn_log SET outcome = '%s', comment = '%s' WHERE gid = '%s'", outcome,
                 comment, key);
        long rows = 0;
        drv->exec(s, sql, &rows, &err);
        drv->close(s);
        if (rows > 0)
            return 0;
    }
    return FDT_ENOENT;
}

struct list_ctx {
    const struct fdt_cfg *cfg;
    const char *resource;
    int count;
};

static void list_one(const char *gid, double age, void *arg)
{
    struct list_ctx *lc = arg;
    char key[FDT_GID_MAX + 1];
    struct fdt_gid g;
    char role[32] = "";
    char outcome[32] = "";
    if (log_key_of(gid, key, sizeof(key), &g) == 0)
        log_lookup(lc->cfg, key, role, outcome, sizeof(role));
    printf("%-12s %-10s %-12s %9.1f %s\n", lc->resource, role[0] ? role : "-",
           outcome[0] ? outcome : "(no record)", age, gid);
    lc->count++;
}

static int cmd_list(const struct fdt_cfg *cfg)
{
    char prefix[FDT_GID_MAX + 1];
    fdt__strlcpy(prefix, FDT_GID_PREFIX, sizeof(prefix));
    printf("%-12s %-10s %-12s %9s %s\n", "RESOURCE", "ROLE", "RECORD", "AGE(s)", "GID");
    int total = 0;
    int rc = 0;
    for (int i = 0; i < cfg->n_resources; i++) {
        const struct fdt_resource_cfg *r = &cfg->resources[i];
        const struct fdt_rm_driver *drv = fdt__rm_driver_find(r->driver);
        if (!drv || !drv->can_prepare)
            continue;
        void *s = NULL;
        struct fdt_error err = {0};
        if (drv->open(r, &s, &err) < 0) {
            fprintf(stderr, "fdtserver txn: %s\n", err.msg);
            rc = 1;
            continue;
        }
        struct list_ctx lc = {cfg, r->name, 0};
        if (drv->recover(s, prefix, 0.0, list_one, &lc, &err) < 0) {
            fprintf(stderr, "fdtserver txn: [resource.%s] %s\n", r->name, err.msg);
            rc = 1;
        }
        total += lc.count;
        drv->close(s);
    }
    printf("%d prepared transaction%s\n", total, total == 1 ? "" : "s");
    return rc;
}

static int cmd_resolve(const struct fdt_cfg *cfg, const char *gid, bool commit)
{
    struct fdt_gid g;
    char key[FDT_GID_MAX + 1];
    if (log_key_of(gid, key, sizeof(key), &g) < 0) {
        fprintf(stderr, "fdtserver txn: %s is not an fdtserver GID\n", gid);
        return 2;
    }
    const struct fdt_resource_cfg *r = NULL;
    for (int i = 0; i < cfg->n_resources; i++) {
        if (strcmp(cfg->resources[i].name, g.resource) == 0)
            r = &cfg->resources[i];
    }
    if (!r) {
        fprintf(stderr, "fdtserver txn: no [resource.%s] in the configuration\n", g.resource);
        return 2;
    }
    const struct fdt_rm_driver *drv = fdt__rm_driver_find(r->driver);
    void *s = NULL;
    struct fdt_error err = {0};
    if (!drv || drv->open(r, &s, &err) < 0) {
        fprintf(stderr, "fdtserver txn: %s\n", err.msg);
        return 1;
    }
    char role[32];
    char outcome[32];
    log_lookup(cfg, key, role, outcome, sizeof(role));
    int rc = commit ? drv->commit_prepared(s, gid, &err) : drv->rollback_prepared(s, gid, &err);
    drv->close(s);
    if (rc < 0) {
        /* Not prepared (any more): answer from the recorded outcome, never a guess. */
        if (commit && strcmp(outcome, "committed") == 0) {
            printf("already committed: %s\n", gid);
            return 0;
        }
        if (!commit && strcmp(outcome, "rolled back") == 0) {
            printf("already rolled back: %s\n", gid);
            return 0;
        }
        if (!commit && strcmp(outcome, "committed") == 0) {
            fprintf(stderr, "fdtserver txn: %s was committed: it cannot be rolled back\n", gid);
            return 1;
        }
        fprintf(stderr, "fdtserver txn: %s\n", err.msg);
        return 1;
    }
    char comment[300];
    struct passwd *pw = getpwuid(getuid());
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(comment, sizeof(comment), "manual %s by %s at %04d-%02d-%02dT%02d:%02d:%02dZ",
             commit ? "commit" : "rollback", pw ? pw->pw_name : "?", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    record_outcome(cfg, key, commit ? "committed" : "rolled back", comment);
    printf("%s: %s\n", commit ? "committed" : "rolled back", gid);
    return 0;
}

int fdt__txn_cli(const struct fdt_cfg *cfg, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return cmd_list(cfg);
    if (argc == 2 && strcmp(argv[0], "commit") == 0)
        return cmd_resolve(cfg, argv[1], true);
    if (argc == 2 && strcmp(argv[0], "rollback") == 0)
        return cmd_resolve(cfg, argv[1], false);
    fprintf(stderr, "usage: fdtserver txn list | commit GID | rollback GID  -c FILE\n");
    return 2;
}

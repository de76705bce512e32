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

/* A session of its own on resource rc for the command line, or NULL (said on stderr: a
 * driver module that cannot be loaded, or a database that cannot be reached). */
static void *open_session(const struct fdt_resource_cfg *rc, const struct fdt_rm_driver **drv)
{
    *drv = fdt__rm_driver_find(rc->driver);
    void *s = NULL;
    struct fdt_error err = {0};
    if (!*drv)
        fprintf(stderr, "fdtserver txn: [resource.%s] driver %s is not available\n", rc->name,
                rc->driver);
    else if ((*drv)->open(rc, &s, &err) < 0)
        fprintf(stderr, "fdtserver txn: [resource.%s]: %s\n", rc->name, err.msg);
    return *drv ? s : NULL;
}

/* Look the key up in every resource's log; fills role/outcome ("" when not found). */
static void log_lookup(const struct fdt_cfg *cfg, const char *key, char *role, char *outcome,
                       size_t size)
{
    role[0] = outcome[0] = '\0';
    for (int i = 0; i < cfg->n_resources; i++) {
        const struct fdt_resource_cfg *rc = &cfg->resources[i];
        const struct fdt_rm_driver *drv;
        struct fdt_error err = {0};
        void *s = open_session(rc, &drv);
        if (!s)
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
        const struct fdt_rm_driver *drv;
        struct fdt_error err = {0};
        void *s = open_session(rc, &drv);
        if (!s)
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

/* One prepared branch the driver listed: with --node, it lists only the GIDs that start
 * with that node's prefix, so every one listed is of that node. */

static void list_one(const char *gid, double age, void *arg)
{
    struct list_ctx *lc = arg;
    char key[FDT_GID_MAX + 1];
    struct fdt_gid g;
    char role[32] = "";
    char outcome[32] = "";
    if (log_key_of(gid, key, sizeof(key), &g) < 0)
        return; /* not an fdtserver GID */
    log_lookup(lc->cfg, key, role, outcome, sizeof(role));
    printf("%-12s %-12s %-11s %-12s %9.1f %s\n", lc->resource, g.node, role[0] ? role : "-",
           outcome[0] ? outcome : "(no record)", age, gid);
    lc->count++;
}

#define RESOLVED_SHOWN 20

/* The latest records of resolutions (by recovery, by a host taking over a dead one, or by
 * hand): each names who resolved it in its comment. */
static void list_resolved(const struct fdt_cfg *cfg, const char *node)
{
    bool header = false;
    for (int i = 0; i < cfg->n_resources; i++) {
        const struct fdt_resource_cfg *rc = &cfg->resources[i];
        const struct fdt_rm_driver *drv;
        struct fdt_error err = {0};
        void *s = open_session(rc, &drv);
        if (!s)
            continue;
        struct fdt_sql_rows *rows = fdt__sql_rows_new();
        char sql[200];
        snprintf(sql, sizeof(sql),
                 "SELECT gid, outcome, comment FROM fdt_txn_log WHERE comment IS NOT NULL "
                 "ORDER BY created DESC LIMIT %d",
                 RESOLVED_SHOWN);
        /* A resource without a log table (nothing was ever logged there) fails: skipped. */
        if (rows && drv->query(s, sql, NULL, 0, rows, &err) == 0) {
            for (int r = 0; r < fdt_sql_nrows(rows); r++) {
                struct fdt_gid g;
                const char *key = fdt_sql_text(rows, r, 0);
                if (!key || fdt__gid_parse(key, &g) < 0 || (node && strcmp(g.node, node) != 0))
                    continue;
                if (!header)
                    printf("\nresolved (the latest %d recorded in the logs):\n%-12s %-12s %-12s "
                           "%s\n",
                           RESOLVED_SHOWN, "LOG", "NODE", "OUTCOME", "BY / GID");
                header = true;
                const char *outcome = fdt_sql_text(rows, r, 1);
                const char *comment = fdt_sql_text(rows, r, 2);
                printf("%-12s %-12s %-12s %s\n%38s %s\n", rc->name, g.node, outcome ? outcome : "-",
                       comment ? comment : "", "", key);
            }
        }
        fdt_sql_rows_free(rows);
        drv->close(s);
    }
}

static int cmd_list(const struct fdt_cfg *cfg, const char *node)
{
    char prefix[FDT_GID_MAX + 1];
    if (node) {
        if (fdt__gid_node_prefix(prefix, sizeof(prefix), node) < 0) {
            fprintf(stderr, "fdtserver txn: bad node name %s\n", node);
            return 2;
        }
    } else {
        fdt__strlcpy(prefix, FDT_GID_PREFIX, sizeof(prefix));
    }
    printf("%-12s %-12s %-11s %-12s %9s %s\n", "RESOURCE", "NODE", "ROLE", "RECORD", "AGE(s)",
           "GID");
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
    list_resolved(cfg, node);
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
    if (!drv) {
        fprintf(stderr, "fdtserver txn: [resource.%s] driver %s is not available\n", r->name,
                r->driver);
        return 1;
    }
    if (drv->open(r, &s, &err) < 0) {
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
    char comment[400];
    char host[256] = "?";
    /* GCOVR_EXCL_START: unreachable: gethostname fails only for a buffer shorter than the
     * name, and 256 bytes hold any (HOST_NAME_MAX is 64) */
    if (gethostname(host, sizeof(host)) < 0)
        fdt__strlcpy(host, "?", sizeof(host));
    /* GCOVR_EXCL_STOP */
    host[sizeof(host) - 1] = '\0';
    struct passwd *pw = getpwuid(getuid());
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(comment, sizeof(comment), "manual %s by %s@%s at %04d-%02d-%02dT%02d:%02d:%02dZ",
             commit ? "commit" : "rollback", pw ? pw->pw_name : "?", host, tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    record_outcome(cfg, key, commit ? "committed" : "rolled back", comment);
    printf("%s: %s\n", commit ? "committed" : "rolled back", gid);
    return 0;
}

int fdt__txn_cli(const struct fdt_cfg *cfg, int argc, char **argv)
{
    if (argc == 1 && strcmp(argv[0], "list") == 0)
        return cmd_list(cfg, NULL);
    if (argc == 3 && strcmp(argv[0], "list") == 0 && strcmp(argv[1], "--node") == 0)
        return cmd_list(cfg, argv[2]);
    if (argc == 2 && strcmp(argv[0], "commit") == 0)
        return cmd_resolve(cfg, argv[1], true);
    if (argc == 2 && strcmp(argv[0], "rollback") == 0)
        return cmd_resolve(cfg, argv[1], false);
    fprintf(stderr,
            "usage: fdtserver txn list [--node NAME] | commit GID | rollback GID  -c FILE\n");
    return 2;
}

#include "fdt_config.h"

#include "master/master.h"
#include "util/util.h"
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <fdt/error.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* fdtserver --check: what the configuration names must exist before a worker needs it. The
 * checks here run in the process that was started with --check, which never serves; the
 * application itself is loaded only in a forked child that exits at once, so that not even
 * this process maps it (design §5: the master never loads application code). */

static void problem(int *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(int *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fdtserver: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    (*n)++;
}

/* [server] user and group name accounts of this system. */
static void check_accounts(const struct fdt_cfg *cfg, int *n)
{
    if (cfg->user[0] && !getpwnam(cfg->user))
        problem(n, "[server] user: unknown user %s", cfg->user);
    if (cfg->group[0] && !getgrnam(cfg->group))
        problem(n, "[server] group: unknown group %s", cfg->group);
}

/* A regular file this process may read. Returns 0, or a negative code. */
static int readable_file(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return FDT_EINVAL;
    if (access(path, R_OK) < 0)
        return -errno;
    return 0;
}

/* Every SQLite database lies in a directory that exists (the file itself is created on
 * first start). */
static void check_resources(const struct fdt_cfg *cfg, int *n)
{
    for (int i = 0; i < cfg->n_resources; i++) {
        const struct fdt_resource_cfg *r = &cfg->resources[i];
        if (strcmp(r->driver, "sqlite") != 0 || !r->path[0])
            continue;
        char dir[FDT_CFG_PATH_MAX];
        fdt__strlcpy(dir, r->path, sizeof(dir));
        const char *d = dirname(dir);
        struct stat st;
        if (stat(d, &st) < 0)
            problem(n, "[resource.%s] path %s: directory %s: %s", r->name, r->path, d,
                    fdt_strerror(-errno));
        else if (!S_ISDIR(st.st_mode))
            problem(n, "[resource.%s] path %s: %s is not a directory", r->name, r->path, d);
    }
}

/* In a forked child: load the application as a worker would (dlopen with RTLD_NOW, the
 * descriptor symbol, its ABI), write the error to fd, and exit. Never returns. */
static void load_in_child(const struct fdt_cfg *cfg, int fd)
{
    void *dl = NULL;
    const struct fdt_app *app = NULL;
    struct fdt_error err = {0};
    int code = 0;
    if (fdt__app_load(cfg, &dl, &app, &err) < 0) {
        (void)fdt__write_all(fd, err.msg, strlen(err.msg));
        code = 1;
    }
    /* fdt__exit: no atexit handler or destructor of this process runs twice. */
    fdt__exit(code);
}

/* Load [app] module in a throwaway child; say why it cannot be loaded. */
static void check_app_loads(const struct fdt_cfg *cfg, int *n)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        problem(n, "[app] module: cannot check: pipe: %s", fdt_strerror(-errno));
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        problem(n, "[app] module: cannot check: fork: %s", fdt_strerror(-errno));
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid == 0) {
        close(p[0]);
        load_in_child(cfg, p[1]);
    }
    close(p[1]);
    char msg[512];
    size_t used = 0;
    ssize_t got;
    while (used + 1 < sizeof(msg) && (got = read(p[0], msg + used, sizeof(msg) - 1 - used)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            break;
        used += (size_t)got;
    }
    msg[used] = '\0';
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status))
        problem(n, "[app] module %s: loading it killed the process (signal %d)", cfg->app_module,
                WTERMSIG(status));
    else if (WEXITSTATUS(status) != 0)
        problem(n, "[app] module: %s", used ? msg : "cannot load the application");
}

/* [app] module: a readable file given as a path, that loads (in a throwaway child). */
static void check_module(const struct fdt_cfg *cfg, int *n)
{
    int rc = readable_file(cfg->app_module);
    if (!strchr(cfg->app_module, '/'))
        problem(n,
                "[app] module %s: write a path with a '/' (./%s): a bare name is looked "
                "for in the library path, not here",
                cfg->app_module, cfg->app_module);
    else if (rc < 0)
        problem(n, "[app] module %s: %s", cfg->app_module,
                rc == FDT_EINVAL ? "not a regular file" : fdt_strerror(rc));
    else
        check_app_loads(cfg, n);
}

int fdt__master_check(const struct fdt_cfg *cfg)
{
    int n = 0;
    check_accounts(cfg, &n);
    /* A Python application is not imported: importing runs its code (the effective
     * configuration printed by --check says what would be loaded). */
    if (!cfg->app_wsgi[0] && !cfg->app_jsonrpc[0])
        check_module(cfg, &n);
    check_resources(cfg, &n);
    return n == 0 ? 0 : FDT_ECONFIG;
}

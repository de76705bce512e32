#include "fdt_config.h"

#include "master/master.h"
#include "tls/tls.h"
#include "util/util.h"
#include "worker/worker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fdt/error.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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
        /* GCOVR_EXCL_START: not reached: fork fails only out of memory or processes (the
         * test runs as root, which RLIMIT_NPROC does not limit) */
        problem(n, "[app] module: cannot check: fork: %s", fdt_strerror(-errno));
        close(p[0]);
        close(p[1]);
        return;
        /* GCOVR_EXCL_STOP */
    }
    if (pid == 0) {
        close(p[0]);
        load_in_child(cfg, p[1]);
    }
    close(p[1]);
    char msg[512];
    size_t used = 0;
    ssize_t got;
    /* A pipe read fails only with EINTR, and --check installs no signal handler. */
    while (used + 1 < sizeof(msg) && (got = read(p[0], msg + used, sizeof(msg) - 1 - used)) > 0)
        used += (size_t)got;
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

/* ---- A Python application: what would be imported, without importing it ---- */

#define PY_PATH_MAX 64

/* The module search path the workers' interpreter would have: [python] path first, then
 * what the interpreter itself (home's bin/python3, or the one fdtserver was built with)
 * prints as its sys.path when started isolated (-I) as the workers start it. */
struct py_path {
    int n;
    char dir[PY_PATH_MAX][FDT_CFG_PATH_MAX];
};

static void py_path_add(struct py_path *sp, const char *dir, size_t len)
{
    if (sp->n < PY_PATH_MAX && len > 0 && len < FDT_CFG_PATH_MAX) {
        memcpy(sp->dir[sp->n], dir, len);
        sp->dir[sp->n++][len] = '\0';
    }
}

/* Run exe -I -c 'print sys.path' in a child; add each entry to sp. Returns 0, or -1 with
 * why filled in. The child runs the interpreter's start-up only (site, no application). */
static int py_interpreter_path(const char *exe, struct py_path *sp, char *why, size_t wsize)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(why, wsize, "pipe: %s", fdt_strerror(-errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        /* GCOVR_EXCL_START: not reached: fork fails only out of memory or processes (the
         * test runs as root, which RLIMIT_NPROC does not limit) */
        snprintf(why, wsize, "fork: %s", fdt_strerror(-errno));
        close(p[0]);
        close(p[1]);
        return -1;
        /* GCOVR_EXCL_STOP */
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (dup2(p[1], STDOUT_FILENO) < 0 || null < 0 || dup2(null, STDIN_FILENO) < 0 ||
            dup2(null, STDERR_FILENO) < 0)
            fdt__exit(127);
        char *argv[] = {(char *)exe, "-I", "-c", "import sys\nfor d in sys.path: print(d)", NULL};
        execv(exe, argv);
        fdt__exit(127);
    }
    close(p[1]);
    static char out[PY_PATH_MAX * 256];
    size_t used = 0;
    ssize_t got;
    while (used + 1 < sizeof(out) && (got = read(p[0], out + used, sizeof(out) - 1 - used)) > 0)
        used += (size_t)got; /* no EINTR: as above */
    out[used] = '\0';
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(why, wsize, "%s did not run (%s %d)", exe,
                 WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return -1;
    }
    for (char *line = out, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            nl = line + strlen(line) - 1;
        else
            *nl = '\0';
        py_path_add(sp, line, strlen(line));
    }
    return 0;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* An extension module base.*.so or base.so (base = dir/name): its path into out. */
static bool find_extension(const char *dir, const char *name, size_t n, char *out, size_t size)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > n + 3 && strncmp(e->d_name, name, n) == 0 && e->d_name[n] == '.' &&
            strcmp(e->d_name + len - 3, ".so") == 0) {
            snprintf(out, size, "%s/%s", dir, e->d_name);
            found = is_file(out);
        }
    }
    closedir(d);
    return found;
}

/* Where the import system would find the dotted module under one sys.path entry, by
 * looking at files only: a package (name/__init__.py), an extension module, name.py or
 * name.pyc, and (with namespaces) a directory without __init__.py. */
static bool find_module_in(const char *entry, const char *module, bool namespaces, char *out,
                           size_t size)
{
    char base[FDT_CFG_PATH_MAX], path[FDT_CFG_PATH_MAX + 256];
    fdt__strlcpy(base, entry, sizeof(base));
    for (const char *p = module;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char pkg[FDT_CFG_PATH_MAX];
        if (snprintf(pkg, sizeof(pkg), "%s/%.*s", base, (int)n, p) >= (int)sizeof(pkg))
            return false;
        snprintf(path, sizeof(path), "%s/__init__.py", pkg);
        bool package = is_file(path);
        if (!package && !dot) {
            if (find_extension(base, p, n, out, size))
                return true;
            snprintf(path, sizeof(path), "%s.py", pkg);
            if (!is_file(path))
                snprintf(path, sizeof(path), "%s.pyc", pkg);
            if (is_file(path)) {
                snprintf(out, size, "%s", path);
                return true;
            }
        }
        if (!package && !(namespaces && is_dir(pkg)))
            return false;
        if (!dot) {
            snprintf(out, size, "%s%s", package ? path : pkg,
                     package ? "" : "/ (a namespace package)");
            return true;
        }
        fdt__strlcpy(base, pkg, sizeof(base));
        p = dot + 1;
    }
}

/* [app] wsgi or jsonrpc: say what would be imported and where the module is. A module
 * found nowhere is a warning, not an error: a .pth file, a zip archive or an import hook
 * can still provide it, which a look at the files cannot tell. */
static void check_python_spec(const char *key, const char *spec, const struct py_path *sp,
                              bool full)
{
    const char *colon = strchr(spec, ':');
    if (!colon)
        return; /* refused by the configuration already */
    int mlen = (int)(colon - spec);
    char module[sizeof(((struct fdt_cfg *)0)->app_wsgi)];
    snprintf(module, sizeof(module), "%.*s", mlen, spec);
    printf("# python: [app] %s = %s: imports module %s, then takes %s from it\n", key, spec, module,
           colon + 1);
    char where[FDT_CFG_PATH_MAX + 256];
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < sp->n; i++)
            if (find_module_in(sp->dir[i], module, pass == 1, where, sizeof(where))) {
                printf("# python: module %s: %s\n", module, where);
                return;
            }
    fprintf(stderr,
            "fdtserver: warning: [app] %s = %s: module %s is not found on %s (no %s.py, "
            "package or extension module): the workers' import will fail unless something "
            "this check cannot see (a .pth file, an import hook) provides it\n",
            key, spec, module, full ? "sys.path" : "[python] path", module);
}

static void check_python(const struct fdt_cfg *cfg, int *n)
{
    struct py_path *sp = calloc(1, sizeof(*sp));
    if (!sp) {
        problem(n, "[python]: cannot check: out of memory");
        return;
    }
    if (cfg->python_path[0])
        py_path_add(sp, cfg->python_path, strlen(cfg->python_path));
    char exe[FDT_CFG_PATH_MAX + 16];
    bool full = false;
    if (cfg->python_home[0]) {
        snprintf(exe, sizeof(exe), "%s/bin/python3", cfg->python_home);
        if (access(exe, X_OK) != 0)
            problem(n, "[python] home %s is not a virtual environment (no bin/python3)",
                    cfg->python_home);
    } else {
        snprintf(exe, sizeof(exe), "%s", FDT_PYTHON_EXE);
    }
    if (!cfg->python_home[0] || access(exe, X_OK) == 0) {
        char why[FDT_CFG_PATH_MAX + 64];
        if (py_interpreter_path(exe, sp, why, sizeof(why)) == 0)
            full = true;
        else
            fprintf(stderr,
                    "fdtserver: warning: [python]: cannot read the interpreter's sys.path: "
                    "%s; only [python] path is searched\n",
                    why);
    }
    printf("# python: sys.path of the workers (%s%s):\n",
           cfg->python_path[0] ? "[python] path, then " : "",
           full ? exe : "the interpreter's own, unknown");
    for (int i = 0; i < sp->n; i++)
        printf("#   %s\n", sp->dir[i]);
    if (cfg->app_wsgi[0])
        check_python_spec("wsgi", cfg->app_wsgi, sp, full);
    if (cfg->app_jsonrpc[0])
        check_python_spec("jsonrpc", cfg->app_jsonrpc, sp, full);
    free(sp);
}

/* TLS listeners: certificate, key and CA files load and the key matches the certificate. */
static void check_tls(const struct fdt_cfg *cfg, int *n)
{
    for (int i = 0; i < cfg->n_listeners; i++) {
        if (!cfg->listeners[i].tls)
            continue;
        struct fdt_tls_ctx *ctx = NULL;
        struct fdt_error err = {0};
        if (fdt__tls_ctx_new(&cfg->listeners[i], NULL, &ctx, &err) < 0)
            problem(n, "%s", err.msg);
        fdt__tls_ctx_free(ctx);
    }
}

int fdt__master_check(const struct fdt_cfg *cfg)
{
    int n = 0;
    check_accounts(cfg, &n);
    check_tls(cfg, &n);
    /* A Python application is not imported (importing runs its code): what would be
     * imported, and from where, is printed instead. */
    if (!cfg->app_wsgi[0] && !cfg->app_jsonrpc[0])
        check_module(cfg, &n);
    else
        check_python(cfg, &n);
    check_resources(cfg, &n);
    return n == 0 ? 0 : FDT_ECONFIG;
}

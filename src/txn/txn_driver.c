#include "fdt_config.h"

#define FDT_LOG_MODULE "txn"
#include "txn/rm.h"

#include <dlfcn.h>
#include <fdt/log.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Database drivers are modules, loaded by the processes that use them (workers, the txn
 * command line) on first use, so that the master never maps libpq or SQLite (design §5).
 *
 * Where a module is looked for, in this order; the first file that exists is loaded, and
 * no environment variable takes part:
 *   1. <dir>/fdtserver/, where <dir> is the directory libfdt.so was loaded from (dladdr):
 *      installed, libfdt.so lives in <libdir> and meson puts the modules in
 *      <libdir>/fdtserver/ (top-level meson.build). This keeps an installed tree
 *      relocatable.
 *   2. The build tree's root, FDT_RM_BUILD_DIR, only when libfdt.so, or the program that
 *      links libfdt's objects statically (fdtctl, in src/bin/), lies inside that build
 *      tree: meson builds the modules there, beside libfdt.so.
 *   3. FDT_RM_INSTALL_DIR, <prefix>/<libdir>/fdtserver as configured: for an installed
 *      program that links libfdt's objects statically (fdtctl, in <bindir>). */

const struct fdt_rm_host fdt__rm_host = {
    .abi_version = FDT_RM_ABI_VERSION,
    .size = sizeof(struct fdt_rm_host),
    .rows_cols = fdt__sql_rows_cols,
    .rows_add = fdt__sql_rows_add,
    .rows_set_changes = fdt__sql_rows_set_changes,
};

struct module {
    const char *name; /* [resource.NAME] driver = name */
    const char *file;
    bool tried;                      /* loaded, or failed to: either way only once */
    const struct fdt_rm_driver *drv; /* NULL when it failed */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
/* Guarded by g_lock. */
static struct module g_modules[] = {
    {"postgresql", "fdt_rm_postgresql.so", false, NULL},
    {"sqlite", "fdt_rm_sqlite.so", false, NULL},
};

/* The canonical directory of the object this code is in: libfdt.so, or the program when it
 * links libfdt's objects statically (then *program is true). */
static int self_dir(char *out, bool *program)
{
    Dl_info info;
    struct link_map *map = NULL;
    if (!dladdr1(&fdt__rm_host, &info, (void **)&map, RTLD_DL_LINKMAP) || !map)
        return -1; /* GCOVR_EXCL_LINE: unreachable: a symbol of this very object is always in a
                      loaded object with a link map */
    /* The program itself has an empty name in the link map. */
    *program = map->l_name[0] == '\0';
    char path[PATH_MAX];
    if (*program) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
        if (n <= 0)
            return -1; /* GCOVR_EXCL_LINE: not reached: only in a process without /proc mounted */
        path[n] = '\0';
    } else if (snprintf(path, sizeof(path), "%s", map->l_name) >= (int)sizeof(path)) {
        return -1; /* GCOVR_EXCL_LINE: unreachable: the loader opened this path, so it is shorter
                      than PATH_MAX */
    }
    char *slash = strrchr(path, '/');
    if (!slash)
        return -1; /* GCOVR_EXCL_LINE: unreachable: both are paths with a directory: the kernel's
                      absolute one, or the loader's dir/name */
    *slash = '\0';
    return realpath(path[0] ? path : "/", out) ? 0 : -1;
}

/* Whether dir is root or lies inside it (both canonical). */
static bool inside(const char *dir, const char *root)
{
    size_t n = strlen(root);
    return strncmp(dir, root, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

/* The directories to look in, by the rules above; returns how many were written. */
static int search_dirs(char dirs[3][PATH_MAX])
{
    int n = 0;
    char self[PATH_MAX];
    bool program = false;
    if (self_dir(self, &program) == 0) {
        if (!program)
            snprintf(dirs[n++], PATH_MAX, "%s/fdtserver", self);
        char build[PATH_MAX];
        if (realpath(FDT_RM_BUILD_DIR, build) && inside(self, build))
            snprintf(dirs[n++], PATH_MAX, "%s", build);
    }
    snprintf(dirs[n++], PATH_MAX, "%s", FDT_RM_INSTALL_DIR);
    return n;
}

/* Load m's module; logs why when it cannot. */
static const struct fdt_rm_driver *load(const struct module *m)
{
    char dirs[3][PATH_MAX];
    int n = search_dirs(dirs);
    char path[PATH_MAX + 64] = "";
    char where[sizeof(dirs) + 8] = ""; /* the directories tried, for the error */
    for (int i = 0; i < n && !path[0]; i++) {
        snprintf(path, sizeof(path), "%s/%s", dirs[i], m->file);
        if (access(path, F_OK) != 0)
            path[0] = '\0';
        size_t used = strlen(where);
        snprintf(where + used, sizeof(where) - used, "%s%s", i ? ", " : "", dirs[i]);
    }
    if (!path[0]) {
        fdt_log(FDT_LOG_ERROR, "driver %s: %s not found in %s", m->name, m->file, where);
        return NULL;
    }
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fdt_log(FDT_LOG_ERROR, "driver %s: cannot load %s: %s", m->name, path, dlerror());
        return NULL;
    }
    /* ISO C has no cast from an object pointer to a function pointer: copy it. */
    void *sym = dlsym(dl, FDT_RM_ENTRY);
    fdt_rm_entry_fn *entry = NULL;
    if (sym)
        memcpy(&entry, &sym, sizeof(entry));
    const struct fdt_rm_driver *drv = entry ? entry(&fdt__rm_host) : NULL;
    if (!entry)
        fdt_log(FDT_LOG_ERROR, "driver %s: %s: %s", m->name, path, dlerror());
    else if (!drv)
        fdt_log(FDT_LOG_ERROR, "driver %s: %s refused this fdtserver (ABI version %d)", m->name,
                path, FDT_RM_ABI_VERSION);
    else if (drv->abi_version != FDT_RM_ABI_VERSION || !drv->name ||
             strcmp(drv->name, m->name) != 0)
        fdt_log(FDT_LOG_ERROR, "driver %s: %s is driver %s of ABI version %d, not %s of %d",
                m->name, path, drv->name ? drv->name : "(none)", drv->abi_version, m->name,
                FDT_RM_ABI_VERSION);
    else
        return drv; /* the module stays loaded for the life of the process */
    dlclose(dl);
    return NULL;
}

const struct fdt_rm_driver *fdt__rm_driver_find(const char *name)
{
    const struct fdt_rm_driver *drv = NULL;
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < sizeof(g_modules) / sizeof(g_modules[0]); i++) {
        struct module *m = &g_modules[i];
        if (strcmp(m->name, name) != 0)
            continue;
        if (!m->tried) {
            m->drv = load(m);
            m->tried = true;
        }
        drv = m->drv;
        break;
    }
    pthread_mutex_unlock(&g_lock);
    return drv;
}

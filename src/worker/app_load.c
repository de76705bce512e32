#include "fdt_config.h"

#include "python/python.h"
#include "util/util.h"
#include "worker/worker.h"

#include <dlfcn.h>
#include <fdt/app.h>
#include <limits.h>
#include <link.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Check the descriptor a module exported and keep it. */
static int app_accept(void *h, const struct fdt_app *a, const char *path, void **dl,
                      const struct fdt_app **app, struct fdt_error *err)
{
    if (!FDT_ABI_OK(a, FDT_APP_ABI_VERSION, struct fdt_app)) {
        fdt_error_set(err, FDT_EAPP, "%s: application ABI %u (size %u) but this server speaks %d",
                      path, a->abi_version, a->size, FDT_APP_ABI_VERSION);
        dlclose(h);
        return FDT_EAPP;
    }
    *dl = h;
    *app = a;
    return 0;
}

/* A C application: a shared object exporting FDT_APP_SYMBOL. */
static int load_so(const char *path, void **dl, const struct fdt_app **app, struct fdt_error *err)
{
    /* RTLD_NOW: a missing symbol fails here, at start, not in the middle of a request. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return fdt_error_set(err, FDT_EAPP, "cannot load application %s: %s", path, dlerror());
    const struct fdt_app *a = dlsym(h, FDT_APP_SYMBOL);
    if (!a) {
        fdt_error_set(err, FDT_EAPP, "%s does not export %s", path, FDT_APP_SYMBOL);
        dlclose(h);
        return FDT_EAPP;
    }
    return app_accept(h, a, path, dl, app, err);
}

/* Where fdtserver's own modules are, by the rules of src/txn/txn_driver.c (which finds the
 * database drivers the same way): <dir of libfdt.so>/fdtserver/, the build tree when
 * libfdt.so lies inside it, then the configured install directory. The first directory
 * holding file wins; path gets "" when none does. */
static const char anchor; /* an object inside libfdt.so, for dladdr */

static void module_path(const char *file, char *path, size_t size)
{
    char dirs[3][PATH_MAX];
    int n = 0;
    Dl_info info;
    struct link_map *map = NULL;
    char self[PATH_MAX];
    if (dladdr1(&anchor, &info, (void **)&map, RTLD_DL_LINKMAP) && map && map->l_name[0] &&
        snprintf(self, sizeof(self), "%s", map->l_name) < (int)sizeof(self)) {
        char *slash = strrchr(self, '/');
        char canon[PATH_MAX];
        if (slash) {
            *slash = '\0';
            if (realpath(self[0] ? self : "/", canon)) {
                snprintf(dirs[n++], PATH_MAX, "%s/fdtserver", canon);
                char build[PATH_MAX];
                size_t bl;
                if (realpath(FDT_RM_BUILD_DIR, build) && (bl = strlen(build)) > 0 &&
                    strncmp(canon, build, bl) == 0 && (canon[bl] == '\0' || canon[bl] == '/'))
                    snprintf(dirs[n++], PATH_MAX, "%s", build);
            }
        }
    }
    snprintf(dirs[n++], PATH_MAX, "%s", FDT_RM_INSTALL_DIR);
    for (int i = 0; i < n; i++) {
        if (snprintf(path, size, "%s/%s", dirs[i], file) < (int)size && access(path, F_OK) == 0)
            return;
    }
    path[0] = '\0';
}

/* A Python WSGI application: fdt_python.so hosts it (src/python/python.h). */
static int load_python(const struct fdt_cfg *cfg, void **dl, const struct fdt_app **app,
                       struct fdt_error *err)
{
    char path[PATH_MAX + 64];
    module_path(FDT_PYTHON_MODULE, path, sizeof(path));
    if (!path[0])
        return fdt_error_set(err, FDT_EAPP,
                             "[app] wsgi/jsonrpc: %s not found (built without Python?)",
                             FDT_PYTHON_MODULE);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return fdt_error_set(err, FDT_EAPP, "cannot load %s: %s", path, dlerror());
    /* ISO C has no cast from an object pointer to a function pointer: copy it. */
    void *sym = dlsym(h, FDT_PYTHON_ENTRY);
    fdt_python_entry_fn *entry = NULL;
    if (sym)
        memcpy(&entry, &sym, sizeof(entry));
    if (!entry) {
        fdt_error_set(err, FDT_EAPP, "%s does not export %s", path, FDT_PYTHON_ENTRY);
        dlclose(h);
        return FDT_EAPP;
    }
    const struct fdt_python_cfg pcfg = {
        .abi_version = FDT_PYTHON_ABI_VERSION,
        .wsgi = cfg->app_wsgi,
        .jsonrpc = cfg->app_jsonrpc,
        .path = cfg->python_path,
        .home = cfg->python_home,
    };
    const struct fdt_app *a = entry(&pcfg, err);
    if (!a) {
        /* Ours says why; a module of another build may not: the start must not fail with
         * an empty reason. */
        if (!err->msg[0])
            fdt_error_set(err, FDT_EAPP, "%s: %s returned no application", path, FDT_PYTHON_ENTRY);
        dlclose(h);
        return FDT_EAPP;
    }
    return app_accept(h, a, path, dl, app, err);
}

int fdt__app_load(const struct fdt_cfg *cfg, void **dl, const struct fdt_app **app,
                  struct fdt_error *err)
{
    *dl = NULL;
    *app = NULL;
    if (cfg->app_wsgi[0] || cfg->app_jsonrpc[0])
        return load_python(cfg, dl, app, err);
    return load_so(cfg->app_module, dl, app, err);
}

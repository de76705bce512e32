#include "fdt_config.h"

#include "util/util.h"
#include "worker/worker.h"

#include <dlfcn.h>
#include <fdt/app.h>
#include <stddef.h>

int fdt__app_load(const char *path, void **dl, const struct fdt_app **app, struct fdt_error *err)
{
    *dl = NULL;
    *app = NULL;
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

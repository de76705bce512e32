#include "fdt_config.h"

#include "http/http.h"

#include <stdio.h>

int fdt__proto_http_init(struct fdt_proto *p, const struct fdt_app *app, const struct fdt_cfg *cfg,
                         char *reason, size_t rsize)
{
    (void)p;
    (void)app;
    (void)cfg;
    snprintf(reason, rsize, "protocol http is not available in this build yet");
    return -1;
}

#include "fdt_config.h"

#include "conn/conn.h"

#include <string.h>

/* The raw protocol hands bytes straight to the application's callbacks. The worker keeps
 * the application descriptor for the life of the process. */
static const struct fdt_app *raw_app;

static int raw_open(struct fdt_conn *c)
{
    return raw_app->on_open ? raw_app->on_open(c) : 0;
}

static long raw_data(struct fdt_conn *c, const char *buf, size_t len)
{
    return raw_app->on_data(c, buf, len);
}

static void raw_overflow(struct fdt_conn *c)
{
    if (raw_app->on_overflow)
        raw_app->on_overflow(c);
}

static void raw_close(struct fdt_conn *c)
{
    if (raw_app->on_close)
        raw_app->on_close(c);
}

void fdt__proto_raw_init(struct fdt_proto *p, const struct fdt_app *app)
{
    raw_app = app;
    memset(p, 0, sizeof(*p));
    p->name = "raw";
    p->open = raw_open;
    p->data = raw_data;
    p->overflow = raw_overflow;
    p->close = raw_close;
    p->busy_reply = app->busy_reply;
}

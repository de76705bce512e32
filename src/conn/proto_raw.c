#include "fdt_config.h"

#include "conn/conn.h"

#include <string.h>

/* The raw protocol hands bytes straight to the application's callbacks; the protocol's
 * context is the application descriptor, which the worker keeps for the life of the
 * process. */
static const struct fdt_app *app_of(const struct fdt_conn *c)
{
    return c->proto->ctx;
}

static int raw_open(struct fdt_conn *c)
{
    const struct fdt_app *app = app_of(c);
    return app->on_open ? app->on_open(c) : 0;
}

static long raw_data(struct fdt_conn *c, const char *buf, size_t len)
{
    return app_of(c)->on_data(c, buf, len);
}

static void raw_overflow(struct fdt_conn *c)
{
    const struct fdt_app *app = app_of(c);
    if (app->on_overflow)
        app->on_overflow(c);
}

static void raw_close(struct fdt_conn *c)
{
    const struct fdt_app *app = app_of(c);
    if (app->on_close)
        app->on_close(c);
}

void fdt__proto_raw_init(struct fdt_proto *p, const struct fdt_app *app)
{
    memset(p, 0, sizeof(*p));
    p->name = "raw";
    p->ctx = app;
    p->open = raw_open;
    p->data = raw_data;
    p->overflow = raw_overflow;
    p->close = raw_close;
    p->busy_reply = app->busy_reply;
    /* An application with neither on_open nor on_close keeps nothing per connection but
     * what fdt_conn_set_data attaches (which stops a hand-off): its idle connections can
     * go on in a successor on reload. */
    p->handoff = !app->on_open && !app->on_close;
    p->metric_proto = FDT_MPROTO_RAW;
}

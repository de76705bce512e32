#include "fdt_config.h"

#include "http/http_int.h"
#include "util/util.h"

#include <fdt/error.h>
#include <string.h>
#include <strings.h>

/* The public accessors of a request and of resources. Before the head is complete (an
 * error view rendering a 400 for a request line that never parsed), they return "" and
 * report no headers. After a reading error they report no headers and no body: what was
 * received is incomplete and must not be taken for the client's request. */

static bool head_usable(const struct fdt_http_request *req)
{
    return req->head_complete && !req->read_failed;
}

const char *fdt_http_method(const struct fdt_http_request *req)
{
    return req->method;
}

const char *fdt_http_target(const struct fdt_http_request *req)
{
    return req->target;
}

const char *fdt_http_path(const struct fdt_http_request *req)
{
    return req->path;
}

const char *fdt_http_query(const struct fdt_http_request *req)
{
    return req->query;
}

int fdt_http_version(const struct fdt_http_request *req)
{
    return req->version;
}

size_t fdt_http_header_count(const struct fdt_http_request *req)
{
    return head_usable(req) ? req->n_headers : 0;
}

int fdt_http_header_at(const struct fdt_http_request *req, size_t i, const char **name,
                       const char **value)
{
    if (i >= fdt_http_header_count(req))
        return FDT_EINVAL;
    const struct fdt__http_header *h =
        (const struct fdt__http_header *)fdt__buf_head(&req->headers);
    const char *base = fdt__buf_head(&req->head);
    if (name)
        *name = base + h[i].name_off;
    if (value)
        *value = base + h[i].value_off;
    return 0;
}

const char *fdt_http_header(const struct fdt_http_request *req, const char *name)
{
    size_t n = fdt_http_header_count(req);
    const struct fdt__http_header *h =
        (const struct fdt__http_header *)fdt__buf_head(&req->headers);
    const char *base = fdt__buf_head(&req->head);
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len == len && strncasecmp(base + h[i].name_off, name, len) == 0)
            return base + h[i].value_off;
    }
    return NULL;
}

const char *fdt_http_body(const struct fdt_http_request *req, size_t *len)
{
    bool have = head_usable(req) && !req->stream_body && req->body.len > 0;
    if (len)
        *len = have ? req->body.len - 1 : 0; /* without the NUL added at the end */
    return have ? fdt__buf_head(&req->body) : "";
}

struct fdt_conn *fdt_http_conn(const struct fdt_http_request *req)
{
    return req->s->conn;
}

struct fdt_http_resource *fdt_http_root(const struct fdt_http_request *req)
{
    return req->root;
}

struct fdt_http_resource *fdt_http_context(const struct fdt_http_request *req)
{
    return req->context;
}

const char *fdt_http_view_name(const struct fdt_http_request *req)
{
    return req->view_name;
}

size_t fdt_http_subpath_count(const struct fdt_http_request *req)
{
    return req->n_subpath;
}

const char *fdt_http_subpath(const struct fdt_http_request *req, size_t i)
{
    return i < req->n_subpath ? req->subpath[i] : NULL;
}

void *fdt_http_alloc(struct fdt_http_request *req, size_t size)
{
    return fdt__http_arena_alloc(&req->arena, size);
}

struct fdt_http_resource *fdt_http_resource_new(struct fdt_http_request *req,
                                                struct fdt_http_resource *parent,
                                                const struct fdt_http_resource_type *type,
                                                const char *name, size_t name_len, void *data)
{
    if (!type || !FDT_ABI_OK(type, FDT_HTTP_ABI_VERSION, struct fdt_http_resource_type))
        return NULL;
    struct fdt_http_resource *r = fdt__http_arena_alloc(&req->arena, sizeof(*r) + name_len + 1);
    if (!r)
        return NULL;
    char *copy = (char *)(r + 1);
    if (name_len)
        memcpy(copy, name, name_len);
    copy[name_len] = '\0';
    r->type = type;
    r->parent = parent;
    r->name = copy;
    r->name_len = name_len;
    r->data = data;
    return r;
}

const struct fdt_http_resource_type *fdt_http_resource_type(const struct fdt_http_resource *r)
{
    return r->type;
}

struct fdt_http_resource *fdt_http_resource_parent(const struct fdt_http_resource *r)
{
    return r->parent;
}

const char *fdt_http_resource_name(const struct fdt_http_resource *r, size_t *len)
{
    if (len)
        *len = r->name_len;
    return r->name;
}

void *fdt_http_resource_data(const struct fdt_http_resource *r)
{
    return r->data;
}

/* A name that traversal would not hand back to getitem cannot be part of a URL. */
static bool name_round_trips(const struct fdt_http_resource *r)
{
    if (r->name_len == 0 || memchr(r->name, '/', r->name_len) || memchr(r->name, 0, r->name_len))
        return false;
    if (r->name_len == 1 && r->name[0] == '.')
        return false;
    if (r->name_len == 2 && r->name[0] == '.' && r->name[1] == '.')
        return false;
    /* "@@x" would be taken for a view name. */
    return !(r->name_len >= 2 && r->name[0] == '@' && r->name[1] == '@');
}

int fdt_http_resource_url(const struct fdt_http_resource *r, char *buf, size_t size, size_t *len)
{
    /* First pass: the length, encoding into nothing. */
    size_t total = 1; /* the leading '/' */
    for (const struct fdt_http_resource *p = r; p->parent; p = p->parent) {
        if (!name_round_trips(p))
            return FDT_EINVAL;
        total += fdt__http_segment_encode(p->name, p->name_len, NULL, 0) + 1;
    }
    if (len)
        *len = total;
    if (total + 1 > size)
        return FDT_ELIMIT;
    /* Second pass: fill from the end, child last. */
    size_t end = total;
    buf[end] = '\0';
    for (const struct fdt_http_resource *p = r; p->parent; p = p->parent) {
        buf[--end] = '/';
        size_t n = fdt__http_segment_encode(p->name, p->name_len, NULL, 0);
        end -= n;
        fdt__http_segment_encode(p->name, p->name_len, buf + end, n);
    }
    buf[0] = '/';
    return 0;
}

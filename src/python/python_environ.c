#include "fdt_config.h"

/* The environ of PEP 3333 for one request: the CGI keys from the request (PATH_INFO
 * percent-decoded, values latin-1 "native strings", HTTP_* from the headers), the
 * addresses, and the wsgi.* keys (wsgi.input streaming the body, wsgi.file_wrapper).
 * Called with the GIL held; blocks on nothing. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define FDT_LOG_MODULE "python"
#include "conn/conn.h"
#include "python/python_int.h"

#include <arpa/inet.h>
#include <fdt/fdt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static const char *const key_names[K__COUNT] = {
    [K_REQUEST_METHOD] = "REQUEST_METHOD",
    [K_SCRIPT_NAME] = "SCRIPT_NAME",
    [K_PATH_INFO] = "PATH_INFO",
    [K_QUERY_STRING] = "QUERY_STRING",
    [K_CONTENT_TYPE] = "CONTENT_TYPE",
    [K_CONTENT_LENGTH] = "CONTENT_LENGTH",
    [K_SERVER_NAME] = "SERVER_NAME",
    [K_SERVER_PORT] = "SERVER_PORT",
    [K_SERVER_PROTOCOL] = "SERVER_PROTOCOL",
    [K_REMOTE_ADDR] = "REMOTE_ADDR",
    [K_REMOTE_PORT] = "REMOTE_PORT",
    [K_WSGI_VERSION] = "wsgi.version",
    [K_WSGI_URL_SCHEME] = "wsgi.url_scheme",
    [K_WSGI_INPUT] = "wsgi.input",
    [K_WSGI_ERRORS] = "wsgi.errors",
    [K_WSGI_MULTITHREAD] = "wsgi.multithread",
    [K_WSGI_MULTIPROCESS] = "wsgi.multiprocess",
    [K_WSGI_RUN_ONCE] = "wsgi.run_once",
    [K_WSGI_INPUT_TERMINATED] = "wsgi.input_terminated",
    [K_WSGI_FILE_WRAPPER] = "wsgi.file_wrapper",
};

int fdt__py_environ_init(struct fdt__py_host *h)
{
    for (int i = 0; i < K__COUNT; i++) {
        h->keys[i] = PyUnicode_InternFromString(key_names[i]);
        /* Constant ASCII names at the interpreter's start: fails only out of memory. */
        if (!h->keys[i])
            return -1; /* GCOVR_EXCL_LINE: unreachable: out of memory at start-up */
    }
    return 0;
}

/* environ[key] = the latin-1 text of s (len bytes); values are "native strings". */
static int set_text(PyObject *env, PyObject *key, const char *s, size_t len)
{
    PyObject *v = PyUnicode_DecodeLatin1(s, (Py_ssize_t)len, NULL);
    int rc = v ? PyDict_SetItem(env, key, v) : -1;
    Py_XDECREF(v);
    return rc;
}

static int set_cstr(PyObject *env, PyObject *key, const char *s)
{
    return set_text(env, key, s, strlen(s));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* GCOVR_EXCL_LINE: unreachable: a bad %-escape is answered 400 by the framework
                  before the environ is made (test_17_20) */
}

/* PATH_INFO: the path percent-decoded (as every WSGI server does), bytes as latin-1. */
static int set_path_info(struct fdt__py_host *h, PyObject *env, const char *path)
{
    size_t n = strlen(path);
    char stackbuf[1024];
    stackbuf[0] = '\0';
    char *out = n < sizeof(stackbuf) ? stackbuf : PyMem_Malloc(n + 1);
    if (!out) {
        PyErr_NoMemory();
        return -1;
    }
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (path[i] == '%' && i + 2 < n && (hi = hexval(path[i + 1])) >= 0 &&
            (lo = hexval(path[i + 2])) >= 0) {
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[j++] = path[i];
        }
    }
    int rc = set_text(env, h->keys[K_PATH_INFO], out, j);
    if (out != stackbuf)
        PyMem_Free(out);
    return rc;
}

/* HTTP_<NAME> for each request header (CONTENT_TYPE and CONTENT_LENGTH without the
 * prefix). Names with '_' are dropped, as nginx and gunicorn do: "X_User" would otherwise
 * pass for "X-User". A repeated header is joined with ",". */
static int set_headers(struct fdt__py_host *h, PyObject *env, struct fdt_http_request *req)
{
    size_t count = fdt_http_header_count(req);
    for (size_t i = 0; i < count; i++) {
        const char *name, *value;
        if (fdt_http_header_at(req, i, &name, &value) < 0)
            continue;
        if (strchr(name, '_'))
            continue;
        if (strcasecmp(name, "Content-Type") == 0) {
            if (set_cstr(env, h->keys[K_CONTENT_TYPE], value) < 0)
                return -1;
            continue;
        }
        if (strcasecmp(name, "Content-Length") == 0) {
            /* The parser has checked it (one, digits only); a chunked body has none
             * (wsgi.input_terminated: read to the end). */
            if (set_cstr(env, h->keys[K_CONTENT_LENGTH], value) < 0)
                return -1;
            continue;
        }
        char key[256];
        size_t nlen = strlen(name);
        if (nlen + 6 > sizeof(key))
            continue;
        memcpy(key, "HTTP_", 5);
        for (size_t k = 0; k < nlen; k++) {
            char c = name[k];
            key[5 + k] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
        }
        key[5 + nlen] = '\0';
        PyObject *k = PyUnicode_FromStringAndSize(key, (Py_ssize_t)(5 + nlen));
        if (!k)
            return -1;
        PyObject *old = PyDict_GetItemWithError(env, k); /* borrowed */
        PyObject *v = PyUnicode_DecodeLatin1(value, (Py_ssize_t)strlen(value), NULL);
        if (v && old) {
            PyObject *joined = PyUnicode_FromFormat("%U,%U", old, v);
            Py_SETREF(v, joined);
        }
        int rc = v && !PyErr_Occurred() ? PyDict_SetItem(env, k, v) : -1;
        Py_XDECREF(v);
        Py_DECREF(k);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* SERVER_NAME/PORT (Host, else the local address) and REMOTE_ADDR/PORT. */
static int set_addresses(struct fdt__py_host *h, PyObject *env, struct fdt_http_request *req)
{
    struct fdt_conn *c = fdt_http_conn(req);
    const struct sockaddr_storage *local = NULL, *peer = NULL;
    char lhost[INET6_ADDRSTRLEN] = "localhost", phost[INET6_ADDRSTRLEN] = "";
    unsigned lport = 0, pport = 0;
    /* Read once per connection, not per request (two system calls). */
    if (c && fdt__conn_addresses(c, &local, &peer) == 0) {
        if (local->ss_family == AF_INET) {
            const struct sockaddr_in *l4 = (const struct sockaddr_in *)local;
            const struct sockaddr_in *p4 = (const struct sockaddr_in *)peer;
            inet_ntop(AF_INET, &l4->sin_addr, lhost, sizeof(lhost));
            inet_ntop(AF_INET, &p4->sin_addr, phost, sizeof(phost));
            lport = ntohs(l4->sin_port);
            pport = ntohs(p4->sin_port);
        } else if (local->ss_family == AF_INET6) {
            const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)local;
            const struct sockaddr_in6 *p6 = (const struct sockaddr_in6 *)peer;
            inet_ntop(AF_INET6, &l6->sin6_addr, lhost, sizeof(lhost));
            inet_ntop(AF_INET6, &p6->sin6_addr, phost, sizeof(phost));
            lport = ntohs(l6->sin6_port);
            pport = ntohs(p6->sin6_port);
        }
    }
    const char *host = fdt_http_header(req, "Host");
    size_t hlen = 0;
    if (host && host[0]) {
        /* "name:port" or "[v6]:port": the name without the port. */
        const char *end = host[0] == '[' ? strchr(host, ']') : strrchr(host, ':');
        hlen = end ? (size_t)(end - host) + (host[0] == '[') : strlen(host);
    }
    char port[16], rport[16];
    snprintf(port, sizeof(port), "%u", lport);
    snprintf(rport, sizeof(rport), "%u", pport);
    if ((hlen ? set_text(env, h->keys[K_SERVER_NAME], host, hlen)
              : set_cstr(env, h->keys[K_SERVER_NAME], lhost)) < 0 ||
        set_cstr(env, h->keys[K_SERVER_PORT], port) < 0)
        return -1;
    if (phost[0] && (set_cstr(env, h->keys[K_REMOTE_ADDR], phost) < 0 ||
                     set_cstr(env, h->keys[K_REMOTE_PORT], rport) < 0))
        return -1;
    return 0;
}

/* Declared in python_int.h. */
PyObject *fdt__py_environ_new(struct fdt__py_host *h, struct fdt_http_request *req,
                              PyObject **inputp)
{
    *inputp = NULL;
    PyObject *env = PyDict_New();
    if (!env)
        return NULL;
    PyObject *input = fdt__py_input_new(req);
    const struct fdt_conn *conn = fdt_http_conn(req);
    const char *scheme = conn && fdt_conn_tls(conn) ? "https" : "http";
    bool ok = input && set_cstr(env, h->keys[K_REQUEST_METHOD], fdt_http_method(req)) == 0 &&
              set_cstr(env, h->keys[K_SCRIPT_NAME], "") == 0 &&
              set_path_info(h, env, fdt_http_path(req)) == 0 &&
              set_cstr(env, h->keys[K_QUERY_STRING], fdt_http_query(req)) == 0 &&
              set_cstr(env, h->keys[K_SERVER_PROTOCOL],
                       fdt_http_version(req) == 10 ? "HTTP/1.0" : "HTTP/1.1") == 0 &&
              set_headers(h, env, req) == 0 && set_addresses(h, env, req) == 0 &&
              PyDict_SetItem(env, h->keys[K_WSGI_VERSION], h->version) == 0 &&
              set_cstr(env, h->keys[K_WSGI_URL_SCHEME], scheme) == 0 &&
              PyDict_SetItem(env, h->keys[K_WSGI_INPUT], input) == 0 &&
              PyDict_SetItem(env, h->keys[K_WSGI_ERRORS], h->errors) == 0 &&
              PyDict_SetItem(env, h->keys[K_WSGI_MULTITHREAD], Py_True) == 0 &&
              PyDict_SetItem(env, h->keys[K_WSGI_MULTIPROCESS], Py_True) == 0 &&
              PyDict_SetItem(env, h->keys[K_WSGI_RUN_ONCE], Py_False) == 0 &&
              PyDict_SetItem(env, h->keys[K_WSGI_INPUT_TERMINATED], Py_True) == 0 &&
              PyDict_SetItem(env, h->keys[K_WSGI_FILE_WRAPPER], fdt__py_filewrapper_type()) == 0;
    if (!ok) {
        Py_CLEAR(env);
        if (input)
            fdt__py_input_end(input);
        Py_CLEAR(input);
    }
    *inputp = input;
    return env;
}

#include "fdt_config.h"

#define FDT_LOG_MODULE "http"
#include "http/http_int.h"
#include "txn/txn.h"

#include <fdt/log.h>
#include <fdt/txn.h>
#include <string.h>

/* A request's root transaction: begun on demand by the view, ended by the framework once
 * the view has answered, by the status of the answer (pyramid_tm's rule). The answer is
 * held back in the session until then (http_response.c), so a client only ever sees a
 * response for work that is committed. */

struct fdt_txn *fdt_http_txn(struct fdt_http_request *req, struct fdt_error *err)
{
    struct fdt_txn *t = fdt__http_txn_open(req);
    if (t)
        return t;
    struct fdt_conn *c = req->s->conn;
    if (!c) {
        fdt_error_set(err, FDT_EINVAL, "the request has no connection");
        return NULL;
    }
    if (req->status) {
        fdt_error_set(err, FDT_ETXNSTATE, "the response has already started");
        return NULL;
    }
    if (fdt_txn_begin(c, NULL, err) < 0)
        return NULL;
    req->txn = fdt_conn_txn(c);
    return req->txn;
}

struct fdt_txn *fdt__http_txn_open(struct fdt_http_request *req)
{
    if (!req->txn)
        return NULL;
    /* The view may have committed or aborted it itself. */
    if (!req->s->conn || fdt_conn_txn(req->s->conn) != req->txn)
        req->txn = NULL;
    return req->txn;
}

int fdt__http_txn_settle(struct fdt_http_request *req, bool may_retry)
{
    struct fdt_txn *t = fdt__http_txn_open(req);
    if (!t)
        return 0;
    req->txn_outcome = "rolled_back"; /* unless committed below */
    struct fdt__http_session *s = req->s;
    bool retry_left = may_retry && req->attempt < FDT__HTTP_TXN_ATTEMPTS;
    struct fdt_error err = {0};
    req->txn = NULL;
    if (s->io->peer_gone && s->io->peer_gone(s->io_ctx)) {
        /* The client left before the commit: nothing it asked for happens. As nginx
         * logs 499, the access log says 499; nothing is sent. */
        fdt_txn_abort(t, NULL);
        fdt__http_response_reset(req);
        fdt_log(FDT_LOG_INFO, "the client closed the connection before the commit: rolled back");
        req->status = 499;
        req->finished = true;
        req->close_after = true;
        return 0;
    }
    /* A conflict inside the view: run it again from the start. */
    if (fdt__txn_conflicted(t)) {
        fdt_txn_abort(t, NULL);
        fdt__http_response_reset(req);
        if (retry_left)
            return 1;
        fdt__http_send_error(req, 503, "The request conflicted with others; try again.", false);
        return 0;
    }
    if (req->held_overflow || req->held_nomem) {
        /* The answer could not be held back whole (it outgrew max_output, or memory ran
         * out): the client cannot be told what was done, so nothing is done. */
        bool nomem = req->held_nomem;
        fdt_txn_abort(t, NULL);
        fdt__http_response_reset(req);
        fdt_log(FDT_LOG_WARN, "a response held for its transaction %s: rolled back",
                nomem ? "ran out of memory" : "exceeded max_output");
        fdt__http_send_error(req, nomem ? 503 : 500,
                             nomem ? "The server is out of memory." : "The response is too large.",
                             false);
        return 0;
    }
    if (fdt_txn_state(t) == FDT_TXN_ACTIVE && req->status && req->status < 400) {
        int rc = fdt_txn_commit(t, &err);
        if (rc == 0) {
            req->txn_outcome = "committed";
            return 0;
        }
        if (rc == FDT_EOUTCOME)
            req->txn_outcome = "unknown";
        fdt__http_response_reset(req);
        if (rc == FDT_ERETRY && retry_left)
            return 1;
        fdt_log(FDT_LOG_WARN, "commit of a request's transaction failed: %s", err.msg);
        if (rc == FDT_ERETRY)
            fdt__http_send_error(req, 503, "The request conflicted with others; try again.", false);
        else if (rc == FDT_EOUTCOME)
            fdt__http_send_error(req, 500,
                                 "The outcome of the transaction is unknown: recovery will "
                                 "complete or roll it back.",
                                 false);
        else
            fdt__http_send_error(req, 500, "The transaction could not be committed.", false);
        return 0;
    }
    /* An error answer, or a transaction the view left in another state: roll back. */
    fdt_txn_abort(t, NULL);
    return 0;
}

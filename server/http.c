/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP layer: libmicrohttpd with an internal thread pool, the request
 * life cycle (route, body, handler, response, log line, metrics) and the
 * request/response helpers of http.h.
 *
 * Life of a request in MHD's callbacks:
 *   uri_log     the request line is in: allocate the context, keep the path
 *               exactly as received (MHD decodes the one it gives the access
 *               handler, and "%2F" must stay distinct from "/").
 *   1st call    headers are in: route it, check the announced body size,
 *               open a stream; queue nothing, unless the request is refused
 *               and has a body (then at once, so MHD never asks for the
 *               body: 413 before the upload).
 *   data calls  body chunks: accumulate (capped) or stream. MHD takes no
 *               response in the middle of a body, so a body refused midway
 *               (over the cap while arriving) is drained, up to 1 MiB, and
 *               answered at its end; past that the connection is cut.
 *   last call   run the handler, queue the response. A response queued on
 *               this second-or-later call keeps the connection alive; one
 *               queued on the first call made MHD close it.
 *   completed   log line, metrics, free.
 */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "fota/json.h"
#include "fota_posix.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "routes.h"
#include "server.h"
#include "store.h"

#define JSON_DEPTH_MAX 16
#define TLS_FILE_MAX (1024u * 1024u)
#define CONNECTION_TIMEOUT_S 60u
#define CONNECTION_LIMIT_MAX 100000u
/* Stack of a connection's thread in thread-per-connection mode. glibc
 * keeps 40 MiB of stacks of ended threads for reuse: with its 8 MiB default
 * that is five, and every other new connection paid an mmap and a munmap
 * (with a TLB flush on every core); measured, 7,000-7,300 check-ins/s on
 * fresh connections against 7,400-8,900 with 512 KiB (docs/server.md). The
 * largest local array in server/ is 64 KiB (publish.c); the suites run in
 * this mode under ASan too. */
#define CONNECTION_STACK_SIZE (512u * 1024u)
#define LOG_PATH_MAX 200
/* Body bytes read and dropped after a refusal before the connection is cut
 * (MHD cannot answer in the middle of a body). */
#define DISCARD_MAX (1024u * 1024u)

/* Operator requests run on their own worker threads (see offload below). */
#define OFFLOAD_WORKERS 2

struct req_ctx;

struct fota_http {
    struct MHD_Daemon *daemon;
    /* The offload queue: requests whose connection is suspended, waiting
     * for a worker; guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct req_ctx *queue_head, **queue_tail;
    int stop_workers;
    pthread_t workers[OFFLOAD_WORKERS];
    unsigned n_workers;
    struct fota_server *srv;
    char *tls_cert;
    size_t tls_cert_len;
    char *tls_key;
    size_t tls_key_len;
    unsigned port;
    int quiesced;
};

enum req_state {
    REQ_NEW = 0,      /* uri_log ran; the access handler has not */
    REQ_BODY,         /* headers seen; body (if any) arriving */
    REQ_QUEUED,       /* a response is queued */
    REQ_OFFLOADED,    /* suspended; a worker runs the handler */
    REQ_DONE,         /* the worker is done; resumed, answer on the next call */
};

struct req_ctx {
    struct fota_req req;
    struct fota_resp resp;
    struct fota_http *http;
    const struct fota_route *route;   /* NULL: no route (resp holds 404/405) */
    size_t route_index;               /* fota_route_count when no route */
    enum req_state state;
    int refused;                      /* resp is final; the body is not wanted */
    uint8_t *body;
    size_t body_len, body_cap;
    uint64_t body_max;
    void *stream;                     /* the stream handler's context */
    int stream_open;                  /* begin succeeded; neither end nor abort yet */
    uint64_t discarded;               /* body bytes drained after a refusal */
    unsigned status_sent;
    uint64_t resp_len;                /* bytes of the queued body */
    struct MHD_Connection *conn;      /* set while offloaded */
    struct req_ctx *next;             /* offload queue link */
    char path[];                      /* raw URL path, NUL-terminated */
};

static const uint8_t empty_body[1] = {0};

static double mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- responses ------------------------------------------------------------ */

static void resp_clear(struct fota_resp *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    if (resp->mhd != NULL) {
        MHD_destroy_response(resp->mhd);
        resp->mhd = NULL;
    }
}

void fota_resp_bytes(struct fota_resp *resp, unsigned status, const char *content_type,
                     const void *data, size_t len)
{
    resp_clear(resp);
    resp->status = status;
    resp->content_type = content_type;
    if (len == 0)
        return;
    resp->body = malloc(len);
    if (resp->body == NULL) {
        resp->status = 500;
        resp->content_type = NULL;
        return;
    }
    memcpy(resp->body, data, len);
    resp->body_len = len;
}

void fota_resp_empty(struct fota_resp *resp, unsigned status)
{
    resp_clear(resp);
    resp->status = status;
    resp->content_type = NULL;
}

void fota_resp_json(struct fota_resp *resp, unsigned status, json_t *value)
{
    char *text;

    resp_clear(resp);
    if (value == NULL) {
        fota_resp_error(resp, 500, "internal", "out of memory");
        return;
    }
    text = json_dumps(value, JSON_COMPACT);
    json_decref(value);
    if (text == NULL) {
        fota_resp_error(resp, 500, "internal", "out of memory");
        return;
    }
    resp->status = status;
    resp->body = text;
    resp->body_len = strlen(text);
    resp->content_type = "application/json";
}

void fota_resp_error(struct fota_resp *resp, unsigned status, const char *code,
                     const char *fmt, ...)
{
    char message[512];
    json_t *obj;
    va_list ap;

    resp_clear(resp);
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    resp->status = status;
    resp->content_type = "application/json";
    if (resp->log_detail[0] == '\0')
        snprintf(resp->log_detail, sizeof(resp->log_detail), "error=%s", code);
    obj = json_pack("{s:s, s:s}", "error", code, "message", message);
    if (obj != NULL) {
        resp->body = json_dumps(obj, JSON_COMPACT);
        json_decref(obj);
    }
    if (resp->body != NULL)
        resp->body_len = strlen(resp->body);
    else
        resp->content_type = NULL;  /* out of memory: the status alone */
}

int fota_resp_file(struct fota_resp *resp, unsigned status, int fd, uint64_t offset,
                   uint64_t len)
{
    struct MHD_Response *r;

    resp_clear(resp);
    r = MHD_create_response_from_fd_at_offset64(len, fd, offset);
    if (r == NULL) {
        close(fd);
        fota_resp_error(resp, 500, "internal", "cannot send the file");
        return -1;
    }
    resp->status = status;
    resp->mhd = r;
    resp->body_len = (size_t)len;  /* no body pointer: the length sent, for metrics */
    return 0;
}

int fota_resp_file_header(struct fota_resp *resp, const char *name, const char *value)
{
    if (resp->mhd == NULL)
        return -1;
    return MHD_add_response_header(resp->mhd, name, value) == MHD_YES ? 0 : -1;
}

/* ---- request accessors ---------------------------------------------------- */

const char *fota_req_header(const struct fota_req *req, const char *name)
{
    if (req->conn == NULL)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *fota_req_query(const struct fota_req *req, const char *key)
{
    if (req->conn == NULL)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct fota_store *fota_req_store(const struct fota_req *req)
{
    return fota_store_thread_get(req->srv->db_path);
}

const char *fota_req_bearer(const struct fota_req *req)
{
    const char *auth = fota_req_header(req, "Authorization");

    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
        return NULL;
    auth += 7;
    while (*auth == ' ')
        auth++;
    return auth[0] != '\0' ? auth : NULL;
}

/* "application/json", any case, optionally followed by parameters. */
static int content_type_is_json(const char *ct)
{
    static const char want[] = "application/json";

    if (ct == NULL || strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return 0;
    ct += sizeof(want) - 1;
    return ct[0] == '\0' || ct[0] == ';' || ct[0] == ' ' || ct[0] == '\t';
}

json_t *fota_req_json(const struct fota_req *req, struct fota_resp *resp)
{
    json_t *value = NULL;
    uint64_t cap;
    fota_err e;

    if (!content_type_is_json(fota_req_header(req, "Content-Type"))) {
        fota_resp_error(resp, 415, "unsupported_media_type",
                        "the request body must be application/json");
        return NULL;
    }
    if (req->body == NULL || req->body_len == 0) {
        fota_resp_error(resp, 400, "malformed_json", "the request body is empty");
        return NULL;
    }
    /* The route's cap (set with the body); max_body when none was set. */
    cap = req->body_max != 0 ? req->body_max : req->srv->cfg.max_body;
    e = fota_json_parse(req->body, req->body_len, (size_t)cap, JSON_DEPTH_MAX, &value);
    if (e == FOTA_E_TOO_BIG) {
        fota_resp_error(resp, 413, "too_large", "the request body is over %" PRIu64 " bytes",
                        cap);
        return NULL;
    }
    if (e != FOTA_OK) {
        fota_resp_error(resp, 400, "malformed_json", "the request body is not strict JSON (%s)",
                        fota_strerror(e));
        return NULL;
    }
    return value;
}

/* ---- the request life cycle ------------------------------------------------ */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct fota_http *http = cls;
    size_t n = strcspn(uri, "?");
    struct req_ctx *c = calloc(1, sizeof(*c) + n + 1);

    (void)conn;
    if (c == NULL)
        return NULL;  /* the access handler answers 500 for a NULL context */
    memcpy(c->path, uri, n);
    c->path[n] = '\0';
    c->http = http;
    c->req.srv = http->srv;
    c->req.path = c->path;
    c->req.t_start = mono_now();
    c->route_index = fota_route_count;
    fota_metrics_in_flight(http->srv->metrics, 1);
    return c;
}

/* Turn resp into an MHD response and queue it. */
static enum MHD_Result queue_response(struct req_ctx *c, struct MHD_Connection *conn)
{
    struct fota_resp *resp = &c->resp;
    struct MHD_Response *r = resp->mhd;
    unsigned status = resp->status;
    enum MHD_Result ret;

    resp->mhd = NULL;
    if (status < 100 || status > 599) {
        fota_log(FOTA_LOG_ERROR, "bug", "route=%s path=%.*s status=%u handler left no status",
                 c->route ? c->route->name : "-", LOG_PATH_MAX, c->path, status);
        if (r != NULL)
            MHD_destroy_response(r);
        r = NULL;
        fota_resp_error(resp, 500, "internal", "internal error");
        status = 500;
    }
    if (r == NULL) {
        int no_body = status == 204 || status == 304 || status < 200;
        if (no_body || resp->body == NULL) {
            r = MHD_create_response_from_buffer(0, (void *)empty_body, MHD_RESPMEM_PERSISTENT);
        } else {
            r = MHD_create_response_from_buffer(resp->body_len, resp->body,
                                                MHD_RESPMEM_MUST_FREE);
            if (r != NULL) {
                c->resp_len = resp->body_len;
                resp->body = NULL; /* MHD frees it */
            }
        }
        if (r == NULL)
            return MHD_NO;  /* out of memory: MHD closes the connection */
        if (resp->content_type != NULL && !no_body)
            MHD_add_response_header(r, "Content-Type", resp->content_type);
    } else {
        if (resp->content_type != NULL)
            MHD_add_response_header(r, "Content-Type", resp->content_type);
        c->resp_len = resp->body_len;
    }
    if (resp->location[0] != '\0')
        MHD_add_response_header(r, "Location", resp->location);
    if (resp->etag[0] != '\0')
        MHD_add_response_header(r, "ETag", resp->etag);
    for (size_t i = 0; i < 2; i++) {
        char name[64];
        const char *line = resp->extra_header[i];
        const char *colon = strchr(line, ':');
        size_t nlen;

        if (line[0] == '\0' || colon == NULL)
            continue;
        nlen = (size_t)(colon - line);
        if (nlen == 0 || nlen >= sizeof(name))
            continue;
        memcpy(name, line, nlen);
        name[nlen] = '\0';
        colon++;
        while (*colon == ' ')
            colon++;
        MHD_add_response_header(r, name, colon);
    }
    /* While draining for shutdown, no connection is kept for another request. */
    if (c->http->srv->stopping)
        MHD_add_response_header(r, "Connection", "close");
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    if (ret == MHD_YES) {
        c->status_sent = status;
        c->state = REQ_QUEUED;
    }
    return ret;
}

static int parse_content_length(const char *text, uint64_t *ret)
{
    char *end = NULL;
    unsigned long long v;

    if (text == NULL || text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *ret = v;
    return 0;
}

static void refuse_too_large(struct req_ctx *c)
{
    fota_resp_error(&c->resp, 413, "too_large", "the request body is over %" PRIu64 " bytes",
                    c->body_max);
    c->refused = 1;
}

/* Does the request announce a body (a non-zero length, or chunks)? */
static int request_has_body(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    uint64_t n = 0;

    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding") != NULL)
        return 1;
    return cl != NULL && (parse_content_length(cl, &n) != 0 || n > 0);
}

/* Headers are in: route the request and decide about its body (c->refused
 * and c->resp when it is refused). */
static void request_start(struct req_ctx *c, struct MHD_Connection *conn, const char *method)
{
    const struct fota_route *route, *path_route = NULL;
    const struct fota_server *srv = c->http->srv;
    unsigned allowed = 0;
    uint64_t announced = 0;
    int has_length;

    c->req.conn = conn;
    c->req.method = method;
    route = fota_route_find(method, c->path, &allowed, &path_route);
    if (route == NULL) {
        if (allowed != 0) {
            char allow[96];
            fota_route_allow_text(allowed, allow, sizeof(allow));
            fota_resp_error(&c->resp, 405, "method_not_allowed", "%s is not allowed here",
                            method);
            snprintf(c->resp.extra_header[0], sizeof(c->resp.extra_header[0]), "Allow: %s",
                     allow);
            c->route_index = (size_t)(path_route - fota_routes);
        } else {
            fota_resp_error(&c->resp, 404, "not_found", "no such resource");
        }
        c->refused = 1;
        return;
    }
    c->route = route;
    c->route_index = (size_t)(route - fota_routes);
    if (route->stream != NULL)
        c->body_max = srv->cfg.max_image;
    else if (route->metadata)
        c->body_max = srv->cfg.max_metadata;
    else
        c->body_max = srv->cfg.max_body;
    c->req.body_max = c->body_max;
    has_length = parse_content_length(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                                  "Content-Length"),
                                      &announced) == 0;
    if (has_length && announced > c->body_max) {
        refuse_too_large(c);
        return;
    }
    if (route->stream != NULL) {
        c->stream = route->stream->begin(&c->req, &c->resp);
        if (c->stream == NULL) {
            if (c->resp.status == 0)
                fota_resp_error(&c->resp, 500, "internal", "upload refused");
            c->refused = 1;
            return;
        }
        c->stream_open = 1;
        return;
    }
    if (has_length && announced > 0) {
        c->body = malloc((size_t)announced + 1);
        if (c->body == NULL) {
            fota_resp_error(&c->resp, 503, "unavailable", "out of memory");
            c->refused = 1;
            return;
        }
        c->body_cap = (size_t)announced;
    }
}

static void stream_abort(struct req_ctx *c)
{
    if (c->stream_open) {
        c->stream_open = 0;
        c->route->stream->abort(c->stream);
    }
}

static void request_data(struct req_ctx *c, const char *data, size_t len)
{
    if (c->refused)
        return;
    if (len > c->body_max - c->body_len) {
        stream_abort(c);
        refuse_too_large(c);
        return;
    }
    if (c->route->stream != NULL) {
        c->body_len += len;  /* counted only, for the cap */
        if (c->route->stream->data(c->stream, (const uint8_t *)data, len, &c->resp) != 0) {
            if (c->resp.status == 0)
                fota_resp_error(&c->resp, 500, "internal", "upload failed");
            stream_abort(c);
            c->refused = 1;
        }
        return;
    }
    if (c->body_len + len > c->body_cap) {
        /* No (or a wrong) Content-Length: grow by doubling, within the cap. */
        size_t cap = c->body_cap > 0 ? c->body_cap : 4096;
        uint8_t *nb;
        while (cap < c->body_len + len)
            cap *= 2;
        if (cap > c->body_max)
            cap = (size_t)c->body_max;
        nb = realloc(c->body, cap + 1);
        if (nb == NULL) {
            fota_resp_error(&c->resp, 503, "unavailable", "out of memory");
            c->refused = 1;
            return;
        }
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, data, len);
    c->body_len += len;
}

static void request_run(struct req_ctx *c)
{
    const char *m = c->req.method;

    if (c->refused)
        return;
    if (c->route->stream != NULL) {
        c->stream_open = 0;
        c->route->stream->end(c->stream, &c->req, &c->resp);
        return;
    }
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
        c->req.body = NULL;
        c->req.body_len = 0;
    } else if (c->body != NULL) {
        c->body[c->body_len] = 0;  /* a NUL past the end, for text-minded handlers */
        c->req.body = c->body;
        c->req.body_len = c->body_len;
    } else {
        c->req.body = empty_body;
        c->req.body_len = 0;
    }
    c->route->handler(&c->req, &c->resp);
}

/*
 * Offload. libmicrohttpd's pool threads each run an event loop over many
 * connections: a handler that works for seconds stalls every connection of
 * its thread (measured: a rollout of a million devices held a device's
 * check-in for its whole 86 s). Device and repository requests are short
 * and stay on the pool threads. Operator requests (/api/v1/, except the
 * streamed image upload) may read or write a whole fleet, so they run on
 * OFFLOAD_WORKERS threads of their own: the connection is suspended, a
 * worker runs the handler with its own database connection, and the
 * connection is resumed to send the answer.
 */
static int route_offloaded(const struct fota_route *route)
{
    return route != NULL && route->stream == NULL && strncmp(route->pattern, "/api/v1/", 8) == 0;
}

static void *offload_main(void *arg)
{
    struct fota_http *http = arg;
    struct req_ctx *c;
    struct MHD_Connection *conn;

    for (;;) {
        pthread_mutex_lock(&http->mu);
        while (http->queue_head == NULL && !http->stop_workers)
            pthread_cond_wait(&http->cv, &http->mu);
        c = http->queue_head;
        if (c == NULL) {                 /* stopping, and nothing left to run */
            pthread_mutex_unlock(&http->mu);
            return NULL;
        }
        http->queue_head = c->next;
        if (http->queue_head == NULL)
            http->queue_tail = &http->queue_head;
        pthread_mutex_unlock(&http->mu);

        request_run(c);
        conn = c->conn;
        pthread_mutex_lock(&http->mu);
        c->state = REQ_DONE;
        pthread_mutex_unlock(&http->mu);
        MHD_resume_connection(conn);
    }
}

static int offload_start(struct fota_http *http)
{
    pthread_mutex_init(&http->mu, NULL);
    pthread_cond_init(&http->cv, NULL);
    http->queue_head = NULL;
    http->queue_tail = &http->queue_head;
    for (unsigned i = 0; i < OFFLOAD_WORKERS; i++) {
        if (pthread_create(&http->workers[i], NULL, offload_main, http) != 0)
            return -1;
        http->n_workers++;
    }
    return 0;
}

/* Let the workers finish what is queued (their connections are resumed
 * while the daemon still runs), then join them. */
static void offload_stop(struct fota_http *http)
{
    if (http->queue_tail == NULL)        /* never started */
        return;
    pthread_mutex_lock(&http->mu);
    http->stop_workers = 1;
    pthread_cond_broadcast(&http->cv);
    pthread_mutex_unlock(&http->mu);
    for (unsigned i = 0; i < http->n_workers; i++)
        pthread_join(http->workers[i], NULL);
    http->n_workers = 0;
    pthread_mutex_destroy(&http->mu);
    pthread_cond_destroy(&http->cv);
    http->queue_tail = NULL;
}

static void offload(struct req_ctx *c, struct MHD_Connection *conn)
{
    struct fota_http *http = c->http;

    c->conn = conn;
    c->next = NULL;
    c->state = REQ_OFFLOADED;
    MHD_suspend_connection(conn);
    pthread_mutex_lock(&http->mu);
    *http->queue_tail = c;
    http->queue_tail = &c->next;
    pthread_cond_signal(&http->cv);
    pthread_mutex_unlock(&http->mu);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct req_ctx *c = *con_cls;
    static const char oom[] = "{\"error\":\"unavailable\",\"message\":\"out of memory\"}";

    (void)cls;
    (void)url;
    (void)version;
    if (c == NULL) {
        /* on_uri could not allocate: answer without a context. */
        struct MHD_Response *r = MHD_create_response_from_buffer(
            sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret;
        if (r == NULL)
            return MHD_NO;
        ret = MHD_queue_response(conn, 503, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (c->state == REQ_QUEUED) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (c->state == REQ_OFFLOADED || c->state == REQ_DONE) {
        int done;

        pthread_mutex_lock(&c->http->mu);
        done = c->state == REQ_DONE;
        pthread_mutex_unlock(&c->http->mu);
        *upload_data_size = 0;
        return done ? queue_response(c, conn) : MHD_YES;
    }
    if (c->state == REQ_NEW) {
        c->state = REQ_BODY;
        request_start(c, conn, method);
        /* A request refused before its body: answer now, so that MHD never
         * asks for the body (no "100 Continue") and closes the connection
         * after the answer. Without a body, wait for the next call. */
        if (c->refused && request_has_body(conn))
            return queue_response(c, conn);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (c->refused) {
            /* MHD takes a response only before the body or after all of
             * it: drain a little for a clean answer, then hang up. */
            c->discarded += n;
            return c->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        request_data(c, upload_data, n);
        return MHD_YES;
    }
    if (!c->refused && route_offloaded(c->route) && c->http->n_workers > 0) {
        offload(c, conn);
        return MHD_YES;
    }
    request_run(c);
    return queue_response(c, conn);
}

static const char *termination_name(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK: return "ok";
    case MHD_REQUEST_TERMINATED_WITH_ERROR: return "error";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED: return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN: return "shutdown";
    case MHD_REQUEST_TERMINATED_READ_ERROR: return "read_error";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT: return "client_abort";
    default: return "unknown";
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct fota_http *http = cls;
    struct req_ctx *c = *con_cls;
    const struct fota_route *route;
    double seconds;
    int level = FOTA_LOG_INFO;
    const char *event;
    int ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;

    (void)conn;
    if (c == NULL)
        return;
    *con_cls = NULL;
    route = c->route;
    stream_abort(c);
    seconds = mono_now() - c->req.t_start;
    fota_metrics_request(http->srv->metrics, c->route_index, c->status_sent, seconds);
    if (ok && route != NULL && c->status_sent == 200 && strcmp(route->name, "checkin") == 0)
        fota_metrics_checkin(http->srv->metrics);
    if (ok && route != NULL && (c->status_sent == 200 || c->status_sent == 206) &&
        c->req.method != NULL && strcmp(c->req.method, "GET") == 0 &&
        strncmp(c->path, "/repo/targets/", 14) == 0)
        fota_metrics_download(http->srv->metrics, c->resp_len);

    /* Failures of the server are errors; a route's routine successes (file
     * hits) are debug; every other outcome, client errors included, info. */
    if (c->status_sent >= 500)
        level = FOTA_LOG_ERROR;
    else if (route != NULL && route->quiet && c->status_sent != 0 && c->status_sent < 400 && ok)
        level = FOTA_LOG_DEBUG;
    event = c->resp.log_event != NULL ? c->resp.log_event
                                      : route != NULL ? route->name : "http";
    if (fota_log_enabled(level))
        fota_log(level, event, "method=%s path=%.*s%s status=%u ms=%.2f%s%s%s%s",
                 c->req.method != NULL ? c->req.method : "-", LOG_PATH_MAX, c->path,
                 strlen(c->path) > LOG_PATH_MAX ? "..." : "", c->status_sent, seconds * 1e3,
                 c->resp.log_detail[0] != '\0' ? " " : "", c->resp.log_detail,
                 ok ? "" : " end=", ok ? "" : termination_name(toe));
    resp_clear(&c->resp);
    free(c->body);
    fota_metrics_in_flight(http->srv->metrics, -1);
    free(c);
}

/* fmt is libmicrohttpd's own format string. */
__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char text[512];
    size_t n;

    (void)cls;
    vsnprintf(text, sizeof(text), fmt, ap);
    n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    fota_log(FOTA_LOG_WARN, "httpd", "message=\"%s\"", text);
}

/* ---- the daemon ------------------------------------------------------------ */

/* Default: two pool threads per online core. A check-in handler waits while
 * its group commit runs (server/checkin_queue.c), so with one thread per
 * core a core idles during each batch; on the 2-core reference machine
 * (bench/server/run.sh, 2026-11-24) 2 threads gave 9,454-10,084 check-ins/s
 * and 4 threads 10,617-11,231/s, p99 ~22 ms either way. */
static const char *event_mode_name(enum fota_event_mode mode)
{
    switch (mode) {
    case FOTA_EVENT_POLL: return "poll";
    case FOTA_EVENT_EPOLL: return "epoll";
    case FOTA_EVENT_THREAD_PER_CONNECTION: return "thread-per-connection";
    }
    return "unknown";
}

static unsigned pool_size(const struct fota_server_config *cfg)
{
    long n;

    if (cfg->threads > 0)
        return cfg->threads;
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 512 ? 2 * (unsigned)n : 4;
}

/* As many connections as the descriptor limit allows, less a margin for
 * files being sent, the database and logs. */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    rlim_t n;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 1000;
    n = rl.rlim_cur;
    if (n < 256)
        return 64;
    n = (n - 64) / 2;  /* a connection may hold a file descriptor being sent */
    return n > CONNECTION_LIMIT_MAX ? CONNECTION_LIMIT_MAX : (unsigned)n;
}

static int load_tls_file(const char *path, char **ret, size_t *ret_len, const char *what)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    fota_err e = fota_posix_read_file(path, TLS_FILE_MAX, &buf, &len);

    if (e != FOTA_OK) {
        fota_log(FOTA_LOG_ERROR, "start", "%s=%s error=\"%s\"", what, path,
                 e == FOTA_E_LENGTH ? "file too large" : strerror(errno));
        return -1;
    }
    *ret = (char *)buf;
    *ret_len = len;
    return 0;
}

int fota_http_start(struct fota_server *srv, struct fota_http **ret_http)
{
    struct fota_http *http;
    struct addrinfo hints, *ai = NULL;
    char port_text[16];
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    int per_conn = srv->cfg.event_mode == FOTA_EVENT_THREAD_PER_CONNECTION;
    unsigned threads = per_conn ? 0 : pool_size(&srv->cfg);
    char threads_text[16];
    const union MHD_DaemonInfo *info;
    int rc;

    if (srv->metrics == NULL)
        return -1;
    http = calloc(1, sizeof(*http));
    if (http == NULL)
        return -1;
    http->srv = srv;
    if (per_conn) {
        /* Every connection has a thread of its own, so a long operator
         * request holds only its own connection: nothing to offload (and
         * libmicrohttpd cannot suspend connections in this mode). */
        flags = (flags & ~(unsigned)MHD_ALLOW_SUSPEND_RESUME) | MHD_USE_THREAD_PER_CONNECTION |
                MHD_USE_POLL;
    } else {
        if (offload_start(http) != 0) {
            fota_log(FOTA_LOG_ERROR, "start", "error=\"cannot start the operator API workers\"");
            goto fail;
        }
        flags |= srv->cfg.event_mode == FOTA_EVENT_EPOLL ? MHD_USE_EPOLL : MHD_USE_POLL;
    }
    if (srv->cfg.tls_cert[0] != '\0') {
        if (load_tls_file(srv->cfg.tls_cert, &http->tls_cert, &http->tls_cert_len,
                          "tls_cert") != 0 ||
            load_tls_file(srv->cfg.tls_key, &http->tls_key, &http->tls_key_len, "tls_key") != 0)
            goto fail;
        flags |= MHD_USE_TLS;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port_text, sizeof(port_text), "%u", srv->cfg.listen_port);
    rc = getaddrinfo(srv->cfg.listen_addr, port_text, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        fota_log(FOTA_LOG_ERROR, "start", "listen=%s error=\"%s\"", srv->cfg.listen_addr,
                 rc != 0 ? gai_strerror(rc) : "no address");
        goto fail;
    }
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    {
        struct MHD_OptionItem opts[16];
        size_t n = 0;

        /* The logger first, so that MHD reports even option errors through it. */
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log,
                                            NULL};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE,
                                            threads > 1 ? threads : 0, NULL};
        if (per_conn)
            opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_STACK_SIZE,
                                                CONNECTION_STACK_SIZE, NULL};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                            CONNECTION_TIMEOUT_S, NULL};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, connection_limit(),
                                            NULL};
        /* No MHD_OPTION_LISTENING_ADDRESS_REUSE: it sets SO_REUSEPORT, and a
         * second server on the same port must fail, not share it. */
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri,
                                            http};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
                                            (intptr_t)on_completed, http};
        if (http->tls_cert != NULL) {
            opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, http->tls_cert};
            opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, http->tls_key};
        }
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
        http->daemon = MHD_start_daemon(flags, (uint16_t)srv->cfg.listen_port, NULL, NULL,
                                        &on_request, http, MHD_OPTION_ARRAY, opts,
                                        MHD_OPTION_END);
    }
    freeaddrinfo(ai);
    if (http->daemon == NULL) {
        fota_log(FOTA_LOG_ERROR, "start", "listen=%s:%u error=\"cannot start the HTTP server "
                 "(address in use, or a bad TLS certificate or key)\"",
                 srv->cfg.listen_addr, srv->cfg.listen_port);
        goto fail;
    }
    if (srv->cfg.event_mode == FOTA_EVENT_EPOLL && threads < 2)
        fota_log(FOTA_LOG_WARN, "start", "detail=\"epoll with one thread stalls under many "
                 "keep-alive connections (docs/server.md, Event mode): prefer poll or "
                 "threads >= 2\"");
    if (per_conn && srv->cfg.threads > 0)
        fota_log(FOTA_LOG_WARN, "start", "detail=\"threads=%u is not used: event_mode "
                 "thread-per-connection runs one thread per connection\"", srv->cfg.threads);
    info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_BIND_PORT);
    http->port = info != NULL && info->port != 0 ? info->port : srv->cfg.listen_port;
    if (per_conn)
        snprintf(threads_text, sizeof(threads_text), "per-connection");
    else
        snprintf(threads_text, sizeof(threads_text), "%u", threads);
    fota_log(FOTA_LOG_INFO, "listening", "address=%s port=%u tls=%s threads=%s event_mode=%s",
             srv->cfg.listen_addr, http->port, http->tls_cert != NULL ? "on" : "off",
             threads_text, event_mode_name(srv->cfg.event_mode));
    *ret_http = http;
    return 0;
fail:
    fota_http_stop(http);
    return -1;
}

unsigned fota_http_port(const struct fota_http *http)
{
    return http->port;
}

void fota_http_quiesce(struct fota_http *http)
{
    MHD_socket fd;

    if (http == NULL || http->daemon == NULL || http->quiesced)
        return;
    http->quiesced = 1;
    http->srv->stopping = 1;
    fd = MHD_quiesce_daemon(http->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

int fota_http_wait_idle(struct fota_http *http, double timeout_s, volatile int *cancel)
{
    double deadline = mono_now() + timeout_s;

    while (fota_metrics_in_flight_now(http->srv->metrics) > 0) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        if (mono_now() >= deadline || (cancel != NULL && *cancel))
            return -1;
        nanosleep(&ts, NULL);
    }
    return 0;
}

void fota_http_stop(struct fota_http *http)
{
    if (http == NULL)
        return;
    offload_stop(http);
    if (http->daemon != NULL)
        MHD_stop_daemon(http->daemon);
    free(http->tls_cert);
    fota_secret_free(http->tls_key, http->tls_key_len);
    free(http);
}

void fota_resp_store_error(struct fota_resp *resp, int store_err)
{
    if (store_err == FOTA_STORE_BUSY) {
        fota_resp_error(resp, 503, "busy", "the database is busy; retry later");
        snprintf(resp->extra_header[1], sizeof(resp->extra_header[1]), "Retry-After: 1");
    } else {
        fota_resp_error(resp, 500, "internal", "storage failure (%s)",
                        fota_store_strerror((enum fota_store_err)store_err));
    }
}

int fota_req_begin(const struct fota_req *req, struct fota_resp *resp,
                   struct fota_store **ret_st)
{
    struct fota_store *st = fota_req_store(req);
    enum fota_store_err e = st != NULL ? fota_store_begin(st) : FOTA_STORE_ERROR;

    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        return -1;
    }
    *ret_st = st;
    return 0;
}

int fota_req_commit(struct fota_store *st, int store_err, struct fota_resp *resp)
{
    enum fota_store_err e = (enum fota_store_err)store_err;

    if (e == FOTA_STORE_OK)
        e = fota_store_commit(st);
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        return -1;
    }
    return 0;
}

int fota_percent_decode(const char *in, char *out, size_t size, size_t *ret_len)
{
    size_t o = 0;

    if (in == NULL || out == NULL || size == 0)
        return -1;
    for (size_t i = 0; in[i] != '\0'; i++) {
        char ch = in[i];

        if (ch == '%') {
            int hi = fota_hex_value(in[i + 1]);
            int lo = hi >= 0 ? fota_hex_value(in[i + 2]) : -1;

            if (lo < 0)
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= size)
            return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    if (ret_len != NULL)
        *ret_len = o;
    return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_HTTP_H
#define FOTA_SERVER_HTTP_H

/*
 * The HTTP layer of fota-server (server/http.c) and the contract between it
 * and the endpoint modules. http.c owns libmicrohttpd: it accepts the request,
 * enforces the body cap, and calls one handler with the whole request; the
 * handler fills a response. Handlers never touch MHD except through
 * fota_resp_file (zero-copy file responses).
 *
 * Threads: handlers run on MHD's pool threads, several at once. A handler
 * gets its thread's store connection with fota_req_store().
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct fota_server;          /* server/server.h */
struct fota_store;           /* server/store.h */

struct fota_req {
    struct fota_server *srv;
    void *conn;                      /* struct MHD_Connection * (http.c only) */
    const char *method;              /* "GET", "HEAD", "POST", "PUT", ... */
    const char *path;                /* the URL path exactly as received (not decoded), no query */
    const uint8_t *body;             /* whole body (NULL for GET/HEAD or streaming routes) */
    size_t body_len;
    uint64_t body_max;               /* the cap that applied to body (max_body, max_metadata) */
    double t_start;                  /* monotonic seconds, for latency metrics */
};

struct fota_resp {
    unsigned status;
    char *body;                      /* malloc'ed, owned by the response */
    size_t body_len;
    const char *content_type;        /* static string */
    void *mhd;                       /* a prepared struct MHD_Response * (fota_resp_file) */
    char location[256];              /* optional header values */
    char etag[80];
    char extra_header[2][160];       /* "Name: value" lines, optional */
    const char *log_event;           /* short event name for the request log ("checkin"), static */
    char log_detail[256];            /* key=value pairs for the request log line */
};

/* Request accessors: header and query values are NUL-terminated, owned by
 * the request, valid during the handler; NULL when absent. */
const char *fota_req_header(const struct fota_req *req, const char *name);
const char *fota_req_query(const struct fota_req *req, const char *key);
struct fota_store *fota_req_store(const struct fota_req *req);

/* The bearer token of the Authorization header, or NULL. */
const char *fota_req_bearer(const struct fota_req *req);

/* Parse the body as strict JSON (fota_json_parse, depth 16). On failure the
 * response is set to 400 (or 415 for a non-JSON content type) and NULL is
 * returned. */
json_t *fota_req_json(const struct fota_req *req, struct fota_resp *resp);

/* Responses. */
void fota_resp_json(struct fota_resp *resp, unsigned status, json_t *value); /* steals value */
void fota_resp_bytes(struct fota_resp *resp, unsigned status, const char *content_type,
                     const void *data, size_t len);                         /* copies */
void fota_resp_error(struct fota_resp *resp, unsigned status, const char *code,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void fota_resp_empty(struct fota_resp *resp, unsigned status);

/* A zero-copy response of len bytes of fd from offset (fd is owned by the
 * response from now on, also on failure). 0 on success, -1 on failure
 * (the response is then set to 500). */
int fota_resp_file(struct fota_resp *resp, unsigned status, int fd, uint64_t offset,
                   uint64_t len);

/* Handlers: return nothing; always leave a status in resp. */
typedef void (*fota_handler)(struct fota_req *req, struct fota_resp *resp);

/* Streaming request bodies (image uploads): begin is called once the
 * headers are in (return NULL after filling resp to refuse); data for each
 * chunk (return 0, or -1 after filling resp to stop); end once the body is
 * complete (fill resp). abort is called instead of end when the client goes
 * away or data refused. */
struct fota_stream_handler {
    void *(*begin)(struct fota_req *req, struct fota_resp *resp);
    int (*data)(void *ctx, const uint8_t *buf, size_t len, struct fota_resp *resp);
    void (*end)(void *ctx, struct fota_req *req, struct fota_resp *resp);
    void (*abort)(void *ctx);
};

/* ---- Added by server/http.c's owner (S1): the daemon and one helper -------- */

struct fota_http;

/* Add a header to a response prepared by fota_resp_file (a file response
 * needs more than the fixed fields: Content-Range, Cache-Control, ...).
 * 0, or -1 when resp holds no file response or MHD refuses the header. */
int fota_resp_file_header(struct fota_resp *resp, const char *name, const char *value);

/* Start listening as srv->cfg says (address, TLS, pool size, event mode);
 * srv->metrics must exist. 0, or -1 after logging why. */
int fota_http_start(struct fota_server *srv, struct fota_http **ret_http);

/* The port bound (the configured one, or the one chosen for port 0). */
unsigned fota_http_port(const struct fota_http *http);

/* Graceful shutdown, step 1: stop accepting connections (the listening
 * socket is closed) and answer every further request with
 * "Connection: close". Requests in flight go on. */
void fota_http_quiesce(struct fota_http *http);

/* Step 2: wait until no request is in flight. 0 when idle; -1 when timeout_s
 * passed or *cancel (may be NULL) became non-zero first. */
int fota_http_wait_idle(struct fota_http *http, double timeout_s, volatile int *cancel);

/* Step 3: close every connection, join the pool threads (their store
 * connections close with them) and free http (NULL is fine). */
void fota_http_stop(struct fota_http *http);

/* A store failure as an HTTP answer: FOTA_STORE_BUSY -> 503 "busy" with
 * Retry-After: 1 (in extra_header[1]); anything else -> 500 "internal".
 * store_err is an enum fota_store_err (server/store.h). */
void fota_resp_store_error(struct fota_resp *resp, int store_err);

/*
 * A state-changing handler's transaction. fota_req_begin: *ret_st = the
 * request's store with a transaction begun, 0; or -1 with resp set (500 when
 * there is no store, else as fota_resp_store_error). fota_req_commit: when
 * store_err (the handler's last store result) is FOTA_STORE_OK, commit; 0
 * when committed, else -1 with resp set from the first failure (store_err's
 * or the commit's), the transaction still open for the handler to roll back.
 */
int fota_req_begin(const struct fota_req *req, struct fota_resp *resp,
                   struct fota_store **ret_st);
int fota_req_commit(struct fota_store *st, int store_err, struct fota_resp *resp);

/* Percent-decode the URL path text `in` into out (size bytes, NUL-terminated).
 * -1 for a malformed escape ("%" not followed by two hex digits) or a result
 * that does not fit; 0 otherwise, with *ret_len (may be NULL) the decoded
 * length, which counts any NUL an escape produced ("%00"): callers that
 * want none compare it with strlen(out). */
int fota_percent_decode(const char *in, char *out, size_t size, size_t *ret_len);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_ROUTES_H
#define FOTA_SERVER_ROUTES_H

/*
 * The route table of fota-server (server/routes.c): method + path -> the
 * handler of one module. http.c looks a request up here once its headers are
 * in; everything else about a route (bodies, caps, logging, metrics) follows
 * from the entry.
 *
 * Paths are matched on the URL path exactly as received (not decoded), so
 * "%2F" never becomes a separator and a route cannot be reached by encoding
 * its name.
 */

#include <stddef.h>

#include "http.h"

/* Method bits. */
#define FOTA_M_GET    (1u << 0)
#define FOTA_M_HEAD   (1u << 1)
#define FOTA_M_POST   (1u << 2)
#define FOTA_M_PUT    (1u << 3)
#define FOTA_M_DELETE (1u << 4)
#define FOTA_M_PATCH  (1u << 5)

enum fota_route_match {
    FOTA_ROUTE_EXACT,     /* path == pattern */
    FOTA_ROUTE_SUBTREE,   /* path == pattern, or starts with pattern + "/" */
    FOTA_ROUTE_PREFIX,    /* path starts with pattern (which ends in "/") */
};

struct fota_route {
    const char *name;                           /* metrics label and default log event */
    unsigned methods;                           /* FOTA_M_* bits */
    enum fota_route_match match;
    const char *pattern;
    fota_handler handler;                       /* NULL for a stream route */
    const struct fota_stream_handler *stream;   /* body streamed to it, capped by max_image */
    int quiet;                                  /* 1: successes logged at debug level only */
    int metadata;                               /* 1: JSON body capped by max_metadata
                                                 * (TUF metadata), not max_body */
};

/* The table, in match order (first match wins), and its length. At most
 * FOTA_ROUTES_MAX entries. */
#define FOTA_ROUTES_MAX 32
extern const struct fota_route fota_routes[];
extern const size_t fota_route_count;

/* FOTA_M_* bit of a method name; 0 for any other method. */
unsigned fota_route_method_bit(const char *method);

/*
 * The route for (method, path): the first route whose path matches decides.
 * When it does not take the method, NULL is returned, *ret_allowed holds the
 * methods it takes (for 405 and its Allow header) and *ret_path_route is
 * that route (for metrics); when no path matches, NULL, *ret_allowed == 0
 * and *ret_path_route NULL (404).
 */
const struct fota_route *fota_route_find(const char *method, const char *path,
                                         unsigned *ret_allowed,
                                         const struct fota_route **ret_path_route);

/* "GET, HEAD, POST" for a set of method bits, into buf. */
void fota_route_allow_text(unsigned methods, char *buf, size_t len);

/* Handlers of the modules this table ties in that have no header of their
 * own: the repository (repo_host.c), metrics (metrics.c), dashboard. */
void fota_repo_get(struct fota_req *req, struct fota_resp *resp);
void fota_metrics_get(struct fota_req *req, struct fota_resp *resp);
void fota_dashboard_get(struct fota_req *req, struct fota_resp *resp);

#endif

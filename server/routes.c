/* SPDX-License-Identifier: Apache-2.0 */
#include "routes.h"

#include <stdio.h>
#include <string.h>

#include "api.h"       /* operator API (everything under /api/v1/ but releases, images) */
#include "devices.h"   /* device endpoints */
#include "publish.h"   /* new roots */
#include "releases.h"  /* releases and image uploads */

#define M_READ (FOTA_M_GET | FOTA_M_HEAD)

const struct fota_route fota_routes[] = {
    /* Devices (device-signed envelopes or session tokens). */
    {"enrol", FOTA_M_POST, FOTA_ROUTE_EXACT, "/device/v1/enrol", fota_dev_enrol, NULL, 0, 0},
    {"session", FOTA_M_POST, FOTA_ROUTE_EXACT, "/device/v1/session", fota_dev_session, NULL, 0, 0},
    {"checkin", FOTA_M_POST, FOTA_ROUTE_EXACT, "/device/v1/checkin", fota_dev_checkin, NULL, 0, 0},
    {"report", FOTA_M_POST, FOTA_ROUTE_EXACT, "/device/v1/report", fota_dev_report, NULL, 0, 0},
    {"director_key", M_READ, FOTA_ROUTE_EXACT, "/device/v1/director-key", fota_dev_director_key,
     NULL, 0, 0},
    /* Operator API: releases and image uploads first, then everything else. */
    {"releases", M_READ | FOTA_M_POST, FOTA_ROUTE_SUBTREE, "/api/v1/releases",
     fota_api_releases, NULL, 0, 1},
    {"images", FOTA_M_PUT, FOTA_ROUTE_PREFIX, "/api/v1/images/", NULL, &fota_image_upload, 0, 0},
    {"root", FOTA_M_POST, FOTA_ROUTE_EXACT, "/api/v1/root", fota_api_root, NULL, 0, 1},
    {"api", M_READ | FOTA_M_POST | FOTA_M_DELETE, FOTA_ROUTE_PREFIX, "/api/v1/",
     fota_api_handle, NULL, 0, 0},
    /* The TUF repository, metrics and the dashboard. */
    {"repo", M_READ, FOTA_ROUTE_PREFIX, "/repo/", fota_repo_get, NULL, 1, 0},
    {"metrics", M_READ, FOTA_ROUTE_EXACT, "/metrics", fota_metrics_get, NULL, 0, 0},
    {"dashboard", M_READ, FOTA_ROUTE_EXACT, "/", fota_dashboard_get, NULL, 0, 0},
};

const size_t fota_route_count = sizeof(fota_routes) / sizeof(fota_routes[0]);

_Static_assert(sizeof(fota_routes) / sizeof(fota_routes[0]) <= FOTA_ROUTES_MAX,
               "route table over FOTA_ROUTES_MAX");

static const char *const method_names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"};

unsigned fota_route_method_bit(const char *method)
{
    for (unsigned i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++) {
        if (strcmp(method, method_names[i]) == 0)
            return 1u << i;
    }
    return 0;
}

static int path_matches(const struct fota_route *r, const char *path)
{
    size_t n = strlen(r->pattern);

    switch (r->match) {
    case FOTA_ROUTE_EXACT:
        return strcmp(path, r->pattern) == 0;
    case FOTA_ROUTE_SUBTREE:
        return strncmp(path, r->pattern, n) == 0 && (path[n] == '\0' || path[n] == '/');
    case FOTA_ROUTE_PREFIX:
        return strncmp(path, r->pattern, n) == 0;
    }
    return 0;
}

const struct fota_route *fota_route_find(const char *method, const char *path,
                                         unsigned *ret_allowed,
                                         const struct fota_route **ret_path_route)
{
    unsigned bit = fota_route_method_bit(method);

    /* The first route whose path matches decides: a specific route (an
     * upload, releases) never falls through to a broader one behind it. */
    for (size_t i = 0; i < fota_route_count; i++) {
        const struct fota_route *r = &fota_routes[i];
        if (!path_matches(r, path))
            continue;
        if ((r->methods & bit) != 0)
            return r;
        *ret_allowed = r->methods;
        *ret_path_route = r;
        return NULL;
    }
    *ret_allowed = 0;
    *ret_path_route = NULL;
    return NULL;
}

void fota_route_allow_text(unsigned methods, char *buf, size_t len)
{
    size_t used = 0;

    if (len == 0)
        return;
    buf[0] = '\0';
    for (unsigned i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++) {
        int n;
        if ((methods & (1u << i)) == 0)
            continue;
        n = snprintf(buf + used, len - used, "%s%s", used > 0 ? ", " : "", method_names[i]);
        if (n < 0 || (size_t)n >= len - used)
            return;
        used += (size_t)n;
    }
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET / : a small static page that says what this server is and where its
 * parts are. It carries no data and no credentials (the operator API needs a
 * token; issue 5 grows this into the dashboard).
 */
#include <stdio.h>

#include "http.h"
#include "routes.h"

static const char dashboard_html[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>fota-server</title>\n"
    "<style>\n"
    "body{font-family:system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em;"
    "line-height:1.5;color:#222}\n"
    "code{background:#f2f2f2;padding:0 .25em}\n"
    "</style>\n"
    "</head>\n"
    "<body>\n"
    "<h1>fota-server</h1>\n"
    "<p>The update server of a fota fleet: it hosts the signed TUF repository, enrols devices, "
    "answers their check-ins with Director documents and runs rollouts in waves.</p>\n"
    "<ul>\n"
    "<li><a href=\"/metrics\">/metrics</a>: Prometheus counters (requests, check-ins, "
    "downloads, devices per rollout state)</li>\n"
    "<li><code>/repo/metadata/</code> and <code>/repo/targets/</code>: the TUF repository</li>\n"
    "<li><code>/device/v1/</code>: enrolment, sessions, check-ins, reports</li>\n"
    "<li><code>/api/v1/</code>: the operator API (bearer token; see <code>fota-server token "
    "new</code>)</li>\n"
    "</ul>\n"
    "</body>\n"
    "</html>\n";

void fota_dashboard_get(struct fota_req *req, struct fota_resp *resp)
{
    (void)req;
    fota_resp_bytes(resp, 200, "text/html; charset=utf-8", dashboard_html,
                    sizeof(dashboard_html) - 1);
    snprintf(resp->extra_header[0], sizeof(resp->extra_header[0]),
             "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'");
    snprintf(resp->extra_header[1], sizeof(resp->extra_header[1]),
             "X-Content-Type-Options: nosniff");
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_API_H
#define FOTA_SERVER_API_H

/*
 * The operator API (server/api.c): everything under /api/v1/ except
 * /api/v1/releases and /api/v1/images (server/releases.c). Reference:
 * docs/api.md.
 *
 *   GET  /api/v1/devices                      read
 *   GET  /api/v1/devices/{id}                 read
 *   POST /api/v1/devices/{id}/accept|reject   deploy
 *   POST /api/v1/devices/{id}/tags            deploy
 *   POST /api/v1/devices/{id}/decommission    admin
 *   GET  /api/v1/rollouts[/{id}]              read
 *   POST /api/v1/rollouts                     deploy
 *   POST /api/v1/rollouts/{id}/pause|resume|abort   deploy
 *   GET  /api/v1/audit                        read
 *
 * Every state-changing call appends an audit entry (actor = token name,
 * action, object, detail) in the same store transaction as the change; a
 * refused request stores nothing.
 */

#include "http.h"
#include "store.h"     /* FOTA_STORE_NAME_MAX */

/* Handle one request whose path starts with "/api/v1/". */
void fota_api_handle(struct fota_req *req, struct fota_resp *resp);

/*
 * Operator token check, for every /api/v1/ handler (releases.c too).
 * required_scope: "read", "deploy" or "admin". Starts from failure: returns
 * 0 only when the request carries `Authorization: Bearer <token>` whose
 * SHA-256 names a stored token (hash compared with fota_ct_equal) that is
 * neither revoked nor expired and whose scope is at least required_scope;
 * then ret_actor receives the token's name whole (for audit entries; names
 * are up to FOTA_STORE_NAME_MAX bytes). Otherwise
 * returns -1 with resp set: 401 (missing, unknown, expired or revoked token;
 * with `WWW-Authenticate: Bearer`), 403 (scope too low), 500/503 (store).
 */
int fota_api_auth(struct fota_req *req, struct fota_resp *resp,
                  const char *required_scope,
                  char ret_actor[FOTA_STORE_NAME_MAX + 1]);

#endif

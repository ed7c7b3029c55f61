/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_API_H
#define FOTA_SERVER_API_H

/*
 * The operator API (server/api.c): everything under /api/v1/ except
 * /api/v1/releases, /api/v1/images (server/releases.c) and /api/v1/root
 * (server/publish.c). Reference:
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

#include <stdint.h>

#include <jansson.h>

#include "http.h"
#include "store.h"     /* FOTA_STORE_NAME_MAX, enum fota_store_err */

/* Handle one request whose path starts with "/api/v1/". */
void fota_api_handle(struct fota_req *req, struct fota_resp *resp);

/*
 * Operator token check, for every /api/v1/ handler (releases.c and publish.c
 * too).
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

/*
 * Append the audit entry of a change (for every /api/v1/ handler): actor,
 * action, object, and detail as compact key-sorted JSON (detail may be NULL;
 * it is consumed), timed now. Call it inside the change's transaction so
 * that the entry and the change commit together. Returns the store's
 * answer (FOTA_STORE_ERROR when st is NULL or detail cannot be encoded);
 * a failure is also logged.
 */
enum fota_store_err fota_api_audit(struct fota_store *st, const char *actor, const char *action,
                                   const char *object, json_t *detail, int64_t now);

#endif

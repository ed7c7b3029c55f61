/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_PUBLISH_H
#define FOTA_SERVER_PUBLISH_H

/*
 * Publishing signed metadata through the server (server/publish.c;
 * docs/api.md, "Releases"). Operators sign targets, delegated roles and new
 * roots offline with `fota`; the server never holds those keys. It checks
 * what they send against what it serves, then writes it with snapshot and
 * timestamp re-signed by its online keys (server/tuf_online.h).
 *
 *   POST /api/v1/releases   deploy   {"targets": <envelope>?,
 *        "roles": {"<delegated role>": <envelope>, ..}?} (at least one):
 *        targets verified against the served root's targets role; each
 *        delegated role against the keys and threshold of the role that
 *        delegates it (the top-level targets, another role of the request,
 *        or a published role), every target inside the delegated paths of
 *        every delegation from targets down to it; all not expired, versions
 *        above the published ones, every listed target's image uploaded with
 *        its length and hashes, every role a sent role delegates to
 *        published or sent. Then the roles' files (V.<role>.json,
 *        <role>.json), ONE new snapshot listing them and a new timestamp,
 *        and one release per target whose custom carries hardware_ids,
 *        version and security_counter. 201.
 *   POST /api/v1/root       admin    {"root": <envelope>, and "targets" /
 *        "roles" as above when they change with it}: version = published +
 *        1, signed by the threshold of the published root's root keys and of
 *        its own, not expired, listing the server's snapshot and timestamp
 *        keys, not turning consistent snapshots off; the published targets
 *        must still be trusted by it unless new targets come with it. Then
 *        N.root.json, root.json, and snapshot and timestamp re-signed. 201.
 *
 * Refusals (nothing is written or stored): 400 bad_request, bad_metadata,
 * bad_signature, expired, bad_target, bad_custom; 409 version,
 * target_missing, target_length, target_hash, unknown_role, online_keys,
 * targets_keys, conflict; 413 too_large.
 */

#include "http.h"

/* POST /api/v1/releases (routed through fota_api_releases). */
void fota_publish_releases(struct fota_req *req, struct fota_resp *resp);

/* POST /api/v1/root. */
void fota_api_root(struct fota_req *req, struct fota_resp *resp);

#endif

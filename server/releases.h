/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_RELEASES_H
#define FOTA_SERVER_RELEASES_H

/*
 * Publishing through the server (server/releases.c; docs/api.md,
 * "Releases"). The operator signs targets metadata offline with `fota`; the
 * server never holds the targets key.
 *
 *   PUT  /api/v1/images/<target path>   deploy   image bytes (octet-stream,
 *        capped by max_image) streamed into data_dir/repo/targets/<dir>/ and
 *        stored as <dir>/<sha256>.<basename>; 201 {"name","length","hashes",
 *        "path"}.
 *   POST /api/v1/releases               deploy   {"targets": <envelope>}:
 *        verified against the served root's targets role, version above the
 *        published one, not expired, every listed target present with its
 *        length and hashes; then N.targets.json, targets.json, a new
 *        snapshot and timestamp (server/tuf_online.h) and one release per
 *        target whose custom carries hardware_ids, version and
 *        security_counter. 201.
 *   GET  /api/v1/releases[?after=&limit=], /api/v1/releases/{id}   read
 *
 * Refusals (nothing is written): 400 bad_request, bad_metadata,
 * bad_signature, expired, bad_target, bad_custom; 409 version,
 * target_missing, target_length, target_hash, unknown_role; 413 too_large.
 */

#include "http.h"

/* The stream route for PUT /api/v1/images/<target path>. */
extern const struct fota_stream_handler fota_image_upload;

/* GET and POST /api/v1/releases, GET /api/v1/releases/{id}. */
void fota_api_releases(struct fota_req *req, struct fota_resp *resp);

#endif

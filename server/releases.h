/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_RELEASES_H
#define FOTA_SERVER_RELEASES_H

/*
 * Image uploads and release records (server/releases.c; docs/api.md,
 * "Releases"). Publishing the signed metadata is server/publish.h.
 *
 *   PUT  /api/v1/images/<target path>   deploy   image bytes (octet-stream,
 *        capped by max_image) streamed into data_dir/repo/targets/<dir>/ and
 *        stored as <dir>/<sha256>.<basename>; 201 {"name","length","hashes",
 *        "path"}.
 *   POST /api/v1/releases               deploy   see publish.h
 *   GET  /api/v1/releases[?after=&limit=], /api/v1/releases/{id}   read
 */

#include <stddef.h>

#include <jansson.h>

#include "http.h"
#include "server.h"
#include "store_releases.h"

/* The stream route for PUT /api/v1/images/<target path>. */
extern const struct fota_stream_handler fota_image_upload;

/* GET and POST /api/v1/releases, GET /api/v1/releases/{id}. */
void fota_api_releases(struct fota_req *req, struct fota_resp *resp);

/* ---- shared with server/publish.c ------------------------------------------ */

/* Longest target path the server stores. */
#define FOTA_TARGET_PATH_MAX 255

/* 1 when name is a target path the server stores: 1 to FOTA_TARGET_PATH_MAX
 * bytes, "/"-separated components none of which is empty, "." or "..", no
 * leading "/", no control character or backslash, and a basename short
 * enough that "<64 hex>.<basename>" is one file name. */
int fota_target_path_valid(const char *name);

/* data_dir/repo/targets/<dir of name> into out; -1 when it does not fit. */
int fota_target_dir(const struct fota_server *srv, const char *name, char *out, size_t size);

/* The last component of a target path. */
const char *fota_target_basename(const char *name);

/* A release as the API shows it (NULL when out of memory). */
json_t *fota_release_json(const struct fota_store_release *r);

#endif

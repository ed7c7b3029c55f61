/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_STORE_RELEASES_H
#define FOTA_SERVER_STORE_RELEASES_H

/*
 * Releases: published TUF targets that carry a version, a security counter
 * and the hardware ids they are built for. Immutable once inserted (a
 * release's target info may be cached in process memory). See store.h for
 * the conventions.
 */

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define FOTA_STORE_RELEASE_HWIDS_MAX 32   /* hardware ids per release */

struct fota_store_release {
    char id[FOTA_STORE_ID_MAX + 1];
    char target_name[FOTA_STORE_TARGET_MAX + 1];  /* TUF target path */
    int64_t length;                               /* bytes, >= 0 */
    char sha256[FOTA_STORE_SHA256_HEX + 1];       /* lowercase hex */
    char version[FOTA_STORE_VERSION_MAX + 1];
    int64_t security_counter;                     /* >= 0 */
    int64_t targets_version;                      /* targets.json version that published it */
    int64_t created;
    size_t hardware_id_count;                     /* 1..FOTA_STORE_RELEASE_HWIDS_MAX */
    char hardware_ids[FOTA_STORE_RELEASE_HWIDS_MAX][FOTA_STORE_HWID_MAX + 1];
};

/*
 * Insert a release (every field read; hardware ids distinct and non-empty).
 * Returns OK, CONFLICT (id exists, or the same target_name with the same
 * sha256 is already a release), INVALID, BUSY, ERROR. All or nothing.
 */
enum fota_store_err fota_store_release_insert(struct fota_store *st,
                                              const struct fota_store_release *rel);

/* Returns OK, NOT_FOUND, INVALID, ERROR. */
enum fota_store_err fota_store_release_get(struct fota_store *st, const char *id,
                                           struct fota_store_release *ret);

/* The newest release (by created, then id) of that target name.
 * Returns OK, NOT_FOUND, INVALID, ERROR. */
enum fota_store_err fota_store_release_get_by_target(struct fota_store *st,
                                                     const char *target_name,
                                                     struct fota_store_release *ret);

/*
 * Releases ordered by id, id > after (NULL or "": from the start), at most
 * limit (1..FOTA_STORE_PAGE_MAX); *ret_more = 1 when more follow.
 * *ret_items is malloc'ed (free with free(); NULL when *ret_n == 0).
 * Returns OK, INVALID, ERROR.
 */
enum fota_store_err fota_store_release_list(struct fota_store *st, const char *after,
                                            unsigned limit,
                                            struct fota_store_release **ret_items,
                                            size_t *ret_n, int *ret_more);

#endif

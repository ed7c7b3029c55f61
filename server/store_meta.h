/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_STORE_META_H
#define FOTA_SERVER_STORE_META_H

/*
 * Server-wide key/value state shared by every process: the device-token
 * secret and the TUF publish bookkeeping. See store.h for the conventions
 * (errors, caps, ret_*). Keys are ASCII strings of at most
 * FOTA_STORE_META_KEY_MAX bytes; values are bytes (may contain NUL) of at
 * most FOTA_STORE_META_VALUE_MAX bytes.
 */

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/*
 * Read the value of key into buf (cap bytes). *ret_len = its length.
 * Returns OK, NOT_FOUND, ERROR (also when cap is too small: nothing is
 * written then), INVALID.
 */
enum fota_store_err fota_store_meta_get(struct fota_store *st, const char *key,
                                        void *buf, size_t cap, size_t *ret_len);

/* Set key to value (insert or overwrite). Returns OK, INVALID, BUSY, ERROR. */
enum fota_store_err fota_store_meta_set(struct fota_store *st, const char *key,
                                        const void *value, size_t len);

/*
 * First writer wins: insert key = value unless key exists, then read back
 * whatever is stored (ours or an earlier writer's) into buf (cap bytes),
 * *ret_len = its length. Several processes starting at once therefore agree
 * on one value. Returns OK, INVALID, BUSY, ERROR (also cap too small).
 */
enum fota_store_err fota_store_meta_insert_or_get(struct fota_store *st, const char *key,
                                                  const void *value, size_t len,
                                                  void *buf, size_t cap, size_t *ret_len);

/*
 * Compare-and-set: set key to value only if it currently holds exactly
 * expected (expected_len bytes). Returns OK, NOT_FOUND (no such key),
 * CONFLICT (it holds something else), INVALID, BUSY, ERROR.
 */
enum fota_store_err fota_store_meta_cas(struct fota_store *st, const char *key,
                                        const void *expected, size_t expected_len,
                                        const void *value, size_t len);

/* Delete key. Returns OK (also when absent), INVALID, BUSY, ERROR. */
enum fota_store_err fota_store_meta_delete(struct fota_store *st, const char *key);

/*
 * The device-token HMAC secret (32 bytes), shared by every server process:
 * candidate is a fresh random secret; it is stored only if no secret exists
 * yet (meta key "token_secret"), and the stored one is returned in ret_secret.
 * Returns OK, BUSY, ERROR.
 */
#define FOTA_STORE_TOKEN_SECRET_LEN 32
enum fota_store_err fota_store_token_secret(struct fota_store *st,
                                            const uint8_t candidate[FOTA_STORE_TOKEN_SECRET_LEN],
                                            uint8_t ret_secret[FOTA_STORE_TOKEN_SECRET_LEN]);

/*
 * TUF publish bookkeeping: the versions and expiries of the metadata the
 * server currently serves (one row). Written with a guard so that two
 * processes renewing the timestamp (or publishing) at once cannot both
 * publish the same version: the loser gets CONFLICT, re-reads and retries or
 * gives up.
 */
struct fota_store_tuf_state {
    int64_t root_version;
    int64_t targets_version;
    int64_t snapshot_version;
    int64_t timestamp_version;
    int64_t snapshot_expires;      /* epoch seconds */
    int64_t timestamp_expires;     /* epoch seconds */
    int64_t updated;               /* when this row was last written */
};

/* Returns OK, NOT_FOUND (nothing published yet), ERROR. */
enum fota_store_err fota_store_tuf_get(struct fota_store *st, struct fota_store_tuf_state *ret);

/*
 * Replace the state with next if the stored state's four versions equal
 * expected's (expected == NULL: only if no state is stored yet).
 * Returns OK, CONFLICT (stale expected, or a state exists when expected is
 * NULL), NOT_FOUND (expected given but no state), INVALID, BUSY, ERROR.
 */
enum fota_store_err fota_store_tuf_set(struct fota_store *st,
                                       const struct fota_store_tuf_state *expected,
                                       const struct fota_store_tuf_state *next);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_STORE_TOKENS_H
#define FOTA_SERVER_STORE_TOKENS_H

/*
 * Operator API tokens. Only the SHA-256 of a token is stored (lowercase hex,
 * FOTA_STORE_SHA256_HEX chars): the token itself is printed once by
 * `fota-server token new` and never kept. A lookup finds the row by that
 * hash; the caller then compares the returned hash with its own using
 * fota_ct_equal, and checks expiry and revocation itself. The name of a
 * token that is not revoked is unique (a revoked token's name may be reused).
 * See store.h for the conventions.
 */

#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum fota_store_scope {
    FOTA_STORE_SCOPE_READ = 1,     /* GET everything */
    FOTA_STORE_SCOPE_DEPLOY = 2,   /* + releases, rollouts, accept/reject/tag */
    FOTA_STORE_SCOPE_ADMIN = 3,    /* + tokens, decommission */
};

/* "read", "deploy", "admin" (NULL for a bad value). */
const char *fota_store_scope_name(enum fota_store_scope scope);
/* Parse a scope name; returns OK or INVALID. */
enum fota_store_err fota_store_scope_parse(const char *name, enum fota_store_scope *ret);

struct fota_store_token {
    char sha256[FOTA_STORE_SHA256_HEX + 1];  /* hex of SHA-256(token) */
    char name[FOTA_STORE_NAME_MAX + 1];
    enum fota_store_scope scope;
    int64_t created;
    int64_t expires;                         /* 0: never */
    int64_t revoked;                         /* 0: not revoked, else when */
};

/*
 * Insert a token (revoked is ignored: new tokens are not revoked).
 * sha256 must be 64 lowercase hex chars. Returns OK, CONFLICT (same hash, or
 * a live token with that name exists), INVALID, BUSY, ERROR.
 */
enum fota_store_err fota_store_token_insert(struct fota_store *st,
                                            const struct fota_store_token *tok);

/* Find by hash (64 lowercase hex). Returns OK, NOT_FOUND, INVALID, ERROR.
 * Revoked and expired tokens are returned too: the caller refuses them. */
enum fota_store_err fota_store_token_lookup(struct fota_store *st, const char *sha256_hex,
                                            struct fota_store_token *ret);

/* Every token (revoked ones too), ordered by name then created.
 * *ret_items is malloc'ed (free with free(); NULL when *ret_n == 0).
 * Returns OK, ERROR. At most FOTA_STORE_PAGE_MAX rows are returned; *ret_more
 * is 1 when there were more. */
enum fota_store_err fota_store_token_list(struct fota_store *st,
                                          struct fota_store_token **ret_items, size_t *ret_n,
                                          int *ret_more);

/* Revoke the live token called name at time now. Returns OK, NOT_FOUND (no
 * live token of that name), INVALID, BUSY, ERROR. */
enum fota_store_err fota_store_token_revoke(struct fota_store *st, const char *name,
                                            int64_t now);

#endif

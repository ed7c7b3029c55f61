/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_TUF_REPO_H
#define FOTA_TUF_REPO_H

/*
 * The repository side of TUF: how published metadata is serialised and how
 * snapshot and timestamp are built and signed with the online keys. The
 * operator CLI (`fota repo publish`) and fota-server (publish through the
 * API, timestamp renewal) both build them here, so a repository published by
 * either is byte-for-byte what the other would write.
 *
 * No I/O: functions take envelopes or the bytes of published files and
 * return new envelopes or bytes. Outputs named ret_* are written only on
 * FOTA_OK; everything returned is owned by the caller.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fota/crypto.h"
#include "fota/error.h"

/* The spec_version written into new metadata. */
#define FOTA_TUF_SPEC_VERSION "1.0.31"

/* Cap on any published metadata file this module reads or writes. */
#define FOTA_TUF_REPO_MAX_METADATA (16u * 1024u * 1024u)

/* An online signing key: the private key and the TUF key id of its public
 * key object (both borrowed). */
struct fota_tuf_signer {
    const fota_privkey *key;
    const char *keyid;
};

/*
 * The bytes of a published metadata file: exactly the canonical JSON of
 * value, except when a string holds a control character (a PEM public key
 * holds newlines), which canonical JSON leaves raw and no strict JSON parser
 * accepts. Then the file is the same compact, key-sorted encoding with those
 * characters escaped; it parses to the same value, so the canonical form
 * that signatures cover is unchanged. *ret_buf is malloc'ed and
 * NUL-terminated (not counted). FOTA_E_TOO_BIG over max_len.
 */
fota_err fota_tuf_repo_bytes(const json_t *value, size_t max_len, char **ret_buf,
                             size_t *ret_len);

/* Check an envelope's shape: {"signed":{"_type":type,"spec_version":string,
 * "version":int>=1,"expires":time,...},"signatures":[{"keyid","sig"},...]}
 * and, for root, "keys" and "roles" objects; for targets, a "targets" object
 * and well-formed "delegations" when present. FOTA_E_TYPE for another _type
 * or a missing spec_version, FOTA_E_PARSE for the rest. */
fota_err fota_tuf_repo_check_envelope(const json_t *env, const char *type);

/* signed.version of an envelope (0 when absent). */
int64_t fota_tuf_repo_version(const json_t *env);

/* The meta entry snapshot and timestamp list for a published file:
 * {"version":version,"length":len,"hashes":{"sha256":hex}}. */
fota_err fota_tuf_repo_meta_entry(int64_t version, const void *bytes, size_t len,
                                  json_t **ret_entry);

/* 1 when root (an envelope) lists keyid among role's keys. */
int fota_tuf_repo_role_has_key(const json_t *root, const char *role, const char *keyid);

/* Unsigned envelopes ("signatures": []). meta is "meta" of snapshot, an
 * object "<role>.json" -> meta entry (copied); snapshot_entry is the meta
 * entry of the snapshot a timestamp points to (copied). */
fota_err fota_tuf_repo_snapshot_new(int64_t version, const char *expires, const json_t *meta,
                                    json_t **ret_env);
fota_err fota_tuf_repo_timestamp_new(int64_t version, const char *expires,
                                     const json_t *snapshot_entry, json_t **ret_env);

/*
 * Sign env with each signer, which must be a key root (an envelope) lists
 * for role (FOTA_E_KEY otherwise, before anything is signed), then verify
 * env against root's keys and role definition. *valid (may be NULL) gets
 * the number of distinct keys that signed validly, whatever the result.
 * FOTA_E_THRESHOLD when too few did; FOTA_E_ROLE when root lacks role.
 */
fota_err fota_tuf_repo_sign_role(json_t *env, const json_t *root, const char *role,
                                 const struct fota_tuf_signer *signers, size_t nsigners,
                                 unsigned *valid);

/*
 * The next snapshot from the bytes of the current one (strictly parsed):
 * version + 1, expires, the same meta with an entry replaced or added for
 * each changed targets role (role names without ".json"; role_bytes[i] of
 * role_len[i] bytes are the role's published file, whose version is read
 * from it), signed and serialised. cur may be NULL (no snapshot yet:
 * version 1, meta only of the changed roles). *ret_env (may be NULL) gets
 * the envelope, *ret_bytes and *ret_len the published bytes.
 */
fota_err fota_tuf_repo_next_snapshot(const json_t *root, const uint8_t *cur, size_t cur_len,
                                     const char *const *roles, const uint8_t *const *role_bytes,
                                     const size_t *role_len, size_t nroles, const char *expires,
                                     const struct fota_tuf_signer *signers, size_t nsigners,
                                     json_t **ret_env, char **ret_bytes, size_t *ret_len);

/*
 * The next timestamp: version = the current timestamp's + 1 (cur may be
 * NULL: version 1), pointing at the snapshot whose published bytes are
 * snapshot (its version read from them), signed and serialised.
 */
fota_err fota_tuf_repo_next_timestamp(const json_t *root, const uint8_t *cur, size_t cur_len,
                                      const uint8_t *snapshot, size_t snapshot_len,
                                      const char *expires,
                                      const struct fota_tuf_signer *signers, size_t nsigners,
                                      json_t **ret_env, char **ret_bytes, size_t *ret_len);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_TUF_H
#define FOTA_TUF_H

/*
 * TUF 1.0.x: metadata helpers shared by the operator tools and the device,
 * and the client workflow of the specification's section 5 ("Detailed client
 * workflow").
 *
 * The client does no I/O of its own. A port (struct fota_tuf_port) fetches
 * remote metadata, loads and stores trusted metadata, and tells the time;
 * the programs (fota-tuf-client, fota-agent, fota-sim) supply it. Metadata
 * handling allocates on the heap, always within the caps of
 * struct fota_tuf_limits.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fota/crypto.h"
#include "fota/error.h"

/* ---- names ------------------------------------------------------------ */

/* Percent-encode a role name or target path for use as one file name:
 * every byte outside A-Z a-z 0-9 _ . - ~ becomes %XX (upper-case hex).
 * FOTA_E_TOO_BIG when the result (with its NUL) does not fit in out_size. */
fota_err fota_tuf_encode_name(const char *name, char *out, size_t out_size);

/* ---- keys and signatures ---------------------------------------------- */

#define FOTA_TUF_KEYID_HEX_LEN 64

/* The TUF key object {"keytype","scheme","keyval":{"public"}} of a key. */
fota_err fota_tuf_key_json(const fota_privkey *key, json_t **ret_keyobj);

/* Key id: lower-case hex SHA-256 of the canonical form of the key object. */
fota_err fota_tuf_keyid(const json_t *keyobj, char ret_keyid[FOTA_TUF_KEYID_HEX_LEN + 1]);

/* Parse a TUF key object into a public key (FOTA_E_PARSE for missing or
 * mistyped fields, FOTA_E_UNSUPPORTED / FOTA_E_KEY from the crypto layer). */
fota_err fota_tuf_key_parse(const json_t *keyobj, fota_pubkey **ret_key);

/* Sign envelope["signed"] (canonical form) with key, whose key id is keyid.
 * A signature already present for keyid is replaced; others are kept. */
fota_err fota_tuf_sign(json_t *envelope, const fota_privkey *key, const char *keyid);

/*
 * Verify that envelope["signed"] carries at least the threshold of valid
 * signatures by the keys that role (an object {"keyids":[...],"threshold":N})
 * names out of keys (an object keyid -> key object).
 *
 * Starts from failure. Signatures whose key id the role does not name, and
 * signatures that do not verify, are ignored; a key counts once however many
 * key ids name it. Returns FOTA_E_DUPLICATE when two signatures carry the same
 * key id, FOTA_E_PARSE for a malformed envelope or role, FOTA_E_THRESHOLD when
 * too few valid signatures remain. *ret_valid (may be NULL) receives the
 * number of distinct keys that signed validly, whatever the result.
 */
fota_err fota_tuf_verify_role(const json_t *envelope, const json_t *keys,
                              const json_t *role, unsigned *ret_valid);

/* ---- time ------------------------------------------------------------- */

/* "YYYY-MM-DDTHH:MM:SSZ" <-> seconds since the epoch (UTC). Strict:
 * exactly that form, valid calendar fields. */
fota_err fota_tuf_parse_time(const char *s, int64_t *ret_time);
void fota_tuf_format_time(int64_t t, char out[21]);

/* ---- the client ------------------------------------------------------- */

/* Log levels for fota_tuf_port.log. */
enum fota_tuf_log_level {
    FOTA_TUF_LOG_CHECK = 0,  /* a check that passed: "timestamp v4: 1/1 signatures, threshold 1" */
    FOTA_TUF_LOG_INFO = 1,   /* progress: "fetching 3.snapshot.json" */
    FOTA_TUF_LOG_REJECT = 2, /* a rejection, with its reason */
};

struct fota_tuf_port {
    void *ctx;

    /* Fetch the remote metadata file `name` (already encoded:
     * "2.root.json", "timestamp.json", "5.snapshot.json", "3.a%2Fb.json").
     * Must never return more than max_len bytes: FOTA_E_LENGTH when the
     * file is longer. FOTA_E_NOT_FOUND when the server answers 404 or 403;
     * FOTA_E_IO for anything else. On FOTA_OK, *ret_buf is malloc'ed and
     * owned by the caller. Called once per file per workflow step: the
     * port must not retry. */
    fota_err (*fetch)(void *ctx, const char *name, size_t max_len,
                      uint8_t **ret_buf, size_t *ret_len);

    /* Load the trusted local file `name` ("root.json", "timestamp.json",
     * "a%2Fb.json"). FOTA_E_NOT_FOUND when absent, FOTA_E_LENGTH when
     * longer than max_len. *ret_buf malloc'ed, owned by the caller. */
    fota_err (*load)(void *ctx, const char *name, size_t max_len,
                     uint8_t **ret_buf, size_t *ret_len);

    /* Replace the trusted local file `name` with exactly these bytes,
     * atomically (the old content or the new, never a mix). */
    fota_err (*store)(void *ctx, const char *name, const uint8_t *buf, size_t len);

    /* Delete the trusted local file `name`; FOTA_OK if it was absent. */
    fota_err (*remove)(void *ctx, const char *name);

    /* Seconds since the epoch, UTC. */
    int64_t (*now)(void *ctx);

    /* Optional (may be NULL): one human-readable line per check made. */
    void (*log)(void *ctx, enum fota_tuf_log_level level, const char *line);
};

struct fota_tuf_limits {
    size_t root_max_len;          /* default 512000 */
    size_t timestamp_max_len;     /* default 16384 */
    size_t snapshot_max_len;      /* default 2000000 (when timestamp gives no length) */
    size_t targets_max_len;       /* default 5000000 (when snapshot gives no length) */
    unsigned max_root_rotations;  /* default 256 */
    unsigned max_delegations;     /* roles visited per target search; default 32 */
};

/* Fills l with the defaults above. */
void fota_tuf_limits_default(struct fota_tuf_limits *l);

typedef struct fota_tuf_client fota_tuf_client;

/* Create a client over port. Loads "root.json" through port->load and checks
 * that it is root metadata signed by its own threshold (expiry is not checked
 * here: an expired root may still be updated). Fails with the reason when the
 * stored root is missing or not valid; no fetch is made. limits may be NULL;
 * a zero in any limit is FOTA_E_INVALID. */
fota_err fota_tuf_client_new(const struct fota_tuf_port *port,
                             const struct fota_tuf_limits *limits,
                             fota_tuf_client **ret_client);

void fota_tuf_client_free(fota_tuf_client *client);

/* The top-level refresh (spec 5.3 to 5.6): root chain, timestamp, snapshot,
 * top-level targets. Each file is stored through the port as soon as it
 * verifies. May be called once per client. */
fota_err fota_tuf_refresh(fota_tuf_client *client);

#define FOTA_TUF_MAX_HASHES 4

struct fota_tuf_hash {
    fota_hash_alg alg;
    const char *name;                  /* "sha256", as in the metadata */
    uint8_t digest[FOTA_HASH_MAX_LEN];
    size_t digest_len;
    const char *hex;                   /* as in the metadata */
};

/* A trusted target. Pointers stay valid until the client is freed. */
struct fota_tuf_target {
    const char *path;
    uint64_t length;
    size_t n_hashes;                   /* at least 1 */
    struct fota_tuf_hash hashes[FOTA_TUF_MAX_HASHES]; /* in metadata order */
    const json_t *custom;              /* NULL when absent (borrowed) */
    const char *role;                  /* the role that listed it */
};

/* Find the target `path` after a successful refresh: top-level targets,
 * then delegations searched lazily, pre-order depth first, terminating
 * delegations honoured, each role fetched at most once per client, never a
 * role that snapshot does not list. FOTA_E_NO_TARGET when no role lists it;
 * FOTA_E_LIMIT when the delegation budget (max_delegations roles visited) or
 * the cap on roles kept in memory (4 x max_delegations) runs out first. */
fota_err fota_tuf_find_target(fota_tuf_client *client, const char *path,
                              struct fota_tuf_target *ret_target);

/* 1 when a delegation entry (an element of "delegations"."roles") covers
 * the target path, by the rules the client searches with: one of its
 * "paths" matches (split on "/", as many segments, each matched
 * shell-style on UTF-8 characters: "*", "?", "[a-z]", "[!...]"; no
 * wildcard crosses a "/"), or the hex SHA-256 of the path starts with one
 * of its "path_hash_prefixes". The server uses it to refuse a target no
 * client would look for in its role. */
int fota_tuf_delegation_covers(const json_t *entry, const char *path);

/* 1 when the trusted root sets consistent_snapshot (after refresh). */
int fota_tuf_consistent_snapshot(const fota_tuf_client *client);

/* Trusted versions after refresh (0 when the role is not loaded). */
int64_t fota_tuf_version(const fota_tuf_client *client, const char *role);

/* The detail of the last failure ("timestamp.json: version 3 is lower than
 * trusted version 5"), or "" if none. Valid until the next call. */
const char *fota_tuf_errmsg(const fota_tuf_client *client);

/* ---- verifying a target while it streams ------------------------------- */

struct fota_tuf_target_check {
    const struct fota_tuf_target *target;
    uint64_t seen;
    fota_hash_ctx hash[FOTA_TUF_MAX_HASHES];
    size_t n_active;
};

/* Start checking target (borrowed; must outlive the check). */
fota_err fota_tuf_target_check_init(struct fota_tuf_target_check *c,
                                    const struct fota_tuf_target *target);

/* Feed the next bytes. FOTA_E_LENGTH as soon as more than target->length
 * bytes have been fed (the caller must stop reading). */
fota_err fota_tuf_target_check_update(struct fota_tuf_target_check *c,
                                      const void *data, size_t len);

/* Finish: FOTA_E_LENGTH when fewer bytes than the signed length were fed,
 * FOTA_E_HASH when any digest differs (constant-time comparison). Releases
 * the hash contexts whatever the result. */
fota_err fota_tuf_target_check_final(struct fota_tuf_target_check *c);

/* Release the hash contexts without a verdict. */
void fota_tuf_target_check_abort(struct fota_tuf_target_check *c);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_DIRECTOR_H
#define FOTA_DIRECTOR_H

/*
 * The device side of the Director (docs/device-protocol.md, "The Director
 * document" and "How a device must check it"): the trusted Director key set
 * comes from the TUF target `fota/director.json`, and every check-in answer
 * is verified against it, its device id and the nonce just sent.
 *
 * No I/O, no clock of its own: the caller passes the bytes and "now".
 * Every check starts from refusal; *ret is written only on FOTA_OK.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fota/error.h"

/* The TUF target path of the Director key set. */
#define FOTA_DIRECTOR_KEYS_TARGET "fota/director.json"

/* Caps, equal to the server's (server/director.h). */
#define FOTA_DIRECTOR_DOC_MAX 16384u          /* bytes of one Director document */
#define FOTA_DIRECTOR_KEYS_MAX 65536u         /* bytes of fota/director.json */
#define FOTA_DIRECTOR_TARGET_NAME_MAX 1024u
#define FOTA_DIRECTOR_VERSION_MAX 64u
#define FOTA_DIRECTOR_ROLLOUT_MAX 128u

enum fota_director_action {
    FOTA_DIRECTOR_STAY = 0,
    FOTA_DIRECTOR_INSTALL = 1,
};

struct fota_director_decision {
    enum fota_director_action action;
    int64_t issued, expires;                         /* seconds since the epoch */
    uint64_t reports;                                /* seq of the last report the server stored */
    /* Only for FOTA_DIRECTOR_INSTALL: */
    char target[FOTA_DIRECTOR_TARGET_NAME_MAX + 1];  /* TUF target path */
    uint64_t length;
    uint8_t sha256[32];
    char version[FOTA_DIRECTOR_VERSION_MAX + 1];     /* semver */
    uint64_t security_counter;
    char rollout[FOTA_DIRECTOR_ROLLOUT_MAX + 1];
};

/*
 * Parse the bytes of fota/director.json (already checked against TUF by the
 * caller): {"keys":{"<keyid>":<TUF key object>},"threshold":N}, strict JSON,
 * N >= 1, at least N keys, every key id equal to the TUF key id of its key
 * object (FOTA_E_KEY otherwise). *ret_keyset is a new reference (json_decref)
 * holding exactly {"keys":...,"threshold":N}, in the shape
 * fota_tuf_verify_role takes.
 */
fota_err fota_director_keys_parse(const uint8_t *buf, size_t len, json_t **ret_keyset);

/*
 * Verify one Director document (the body of a 200 answer to a check-in):
 *  1. len <= FOTA_DIRECTOR_DOC_MAX, strict JSON (fota_json_parse);
 *  2. signatures: fota_tuf_verify_role over canonical `signed` with keyset
 *     (FOTA_E_SIGNATURE / FOTA_E_THRESHOLD);
 *  3. `_type` "director" and `spec_version` "1.0" (FOTA_E_TYPE);
 *  4. `device` equals device_id (FOTA_E_DEVICE);
 *  5. `nonce` equals nonce, compared in constant time (FOTA_E_NONCE);
 *  6. `issued`/`expires` well-formed; when now > 0, expires > now
 *     (FOTA_E_EXPIRED) — now == 0 means "no clock": the nonce is the proof;
 *  7. `reports`, an integer >= 0: the seq of the device's last report the
 *     server stored; then `action` "stay" (no `target`, no `rollout`) or "install" with
 *     `rollout` and `target` {name, length, hashes.sha256 (64 lower-case
 *     hex), version, security_counter}; unknown fields anywhere in `signed`
 *     refused; strings within the caps above (FOTA_E_PARSE).
 */
fota_err fota_director_verify(const uint8_t *doc, size_t len, const json_t *keyset,
                              const char *device_id, const char *nonce, int64_t now,
                              struct fota_director_decision *ret);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_DIRECTOR_H
#define FOTA_SERVER_DIRECTOR_H

/*
 * The Director document: the server's signed answer to a check-in
 * (docs/device-protocol.md, "The Director document").
 *
 *   {"signatures":[{"keyid":<director key id>,"sig":<hex>}],
 *    "signed":{"_type":"director","action":"stay"|"install","device":<id>,
 *              "expires":<iso>,"issued":<iso>,"nonce":<echo>,
 *              ["rollout":<id>,] "spec_version":"1.0",
 *              ["target":{"hashes":{"sha256":<hex>},"length":N,"name":<path>,
 *                         "security_counter":N,"version":<semver>}]}}
 *
 * This runs on every check-in, so the document is written directly in its
 * canonical form (keys sorted, no whitespace, only '"' and '\' escaped: the
 * bytes fota_json_canonical would produce) and signed once; no JSON tree is
 * built. The answer body is exactly these bytes. A device parses the
 * envelope, re-encodes "signed" canonically and checks the signature, as for
 * any TUF metadata.
 */

#include <stddef.h>
#include <stdint.h>

#include "fota/error.h"
#include "server.h"

/* Caps on the strings a Director document carries. */
#define FOTA_DIRECTOR_NAME_MAX 1024      /* target path */
#define FOTA_DIRECTOR_SHORT_MAX 128      /* version, rollout id */

struct fota_director_target {
    const char *name;                    /* TUF target path */
    uint64_t length;
    char sha256[65];                     /* lower-case hex */
    const char *version;                 /* semver */
    uint64_t security_counter;
    const char *rollout;                 /* rollout id */
};

struct fota_director_doc {
    const char *device_id;               /* 64 hex characters */
    const char *nonce;                   /* as the device sent it (already validated) */
    int64_t issued, expires;             /* seconds since the epoch */
    uint64_t reports;                    /* seq of the device's last stored report */
    const struct fota_director_target *target;   /* NULL: "stay" */
};

/* Write and sign doc with the Director key. *ret_buf is malloc'ed (free()),
 * NUL-terminated, *ret_len excludes the NUL. FOTA_E_INVALID for a missing
 * key or field, or a string holding a control character (it could not be
 * valid JSON); FOTA_E_TOO_BIG for a string over its cap; FOTA_E_CRYPTO /
 * FOTA_E_NOMEM from signing. */
fota_err fota_director_build(const struct fota_server_key *key,
                             const struct fota_director_doc *doc,
                             char **ret_buf, size_t *ret_len);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_SESSION_H
#define FOTA_SERVER_SESSION_H

/*
 * Stateless device session tokens (docs/device-protocol.md, "Session
 * tokens").
 *
 * A device proves possession of its key once per session (a signed
 * /device/v1/session request); the server answers with a token that the
 * device then presents as a bearer token at check-in and report. Checking a
 * token costs one HMAC-SHA256 instead of one signature verification, which
 * is what keeps check-ins within the crypto budget.
 *
 * Token = base64url without padding of the 72 bytes
 *     device id (32 bytes: the key id, raw) || expiry (8 bytes, big-endian
 *     seconds since the epoch) || HMAC-SHA256(secret, the first 40 bytes)
 * so always FOTA_SESSION_TOKEN_LEN (96) characters of [A-Za-z0-9_-].
 *
 * The secret is the server's token secret (in the store, shared by every
 * server process). Nothing about a token is stored: a token stays valid until
 * its expiry, and callers must still check the device's status in the store
 * on every use (a device rejected or decommissioned after it got its token is
 * refused there).
 */

#include <stdint.h>

#include "fota/error.h"
#include "fota/tuf.h"

#define FOTA_SESSION_SECRET_LEN 32
#define FOTA_SESSION_TOKEN_LEN 96

/* Make a token for device_id (64 lower-case hex characters) valid until
 * expires. ret_token receives FOTA_SESSION_TOKEN_LEN characters and a NUL.
 * FOTA_E_INVALID for a malformed device id or a negative expiry,
 * FOTA_E_CRYPTO when the MAC cannot be computed. */
fota_err fota_session_token_make(const uint8_t secret[FOTA_SESSION_SECRET_LEN],
                                 const char *device_id, int64_t expires,
                                 char ret_token[FOTA_SESSION_TOKEN_LEN + 1]);

/* Check token at time now. Starts from failure: FOTA_OK only for a token of
 * exactly the right form whose MAC matches (compared in constant time) and
 * whose expiry is after now. Then ret_device_id receives the device id (64
 * lower-case hex characters and a NUL) and *ret_expires (may be NULL) the
 * expiry. FOTA_E_PARSE for a malformed token (wrong length or alphabet),
 * FOTA_E_SIGNATURE for a wrong MAC, FOTA_E_EXPIRED for an expired one,
 * FOTA_E_CRYPTO when the MAC cannot be computed. */
fota_err fota_session_token_check(const uint8_t secret[FOTA_SESSION_SECRET_LEN],
                                  const char *token, int64_t now,
                                  char ret_device_id[FOTA_TUF_KEYID_HEX_LEN + 1],
                                  int64_t *ret_expires);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#include "fota/error.h"

const char *fota_strerror(fota_err err)
{
    switch (err) {
    case FOTA_OK:            return "ok";
    case FOTA_E_INVALID:     return "invalid-argument";
    case FOTA_E_NOMEM:       return "out-of-memory";
    case FOTA_E_IO:          return "io";
    case FOTA_E_NOT_FOUND:   return "not-found";
    case FOTA_E_PARSE:       return "parse";
    case FOTA_E_TOO_BIG:     return "too-big";
    case FOTA_E_DEPTH:       return "too-deep";
    case FOTA_E_DUPLICATE:   return "duplicate";
    case FOTA_E_UNSUPPORTED: return "unsupported";
    case FOTA_E_SIGNATURE:   return "bad-signature";
    case FOTA_E_THRESHOLD:   return "threshold";
    case FOTA_E_EXPIRED:     return "expired";
    case FOTA_E_ROLLBACK:    return "rollback";
    case FOTA_E_VERSION:     return "version-mismatch";
    case FOTA_E_HASH:        return "hash-mismatch";
    case FOTA_E_LENGTH:      return "length";
    case FOTA_E_TYPE:        return "wrong-type";
    case FOTA_E_ROLE:        return "role";
    case FOTA_E_NO_TARGET:   return "no-target";
    case FOTA_E_LIMIT:       return "limit";
    case FOTA_E_STATE:       return "state";
    case FOTA_E_CRYPTO:      return "crypto";
    case FOTA_E_KEY:         return "bad-key";
    case FOTA_E_HARDWARE:    return "wrong-hardware";
    case FOTA_E_FLASH:       return "flash";
    case FOTA_E_NO_IMAGE:    return "no-bootable-image";
    case FOTA_E_POWER:       return "power-cut";
    case FOTA_E_HEALTH:      return "health-check";
    case FOTA_E_REVERTED:    return "reverted";
    case FOTA_E_NONCE:       return "nonce-mismatch";
    case FOTA_E_DEVICE:      return "wrong-device";
    case FOTA_E_NETWORK:     return "network";
    case FOTA_E_SERVER:      return "server-error";
    }
    return "unknown";
}

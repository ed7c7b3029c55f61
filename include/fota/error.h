/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_ERROR_H
#define FOTA_ERROR_H

/*
 * One error convention for libfota: every function that can fail returns a
 * fota_err. FOTA_OK is zero; every other value is a reason a person can read
 * in a log through fota_strerror(). Outputs named ret_* are written only on
 * FOTA_OK.
 *
 * The numeric values are part of the ABI and may be stored in reports sent to
 * the server: append new reasons at the end, never renumber.
 */
typedef enum fota_err {
    FOTA_OK = 0,
    FOTA_E_INVALID = 1,      /* caller passed a bad argument */
    FOTA_E_NOMEM = 2,        /* allocation failed */
    FOTA_E_IO = 3,           /* a port (storage, network) reported failure */
    FOTA_E_NOT_FOUND = 4,    /* file or resource does not exist */
    FOTA_E_PARSE = 5,        /* malformed input (JSON syntax, wrong field types) */
    FOTA_E_TOO_BIG = 6,      /* input exceeds a size cap */
    FOTA_E_DEPTH = 7,        /* JSON nesting exceeds the depth cap */
    FOTA_E_DUPLICATE = 8,    /* duplicate JSON key or duplicate signature key id */
    FOTA_E_UNSUPPORTED = 9,  /* unknown key type, scheme or hash algorithm */
    FOTA_E_SIGNATURE = 10,   /* a signature did not verify */
    FOTA_E_THRESHOLD = 11,   /* fewer valid signatures than the role's threshold */
    FOTA_E_EXPIRED = 12,     /* metadata is past its expiry */
    FOTA_E_ROLLBACK = 13,    /* version lower than the trusted one */
    FOTA_E_VERSION = 14,     /* version differs from what the referring metadata says */
    FOTA_E_HASH = 15,        /* digest mismatch */
    FOTA_E_LENGTH = 16,      /* length exceeded or differs from the signed length */
    FOTA_E_TYPE = 17,        /* metadata of the wrong _type, or bad spec_version */
    FOTA_E_ROLE = 18,        /* role unknown, not in snapshot, or badly delegated */
    FOTA_E_NO_TARGET = 19,   /* no trusted metadata lists the target */
    FOTA_E_LIMIT = 20,       /* too many root rotations or delegations */
    FOTA_E_STATE = 21,       /* operation called in the wrong state */
    FOTA_E_CRYPTO = 22,      /* the crypto backend failed (not a verification failure) */
    FOTA_E_KEY = 23,         /* malformed key material */
    FOTA_E_HARDWARE = 24,    /* image built for another hardware id */
    FOTA_E_FLASH = 25,       /* flash rule broken: write to unerased bytes, misaligned, out of range */
    FOTA_E_NO_IMAGE = 26,    /* no bootable image */
    FOTA_E_POWER = 27,       /* simulated power cut (fault injection only) */
    FOTA_E_HEALTH = 28,      /* the new image failed its health check on trial */
    FOTA_E_REVERTED = 29,    /* the bootloader went back to the old image (attempts or verification) */
    FOTA_E_NONCE = 30,       /* an answer that does not echo the nonce just sent (replayed or foreign) */
    FOTA_E_DEVICE = 31,      /* a document addressed to another device */
    FOTA_E_NETWORK = 32,     /* connection failed, dropped, or too slow (retry later) */
    FOTA_E_SERVER = 33,      /* the server answered an error status (retry later) */
} fota_err;

/* Short, stable, lower-case name of a reason ("expired", "rollback", ...),
 * suitable for a log line or a machine-readable report. Never NULL. */
const char *fota_strerror(fota_err err);

#endif

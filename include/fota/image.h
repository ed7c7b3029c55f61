/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_IMAGE_H
#define FOTA_IMAGE_H

/*
 * The signed firmware image: header + payload + trailer.
 *
 * Everything here is written to flash and read by bootloaders in the field:
 * the layout and every constant marked FROZEN must never change meaning.
 * docs/image-format.md is the byte-level description.
 *
 * Header (FOTA_IMAGE_HEADER_LEN bytes, little-endian):
 *   off  size  field
 *     0     4  magic            FOTA_IMAGE_MAGIC
 *     4     2  header_len       FOTA_IMAGE_HEADER_LEN
 *     6     2  format           FOTA_IMAGE_FORMAT
 *     8     4  flags            no flag is defined yet: must be 0
 *    12     4  security_counter
 *    16     2  version major
 *    18     2  version minor
 *    20     2  version patch
 *    22     2  reserved         must be 0
 *    24     4  build number
 *    28     4  payload_len
 *    32    32  hardware_id      1..31 bytes of [A-Za-z0-9._-], then NUL bytes to the end
 *
 * Trailer, right after the payload:
 *   off  size  field
 *     0     2  magic            FOTA_IMAGE_TRAILER_MAGIC
 *     2     2  total_len        bytes of the whole trailer, this info included
 *     4     .  records: type (2), len (2), value (len), back to back
 *   Record types:
 *     FOTA_TLV_SHA256        value = SHA-256 of header and payload (32 bytes); exactly one
 *     FOTA_TLV_SIG_ED25519   value = key id (32) + Ed25519 signature of the digest (64)
 *     FOTA_TLV_SIG_ECDSA_P256 value = key id (32) + DER ECDSA signature of the digest (8..72)
 *   Key id = SHA-256 of the signer's DER SubjectPublicKeyInfo (fota_pubkey_image_id).
 *   Any other record type, a record past total_len, or total_len over
 *   FOTA_IMAGE_TRAILER_MAX rejects the image.
 */

#include <stddef.h>
#include <stdint.h>

#include "fota/crypto.h"
#include "fota/error.h"

#define FOTA_IMAGE_MAGIC 0x41544f46u         /* FROZEN: "FOTA" in file order */
#define FOTA_IMAGE_HEADER_LEN 64u            /* FROZEN for format 1 */
#define FOTA_IMAGE_FORMAT 1u                 /* FROZEN */
#define FOTA_IMAGE_HWID_FIELD 32u            /* FROZEN: bytes of the hardware_id field */
#define FOTA_IMAGE_TRAILER_MAGIC 0x5446u     /* FROZEN: "FT" in file order */
#define FOTA_IMAGE_TRAILER_MAX 1024u         /* FROZEN: cap on total_len */
#define FOTA_TLV_SHA256 0x0001u              /* FROZEN */
#define FOTA_TLV_SIG_ED25519 0x0010u         /* FROZEN */
#define FOTA_TLV_SIG_ECDSA_P256 0x0011u      /* FROZEN */

struct fota_image_header {
    uint32_t magic;
    uint16_t header_len;
    uint16_t format;
    uint32_t flags;
    uint32_t security_counter;
    uint16_t major, minor, patch;
    uint32_t build;
    uint32_t payload_len;
    char hardware_id[FOTA_IMAGE_HWID_FIELD];   /* NUL-terminated (at most 31 chars) */
};

/* Decode and check a header: magic, header_len, format, flags == 0,
 * reserved == 0, hardware id well formed. FOTA_E_PARSE otherwise. */
fota_err fota_image_header_decode(const uint8_t raw[FOTA_IMAGE_HEADER_LEN],
                                  struct fota_image_header *ret_header);

/* Encode h (magic, header_len and format are set by the encoder).
 * FOTA_E_INVALID when the hardware id is not well formed. */
fota_err fota_image_header_encode(const struct fota_image_header *h,
                                  uint8_t out[FOTA_IMAGE_HEADER_LEN]);

/* Read len bytes at offset of the image into buf. The verifier asks for
 * at most the scratch size at a time, in increasing offsets. */
typedef fota_err (*fota_image_read_fn)(void *ctx, uint32_t offset, void *buf, size_t len);

/* A key the verifier trusts (the bootloader's built-in keys). */
struct fota_image_key {
    const fota_pubkey *key;
    uint8_t id[32];                 /* fota_pubkey_image_id(key) */
};

struct fota_image_policy {
    const struct fota_image_key *keys;
    size_t n_keys;
    unsigned threshold;             /* valid signatures by distinct trusted keys; >= 1 */
    const char *hardware_id;        /* must equal the header's */
    uint32_t min_security_counter;  /* the header's must not be lower */
    uint32_t max_len;               /* the whole image must fit (slot size) */
    uint32_t exact_len;             /* when non-zero: the image must be exactly this long (files) */
};

struct fota_image_info {
    struct fota_image_header header;
    uint32_t total_len;             /* header + payload + trailer */
    uint8_t digest[32];
    unsigned valid_signatures;
};

/*
 * Verify an image read through read/ctx, using scratch (caller-owned, at
 * least 256 bytes; larger is faster) for reading. Allocates nothing itself.
 * Starts from failure; returns FOTA_OK only after every check passed:
 * header, hardware id (FOTA_E_HARDWARE), security counter (FOTA_E_ROLLBACK),
 * lengths (FOTA_E_LENGTH: over max_len, not exact_len, trailer bounds),
 * digest (FOTA_E_HASH), signatures (FOTA_E_THRESHOLD when fewer than the
 * threshold verify; a signature by an unknown key id is skipped, one by a
 * trusted key that fails is FOTA_E_SIGNATURE). The first failed check is
 * returned. *ret_info (may be NULL) is written only on FOTA_OK.
 */
fota_err fota_image_verify(fota_image_read_fn read, void *ctx,
                           const struct fota_image_policy *policy,
                           uint8_t *scratch, size_t scratch_len,
                           struct fota_image_info *ret_info);

#endif

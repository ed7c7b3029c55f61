/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_IMAGE_BUILD_H
#define FOTA_IMAGE_BUILD_H

/*
 * Building signed images (the format of include/fota/image.h and
 * docs/image-format.md): the host side of the format, shared by
 * `fota image sign`, fota-sim, the unit tests and the benchmark, so that
 * there is one writer of the trailer. A device never links this: signing
 * goes through the crypto backend, which allocates. The verifier
 * (fota_image_verify) stays allocation-free and does not depend on it.
 */

#include <stddef.h>
#include <stdint.h>

#include "fota/crypto.h"
#include "fota/error.h"
#include "fota/image.h"

/* A signing key with what its signature record needs. */
struct fota_image_signer {
    const fota_privkey *priv;       /* borrowed: the caller frees it after the signer */
    fota_pubkey *pub;               /* owned: priv's public half */
    uint8_t id[32];                 /* fota_pubkey_image_id(pub) */
};

/* Derive the public half and the image key id of priv. FOTA_E_UNSUPPORTED
 * for a key that cannot sign images (RSA), FOTA_E_INVALID for NULL, the
 * crypto layer's error otherwise. *ret_signer is written only on FOTA_OK;
 * release it with fota_image_signer_clear. */
fota_err fota_image_signer_init(const fota_privkey *priv, struct fota_image_signer *ret_signer);

/* Free the public half; s may be NULL or zeroed. */
void fota_image_signer_clear(struct fota_image_signer *s);

/*
 * Write into out (cap bytes) the trailer of an image whose header and
 * payload hash to digest: the trailer info, the SHA-256 record, then one
 * signature record per signer, in order. Each signature is checked with the
 * signer's public half before it is written, so that a broken key or backend
 * cannot produce an image that no device accepts. n may be 0 (an image
 * without signatures, for tests). FOTA_E_TOO_BIG when the trailer would be
 * longer than cap or FOTA_IMAGE_TRAILER_MAX, FOTA_E_UNSUPPORTED for an RSA
 * signer, the crypto layer's error when signing fails. *ret_len is written
 * only on FOTA_OK; out holds garbage after a failure.
 */
fota_err fota_image_trailer_build(const uint8_t digest[32],
                                  const struct fota_image_signer *signers, size_t n,
                                  uint8_t *out, size_t cap, size_t *ret_len);

/*
 * Complete an image in buf, whose payload the caller has already put at
 * buf + FOTA_IMAGE_HEADER_LEN (h->payload_len bytes): encode h in front of
 * it (FOTA_E_INVALID when fota_image_header_encode refuses h), hash header
 * and payload, append the trailer (fota_image_trailer_build). cap is the
 * size of buf; FOTA_E_TOO_BIG when the image does not fit. On FOTA_OK
 * *ret_len is the image length and ret_digest (may be NULL) the SHA-256 of
 * header and payload, the digest the signatures sign.
 */
fota_err fota_image_build(const struct fota_image_header *h,
                          const struct fota_image_signer *signers, size_t n, uint8_t *buf,
                          size_t cap, size_t *ret_len, uint8_t ret_digest[32]);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one writer of signed images (include/fota/image_build.h). Host side
 * only: the signatures come from the crypto backend, which allocates.
 */
#include "fota/image_build.h"

#include <stdlib.h>
#include <string.h>

/* Trailer layout (FROZEN, see include/fota/image.h). */
#define TRAILER_INFO_LEN 4u
#define RECORD_HEAD_LEN 4u
#define KEY_ID_LEN 32u
#define SHA256_LEN 32u

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

fota_err fota_image_signer_init(const fota_privkey *priv, struct fota_image_signer *ret_signer)
{
    struct fota_image_signer s = {0};
    const char *keytype = NULL;
    const char *scheme = NULL;
    char *pub_value = NULL;
    fota_err err;

    if (priv == NULL || ret_signer == NULL)
        return FOTA_E_INVALID;
    if (fota_privkey_type(priv) == FOTA_KEY_RSA_PSS)
        return FOTA_E_UNSUPPORTED;
    s.priv = priv;
    err = fota_privkey_public_tuf(priv, &keytype, &scheme, &pub_value);
    if (err == FOTA_OK)
        err = fota_pubkey_from_tuf(keytype, scheme, pub_value, &s.pub);
    if (err == FOTA_OK)
        err = fota_pubkey_image_id(s.pub, s.id);
    free(pub_value);
    if (err != FOTA_OK) {
        fota_pubkey_free(s.pub);
        return err;
    }
    *ret_signer = s;
    return FOTA_OK;
}

void fota_image_signer_clear(struct fota_image_signer *s)
{
    if (s == NULL)
        return;
    fota_pubkey_free(s->pub);
    s->pub = NULL;
}

/* Sign digest with s and append its record at out + *at. */
static fota_err add_signature(const struct fota_image_signer *s, const uint8_t digest[32],
                              uint8_t *out, size_t cap, size_t *at)
{
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    uint16_t type;
    fota_err err;

    switch (fota_privkey_type(s->priv)) {
    case FOTA_KEY_ED25519:
        type = FOTA_TLV_SIG_ED25519;
        break;
    case FOTA_KEY_ECDSA_P256:
        type = FOTA_TLV_SIG_ECDSA_P256;
        break;
    default:
        return FOTA_E_UNSUPPORTED;
    }
    err = fota_sign_digest(s->priv, digest, &sig, &sig_len);
    if (err == FOTA_OK)
        err = fota_verify_digest(s->pub, digest, sig, sig_len);
    if (err == FOTA_OK && RECORD_HEAD_LEN + KEY_ID_LEN + sig_len > cap - *at)
        err = FOTA_E_TOO_BIG;
    if (err == FOTA_OK) {
        put16(out + *at, type);
        put16(out + *at + 2, (uint16_t)(KEY_ID_LEN + sig_len));
        memcpy(out + *at + RECORD_HEAD_LEN, s->id, KEY_ID_LEN);
        memcpy(out + *at + RECORD_HEAD_LEN + KEY_ID_LEN, sig, sig_len);
        *at += RECORD_HEAD_LEN + KEY_ID_LEN + sig_len;
    }
    free(sig);
    return err;
}

fota_err fota_image_trailer_build(const uint8_t digest[32],
                                  const struct fota_image_signer *signers, size_t n,
                                  uint8_t *out, size_t cap, size_t *ret_len)
{
    size_t at = TRAILER_INFO_LEN;
    fota_err err;

    if (digest == NULL || out == NULL || ret_len == NULL || (signers == NULL && n > 0))
        return FOTA_E_INVALID;
    /* total_len is a 16-bit field capped by the format: never build past it */
    if (cap > FOTA_IMAGE_TRAILER_MAX)
        cap = FOTA_IMAGE_TRAILER_MAX;
    if (cap < TRAILER_INFO_LEN + RECORD_HEAD_LEN + SHA256_LEN)
        return FOTA_E_TOO_BIG;
    put16(out + at, FOTA_TLV_SHA256);
    put16(out + at + 2, SHA256_LEN);
    memcpy(out + at + RECORD_HEAD_LEN, digest, SHA256_LEN);
    at += RECORD_HEAD_LEN + SHA256_LEN;
    for (size_t i = 0; i < n; i++) {
        err = add_signature(&signers[i], digest, out, cap, &at);
        if (err != FOTA_OK)
            return err;
    }
    put16(out, FOTA_IMAGE_TRAILER_MAGIC);
    put16(out + 2, (uint16_t)at);
    *ret_len = at;
    return FOTA_OK;
}

fota_err fota_image_build(const struct fota_image_header *h,
                          const struct fota_image_signer *signers, size_t n, uint8_t *buf,
                          size_t cap, size_t *ret_len, uint8_t ret_digest[32])
{
    uint8_t digest[32];
    fota_sha256 sha;
    size_t body;
    size_t trailer_len = 0;
    fota_err err;

    if (h == NULL || buf == NULL || ret_len == NULL)
        return FOTA_E_INVALID;
    /* The verifier's offsets are 32-bit: the whole image must stay below 4 GiB. */
    if (h->payload_len > UINT32_MAX - FOTA_IMAGE_HEADER_LEN - FOTA_IMAGE_TRAILER_MAX)
        return FOTA_E_TOO_BIG;
    if (cap < FOTA_IMAGE_HEADER_LEN || h->payload_len > cap - FOTA_IMAGE_HEADER_LEN)
        return FOTA_E_TOO_BIG;
    body = FOTA_IMAGE_HEADER_LEN + (size_t)h->payload_len;
    err = fota_image_header_encode(h, buf);
    if (err != FOTA_OK)
        return err;
    fota_sha256_init(&sha);
    fota_sha256_update(&sha, buf, body);
    fota_sha256_final(&sha, digest);
    err = fota_image_trailer_build(digest, signers, n, buf + body, cap - body, &trailer_len);
    if (err != FOTA_OK)
        return err;
    *ret_len = body + trailer_len;
    if (ret_digest != NULL)
        memcpy(ret_digest, digest, sizeof digest);
    return FOTA_OK;
}

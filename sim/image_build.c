/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signed test images for the simulator, built from the byte layout in
 * include/fota/image.h: the header through fota_image_header_encode, the
 * trailer written out here record by record, the signature from
 * fota_sign_digest. The simulator needs images it can compare byte for byte
 * with what a slot holds, so it builds them itself rather than through a
 * signing tool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* Trailer info (magic, total_len) and one TLV record header. */
#define TRAILER_INFO_LEN 4u
#define TLV_HDR_LEN 4u
#define ECDSA_SIG_MAX 72u

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xffu);
    p[1] = (uint8_t)(v >> 8);
}

fota_err sim_signer_generate(fota_key_type type, struct sim_signer *ret_signer)
{
    struct sim_signer s = {0};
    const char *keytype = NULL;
    const char *scheme = NULL;
    char *pub_value = NULL;
    fota_err err;

    err = fota_privkey_generate(type, &s.priv);
    if (err != FOTA_OK)
        goto out;
    err = fota_privkey_public_tuf(s.priv, &keytype, &scheme, &pub_value);
    if (err != FOTA_OK)
        goto out;
    err = fota_pubkey_from_tuf(keytype, scheme, pub_value, &s.pub);
    if (err != FOTA_OK)
        goto out;
    err = fota_pubkey_image_id(s.pub, s.id);
    if (err != FOTA_OK)
        goto out;
    *ret_signer = s;
    s.priv = NULL;
    s.pub = NULL;
out:
    free(pub_value);
    sim_signer_free(&s);
    return err;
}

void sim_signer_free(struct sim_signer *s)
{
    if (s == NULL)
        return;
    fota_privkey_free(s->priv);
    fota_pubkey_free(s->pub);
    s->priv = NULL;
    s->pub = NULL;
}

fota_err sim_image_build(const struct sim_image_spec *spec, const struct sim_signer *signer,
                         struct sim_image *ret_image)
{
    struct fota_image_header h;
    struct sim_image img = {0};
    struct sim_rng rng;
    fota_sha256 sha;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    uint16_t sig_type;
    size_t trailer_len;
    size_t total;
    uint8_t *p;
    fota_err err = FOTA_E_INVALID;

    if (spec == NULL || signer == NULL || spec->hardware_id == NULL || spec->payload_len == 0 ||
        spec->payload_len > SIM_IMAGE_PAYLOAD_MAX)
        goto out;

    memset(&h, 0, sizeof h);
    h.flags = 0;
    h.security_counter = spec->security_counter;
    h.major = spec->major;
    h.minor = spec->minor;
    h.patch = spec->patch;
    h.build = spec->build;
    h.payload_len = spec->payload_len;
    if (strlen(spec->hardware_id) >= sizeof h.hardware_id)
        goto out;
    snprintf(h.hardware_id, sizeof h.hardware_id, "%s", spec->hardware_id);

    switch (fota_privkey_type(signer->priv)) {
    case FOTA_KEY_ED25519:
        sig_type = FOTA_TLV_SIG_ED25519;
        break;
    case FOTA_KEY_ECDSA_P256:
        sig_type = FOTA_TLV_SIG_ECDSA_P256;
        break;
    default:
        err = FOTA_E_UNSUPPORTED;
        goto out;
    }

    /* The largest trailer: SHA-256 record + one signature record. The
     * exact length is known only after signing (DER ECDSA varies). */
    trailer_len = TRAILER_INFO_LEN + TLV_HDR_LEN + 32u + TLV_HDR_LEN + 32u + ECDSA_SIG_MAX;
    total = (size_t)FOTA_IMAGE_HEADER_LEN + spec->payload_len + trailer_len;
    img.data = malloc(total);
    if (img.data == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }

    err = fota_image_header_encode(&h, img.data);
    if (err != FOTA_OK)
        goto out;
    p = img.data + FOTA_IMAGE_HEADER_LEN;
    sim_rng_seed(&rng, spec->fill_seed);
    for (uint32_t i = 0; i < spec->payload_len; i += 8) {
        uint64_t x = sim_rng_next(&rng);
        for (uint32_t k = 0; k < 8 && i + k < spec->payload_len; k++)
            p[i + k] = (uint8_t)(x >> (8 * k));
    }

    fota_sha256_init(&sha);
    fota_sha256_update(&sha, img.data, (size_t)FOTA_IMAGE_HEADER_LEN + spec->payload_len);
    fota_sha256_final(&sha, img.digest);

    err = fota_sign_digest(signer->priv, img.digest, &sig, &sig_len);
    if (err != FOTA_OK)
        goto out;
    err = FOTA_E_CRYPTO;
    if (sig_len == 0 || sig_len > ECDSA_SIG_MAX)
        goto out;

    trailer_len = TRAILER_INFO_LEN + TLV_HDR_LEN + 32u + TLV_HDR_LEN + 32u + sig_len;
    p = img.data + FOTA_IMAGE_HEADER_LEN + spec->payload_len;
    put_le16(p, (uint16_t)FOTA_IMAGE_TRAILER_MAGIC);
    put_le16(p + 2, (uint16_t)trailer_len);
    p += TRAILER_INFO_LEN;
    put_le16(p, (uint16_t)FOTA_TLV_SHA256);
    put_le16(p + 2, 32u);
    memcpy(p + TLV_HDR_LEN, img.digest, 32);
    p += TLV_HDR_LEN + 32u;
    put_le16(p, sig_type);
    put_le16(p + 2, (uint16_t)(32u + sig_len));
    memcpy(p + TLV_HDR_LEN, signer->id, 32);
    memcpy(p + TLV_HDR_LEN + 32u, sig, sig_len);

    img.len = (uint32_t)((size_t)FOTA_IMAGE_HEADER_LEN + spec->payload_len + trailer_len);
    img.security_counter = spec->security_counter;
    fota_sha256_init(&sha);
    fota_sha256_update(&sha, img.data, img.len);
    fota_sha256_final(&sha, img.file_sha256);

    *ret_image = img;
    img.data = NULL;
    err = FOTA_OK;
out:
    free(sig);
    free(img.data);
    return err;
}

void sim_image_free(struct sim_image *img)
{
    if (img == NULL)
        return;
    free(img->data);
    img->data = NULL;
    img->len = 0;
}

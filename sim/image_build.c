/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signed test images for the simulator: a payload from the simulator's
 * seeded PRNG, made into an image by libfota's builder (fota_image_build,
 * the same one `fota image sign` uses). The simulator keeps each image whole
 * in memory so that it can compare a slot byte for byte with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

fota_err sim_signer_generate(fota_key_type type, struct sim_signer *ret_signer)
{
    struct sim_signer s = {0};
    fota_err err;

    err = fota_privkey_generate(type, &s.priv);
    if (err == FOTA_OK)
        err = fota_image_signer_init(s.priv, &s.img);
    if (err != FOTA_OK) {
        fota_privkey_free(s.priv);
        return err;
    }
    *ret_signer = s;
    return FOTA_OK;
}

void sim_signer_free(struct sim_signer *s)
{
    if (s == NULL)
        return;
    fota_image_signer_clear(&s->img);
    fota_privkey_free(s->priv);
    s->priv = NULL;
}

fota_err sim_image_build(const struct sim_image_spec *spec, const struct sim_signer *signer,
                         struct sim_image *ret_image)
{
    struct fota_image_header h;
    struct sim_image img = {0};
    struct sim_rng rng;
    fota_sha256 sha;
    size_t cap;
    size_t len = 0;
    uint8_t *p;
    fota_err err = FOTA_E_INVALID;

    if (spec == NULL || signer == NULL || spec->hardware_id == NULL || spec->payload_len == 0 ||
        spec->payload_len > SIM_IMAGE_PAYLOAD_MAX)
        goto out;

    memset(&h, 0, sizeof h);
    h.security_counter = spec->security_counter;
    h.major = spec->major;
    h.minor = spec->minor;
    h.patch = spec->patch;
    h.build = spec->build;
    h.payload_len = spec->payload_len;
    if (strlen(spec->hardware_id) >= sizeof h.hardware_id)
        goto out;
    snprintf(h.hardware_id, sizeof h.hardware_id, "%s", spec->hardware_id);

    cap = (size_t)FOTA_IMAGE_HEADER_LEN + spec->payload_len + FOTA_IMAGE_TRAILER_MAX;
    img.data = malloc(cap);
    if (img.data == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    p = img.data + FOTA_IMAGE_HEADER_LEN;
    sim_rng_seed(&rng, spec->fill_seed);
    for (uint32_t i = 0; i < spec->payload_len; i += 8) {
        uint64_t x = sim_rng_next(&rng);
        for (uint32_t k = 0; k < 8 && i + k < spec->payload_len; k++)
            p[i + k] = (uint8_t)(x >> (8 * k));
    }
    err = fota_image_build(&h, &signer->img, 1, img.data, cap, &len, img.digest);
    if (err != FOTA_OK)
        goto out;

    img.len = (uint32_t)len;
    img.security_counter = spec->security_counter;
    fota_sha256_init(&sha);
    fota_sha256_update(&sha, img.data, img.len);
    fota_sha256_final(&sha, img.file_sha256);

    *ret_image = img;
    img.data = NULL;
out:
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

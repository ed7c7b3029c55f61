/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_image: the signed-image verifier (lib/image.c) as a bootloader and
 * the agent run it: header decode, trailer walk (TLV records), digest and
 * signatures, with the fixture's image keys (Ed25519 and ECDSA P-256)
 * trusted and hardware id "board-a".
 *
 * Each input is verified as it is (two policies, two scratch sizes) and
 * once more "fixed up": where the input has a SHA-256 record and Ed25519 /
 * ECDSA records, the harness writes the true digest and a valid signature by
 * the fixture key into them, so that mutations reach the checks behind the
 * signature (security counter, lengths, threshold, duplicate keys).
 *
 * Invariants: the verifier reads only inside the policy's max_len, at most
 * scratch_len bytes at a time, at offsets that never go back; a decoded
 * header encodes back to the same 64 bytes; an accepted image is no longer
 * than the input, matches the policy and has the threshold of signatures.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fota/image.h"
#include "fota/image_build.h"
#include "fuzz_common.h"

#define IMAGE_MAX (64u * 1024u)

struct src {
    const uint8_t *data;
    size_t size;
    uint32_t max_len;
    size_t scratch_len;
    uint32_t last_off;
};

static fota_err read_input(void *ctx, uint32_t off, void *buf, size_t len)
{
    struct src *s = ctx;

    if ((uint64_t)off + len > s->max_len)
        fz_fail("verifier read [%u, +%zu) past max_len %u", off, len, s->max_len);
    if (len > s->scratch_len)
        fz_fail("verifier read %zu bytes with a scratch of %zu", len, s->scratch_len);
    if (off < s->last_off)
        fz_fail("verifier read offset %u after %u", off, s->last_off);
    s->last_off = off;
    if ((uint64_t)off + len > s->size)
        return FOTA_E_LENGTH;     /* past the end of the slot's content */
    memcpy(buf, s->data + off, len);
    return FOTA_OK;
}

static struct fota_image_key keys[2];
static struct fota_image_signer signers[2];

static void keys_init(void)
{
    static int ready;
    const char *names[2] = { "image", "image-ecdsa" };

    if (ready)
        return;
    for (int i = 0; i < 2; i++) {
        if (fota_image_signer_init(fz_fixture_key(names[i]), &signers[i]) != FOTA_OK)
            fz_fail("fixture key %s cannot sign images", names[i]);
        keys[i].key = signers[i].pub;
        memcpy(keys[i].id, signers[i].id, 32);
    }
    ready = 1;
}

static void verify(const uint8_t *data, size_t size, const struct fota_image_policy *p,
                   size_t scratch_len)
{
    static uint8_t scratch[4096];
    struct fota_image_info info;
    struct src s = { data, size, p->max_len, scratch_len, 0 };
    fota_err err;

    memset(&info, 0xa5, sizeof(info));
    err = fota_image_verify(read_input, &s, p, scratch, scratch_len, &info);
    fz_note("verify threshold %u scratch %zu: %s", p->threshold, scratch_len,
            fota_strerror(err));
    if (err != FOTA_OK)
        return;
    if (info.total_len > size || info.valid_signatures < p->threshold ||
        info.header.security_counter < p->min_security_counter ||
        strcmp(info.header.hardware_id, p->hardware_id) != 0 ||
        (p->exact_len != 0 && info.total_len != p->exact_len))
        fz_fail("an accepted image breaks its policy");
}

static void verify_all(const uint8_t *data, size_t size)
{
    struct fota_image_policy loose = {
        .keys = keys, .n_keys = 2, .threshold = 1, .hardware_id = "board-a",
        .min_security_counter = 0, .max_len = IMAGE_MAX, .exact_len = 0,
    };
    struct fota_image_policy strict = {
        .keys = keys, .n_keys = 2, .threshold = 2, .hardware_id = "board-a",
        .min_security_counter = 2, .max_len = (uint32_t)size, .exact_len = (uint32_t)size,
    };

    verify(data, size, &loose, 256);
    verify(data, size, &loose, 4096);
    if (size > 0)
        verify(data, size, &strict, 300);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* Write the true digest and valid signatures into the input's records. */
static void fix_up(uint8_t *img, size_t size)
{
    struct fota_image_header h;
    uint8_t digest[FOTA_HASH_MAX_LEN];
    uint64_t payload_end, end, off;

    if (size < FOTA_IMAGE_HEADER_LEN || fota_image_header_decode(img, &h) != FOTA_OK)
        return;
    payload_end = (uint64_t)FOTA_IMAGE_HEADER_LEN + h.payload_len;
    if (payload_end + 4 > size || get16(img + payload_end) != FOTA_IMAGE_TRAILER_MAGIC)
        return;
    if (fota_hash(FOTA_HASH_SHA256, img, (size_t)payload_end, digest) != FOTA_OK)
        return;
    end = payload_end + get16(img + payload_end + 2);
    if (end > size)
        end = size;
    for (off = payload_end + 4; off + 4 <= end;) {
        uint16_t type = get16(img + off), len = get16(img + off + 2);
        uint8_t *v = img + off + 4;
        uint8_t *sig = NULL;
        size_t sig_len = 0;

        if (len > end - off - 4)
            break;
        if (type == FOTA_TLV_SHA256 && len == 32) {
            memcpy(v, digest, 32);
        } else if (type == FOTA_TLV_SIG_ED25519 && len == 96) {
            if (fota_sign_digest(signers[0].priv, digest, &sig, &sig_len) == FOTA_OK &&
                sig_len == 64) {
                memcpy(v, signers[0].id, 32);
                memcpy(v + 32, sig, 64);
            }
            free(sig);
        } else if (type == FOTA_TLV_SIG_ECDSA_P256 && len > 32) {
            /* A DER signature is 70..72 bytes: keep trying for one that fits. */
            for (int tries = 0; tries < 8; tries++) {
                int done = 0;
                if (fota_sign_digest(signers[1].priv, digest, &sig, &sig_len) != FOTA_OK)
                    break;
                if (sig_len == (size_t)len - 32) {
                    memcpy(v, signers[1].id, 32);
                    memcpy(v + 32, sig, sig_len);
                    done = 1;
                }
                free(sig);
                sig = NULL;
                if (done)
                    break;
            }
        }
        off += 4u + len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fota_image_header h;
    uint8_t raw[FOTA_IMAGE_HEADER_LEN];
    uint8_t *copy;

    if (size > IMAGE_MAX)
        return 0;
    keys_init();
    if (size >= FOTA_IMAGE_HEADER_LEN && fota_image_header_decode(data, &h) == FOTA_OK) {
        if (fota_image_header_encode(&h, raw) != FOTA_OK ||
            memcmp(raw, data, FOTA_IMAGE_HEADER_LEN) != 0)
            fz_fail("a decoded header does not encode back to its bytes");
    }
    verify_all(data, size);
    copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    fix_up(copy, size);
    verify_all(copy, size);
    free(copy);
    return 0;
}

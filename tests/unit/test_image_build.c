/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/image_build.c, the one writer of signed images (`fota image sign`,
 * fota-sim, test_boot, the benchmark). Checked against the images openssl
 * and python made in tests/vectors/image: with the same key, header and
 * payload, an Ed25519 image must come out byte for byte as ed25519.img
 * (Ed25519 signatures are deterministic); a two-key image must match
 * two-keys.img up to the ECDSA signature (random k) and verify. Then the
 * limits: the trailer cap, the caller's buffer, RSA keys, bad headers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota/crypto.h"
#include "fota/image.h"
#include "fota/image_build.h"

#include "test_util.h"

#define HW "fota-sim.board-1"
#define PAYLOAD 5000u
#define CAP (FOTA_IMAGE_HEADER_LEN + PAYLOAD + FOTA_IMAGE_TRAILER_MAX)

static fota_privkey *priv_ed;
static fota_privkey *priv_ec;
static struct fota_image_signer ed;
static struct fota_image_signer ec;
static uint8_t buf[CAP];            /* the image being built */

static fota_privkey *load_priv(const char *rel)
{
    size_t len = 0;
    char *pem = tu_read_vector(rel, &len);
    fota_privkey *k = NULL;

    assert_int_equal(fota_privkey_from_pem(pem, len, &k), FOTA_OK);
    free(pem);
    return k;
}

static int group_setup(void **state)
{
    (void)state;
    priv_ed = load_priv("keys/ed25519.key.pem");
    priv_ec = load_priv("keys/p256.key.pem");
    if (fota_image_signer_init(priv_ed, &ed) != FOTA_OK ||
        fota_image_signer_init(priv_ec, &ec) != FOTA_OK)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fota_image_signer_clear(&ed);
    fota_image_signer_clear(&ec);
    fota_privkey_free(priv_ed);
    fota_privkey_free(priv_ec);
    return 0;
}

/* The vectors' header (gen.sh: version 1.2.3+45, counter 7, HW) and LCG
 * payload, the payload placed in buf. */
static void vector_input(struct fota_image_header *h)
{
    uint32_t x = 1;

    memset(h, 0, sizeof(*h));
    h->major = 1;
    h->minor = 2;
    h->patch = 3;
    h->build = 45;
    h->security_counter = 7;
    h->payload_len = PAYLOAD;
    snprintf(h->hardware_id, sizeof(h->hardware_id), "%s", HW);
    for (uint32_t i = 0; i < PAYLOAD; i++) {
        x = x * 1103515245u + 12345u;
        buf[FOTA_IMAGE_HEADER_LEN + i] = (uint8_t)(x >> 24);
    }
}

struct mem {
    const uint8_t *data;
    size_t len;
};

static fota_err mem_read(void *ctx, uint32_t offset, void *out, size_t len)
{
    const struct mem *m = ctx;

    if ((uint64_t)offset + len > m->len) {
        return FOTA_E_LENGTH;
    }
    memcpy(out, m->data + offset, len);
    return FOTA_OK;
}

static fota_err verify(const uint8_t *img, size_t len, unsigned threshold,
                       struct fota_image_info *info)
{
    struct fota_image_key keys[2];
    struct fota_image_policy p;
    struct mem m = {img, len};
    uint8_t scratch[512];

    keys[0].key = ed.pub;
    memcpy(keys[0].id, ed.id, 32);
    keys[1].key = ec.pub;
    memcpy(keys[1].id, ec.id, 32);
    memset(&p, 0, sizeof(p));
    p.keys = keys;
    p.n_keys = 2;
    p.threshold = threshold;
    p.hardware_id = HW;
    p.max_len = UINT32_MAX;
    p.exact_len = (uint32_t)len;
    return fota_image_verify(mem_read, &m, &p, scratch, sizeof(scratch), info);
}

/* The signers' image key ids are the ones openssl derived (keyids.txt). */
static void test_signer_ids_match_openssl(void **state)
{
    const struct {
        const char *name;
        const struct fota_image_signer *s;
    } keys[] = {{"ed25519", &ed}, {"p256", &ec}};
    char *ids = tu_read_vector("image/keyids.txt", NULL);
    char line[128];
    char hex[65];

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(keys); i++) {
        fota_hex_encode(keys[i].s->id, 32, hex);
        snprintf(line, sizeof(line), "\n%s %s\n", keys[i].name, hex);
        if (strstr(ids, line) == NULL) {
            fail_msg("%s: key id %s is not openssl's", keys[i].name, hex);
        }
    }
    free(ids);
}

/* Same key, header and payload as the openssl-made ed25519.img: the same bytes. */
static void test_ed25519_image_is_the_openssl_one(void **state)
{
    struct fota_image_header h;
    size_t want_len = 0;
    char *want = tu_read_vector("image/ed25519.img", &want_len);
    uint8_t digest[32];
    struct fota_image_info info;
    size_t len = 0;

    (void)state;
    vector_input(&h);
    assert_int_equal(fota_image_build(&h, &ed, 1, buf, CAP, &len, digest), FOTA_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(buf, want, len);
    assert_int_equal(verify(buf, len, 1, &info), FOTA_OK);
    assert_memory_equal(info.digest, digest, 32);
    free(want);
}

/* Two signers, in order: two-keys.img up to the ECDSA signature bytes. */
static void test_two_signers(void **state)
{
    struct fota_image_signer both[2];
    struct fota_image_header h;
    size_t want_len = 0;
    char *want = tu_read_vector("image/two-keys.img", &want_len);
    struct fota_image_info info;
    size_t len = 0;
    size_t ec_record;   /* offset of the ECDSA record's head */
    uint16_t ec_len;

    (void)state;
    both[0] = ed;
    both[1] = ec;
    vector_input(&h);
    assert_int_equal(fota_image_build(&h, both, 2, buf, CAP, &len, NULL), FOTA_OK);
    ec_record = FOTA_IMAGE_HEADER_LEN + PAYLOAD + 4 + 36 + 100;
    ec_len = (uint16_t)(buf[ec_record + 2] | (buf[ec_record + 3] << 8));
    assert_int_equal(len, ec_record + 4 + ec_len);
    /* everything up to the ECDSA signature, trailer length aside */
    assert_memory_equal(buf, want, FOTA_IMAGE_HEADER_LEN + PAYLOAD + 2);
    assert_memory_equal(buf + FOTA_IMAGE_HEADER_LEN + PAYLOAD + 4,
                        want + FOTA_IMAGE_HEADER_LEN + PAYLOAD + 4, ec_record + 2 -
                        (FOTA_IMAGE_HEADER_LEN + PAYLOAD + 4));
    assert_memory_equal(buf + ec_record + 4, want + ec_record + 4, 32);   /* key id */
    assert_int_equal(buf[FOTA_IMAGE_HEADER_LEN + PAYLOAD + 2] |
                         (buf[FOTA_IMAGE_HEADER_LEN + PAYLOAD + 3] << 8),
                     len - (FOTA_IMAGE_HEADER_LEN + PAYLOAD));
    assert_int_equal(verify(buf, len, 2, &info), FOTA_OK);
    assert_int_equal(info.valid_signatures, 2);
    free(want);
}

/* No signer: the SHA-256 record only, which no device accepts. */
static void test_unsigned(void **state)
{
    struct fota_image_header h;
    size_t len = 0;

    (void)state;
    vector_input(&h);
    assert_int_equal(fota_image_build(&h, NULL, 0, buf, CAP, &len, NULL), FOTA_OK);
    assert_int_equal(len, FOTA_IMAGE_HEADER_LEN + PAYLOAD + 4 + 36);
    assert_int_equal(verify(buf, len, 1, NULL), FOTA_E_THRESHOLD);
}

/* The trailer never passes FOTA_IMAGE_TRAILER_MAX: 4 + 36 + 9 x 100 bytes fit,
 * a tenth Ed25519 record does not. */
static void test_trailer_cap(void **state)
{
    struct fota_image_signer many[10];
    uint8_t digest[32];
    uint8_t *out = malloc(4096);
    size_t len = 12345;

    (void)state;
    assert_non_null(out);
    memset(digest, 7, sizeof(digest));
    for (size_t i = 0; i < TU_ARRAY_LEN(many); i++) {
        many[i] = ed;
    }
    assert_int_equal(fota_image_trailer_build(digest, many, 9, out, 4096, &len), FOTA_OK);
    assert_int_equal(len, 4 + 36 + 9 * 100);
    len = 12345;
    assert_int_equal(fota_image_trailer_build(digest, many, 10, out, 4096, &len),
                     FOTA_E_TOO_BIG);
    assert_int_equal(len, 12345);
    /* the caller's room counts too */
    assert_int_equal(fota_image_trailer_build(digest, many, 1, out, 139, &len), FOTA_E_TOO_BIG);
    assert_int_equal(fota_image_trailer_build(digest, many, 1, out, 140, &len), FOTA_OK);
    assert_int_equal(len, 140);
    assert_int_equal(fota_image_trailer_build(digest, NULL, 0, out, 39, &len), FOTA_E_TOO_BIG);
    free(out);
}

static void test_buffer_too_small(void **state)
{
    struct fota_image_header h;
    size_t len = 12345;

    (void)state;
    vector_input(&h);
    /* the image is 5204 bytes */
    assert_int_equal(fota_image_build(&h, &ed, 1, buf, 5203, &len, NULL), FOTA_E_TOO_BIG);
    assert_int_equal(fota_image_build(&h, &ed, 1, buf, FOTA_IMAGE_HEADER_LEN + PAYLOAD - 1, &len,
                                      NULL),
                     FOTA_E_TOO_BIG);
    assert_int_equal(fota_image_build(&h, &ed, 1, buf, 10, &len, NULL), FOTA_E_TOO_BIG);
    assert_int_equal(len, 12345);
    assert_int_equal(fota_image_build(&h, &ed, 1, buf, 5204, &len, NULL), FOTA_OK);
    assert_int_equal(len, 5204);
    /* an image whose offsets would not fit 32 bits */
    h.payload_len = UINT32_MAX - FOTA_IMAGE_HEADER_LEN;
    assert_int_equal(fota_image_build(&h, &ed, 1, buf, SIZE_MAX, &len, NULL), FOTA_E_TOO_BIG);
}

static void test_bad_header_refused(void **state)
{
    struct fota_image_header h;
    size_t len = 12345;

    (void)state;
    vector_input(&h);
    h.flags = 1;
    assert_int_equal(fota_image_build(&h, &ed, 1, buf, CAP, &len, NULL), FOTA_E_INVALID);
    h.flags = 0;
    memset(h.hardware_id, 0, sizeof(h.hardware_id));
    assert_int_equal(fota_image_build(&h, &ed, 1, buf, CAP, &len, NULL), FOTA_E_INVALID);
    snprintf(h.hardware_id, sizeof(h.hardware_id), "a b");
    assert_int_equal(fota_image_build(&h, &ed, 1, buf, CAP, &len, NULL), FOTA_E_INVALID);
    assert_int_equal(len, 12345);
}

static void test_rsa_cannot_sign_images(void **state)
{
    fota_privkey *rsa = load_priv("keys/rsa2048.key.pem");
    struct fota_image_signer s;

    (void)state;
    memset(&s, 0x5a, sizeof(s));
    assert_int_equal(fota_image_signer_init(rsa, &s), FOTA_E_UNSUPPORTED);
    assert_int_equal(s.id[0], 0x5a);
    fota_privkey_free(rsa);
}

static void test_bad_arguments(void **state)
{
    struct fota_image_header h;
    struct fota_image_signer s;
    uint8_t digest[32] = {0};
    uint8_t out[64];
    size_t len;

    (void)state;
    memset(&h, 0, sizeof(h));
    assert_int_equal(fota_image_signer_init(NULL, &s), FOTA_E_INVALID);
    assert_int_equal(fota_image_signer_init(priv_ed, NULL), FOTA_E_INVALID);
    assert_int_equal(fota_image_trailer_build(NULL, &ed, 1, out, sizeof(out), &len),
                     FOTA_E_INVALID);
    assert_int_equal(fota_image_trailer_build(digest, NULL, 1, out, sizeof(out), &len),
                     FOTA_E_INVALID);
    assert_int_equal(fota_image_trailer_build(digest, &ed, 1, NULL, sizeof(out), &len),
                     FOTA_E_INVALID);
    assert_int_equal(fota_image_trailer_build(digest, &ed, 1, out, sizeof(out), NULL),
                     FOTA_E_INVALID);
    assert_int_equal(fota_image_build(NULL, &ed, 1, out, sizeof(out), &len, NULL),
                     FOTA_E_INVALID);
    assert_int_equal(fota_image_build(&h, &ed, 1, NULL, sizeof(out), &len, NULL),
                     FOTA_E_INVALID);
    assert_int_equal(fota_image_build(&h, &ed, 1, out, sizeof(out), NULL, NULL),
                     FOTA_E_INVALID);
    fota_image_signer_clear(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signer_ids_match_openssl),
        cmocka_unit_test(test_ed25519_image_is_the_openssl_one),
        cmocka_unit_test(test_two_signers),
        cmocka_unit_test(test_unsigned),
        cmocka_unit_test(test_trailer_cap),
        cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_bad_header_refused),
        cmocka_unit_test(test_rsa_cannot_sign_images),
        cmocka_unit_test(test_bad_arguments),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota/image.h: the header codec and the allocation-free verifier, against
 * images made by the openssl command (tests/vectors/image, see gen.sh there)
 * and against images fota signs itself. Every rejection has a test; the
 * table of cases in tests/vectors/image/cases.txt is also run whole, with
 * several scratch sizes. The verifier's stack is measured on a thread with a
 * painted stack, and its object file is checked for allocator calls.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fota/crypto.h"
#include "fota/error.h"
#include "fota/image.h"

#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define HW "fota-sim.board-1"
#define PAYLOAD_LEN 5000u   /* of the vectors */

/* ---- keys ------------------------------------------------------------------ */

struct test_key {
    const char *name;
    fota_key_type type;
    fota_pubkey *pub;
    fota_privkey *priv;
    uint8_t id[32];
};

static struct test_key keys[] = {
    { "ed25519", FOTA_KEY_ED25519, NULL, NULL, { 0 } },
    { "ed25519-b", FOTA_KEY_ED25519, NULL, NULL, { 0 } },
    { "p256", FOTA_KEY_ECDSA_P256, NULL, NULL, { 0 } },
    { "p256-b", FOTA_KEY_ECDSA_P256, NULL, NULL, { 0 } },
    { "rsa2048", FOTA_KEY_RSA_PSS, NULL, NULL, { 0 } },
};

static struct test_key *key_named(const char *name)
{
    for (size_t i = 0; i < TU_ARRAY_LEN(keys); i++) {
        if (strcmp(keys[i].name, name) == 0) {
            return &keys[i];
        }
    }
    fail_msg("no key %s", name);
    return NULL;
}

static void hex_line_to_bytes(const char *rel, uint8_t **ret, size_t *ret_len)
{
    char *hex = tu_read_vector(rel, NULL);
    size_t n = strcspn(hex, "\r\n");
    uint8_t *out = malloc(n / 2 + 1);

    assert_non_null(out);
    assert_int_equal(n % 2, 0);
    assert_int_equal(fota_hex_decode(hex, n, out, n / 2), FOTA_OK);
    free(hex);
    *ret = out;
    *ret_len = n / 2;
}

static int group_setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(keys); i++) {
        char rel[128];
        uint8_t *raw = NULL;
        size_t raw_len = 0;
        size_t pem_len = 0;
        char *pem;

        snprintf(rel, sizeof(rel), "keys/%s.pub.%s.hex", keys[i].name,
                 keys[i].type == FOTA_KEY_ED25519 ? "raw" : "der");
        hex_line_to_bytes(rel, &raw, &raw_len);
        assert_int_equal(fota_pubkey_from_raw(keys[i].type, raw, raw_len, &keys[i].pub), FOTA_OK);
        free(raw);
        assert_int_equal(fota_pubkey_image_id(keys[i].pub, keys[i].id), FOTA_OK);
        snprintf(rel, sizeof(rel), "keys/%s.key.pem", keys[i].name);
        pem = tu_read_vector(rel, &pem_len);
        assert_int_equal(fota_privkey_from_pem(pem, pem_len, &keys[i].priv), FOTA_OK);
        fota_secret_free(pem, pem_len);
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(keys); i++) {
        fota_pubkey_free(keys[i].pub);
        fota_privkey_free(keys[i].priv);
        keys[i].pub = NULL;
        keys[i].priv = NULL;
    }
    return 0;
}

/* ---- policy ------------------------------------------------------------------ */

#define MAX_TRUSTED 5

struct test_policy {
    struct fota_image_key trusted[MAX_TRUSTED];
    struct fota_image_policy p;
};

/* Trust the comma-separated key names in csv. exact_len 0, max_len 4 GiB-1. */
static void policy_init(struct test_policy *tp, const char *csv, unsigned threshold,
                        uint32_t min_counter, const char *hw)
{
    char names[256];
    char *save = NULL;
    size_t n = 0;

    memset(tp, 0, sizeof(*tp));
    assert_true(strlen(csv) < sizeof(names));
    memcpy(names, csv, strlen(csv) + 1);
    for (char *tok = strtok_r(names, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        struct test_key *k = key_named(tok);

        assert_true(n < MAX_TRUSTED);
        tp->trusted[n].key = k->pub;
        memcpy(tp->trusted[n].id, k->id, 32);
        n++;
    }
    tp->p.keys = tp->trusted;
    tp->p.n_keys = n;
    tp->p.threshold = threshold;
    tp->p.hardware_id = hw;
    tp->p.min_security_counter = min_counter;
    tp->p.max_len = UINT32_MAX;
    tp->p.exact_len = 0;
}

/* ---- reading images ------------------------------------------------------------ */

/* An image in memory, read through the callback. Records whether the
 * verifier kept the callback contract: reads of 1..scratch_len bytes at
 * offsets that never go back. */
struct mem_image {
    const uint8_t *data;
    size_t len;
    size_t scratch_len;
    uint64_t next;
    unsigned reads;
    uint64_t bytes;
    int contract_broken;
};

static fota_err mem_read(void *ctx, uint32_t offset, void *buf, size_t len)
{
    struct mem_image *m = ctx;

    if (len == 0 || len > m->scratch_len || offset < m->next) {
        m->contract_broken = 1;
    }
    m->reads++;
    /* A short image: the reader reports it cannot deliver. */
    if ((uint64_t)offset + len > m->len) {
        return FOTA_E_IO;
    }
    memcpy(buf, m->data + offset, len);
    m->next = (uint64_t)offset + len;
    m->bytes += len;
    return FOTA_OK;
}

/* Verify data with a scratch of exactly scratch_len bytes (so that ASan sees
 * any overrun), checking the callback contract. */
static fota_err verify_mem(const uint8_t *data, size_t len, const struct fota_image_policy *p,
                           size_t scratch_len, struct fota_image_info *ret_info,
                           struct mem_image *ret_m)
{
    struct mem_image m = { data, len, scratch_len, 0, 0, 0, 0 };
    uint8_t *scratch = malloc(scratch_len);
    fota_err rc;

    assert_non_null(scratch);
    rc = fota_image_verify(mem_read, &m, p, scratch, scratch_len, ret_info);
    free(scratch);
    assert_false(m.contract_broken);
    if (ret_m != NULL) {
        *ret_m = m;
    }
    return rc;
}

static uint8_t *read_image(const char *name, size_t *ret_len)
{
    char rel[128];

    snprintf(rel, sizeof(rel), "image/%s", name);
    return (uint8_t *)tu_read_vector(rel, ret_len);
}

/* Verify vector `name` with exact_len = its size. */
static fota_err verify_vector(const char *name, const char *csv, unsigned threshold,
                              uint32_t min_counter, const char *hw,
                              struct fota_image_info *ret_info)
{
    struct test_policy tp;
    size_t len = 0;
    uint8_t *data = read_image(name, &len);
    fota_err rc;

    policy_init(&tp, csv, threshold, min_counter, hw);
    tp.p.exact_len = (uint32_t)len;
    rc = verify_mem(data, len, &tp.p, 256, ret_info, NULL);
    free(data);
    return rc;
}

/* The common case of the vectors: ed25519 and p256 trusted, threshold 1. */
static void expect_vector(const char *name, fota_err want)
{
    fota_err rc = verify_vector(name, "ed25519,p256", 1, 0, HW, NULL);

    if (rc != want) {
        fail_msg("%s: got %s, want %s", name, fota_strerror(rc), fota_strerror(want));
    }
}

/* ---- images fota signs itself (for sizes the vectors do not cover) -------------- */

struct own_image {
    uint8_t *data;
    size_t len;
    size_t payload_end;     /* header + payload */
};

static void put16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* header + payload (LCG bytes) + trailer [SHA-256, signature by each signer].
 * A signer may sign in a record of another type (wrong_type != 0) to build
 * the malformed cases. */
static void own_image(struct own_image *img, size_t payload_len, const char *const *signers,
                      size_t n_signers, int wrong_type)
{
    struct fota_image_header h;
    uint8_t digest[FOTA_HASH_MAX_LEN];
    size_t cap = FOTA_IMAGE_HEADER_LEN + payload_len + FOTA_IMAGE_TRAILER_MAX;
    uint8_t *d = malloc(cap);
    size_t at, trailer_at;
    uint32_t x = 7;

    assert_non_null(d);
    memset(&h, 0, sizeof(h));
    h.security_counter = 9;
    h.major = 2;
    h.minor = 0;
    h.patch = 1;
    h.build = 100;
    h.payload_len = (uint32_t)payload_len;
    memcpy(h.hardware_id, HW, sizeof(HW));
    assert_int_equal(fota_image_header_encode(&h, d), FOTA_OK);
    for (size_t i = 0; i < payload_len; i++) {
        x = x * 1103515245u + 12345u;
        d[FOTA_IMAGE_HEADER_LEN + i] = (uint8_t)(x >> 24);
    }
    at = FOTA_IMAGE_HEADER_LEN + payload_len;
    assert_int_equal(fota_hash(FOTA_HASH_SHA256, d, at, digest), FOTA_OK);
    trailer_at = at;
    put16le(d + at, FOTA_IMAGE_TRAILER_MAGIC);
    at += 4;
    put16le(d + at, FOTA_TLV_SHA256);
    put16le(d + at + 2, 32);
    memcpy(d + at + 4, digest, 32);
    at += 36;
    for (size_t s = 0; s < n_signers; s++) {
        struct test_key *k = key_named(signers[s]);
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        uint16_t type = k->type == FOTA_KEY_ED25519 ? FOTA_TLV_SIG_ED25519 : FOTA_TLV_SIG_ECDSA_P256;

        if (k->type == FOTA_KEY_RSA_PSS) {
            /* RSA cannot sign images: fake an ed25519-sized record under its id. */
            sig = calloc(1, 64);
            assert_non_null(sig);
            sig_len = 64;
            type = FOTA_TLV_SIG_ED25519;
        } else {
            assert_int_equal(fota_sign_digest(k->priv, digest, &sig, &sig_len), FOTA_OK);
        }
        if (wrong_type) {
            type = type == FOTA_TLV_SIG_ED25519 ? FOTA_TLV_SIG_ECDSA_P256 : FOTA_TLV_SIG_ED25519;
        }
        assert_true(at + 4 + 32 + sig_len <= cap);
        put16le(d + at, type);
        put16le(d + at + 2, (uint16_t)(32 + sig_len));
        memcpy(d + at + 4, k->id, 32);
        memcpy(d + at + 36, sig, sig_len);
        at += 36 + sig_len;
        free(sig);
    }
    put16le(d + trailer_at + 2, (uint16_t)(at - trailer_at));
    img->data = d;
    img->len = at;
    img->payload_end = FOTA_IMAGE_HEADER_LEN + payload_len;
}

/* ---- the header codec -------------------------------------------------------- */

static void test_header_decode_vector(void **state)
{
    size_t len = 0;
    uint8_t *data = read_image("ed25519.img", &len);
    struct fota_image_header h;
    uint8_t again[FOTA_IMAGE_HEADER_LEN];

    (void)state;
    assert_int_equal(fota_image_header_decode(data, &h), FOTA_OK);
    assert_int_equal(h.magic, FOTA_IMAGE_MAGIC);
    assert_int_equal(h.header_len, FOTA_IMAGE_HEADER_LEN);
    assert_int_equal(h.format, FOTA_IMAGE_FORMAT);
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.security_counter, 7);
    assert_int_equal(h.major, 1);
    assert_int_equal(h.minor, 2);
    assert_int_equal(h.patch, 3);
    assert_int_equal(h.build, 45);
    assert_int_equal(h.payload_len, PAYLOAD_LEN);
    assert_string_equal(h.hardware_id, HW);
    /* python's struct.pack and our encoder agree byte for byte */
    assert_int_equal(fota_image_header_encode(&h, again), FOTA_OK);
    assert_memory_equal(again, data, FOTA_IMAGE_HEADER_LEN);
    assert_memory_equal(data, "FOTA", 4);
    free(data);
}

static void test_header_encode(void **state)
{
    struct fota_image_header h, back;
    uint8_t raw[FOTA_IMAGE_HEADER_LEN];
    uint8_t untouched[FOTA_IMAGE_HEADER_LEN];

    (void)state;
    memset(&h, 0, sizeof(h));
    h.magic = 0xdeadbeef;  /* set by the encoder, whatever the caller says */
    h.security_counter = 0xffffffffu;
    h.major = 65535;
    h.minor = 1;
    h.patch = 2;
    h.build = 0x01020304u;
    h.payload_len = 0x0a0b0c0du;
    memcpy(h.hardware_id, "x", 2);
    memset(h.hardware_id + 2, 'Z', sizeof(h.hardware_id) - 2); /* after the NUL: ignored */
    assert_int_equal(fota_image_header_encode(&h, raw), FOTA_OK);
    assert_int_equal(raw[32], 'x');
    for (size_t i = 33; i < 64; i++) {
        assert_int_equal(raw[i], 0);
    }
    assert_int_equal(raw[28], 0x0d);   /* little-endian */
    assert_int_equal(raw[31], 0x0a);
    assert_int_equal(fota_image_header_decode(raw, &back), FOTA_OK);
    assert_int_equal(back.magic, FOTA_IMAGE_MAGIC);
    assert_int_equal(back.security_counter, 0xffffffffu);
    assert_int_equal(back.major, 65535);
    assert_int_equal(back.build, 0x01020304u);
    assert_int_equal(back.payload_len, 0x0a0b0c0du);
    assert_string_equal(back.hardware_id, "x");

    /* refused: no id, a bad character, 32 characters (no room for the NUL), flags */
    memset(untouched, 0x5a, sizeof(untouched));
    memcpy(raw, untouched, sizeof(raw));
    memset(h.hardware_id, 0, sizeof(h.hardware_id));
    assert_int_equal(fota_image_header_encode(&h, raw), FOTA_E_INVALID);
    memcpy(h.hardware_id, "a/b", 4);
    assert_int_equal(fota_image_header_encode(&h, raw), FOTA_E_INVALID);
    memcpy(h.hardware_id, "a b", 4);
    assert_int_equal(fota_image_header_encode(&h, raw), FOTA_E_INVALID);
    memset(h.hardware_id, 'a', sizeof(h.hardware_id));
    assert_int_equal(fota_image_header_encode(&h, raw), FOTA_E_INVALID);
    h.hardware_id[31] = '\0';
    h.flags = 1;
    assert_int_equal(fota_image_header_encode(&h, raw), FOTA_E_INVALID);
    assert_memory_equal(raw, untouched, sizeof(raw));
    h.flags = 0;
    assert_int_equal(fota_image_header_encode(&h, raw), FOTA_OK);
    assert_int_equal(fota_image_header_encode(NULL, raw), FOTA_E_INVALID);
    assert_int_equal(fota_image_header_encode(&h, NULL), FOTA_E_INVALID);
}

static void test_header_decode_rejects(void **state)
{
    struct fota_image_header h, marker;
    uint8_t good[FOTA_IMAGE_HEADER_LEN], raw[FOTA_IMAGE_HEADER_LEN];
    /* offset, value XORed in: each breaks exactly one rule */
    static const struct { size_t off; uint8_t x; } flips[] = {
        { 0, 1 }, { 3, 0x80 },          /* magic */
        { 4, 1 }, { 5, 1 },             /* header_len */
        { 6, 3 }, { 7, 1 },             /* format */
        { 8, 1 }, { 11, 0x80 },         /* flags */
        { 22, 1 }, { 23, 0x80 },        /* reserved */
        { 32, 'f' },                    /* first id byte -> NUL: empty id */
        { 33, 'o' ^ ' ' },              /* a space */
        { 34, 't' ^ 0xc3 },             /* a non-ASCII byte */
        { 50, 'x' },                    /* a byte after the NUL */
        { 63, 1 },                      /* the last padding byte */
    };

    (void)state;
    memset(&h, 0, sizeof(h));
    memcpy(h.hardware_id, HW, sizeof(HW));
    h.payload_len = 1;
    assert_int_equal(fota_image_header_encode(&h, good), FOTA_OK);
    memset(&marker, 0x77, sizeof(marker));
    for (size_t i = 0; i < TU_ARRAY_LEN(flips); i++) {
        memcpy(raw, good, sizeof(raw));
        raw[flips[i].off] ^= flips[i].x;
        h = marker;
        if (fota_image_header_decode(raw, &h) != FOTA_E_PARSE) {
            fail_msg("flip %zu (offset %zu) accepted", i, flips[i].off);
        }
        assert_memory_equal(&h, &marker, sizeof(h));
    }
    /* 31 characters then one NUL: the longest id */
    memcpy(raw, good, sizeof(raw));
    memset(raw + 32, 'a', 31);
    raw[63] = 0;
    assert_int_equal(fota_image_header_decode(raw, &h), FOTA_OK);
    assert_int_equal(strlen(h.hardware_id), 31);
    raw[63] = 'a';
    assert_int_equal(fota_image_header_decode(raw, &h), FOTA_E_PARSE);
    assert_int_equal(fota_image_header_decode(NULL, &h), FOTA_E_INVALID);
    assert_int_equal(fota_image_header_decode(good, NULL), FOTA_E_INVALID);
}

static void test_key_ids_match_openssl(void **state)
{
    struct tu_lines it;
    char *text = tu_lines_of_vector(&it, "image/keyids.txt");
    unsigned n = 0;

    (void)state;
    for (char *line = tu_lines_next_record(&it); line != NULL; line = tu_lines_next_record(&it)) {
        char *f[2];
        char hex[65];

        tu_split_fields(line, f, 2, it.lineno);
        fota_hex_encode(key_named(f[0])->id, 32, hex);
        assert_string_equal(hex, f[1]);
        n++;
    }
    assert_int_equal(n, 4);
    free(text);
}

/* ---- the table of openssl-made cases --------------------------------------------- */

static fota_err err_from_name(const char *name)
{
    for (int e = 0; e <= (int)FOTA_E_POWER; e++) {
        if (strcmp(fota_strerror((fota_err)e), name) == 0) {
            return (fota_err)e;
        }
    }
    fail_msg("unknown reason %s", name);
    return FOTA_E_INVALID;
}

static void test_cases_table(void **state)
{
    static const size_t scratch_sizes[] = { 256, 257, 1000, 4096, 65536 };
    struct tu_lines it;
    char *text = tu_lines_of_vector(&it, "image/cases.txt");
    unsigned n = 0, n_ok = 0;

    (void)state;
    for (char *line = tu_lines_next_record(&it); line != NULL; line = tu_lines_next_record(&it)) {
        char *f[6]; /* IMAGE TRUSTED THRESHOLD MIN_COUNTER HARDWARE EXPECT */
        struct test_policy tp;
        size_t len = 0;
        uint8_t *data;
        fota_err want;

        tu_split_fields(line, f, 6, it.lineno);
        want = err_from_name(f[5]);
        data = read_image(f[0], &len);
        policy_init(&tp, f[1], (unsigned)strtoul(f[2], NULL, 10),
                    (uint32_t)strtoul(f[3], NULL, 10), f[4]);
        tp.p.exact_len = (uint32_t)len;
        for (size_t s = 0; s < TU_ARRAY_LEN(scratch_sizes); s++) {
            struct fota_image_info info;
            fota_err rc;

            memset(&info, 0xee, sizeof(info));
            rc = verify_mem(data, len, &tp.p, scratch_sizes[s], &info, NULL);
            if (rc != want) {
                fail_msg("cases.txt line %u (%s, scratch %zu): got %s, want %s", it.lineno, f[0],
                         scratch_sizes[s], fota_strerror(rc), f[5]);
            }
            if (rc == FOTA_OK) {
                uint8_t digest[FOTA_HASH_MAX_LEN];
                size_t signed_len = FOTA_IMAGE_HEADER_LEN + info.header.payload_len;

                assert_int_equal(info.total_len, len);
                assert_true(signed_len < len);
                assert_int_equal(fota_hash(FOTA_HASH_SHA256, data, signed_len, digest), FOTA_OK);
                assert_memory_equal(info.digest, digest, 32);
                assert_true(info.valid_signatures >= tp.p.threshold);
                assert_string_equal(info.header.hardware_id, f[4]);
            } else {
                struct fota_image_info marker;

                memset(&marker, 0xee, sizeof(marker));
                assert_memory_equal(&info, &marker, sizeof(info));
            }
        }
        n_ok += want == FOTA_OK;
        n++;
        free(data);
    }
    assert_true(n >= 50);
    assert_true(n_ok >= 10);
    free(text);
}

/* ---- one test per rejection ------------------------------------------------------- */

static void test_valid_images(void **state)
{
    struct fota_image_info info;

    (void)state;
    assert_int_equal(verify_vector("ed25519.img", "ed25519,p256", 1, 0, HW, &info), FOTA_OK);
    assert_int_equal(info.valid_signatures, 1);
    assert_int_equal(info.header.security_counter, 7);
    assert_int_equal(info.header.payload_len, PAYLOAD_LEN);
    assert_int_equal(verify_vector("p256.img", "ed25519,p256", 1, 0, HW, &info), FOTA_OK);
    assert_int_equal(info.valid_signatures, 1);
    assert_int_equal(verify_vector("empty-payload.img", "p256", 1, 0, HW, &info), FOTA_OK);
    assert_int_equal(info.header.payload_len, 0);
    assert_int_equal(verify_vector("sig-first.img", "ed25519", 1, 0, HW, NULL), FOTA_OK);
    /* a NULL info is allowed */
    assert_int_equal(verify_vector("p256.img", "p256", 1, 0, HW, NULL), FOTA_OK);
}

static void test_bad_signature(void **state)
{
    size_t len = 0;
    uint8_t *data = read_image("ed25519.img", &len);
    size_t sig_at = len - 64;
    struct test_policy tp;

    (void)state;
    expect_vector("bad-sig-ed25519.img", FOTA_E_SIGNATURE);
    expect_vector("bad-sig-p256.img", FOTA_E_SIGNATURE);
    expect_vector("bad-sig-then-good.img", FOTA_E_SIGNATURE);
    /* every byte of the openssl ed25519 signature, one bit flipped */
    policy_init(&tp, "ed25519,p256", 1, 0, HW);
    tp.p.exact_len = (uint32_t)len;
    for (size_t i = 0; i < 64; i++) {
        data[sig_at + i] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, NULL), FOTA_E_SIGNATURE);
        data[sig_at + i] ^= (uint8_t)(1u << (i % 8));
    }
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, NULL), FOTA_OK);
    free(data);
}

static void test_bad_ecdsa_signature_bits(void **state)
{
    size_t len = 0;
    uint8_t *data = read_image("p256.img", &len);
    size_t rec = FOTA_IMAGE_HEADER_LEN + PAYLOAD_LEN + 4 + 36;  /* the ECDSA record */
    size_t sig_len = (size_t)(data[rec + 2] | (data[rec + 3] << 8)) - 32;
    struct test_policy tp;

    (void)state;
    assert_int_equal(data[rec], FOTA_TLV_SIG_ECDSA_P256);
    assert_int_equal(rec + 4 + 32 + sig_len, len);
    policy_init(&tp, "ed25519,p256", 1, 0, HW);
    tp.p.exact_len = (uint32_t)len;
    for (size_t i = 0; i < sig_len; i++) {
        data[rec + 36 + i] ^= 0x10;
        assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, NULL), FOTA_E_SIGNATURE);
        data[rec + 36 + i] ^= 0x10;
    }
    free(data);
}

static void test_wrong_key(void **state)
{
    size_t len = 0;
    uint8_t *data = read_image("ed25519.img", &len);
    size_t id_at = len - 64 - 32;
    struct test_policy tp;

    (void)state;
    expect_vector("untrusted.img", FOTA_E_THRESHOLD);
    assert_int_equal(verify_vector("ed25519.img", "p256,ed25519-b", 1, 0, HW, NULL),
                     FOTA_E_THRESHOLD);
    /* a key id that matches no trusted key: the signature is skipped */
    policy_init(&tp, "ed25519,p256", 1, 0, HW);
    tp.p.exact_len = (uint32_t)len;
    data[id_at + 5] ^= 0x40;
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, NULL), FOTA_E_THRESHOLD);
    /* no trusted key at all */
    tp.p.n_keys = 0;
    tp.p.keys = NULL;
    data[id_at + 5] ^= 0x40;
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, NULL), FOTA_E_THRESHOLD);
    free(data);
}

static void test_wrong_record_type(void **state)
{
    static const char *const rsa[] = { "rsa2048" };
    static const char *const ed[] = { "ed25519" };
    struct own_image img;
    struct test_policy tp;

    (void)state;
    expect_vector("wrong-record-type.img", FOTA_E_SIGNATURE);
    /* an ed25519 record under a trusted RSA key's id: never verifies */
    own_image(&img, 100, rsa, 1, 0);
    policy_init(&tp, "rsa2048,ed25519", 1, 0, HW);
    assert_int_equal(verify_mem(img.data, img.len, &tp.p, 256, NULL, NULL), FOTA_E_SIGNATURE);
    free(img.data);
    /* fota's own ed25519 signature in an ECDSA record */
    own_image(&img, 100, ed, 1, 1);
    assert_int_equal(verify_mem(img.data, img.len, &tp.p, 256, NULL, NULL), FOTA_E_SIGNATURE);
    free(img.data);
}

static void test_wrong_hardware(void **state)
{
    (void)state;
    expect_vector("hwid-other.img", FOTA_E_HARDWARE);
    assert_int_equal(verify_vector("ed25519.img", "ed25519", 1, 0, "fota-sim.board-2", NULL),
                     FOTA_E_HARDWARE);
    assert_int_equal(verify_vector("ed25519.img", "ed25519", 1, 0, "fota-sim.board", NULL),
                     FOTA_E_HARDWARE);
    assert_int_equal(verify_vector("ed25519.img", "ed25519", 1, 0, "fota-sim.board-10", NULL),
                     FOTA_E_HARDWARE);
    assert_int_equal(verify_vector("ed25519.img", "ed25519", 1, 0, "", NULL), FOTA_E_HARDWARE);
    assert_int_equal(verify_vector("ed25519.img", "ed25519", 1, 0,
                                   "a-policy-id-much-longer-than-the-32-byte-field", NULL),
                     FOTA_E_HARDWARE);
    assert_int_equal(verify_vector("ed25519.img", "ed25519", 1, 0, "FOTA-SIM.BOARD-1", NULL),
                     FOTA_E_HARDWARE);
}

static void test_lower_security_counter(void **state)
{
    (void)state;
    assert_int_equal(verify_vector("ed25519.img", "ed25519", 1, 7, HW, NULL), FOTA_OK);
    assert_int_equal(verify_vector("ed25519.img", "ed25519", 1, 8, HW, NULL), FOTA_E_ROLLBACK);
    assert_int_equal(verify_vector("ed25519.img", "ed25519", 1, UINT32_MAX, HW, NULL),
                     FOTA_E_ROLLBACK);
    assert_int_equal(verify_vector("counter-low.img", "ed25519", 1, 3, HW, NULL), FOTA_OK);
    assert_int_equal(verify_vector("counter-low.img", "ed25519", 1, 4, HW, NULL), FOTA_E_ROLLBACK);
}

static void test_truncated(void **state)
{
    size_t len = 0;
    uint8_t *data = read_image("ed25519.img", &len);
    const size_t trailer_at = FOTA_IMAGE_HEADER_LEN + PAYLOAD_LEN;
    const size_t cuts[] = { 0, 1, 63, 64, 65, 1000, trailer_at - 1, trailer_at, trailer_at + 2,
                            trailer_at + 4, trailer_at + 20, trailer_at + 40, len - 64, len - 1 };
    struct test_policy tp;

    (void)state;
    expect_vector("truncated.img", FOTA_E_LENGTH);
    expect_vector("truncated-payload.img", FOTA_E_LENGTH);
    policy_init(&tp, "ed25519", 1, 0, HW);
    /* In a slot (exact_len 0) the reader is what notices: its error comes back. */
    for (size_t i = 0; i < TU_ARRAY_LEN(cuts); i++) {
        fota_err rc = verify_mem(data, cuts[i], &tp.p, 256, NULL, NULL);

        if (rc != FOTA_E_IO) {
            fail_msg("cut at %zu: %s", cuts[i], fota_strerror(rc));
        }
    }
    /* exact_len says what the file holds: the lengths decide, before any
     * read when it cannot even hold a header and the smallest trailer */
    for (size_t i = 0; i < TU_ARRAY_LEN(cuts); i++) {
        fota_err want = FOTA_E_LENGTH;

        if (cuts[i] == 0) {
            continue;   /* exact_len 0 means "not a file" */
        }
        tp.p.exact_len = (uint32_t)cuts[i];
        assert_int_equal(verify_mem(data, cuts[i], &tp.p, 4096, NULL, NULL), want);
    }
    free(data);
}

static void test_trailing_data(void **state)
{
    size_t len = 0;
    uint8_t *data = read_image("ed25519.img", &len);
    struct test_policy tp;

    (void)state;
    expect_vector("trailing-data.img", FOTA_E_LENGTH);
    policy_init(&tp, "ed25519", 1, 0, HW);
    tp.p.exact_len = (uint32_t)len + 1;
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, NULL), FOTA_E_LENGTH);
    tp.p.exact_len = (uint32_t)len - 1;
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, NULL), FOTA_E_LENGTH);
    tp.p.exact_len = (uint32_t)len;
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, NULL), FOTA_OK);
    /* in a slot, bytes after the trailer are the slot's business: not read */
    tp.p.exact_len = 0;
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, NULL), FOTA_OK);
    free(data);
}

static void test_slot_size(void **state)
{
    size_t len = 0;
    uint8_t *data = read_image("ed25519.img", &len);
    struct test_policy tp;
    struct mem_image m;

    (void)state;
    policy_init(&tp, "ed25519", 1, 0, HW);
    tp.p.max_len = (uint32_t)len;
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, NULL), FOTA_OK);
    tp.p.max_len = (uint32_t)len - 1;
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, &m), FOTA_E_LENGTH);
    /* too small even for header + payload + the smallest trailer: refused
     * after reading the header alone */
    tp.p.max_len = FOTA_IMAGE_HEADER_LEN + PAYLOAD_LEN + 39;
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, &m), FOTA_E_LENGTH);
    assert_int_equal(m.reads, 1);
    tp.p.max_len = 0;
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, NULL), FOTA_E_LENGTH);
    /* a window smaller than a header: refused without a read outside it
     * (fuzz/regressions/image/max-len-below-header.bin) */
    tp.p.max_len = FOTA_IMAGE_HEADER_LEN - 1;
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, &m), FOTA_E_LENGTH);
    assert_int_equal(m.reads, 0);
    tp.p.max_len = (uint32_t)len;
    tp.p.exact_len = 36;
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, &m), FOTA_E_LENGTH);
    assert_int_equal(m.reads, 0);
    free(data);
}

static void test_oversized_fields(void **state)
{
    struct test_policy tp;
    size_t len = 0;
    uint8_t *data = read_image("payload-len-huge.img", &len);
    struct mem_image m;

    (void)state;
    /* payload_len 0xfffffff0: refused from the header, nothing streamed */
    policy_init(&tp, "ed25519,p256", 1, 0, HW);
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, &m), FOTA_E_LENGTH);
    assert_int_equal(m.reads, 1);
    tp.p.exact_len = (uint32_t)len;
    assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, &m), FOTA_E_LENGTH);
    assert_int_equal(m.reads, 1);
    free(data);
    expect_vector("payload-len-short.img", FOTA_E_PARSE);
    /* trailer */
    expect_vector("trailer-too-big.img", FOTA_E_LENGTH);
    expect_vector("trailer-at-cap.img", FOTA_OK);
    expect_vector("trailer-short.img", FOTA_E_LENGTH);
    expect_vector("trailer-magic.img", FOTA_E_PARSE);
    expect_vector("record-past-end.img", FOTA_E_LENGTH);
    expect_vector("record-head-cut.img", FOTA_E_LENGTH);
    expect_vector("sha256-len.img", FOTA_E_PARSE);
    expect_vector("ed25519-len.img", FOTA_E_PARSE);
    expect_vector("ecdsa-short.img", FOTA_E_PARSE);
    expect_vector("ecdsa-long.img", FOTA_E_PARSE);
    /* header */
    expect_vector("magic.img", FOTA_E_PARSE);
    expect_vector("header-len.img", FOTA_E_PARSE);
    expect_vector("format.img", FOTA_E_PARSE);
    expect_vector("flags.img", FOTA_E_PARSE);
    expect_vector("reserved.img", FOTA_E_PARSE);
    expect_vector("hwid-char.img", FOTA_E_PARSE);
    expect_vector("hwid-padding.img", FOTA_E_PARSE);
    expect_vector("hwid-empty.img", FOTA_E_PARSE);
    expect_vector("hwid-32.img", FOTA_E_PARSE);
}

static void test_total_len_over_cap_in_a_slot(void **state)
{
    size_t len = 0;
    uint8_t *data = read_image("ed25519.img", &len);
    size_t info_at = FOTA_IMAGE_HEADER_LEN + PAYLOAD_LEN;
    uint8_t *big = calloc(1, len + 70000);
    struct test_policy tp;

    (void)state;
    assert_non_null(big);
    memcpy(big, data, len);
    policy_init(&tp, "ed25519", 1, 0, HW);
    /* total_len 0xffff in a slot that could hold it: still over the cap */
    big[info_at + 2] = 0xff;
    big[info_at + 3] = 0xff;
    assert_int_equal(verify_mem(big, len + 70000, &tp.p, 256, NULL, NULL), FOTA_E_LENGTH);
    big[info_at + 2] = 0x01;   /* 0x0401 = 1025 */
    big[info_at + 3] = 0x04;
    assert_int_equal(verify_mem(big, len + 70000, &tp.p, 256, NULL, NULL), FOTA_E_LENGTH);
    big[info_at + 2] = 0;      /* 0: less than the trailer info itself */
    big[info_at + 3] = 0;
    assert_int_equal(verify_mem(big, len + 70000, &tp.p, 256, NULL, NULL), FOTA_E_LENGTH);
    free(big);
    free(data);
}

static void test_duplicate_and_missing_sha256(void **state)
{
    (void)state;
    expect_vector("dup-sha256.img", FOTA_E_DUPLICATE);
    expect_vector("no-sha256.img", FOTA_E_PARSE);
}

static void test_unknown_record_type(void **state)
{
    size_t len = 0;
    uint8_t *data = read_image("ed25519.img", &len);
    size_t sig_rec = FOTA_IMAGE_HEADER_LEN + PAYLOAD_LEN + 4 + 36;
    static const uint16_t types[] = { 0x0000, 0x0002, 0x0012, 0x0020, 0x0100, 0xffff };
    struct test_policy tp;

    (void)state;
    expect_vector("unknown-record.img", FOTA_E_PARSE);
    policy_init(&tp, "ed25519", 1, 0, HW);
    for (size_t i = 0; i < TU_ARRAY_LEN(types); i++) {
        put16le(data + sig_rec, types[i]);
        assert_int_equal(verify_mem(data, len, &tp.p, 256, NULL, NULL), FOTA_E_PARSE);
    }
    free(data);
}

static void test_digest_mismatch(void **state)
{
    size_t len = 0;
    uint8_t *data = read_image("ed25519.img", &len);
    static const size_t at[] = { 0 + 24, 64, 65, 2500, 4999 + 64 };
    struct test_policy tp;

    (void)state;
    expect_vector("payload-flipped.img", FOTA_E_HASH);
    expect_vector("digest-before-sig.img", FOTA_E_HASH);
    policy_init(&tp, "ed25519", 1, 0, HW);
    /* payload bits, and the build number in the header (no rule on it but
     * the digest) */
    for (size_t i = 0; i < TU_ARRAY_LEN(at); i++) {
        data[at[i]] ^= 0x01;
        assert_int_equal(verify_mem(data, len, &tp.p, 257, NULL, NULL), FOTA_E_HASH);
        data[at[i]] ^= 0x01;
    }
    /* the SHA-256 record itself */
    data[FOTA_IMAGE_HEADER_LEN + PAYLOAD_LEN + 8 + 31] ^= 0x80;
    assert_int_equal(verify_mem(data, len, &tp.p, 257, NULL, NULL), FOTA_E_HASH);
    free(data);
}

static void test_threshold(void **state)
{
    struct fota_image_info info;

    (void)state;
    assert_int_equal(verify_vector("two-keys.img", "ed25519,p256", 2, 0, HW, &info), FOTA_OK);
    assert_int_equal(info.valid_signatures, 2);
    assert_int_equal(verify_vector("two-keys.img", "p256,ed25519", 1, 0, HW, &info), FOTA_OK);
    assert_int_equal(info.valid_signatures, 2);
    assert_int_equal(verify_vector("two-keys.img", "ed25519,p256,p256-b", 3, 0, HW, NULL),
                     FOTA_E_THRESHOLD);
    /* the same key twice counts once, whether the signatures are equal
     * (ed25519) or differ (ECDSA) */
    assert_int_equal(verify_vector("ed25519-twice.img", "ed25519,p256", 1, 0, HW, &info), FOTA_OK);
    assert_int_equal(info.valid_signatures, 1);
    assert_int_equal(verify_vector("ed25519-twice.img", "ed25519,p256", 2, 0, HW, NULL),
                     FOTA_E_THRESHOLD);
    assert_int_equal(verify_vector("p256-twice.img", "ed25519,p256", 2, 0, HW, NULL),
                     FOTA_E_THRESHOLD);
    /* a key listed twice in the policy is still one key */
    assert_int_equal(verify_vector("ed25519.img", "ed25519,ed25519", 2, 0, HW, NULL),
                     FOTA_E_THRESHOLD);
    assert_int_equal(verify_vector("skip-unknown-key.img", "ed25519,p256", 1, 0, HW, &info),
                     FOTA_OK);
    assert_int_equal(info.valid_signatures, 1);
}

static void test_check_order(void **state)
{
    size_t len = 0;
    uint8_t *data = read_image("ed25519.img", &len);
    uint8_t *copy = malloc(len + 16);
    struct test_policy tp;

    (void)state;
    assert_non_null(copy);
    /* Every defect at once, then one fewer each time: the first check in the
     * documented order is the one reported. */
    memcpy(copy, data, len);
    memset(copy + len, 0, 16);
    copy[len - 1] ^= 1;                       /* signature */
    copy[1000] ^= 1;                          /* digest */
    policy_init(&tp, "ed25519", 1, 8, "other");
    tp.p.exact_len = (uint32_t)len + 16;      /* lengths (16 trailing bytes) */
    assert_int_equal(verify_mem(copy, len + 16, &tp.p, 256, NULL, NULL), FOTA_E_HARDWARE);
    tp.p.hardware_id = HW;
    assert_int_equal(verify_mem(copy, len + 16, &tp.p, 256, NULL, NULL), FOTA_E_ROLLBACK);
    tp.p.min_security_counter = 7;
    assert_int_equal(verify_mem(copy, len + 16, &tp.p, 256, NULL, NULL), FOTA_E_LENGTH);
    tp.p.exact_len = (uint32_t)len;
    assert_int_equal(verify_mem(copy, len, &tp.p, 256, NULL, NULL), FOTA_E_HASH);
    copy[1000] ^= 1;
    assert_int_equal(verify_mem(copy, len, &tp.p, 256, NULL, NULL), FOTA_E_SIGNATURE);
    copy[len - 1] ^= 1;
    assert_int_equal(verify_mem(copy, len, &tp.p, 256, NULL, NULL), FOTA_OK);
    /* a header defect comes before the hardware id */
    copy[6] = 9;
    tp.p.hardware_id = "other";
    assert_int_equal(verify_mem(copy, len, &tp.p, 256, NULL, NULL), FOTA_E_PARSE);
    free(copy);
    free(data);
}

static void test_bad_arguments(void **state)
{
    size_t len = 0;
    uint8_t *data = read_image("ed25519.img", &len);
    struct mem_image m = { data, len, 4096, 0, 0, 0, 0 };
    uint8_t scratch[256];
    struct test_policy tp;

    (void)state;
    policy_init(&tp, "ed25519", 1, 0, HW);
    assert_int_equal(fota_image_verify(mem_read, &m, &tp.p, scratch, 256, NULL), FOTA_OK);
    m.next = 0;
    m.reads = 0;
    assert_int_equal(fota_image_verify(NULL, &m, &tp.p, scratch, 256, NULL), FOTA_E_INVALID);
    assert_int_equal(fota_image_verify(mem_read, &m, NULL, scratch, 256, NULL), FOTA_E_INVALID);
    assert_int_equal(fota_image_verify(mem_read, &m, &tp.p, NULL, 256, NULL), FOTA_E_INVALID);
    assert_int_equal(fota_image_verify(mem_read, &m, &tp.p, scratch, 255, NULL), FOTA_E_INVALID);
    tp.p.threshold = 0;
    assert_int_equal(fota_image_verify(mem_read, &m, &tp.p, scratch, 256, NULL), FOTA_E_INVALID);
    tp.p.threshold = 1;
    tp.p.hardware_id = NULL;
    assert_int_equal(fota_image_verify(mem_read, &m, &tp.p, scratch, 256, NULL), FOTA_E_INVALID);
    tp.p.hardware_id = HW;
    tp.p.keys = NULL;
    assert_int_equal(fota_image_verify(mem_read, &m, &tp.p, scratch, 256, NULL), FOTA_E_INVALID);
    assert_int_equal(m.reads, 0);   /* refused before reading anything */
    free(data);
}

/* ---- scratch sizes and fota's own images ------------------------------------------ */

static void test_scratch_sizes_same_result(void **state)
{
    static const char *const signers[] = { "ed25519", "p256", "p256-b" };
    static const size_t sizes[] = { 256, 257, 300, 4096, 4097, 65536, 1u << 20 };
    static const size_t payloads[] = { 0, 1, 191, 192, 193, 255, 256, 257, 4096, 300001 };
    struct test_policy tp;

    (void)state;
    policy_init(&tp, "p256,ed25519", 2, 9, HW);
    for (size_t p = 0; p < TU_ARRAY_LEN(payloads); p++) {
        struct own_image img;
        struct fota_image_info first;

        own_image(&img, payloads[p], signers, TU_ARRAY_LEN(signers), 0);
        tp.p.exact_len = (uint32_t)img.len;
        for (size_t s = 0; s < TU_ARRAY_LEN(sizes); s++) {
            struct fota_image_info info;
            struct mem_image m;

            assert_int_equal(verify_mem(img.data, img.len, &tp.p, sizes[s], &info, &m), FOTA_OK);
            /* the image is read once, every byte of it */
            assert_int_equal(m.bytes, img.len);
            assert_int_equal(info.total_len, img.len);
            assert_int_equal(info.valid_signatures, 2);
            assert_int_equal(info.header.major, 2);
            if (s == 0) {
                first = info;
            } else {
                assert_memory_equal(&info, &first, sizeof(info));
            }
            /* and a flipped payload byte fails the same way at every size */
            if (payloads[p] > 0) {
                img.data[FOTA_IMAGE_HEADER_LEN + payloads[p] / 2] ^= 4;
                assert_int_equal(verify_mem(img.data, img.len, &tp.p, sizes[s], NULL, NULL),
                                 FOTA_E_HASH);
                img.data[FOTA_IMAGE_HEADER_LEN + payloads[p] / 2] ^= 4;
            }
        }
        free(img.data);
    }
}

static void test_vectors_with_odd_scratch(void **state)
{
    static const char *const names[] = { "ed25519.img", "p256.img", "two-keys.img" };

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(names); i++) {
        size_t len = 0;
        uint8_t *data = read_image(names[i], &len);
        struct test_policy tp;
        struct fota_image_info a, b, c;

        policy_init(&tp, "ed25519,p256", 1, 0, HW);
        tp.p.exact_len = (uint32_t)len;
        assert_int_equal(verify_mem(data, len, &tp.p, 256, &a, NULL), FOTA_OK);
        assert_int_equal(verify_mem(data, len, &tp.p, 257, &b, NULL), FOTA_OK);
        assert_int_equal(verify_mem(data, len, &tp.p, 4096, &c, NULL), FOTA_OK);
        assert_memory_equal(&a, &b, sizeof(a));
        assert_memory_equal(&a, &c, sizeof(a));
        free(data);
    }
}

/* ---- no allocator, bounded stack -------------------------------------------------- */

/* The verifier's object file must not reference an allocator: read the
 * undefined symbols of image.c.o in the libfota archive next to this test
 * (build/tests/test_image -> build/lib/libfota.a). */
static void test_verifier_object_has_no_allocator(void **state)
{
    static const char *const banned[] = { "malloc", "calloc", "realloc", "free", "aligned_alloc",
                                          "posix_memalign", "strdup", "strndup", "memalign",
                                          "valloc", "reallocarray" };
    char exe[PATH_MAX], cmd[PATH_MAX + 64], line[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;
    FILE *p;
    int in_image = 0, seen_image = 0;
    unsigned undefined = 0;

    (void)state;
    if (n <= 0 || !tu_run_ok("command -v nm >/dev/null 2>&1")) {
        skip();
    }
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    assert_non_null(slash);
    *slash = '\0';
    snprintf(cmd, sizeof(cmd), "nm -u '%s/../lib/libfota.a' 2>/dev/null", exe);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL) {
        char *sym;
        size_t l = strcspn(line, "\n");

        line[l] = '\0';
        if (l > 0 && line[l - 1] == ':') {
            in_image = strcmp(line, "image.c.o:") == 0;
            seen_image |= in_image;
            continue;
        }
        if (!in_image) {
            continue;
        }
        sym = strrchr(line, ' ');
        sym = sym == NULL ? line : sym + 1;
        if (*sym == '\0') {
            continue;
        }
        undefined++;
        for (size_t i = 0; i < TU_ARRAY_LEN(banned); i++) {
            if (strcmp(sym, banned[i]) == 0) {
                fail_msg("lib/image.c references %s", sym);
            }
        }
    }
    pclose(p);
    if (!seen_image) {
        skip();
    }
    assert_true(undefined > 0); /* it does call fota_sha256_update & co */
}

#define STACK_SIZE (64u * 1024u)
#define PAINT 0xa5

struct stack_job {
    void (*fn)(void *);
    void *arg;
};

static void *stack_thread(void *p)
{
    struct stack_job *job = p;

    job->fn(job->arg);
    return NULL;
}

/* Bytes of a painted STACK_SIZE stack that running fn(arg) on a new thread
 * touched (the thread's own start-up included; see stack_used). */
static size_t stack_touched(void (*fn)(void *), void *arg)
{
    void *mem = NULL;
    pthread_attr_t attr;
    pthread_t t;
    struct stack_job job = { fn, arg };
    const uint8_t *b;
    size_t i = 0;

    assert_int_equal(posix_memalign(&mem, 4096, STACK_SIZE), 0);
    memset(mem, PAINT, STACK_SIZE);
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstack(&attr, mem, STACK_SIZE), 0);
    assert_int_equal(pthread_create(&t, &attr, stack_thread, &job), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    pthread_attr_destroy(&attr);
    /* the stack grows down: the lowest changed byte is the high-water mark */
    b = mem;
    while (i < STACK_SIZE && b[i] == PAINT) {
        i++;
    }
    free(mem);
    return STACK_SIZE - i;
}

static void nothing(void *arg)
{
    (void)arg;
}

struct verify_job {
    const uint8_t *data;
    size_t len;
    const struct fota_image_policy *policy;
    uint8_t *scratch;
    fota_err rc;
};

static void verify_on_thread(void *arg)
{
    struct verify_job *j = arg;
    struct mem_image m = { j->data, j->len, 256, 0, 0, 0, 0 };

    j->rc = fota_image_verify(mem_read, &m, j->policy, j->scratch, 256, NULL);
}

/* Peak stack of one verification, less what an empty thread uses. */
static size_t stack_used(const char *image, const char *trusted, fota_err want)
{
    size_t len = 0;
    uint8_t *data = read_image(image, &len);
    uint8_t *scratch = malloc(256);
    struct test_policy tp;
    struct verify_job job;
    size_t base, used;

    assert_non_null(scratch);
    policy_init(&tp, trusted, 1, 0, HW);
    tp.p.exact_len = (uint32_t)len;
    job.data = data;
    job.len = len;
    job.policy = &tp.p;
    job.scratch = scratch;
    job.rc = FOTA_E_INVALID;
    /* once on this thread first: lazy symbol binding and OpenSSL's one-time
     * set-up are not the verifier's stack */
    verify_on_thread(&job);
    assert_int_equal(job.rc, want);
    job.rc = FOTA_E_INVALID;
    base = stack_touched(nothing, NULL);
    used = stack_touched(verify_on_thread, &job);
    assert_int_equal(job.rc, want);
    free(scratch);
    free(data);
    return used > base ? used - base : 0;
}

/* valgrind marks a dead thread's stack inaccessible, so the scan of the
 * painted stack would be reported as invalid reads: skip under it. */
static int under_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD");

    return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

static void test_stack_high_water(void **state)
{
    size_t own, ed, ec;

    (void)state;
    if (under_valgrind()) {
        skip();
    }
    /* untrusted.img with ed25519 trusted: header, payload, trailer walk,
     * no signature check (the verifier and SHA-256 only) */
    own = stack_used("untrusted.img", "ed25519", FOTA_E_THRESHOLD);
    ed = stack_used("ed25519.img", "ed25519", FOTA_OK);
    ec = stack_used("p256.img", "p256", FOTA_OK);
    print_message("image verify peak stack%s: verifier+sha256 %zu B, with ed25519 (OpenSSL) %zu B, "
                  "with ecdsa-p256 (OpenSSL) %zu B\n",
                  SANITIZED ? " (ASan build, not representative)" : "", own, ed, ec);
    if (!SANITIZED) {
        /* DESIGN.md: the boot-time verifier needs at most 4 KiB of stack */
        assert_true(own > 0);
        assert_true(own <= 4096);
        assert_true(ed < STACK_SIZE / 2);
        assert_true(ec < STACK_SIZE / 2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_decode_vector),
        cmocka_unit_test(test_header_encode),
        cmocka_unit_test(test_header_decode_rejects),
        cmocka_unit_test(test_key_ids_match_openssl),
        cmocka_unit_test(test_cases_table),
        cmocka_unit_test(test_valid_images),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_bad_ecdsa_signature_bits),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_wrong_record_type),
        cmocka_unit_test(test_wrong_hardware),
        cmocka_unit_test(test_lower_security_counter),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_trailing_data),
        cmocka_unit_test(test_slot_size),
        cmocka_unit_test(test_oversized_fields),
        cmocka_unit_test(test_total_len_over_cap_in_a_slot),
        cmocka_unit_test(test_duplicate_and_missing_sha256),
        cmocka_unit_test(test_unknown_record_type),
        cmocka_unit_test(test_digest_mismatch),
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_check_order),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_scratch_sizes_same_result),
        cmocka_unit_test(test_vectors_with_odd_scratch),
        cmocka_unit_test(test_verifier_object_has_no_allocator),
        cmocka_unit_test(test_stack_high_water),
    };

    return cmocka_run_group_tests_name("image", tests, group_setup, group_teardown);
}

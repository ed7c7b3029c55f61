/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The boot state record, the boot decision (docs/boot.md, one test per row),
 * confirm, rollback and the install side, over the in-memory flash
 * simulator. Images are built with libfota's builder (fota_image_build),
 * signed with keys generated for the run; the format itself is checked
 * against openssl-made images in test_image.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flash_file.h"
#include "fota/boot.h"
#include "fota/crypto.h"
#include "fota/image.h"
#include "fota/image_build.h"

#include "test_util.h"

#define SEC 4096u
#define ALIGN 8u
#define SLOT_SECS 4u
#define FLASH_SIZE ((2u + 2u * SLOT_SECS) * SEC)
#define SLOT_SIZE (SLOT_SECS * SEC)
#define HW "board-rev1"
#define IMG_MAX SLOT_SIZE
#define PAYLOAD 5001u           /* two sectors, not a multiple of the write unit */

/* ---- keys and images ------------------------------------------------------ */

static fota_privkey *priv_good;
static fota_privkey *priv_other;
static struct fota_image_signer key_good;      /* trusted by the device */
static struct fota_image_signer key_other;     /* not trusted */
static struct fota_image_key trusted;

static int group_setup(void **state)
{
    (void)state;
    if (fota_privkey_generate(FOTA_KEY_ED25519, &priv_good) != FOTA_OK ||
        fota_privkey_generate(FOTA_KEY_ECDSA_P256, &priv_other) != FOTA_OK ||
        fota_image_signer_init(priv_good, &key_good) != FOTA_OK ||
        fota_image_signer_init(priv_other, &key_other) != FOTA_OK)
        return -1;
    trusted.key = key_good.pub;
    memcpy(trusted.id, key_good.id, sizeof trusted.id);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fota_image_signer_clear(&key_good);
    fota_image_signer_clear(&key_other);
    fota_privkey_free(priv_good);
    fota_privkey_free(priv_other);
    return 0;
}

struct image {
    uint8_t buf[IMG_MAX];
    uint32_t len;
    uint32_t counter;
};

/* Header + payload (a pattern) + trailer with the SHA-256 record and one
 * signature by signer (libfota's builder). */
static void build_image(struct image *img, const struct fota_image_signer *signer,
                        uint32_t counter, uint16_t minor, const char *hw, uint32_t payload_len)
{
    struct fota_image_header h;
    size_t len = 0;

    memset(&h, 0, sizeof h);
    h.security_counter = counter;
    h.major = 1;
    h.minor = minor;
    h.patch = 0;
    h.build = 100 + minor;
    h.payload_len = payload_len;
    snprintf(h.hardware_id, sizeof h.hardware_id, "%s", hw);
    assert_true(FOTA_IMAGE_HEADER_LEN + payload_len <= IMG_MAX);
    for (uint32_t i = 0; i < payload_len; i++)
        img->buf[FOTA_IMAGE_HEADER_LEN + i] = (uint8_t)(i * 31u + minor);
    assert_int_equal(fota_image_build(&h, signer, 1, img->buf, IMG_MAX, &len, NULL), FOTA_OK);
    img->len = (uint32_t)len;
    img->counter = counter;
}

static void good_image(struct image *img, uint32_t counter, uint16_t minor)
{
    build_image(img, &key_good, counter, minor, HW, PAYLOAD);
}

/* ---- the device ----------------------------------------------------------- */

struct fx {
    struct fota_flash_sim *sim;
    struct fota_device dev;
    uint8_t scratch[1024];
    struct image img[3];        /* scratch images for the tests */
};

static int fx_setup(void **state)
{
    struct fota_flash_geometry g = {FLASH_SIZE, SEC, ALIGN, 0xff};
    struct fx *fx = calloc(1, sizeof *fx);

    if (fx == NULL || fota_flash_mem_create(&g, &fx->sim) != FOTA_OK)
        return -1;
    if (fota_flash_default_layout(fota_flash_sim_dev(fx->sim), 0, fx->dev.state, fx->dev.slot) !=
        FOTA_OK)
        return -1;
    fx->dev.keys = &trusted;
    fx->dev.n_keys = 1;
    fx->dev.threshold = 1;
    fx->dev.hardware_id = HW;
    fx->dev.trial_attempts = 0;
    fx->dev.scratch = fx->scratch;
    fx->dev.scratch_len = sizeof fx->scratch;
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;

    fota_flash_sim_close(fx->sim);
    free(fx);
    return 0;
}

/* Put an image into a slot as the factory (or a test) would: raw, without
 * the flash rules or the counters. */
static void place(struct fx *fx, int slot, const struct image *img)
{
    static uint8_t erased[SLOT_SIZE];

    memset(erased, 0xff, sizeof erased);
    assert_int_equal(fota_flash_sim_poke(fx->sim, fx->dev.slot[slot].off, erased, SLOT_SIZE),
                     FOTA_OK);
    assert_int_equal(fota_flash_sim_poke(fx->sim, fx->dev.slot[slot].off, img->buf, img->len),
                     FOTA_OK);
}

/* Flip one payload byte of the image in a slot. */
static void corrupt(struct fx *fx, int slot)
{
    uint32_t off = fx->dev.slot[slot].off + FOTA_IMAGE_HEADER_LEN + 100;
    uint8_t b = (uint8_t)(fota_flash_sim_data(fx->sim)[off] ^ 0x01);

    assert_int_equal(fota_flash_sim_poke(fx->sim, off, &b, 1), FOTA_OK);
}

static void set_state(struct fx *fx, int active, int pending, int attempts, int trial,
                      uint32_t counter)
{
    struct fota_boot_state st = {0};

    st.active = (uint8_t)active;
    st.pending = (uint8_t)pending;
    st.attempts_left = (uint8_t)attempts;
    st.trial = (uint8_t)trial;
    st.security_counter = counter;
    assert_int_equal(fota_boot_state_store(&fx->dev, &st), FOTA_OK);
}

static struct fota_boot_state get_state(struct fx *fx)
{
    struct fota_boot_state st;

    assert_int_equal(fota_boot_state_load(&fx->dev, &st), FOTA_OK);
    return st;
}

static void assert_state(struct fx *fx, int active, int pending, int attempts, int trial,
                         uint32_t counter)
{
    struct fota_boot_state st = get_state(fx);

    assert_int_equal(st.active, active);
    assert_int_equal(st.pending, pending);
    assert_int_equal(st.attempts_left, attempts);
    assert_int_equal(st.trial, trial);
    assert_int_equal(st.security_counter, counter);
}

static uint64_t flash_ops(struct fx *fx)
{
    struct fota_flash_stats s;

    fota_flash_sim_stats(fx->sim, &s);
    return s.writes + s.erases;
}

/* A: version 1.0 counter 1 (active, confirmed); B: 1.1 counter 2. */
static void two_images(struct fx *fx)
{
    good_image(&fx->img[0], 1, 0);
    good_image(&fx->img[1], 2, 1);
    place(fx, 0, &fx->img[0]);
    place(fx, 1, &fx->img[1]);
}

/* ---- the record ----------------------------------------------------------- */

/* Expected bytes computed with Python's zlib.crc32 and struct.pack, not with
 * our encoder. */
static const uint8_t record_vector[FOTA_BOOT_STATE_LEN] = {
    0x46, 0x42, 0x53, 0x54, 0x04, 0x03, 0x02, 0x01, 0x01, 0x01, 0x02, 0x01, 0x0d, 0x0c, 0x0b, 0x0a,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x6b, 0xc4, 0x16, 0xb4};
/* seq 7, sc 3, reserved byte 27 = 1, with a valid CRC. */
static const uint8_t record_reserved[FOTA_BOOT_STATE_LEN] = {
    0x46, 0x42, 0x53, 0x54, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xac, 0x37, 0x87, 0x7c};

static void test_record_encode_decode(void **state)
{
    struct fota_boot_state st = {.seq = 0x01020304, .active = 1, .pending = 1,
                                 .attempts_left = 2, .trial = 1,
                                 .security_counter = 0x0a0b0c0d};
    struct fota_boot_state back;
    uint8_t raw[FOTA_BOOT_STATE_LEN];

    (void)state;
    fota_boot_state_encode(&st, raw);
    assert_memory_equal(raw, record_vector, sizeof raw);
    assert_int_equal(fota_boot_state_decode(record_vector, &back), FOTA_OK);
    assert_memory_equal(&back, &st, sizeof st);
}

static void test_record_rejects(void **state)
{
    struct fota_boot_state st = {.seq = 5, .security_counter = 9};
    struct fota_boot_state back = {.seq = 77};
    uint8_t raw[FOTA_BOOT_STATE_LEN];

    (void)state;
    /* bad magic */
    memcpy(raw, record_vector, sizeof raw);
    raw[0] ^= 0x20;
    assert_int_equal(fota_boot_state_decode(raw, &back), FOTA_E_PARSE);
    /* any flipped bit breaks the CRC */
    for (size_t i = 4; i < FOTA_BOOT_STATE_LEN; i++) {
        memcpy(raw, record_vector, sizeof raw);
        raw[i] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(fota_boot_state_decode(raw, &back), FOTA_E_PARSE);
    }
    /* erased flash */
    memset(raw, 0xff, sizeof raw);
    assert_int_equal(fota_boot_state_decode(raw, &back), FOTA_E_PARSE);
    /* reserved bytes set, CRC valid */
    assert_int_equal(fota_boot_state_decode(record_reserved, &back), FOTA_E_PARSE);
    /* ranges, CRC valid (our encoder does not police them) */
    st.active = 2;
    fota_boot_state_encode(&st, raw);
    assert_int_equal(fota_boot_state_decode(raw, &back), FOTA_E_PARSE);
    st.active = 0;
    st.pending = 2;
    fota_boot_state_encode(&st, raw);
    assert_int_equal(fota_boot_state_decode(raw, &back), FOTA_E_PARSE);
    st.pending = 0;
    st.trial = 1;          /* trial without a pending image */
    fota_boot_state_encode(&st, raw);
    assert_int_equal(fota_boot_state_decode(raw, &back), FOTA_E_PARSE);
    st.trial = 2;
    st.pending = 1;
    fota_boot_state_encode(&st, raw);
    assert_int_equal(fota_boot_state_decode(raw, &back), FOTA_E_PARSE);
    assert_int_equal(back.seq, 77);   /* untouched by every failure */
}

/* ---- the two copies ------------------------------------------------------- */

static void write_copy(struct fx *fx, int copy, const struct fota_boot_state *st, int break_crc)
{
    uint8_t raw[FOTA_BOOT_STATE_LEN];

    fota_boot_state_encode(st, raw);
    if (break_crc)
        raw[31] ^= 0xff;
    assert_int_equal(fota_flash_sim_poke(fx->sim, fx->dev.state[copy].off, raw, sizeof raw),
                     FOTA_OK);
}

static void test_load_factory(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_state st = {.seq = 9, .active = 1, .security_counter = 4};

    assert_state(fx, 0, 0, 0, 0, 0);
    assert_int_equal(get_state(fx).seq, 0);
    /* Garbage in both copies is the same as nothing. */
    write_copy(fx, 0, &st, 1);
    write_copy(fx, 1, &st, 1);
    assert_state(fx, 0, 0, 0, 0, 0);
}

static void test_load_newest_wins(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_state a = {.seq = 4, .active = 0, .security_counter = 1};
    struct fota_boot_state b = {.seq = 5, .active = 1, .security_counter = 2};

    write_copy(fx, 0, &a, 0);
    write_copy(fx, 1, &b, 0);
    assert_int_equal(get_state(fx).seq, 5);
    assert_int_equal(get_state(fx).active, 1);
    write_copy(fx, 0, &b, 0);
    write_copy(fx, 1, &a, 0);
    assert_int_equal(get_state(fx).seq, 5);
    /* A newer copy that fails its CRC is ignored. */
    b.seq = 6;
    write_copy(fx, 1, &b, 1);
    assert_int_equal(get_state(fx).seq, 5);
    /* Only one valid copy: that one. */
    memset(&b, 0, sizeof b);
    write_copy(fx, 0, &b, 1);
    write_copy(fx, 1, &a, 0);
    assert_int_equal(get_state(fx).seq, 4);
}

static void test_store_alternates(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_state st = {.active = 1, .security_counter = 3};
    struct fota_boot_state raw_st;
    const uint8_t *mem = fota_flash_sim_data(fx->sim);

    assert_int_equal(fota_boot_state_store(&fx->dev, &st), FOTA_OK);
    assert_int_equal(st.seq, 1);
    /* factory: nothing valid, the first store goes to copy 0 */
    assert_int_equal(fota_boot_state_decode(mem + fx->dev.state[0].off, &raw_st), FOTA_OK);
    assert_int_equal(raw_st.seq, 1);
    st.security_counter = 4;
    assert_int_equal(fota_boot_state_store(&fx->dev, &st), FOTA_OK);
    assert_int_equal(fota_boot_state_decode(mem + fx->dev.state[1].off, &raw_st), FOTA_OK);
    assert_int_equal(raw_st.seq, 2);
    st.security_counter = 5;
    assert_int_equal(fota_boot_state_store(&fx->dev, &st), FOTA_OK);
    assert_int_equal(fota_boot_state_decode(mem + fx->dev.state[0].off, &raw_st), FOTA_OK);
    assert_int_equal(raw_st.seq, 3);
    assert_state(fx, 1, 0, 0, 0, 5);
    /* the padding of the write unit is left erased */
    for (uint32_t i = FOTA_BOOT_STATE_LEN; i < SEC; i++)
        assert_int_equal(mem[fx->dev.state[0].off + i], 0xff);
    /* An inconsistent state is refused before anything is written. */
    st.trial = 1;
    st.pending = 0;
    assert_int_equal(fota_boot_state_store(&fx->dev, &st), FOTA_E_INVALID);
    assert_int_equal(get_state(fx).seq, 3);
}

/* A store is one erase and one write; cut either, in either mode, with many
 * seeds: the previous state stays the state, and the next store works. */
static void test_torn_store_keeps_previous(void **state)
{
    struct fx *fx = *state;
    uint8_t *snap = malloc(FLASH_SIZE);

    assert_non_null(snap);
    set_state(fx, 0, 0, 0, 0, 1);
    set_state(fx, 1, 0, 0, 0, 2);     /* seq 2, in copy 1; copy 0 holds seq 1 */
    assert_int_equal(fota_flash_sim_snapshot(fx->sim, snap, FLASH_SIZE), FOTA_OK);
    for (int mode = 0; mode < 2; mode++) {
        for (uint64_t op = 1; op <= 2; op++) {
            for (uint64_t seed = 1; seed <= 25; seed++) {
                struct fota_boot_state st = {.active = 0, .pending = 1, .attempts_left = 3,
                                             .security_counter = 7};

                assert_int_equal(fota_flash_sim_restore(fx->sim, snap, FLASH_SIZE), FOTA_OK);
                fota_flash_sim_seed(fx->sim, seed);
                fota_flash_sim_cut_after(fx->sim, op, (enum fota_flash_cut_mode)mode);
                assert_int_equal(fota_boot_state_store(&fx->dev, &st), FOTA_E_POWER);
                fota_flash_sim_power_on(fx->sim);
                assert_state(fx, 1, 0, 0, 0, 2);
                assert_int_equal(get_state(fx).seq, 2);
                /* and the retried store lands */
                assert_int_equal(fota_boot_state_store(&fx->dev, &st), FOTA_OK);
                assert_state(fx, 0, 1, 3, 0, 7);
                assert_int_equal(get_state(fx).seq, 3);
            }
        }
    }
    free(snap);
}

static void test_device_checked(void **state)
{
    struct fx *fx = *state;
    struct fota_device d = fx->dev;
    struct fota_boot_decision dec;
    struct fota_boot_state st;

    d.scratch_len = 100;
    assert_int_equal(fota_boot(&d, &dec), FOTA_E_INVALID);
    d = fx->dev;
    d.slot[1] = d.slot[0];           /* overlapping areas */
    assert_int_equal(fota_boot_state_load(&d, &st), FOTA_E_INVALID);
    d = fx->dev;
    d.threshold = 0;
    assert_int_equal(fota_boot_confirm(&d), FOTA_E_INVALID);
    d = fx->dev;
    d.trial_attempts = 256;
    assert_int_equal(fota_boot_rollback(&d), FOTA_E_INVALID);
    assert_int_equal(fota_boot(NULL, &dec), FOTA_E_INVALID);
    assert_int_equal(fota_boot(&fx->dev, NULL), FOTA_E_INVALID);
}

static void test_reason_names(void **state)
{
    (void)state;
    assert_string_equal(fota_boot_reason_name(FOTA_BOOT_CONFIRMED), "confirmed");
    assert_string_equal(fota_boot_reason_name(FOTA_BOOT_TRIAL), "trial");
    assert_string_equal(fota_boot_reason_name(FOTA_BOOT_REVERTED_ATTEMPTS), "reverted-attempts");
    assert_string_equal(fota_boot_reason_name(FOTA_BOOT_REVERTED_INVALID), "reverted-invalid");
    assert_string_equal(fota_boot_reason_name(FOTA_BOOT_FALLBACK), "fallback");
    assert_string_equal(fota_boot_reason_name((enum fota_boot_reason)99), "unknown");
}

/* ---- fota_boot: the table of docs/boot.md, row by row ---------------------- */

/* Row 1: no valid state copy -> factory state (active A), then on as below. */
static void test_row1_factory_boots_a(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    two_images(fx);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 0);
    assert_int_equal(dec.reason, FOTA_BOOT_CONFIRMED);
    assert_int_equal(dec.state.seq, 0);
    assert_int_equal(dec.image.header.security_counter, 1);
    assert_int_equal(dec.rejected, FOTA_OK);
    assert_int_equal(flash_ops(fx), 0);      /* nothing stored */
}

/* Row 2: pending, no attempts left -> store the revert, boot active. */
static void test_row2_attempts_exhausted(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    two_images(fx);
    set_state(fx, 0, 1, 0, 1, 1);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 0);
    assert_int_equal(dec.reason, FOTA_BOOT_REVERTED_ATTEMPTS);
    assert_int_equal(dec.state.pending, 0);
    assert_state(fx, 0, 0, 0, 0, 1);
    /* and the next power-on is an ordinary one */
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.reason, FOTA_BOOT_CONFIRMED);
}

/* Row 3: pending, attempts left, image verifies -> count the attempt, trial. */
static void test_row3_trial(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    two_images(fx);
    set_state(fx, 0, 1, 3, 0, 1);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 1);
    assert_int_equal(dec.reason, FOTA_BOOT_TRIAL);
    assert_int_equal(dec.image.header.security_counter, 2);
    assert_int_equal(dec.image.header.minor, 1);
    assert_int_equal(dec.state.attempts_left, 2);
    assert_int_equal(dec.state.trial, 1);
    assert_state(fx, 0, 1, 2, 1, 1);       /* stored before returning */
}

/* Row 3 repeated until row 2: the attempts run out and the device reverts. */
static void test_attempts_run_out(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    two_images(fx);
    fx->dev.trial_attempts = 2;
    set_state(fx, 0, 1, 2, 0, 1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
        assert_int_equal(dec.slot, 1);
        assert_int_equal(dec.reason, FOTA_BOOT_TRIAL);
        assert_int_equal(dec.state.attempts_left, 1 - i);
    }
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 0);
    assert_int_equal(dec.reason, FOTA_BOOT_REVERTED_ATTEMPTS);
    assert_state(fx, 0, 0, 0, 0, 1);
}

static void expect_reverted_invalid(struct fx *fx, fota_err why)
{
    struct fota_boot_decision dec;

    set_state(fx, 0, 1, 3, 0, 1);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 0);
    assert_int_equal(dec.reason, FOTA_BOOT_REVERTED_INVALID);
    assert_int_equal(dec.rejected, why);
    assert_int_equal(dec.image.header.security_counter, 1);
    assert_state(fx, 0, 0, 0, 0, 1);
}

/* Row 4: pending image fails verification -> store the revert, boot active. */
static void test_row4_pending_corrupt(void **state)
{
    struct fx *fx = *state;

    two_images(fx);
    corrupt(fx, 1);
    expect_reverted_invalid(fx, FOTA_E_HASH);
}

static void test_row4_pending_unsigned(void **state)
{
    struct fx *fx = *state;

    two_images(fx);
    build_image(&fx->img[2], &key_other, 2, 1, HW, PAYLOAD);
    place(fx, 1, &fx->img[2]);
    expect_reverted_invalid(fx, FOTA_E_THRESHOLD);
}

static void test_row4_pending_lower_counter(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    /* Stored counter 3; A carries 3, pending B only 2. */
    good_image(&fx->img[0], 3, 0);
    good_image(&fx->img[1], 2, 1);
    place(fx, 0, &fx->img[0]);
    place(fx, 1, &fx->img[1]);
    set_state(fx, 0, 1, 3, 0, 3);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 0);
    assert_int_equal(dec.reason, FOTA_BOOT_REVERTED_INVALID);
    assert_int_equal(dec.rejected, FOTA_E_ROLLBACK);
    assert_state(fx, 0, 0, 0, 0, 3);
}

static void test_row4_pending_wrong_hardware(void **state)
{
    struct fx *fx = *state;

    two_images(fx);
    build_image(&fx->img[2], &key_good, 2, 1, "other-board", PAYLOAD);
    place(fx, 1, &fx->img[2]);
    expect_reverted_invalid(fx, FOTA_E_HARDWARE);
}

/* Row 4 then 5 fails too: never fall back to the image just refused. */
static void test_row4_both_bad(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    two_images(fx);
    corrupt(fx, 0);
    corrupt(fx, 1);
    set_state(fx, 0, 1, 3, 0, 1);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_E_NO_IMAGE);
    assert_state(fx, 0, 0, 0, 0, 1);
}

/* Row 5: nothing pending, active verifies -> boot it, no write. */
static void test_row5_confirmed_no_write(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    two_images(fx);
    set_state(fx, 1, 0, 0, 0, 2);
    fota_flash_sim_reset_stats(fx->sim);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
        assert_int_equal(dec.slot, 1);
        assert_int_equal(dec.reason, FOTA_BOOT_CONFIRMED);
    }
    assert_int_equal(flash_ops(fx), 0);
}

/* Row 6: active fails, other verifies -> store it as active, boot it. */
static void test_row6_fallback(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    two_images(fx);
    set_state(fx, 0, 0, 0, 0, 1);
    corrupt(fx, 0);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 1);
    assert_int_equal(dec.reason, FOTA_BOOT_FALLBACK);
    assert_int_equal(dec.rejected, FOTA_E_HASH);
    assert_state(fx, 1, 0, 0, 0, 1);
    /* the counter is not raised by a fallback: only confirm raises it */
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.reason, FOTA_BOOT_CONFIRMED);
    assert_int_equal(dec.slot, 1);
}

/* Row 6 after row 2: the active image is gone, the one that ran out of
 * attempts still verifies: better that than nothing. */
static void test_row6_after_revert(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    two_images(fx);
    set_state(fx, 0, 1, 0, 1, 1);
    corrupt(fx, 0);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 1);
    assert_int_equal(dec.reason, FOTA_BOOT_FALLBACK);
    assert_state(fx, 1, 0, 0, 0, 1);
}

/* Row 6 with an active image below the stored counter. */
static void test_row6_active_below_counter(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    two_images(fx);
    set_state(fx, 0, 0, 0, 0, 2);       /* A carries 1 */
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 1);
    assert_int_equal(dec.reason, FOTA_BOOT_FALLBACK);
    assert_int_equal(dec.rejected, FOTA_E_ROLLBACK);
}

/* Row 7: neither slot verifies -> FOTA_E_NO_IMAGE, no write. */
static void test_row7_no_image(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec = {.slot = 42};

    two_images(fx);
    set_state(fx, 0, 0, 0, 0, 1);
    corrupt(fx, 0);
    corrupt(fx, 1);
    fota_flash_sim_reset_stats(fx->sim);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_E_NO_IMAGE);
    assert_int_equal(dec.slot, 42);
    assert_int_equal(flash_ops(fx), 0);
    /* a new device: every byte erased */
    {
        static uint8_t erased[FLASH_SIZE];

        memset(erased, 0xff, sizeof erased);
        assert_int_equal(fota_flash_sim_restore(fx->sim, erased, FLASH_SIZE), FOTA_OK);
    }
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_E_NO_IMAGE);
    assert_int_equal(flash_ops(fx), 0);
}

/* A power cut while the boot decision stores its state: no decision, and the
 * next power-on decides from the previous state. */
static void test_boot_cut_during_store(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    two_images(fx);
    set_state(fx, 0, 1, 3, 0, 1);
    fota_flash_sim_cut_after(fx->sim, 2, FOTA_FLASH_CUT_TORN);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_E_POWER);
    fota_flash_sim_power_on(fx->sim);
    assert_state(fx, 0, 1, 3, 0, 1);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.reason, FOTA_BOOT_TRIAL);
    assert_int_equal(dec.state.attempts_left, 2);
}

/* ---- confirm -------------------------------------------------------------- */

static void test_confirm_raises_counter(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    two_images(fx);
    set_state(fx, 0, 1, 3, 0, 1);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.reason, FOTA_BOOT_TRIAL);
    assert_int_equal(fota_boot_confirm(&fx->dev), FOTA_OK);
    assert_state(fx, 1, 0, 0, 0, 2);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 1);
    assert_int_equal(dec.reason, FOTA_BOOT_CONFIRMED);
    /* A confirm with nothing on trial writes nothing. */
    fota_flash_sim_reset_stats(fx->sim);
    assert_int_equal(fota_boot_confirm(&fx->dev), FOTA_OK);
    assert_int_equal(flash_ops(fx), 0);
}

static void test_confirm_never_lowers_counter(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_state st;

    two_images(fx);
    /* stored counter 2 already; B carries 2: stays 2 (and a pending image
     * that is not on trial is not confirmed) */
    set_state(fx, 0, 1, 3, 0, 2);
    fota_flash_sim_reset_stats(fx->sim);
    assert_int_equal(fota_boot_confirm(&fx->dev), FOTA_OK);
    assert_int_equal(flash_ops(fx), 0);
    st = get_state(fx);
    assert_int_equal(st.pending, 1);
    set_state(fx, 0, 1, 2, 1, 2);
    assert_int_equal(fota_boot_confirm(&fx->dev), FOTA_OK);
    assert_state(fx, 1, 0, 0, 0, 2);
}

static void test_confirm_refuses_bad_trial_image(void **state)
{
    struct fx *fx = *state;

    two_images(fx);
    set_state(fx, 0, 1, 2, 1, 1);
    corrupt(fx, 1);
    fota_flash_sim_reset_stats(fx->sim);
    assert_int_equal(fota_boot_confirm(&fx->dev), FOTA_E_HASH);
    assert_int_equal(flash_ops(fx), 0);
    assert_state(fx, 0, 1, 2, 1, 1);
}

/* ---- rollback ------------------------------------------------------------- */

static void test_rollback_allowed(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    two_images(fx);
    set_state(fx, 1, 0, 0, 0, 1);        /* B active, A (counter 1) still allowed */
    assert_int_equal(fota_boot_rollback(&fx->dev), FOTA_OK);
    assert_state(fx, 0, 0, 0, 0, 1);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 0);
    assert_int_equal(dec.reason, FOTA_BOOT_CONFIRMED);
}

static void test_rollback_refused_below_counter(void **state)
{
    struct fx *fx = *state;

    two_images(fx);
    set_state(fx, 0, 1, 3, 0, 1);
    assert_int_equal(fota_boot_confirm(&fx->dev), FOTA_OK);  /* not on trial yet: no-op */
    set_state(fx, 0, 1, 2, 1, 1);
    assert_int_equal(fota_boot_confirm(&fx->dev), FOTA_OK);  /* B confirmed, counter 2 */
    assert_state(fx, 1, 0, 0, 0, 2);
    fota_flash_sim_reset_stats(fx->sim);
    assert_int_equal(fota_boot_rollback(&fx->dev), FOTA_E_ROLLBACK);
    assert_int_equal(flash_ops(fx), 0);
    assert_state(fx, 1, 0, 0, 0, 2);
}

static void test_rollback_refused_during_trial(void **state)
{
    struct fx *fx = *state;

    two_images(fx);
    set_state(fx, 0, 1, 2, 1, 1);
    assert_int_equal(fota_boot_rollback(&fx->dev), FOTA_E_STATE);
    assert_state(fx, 0, 1, 2, 1, 1);
}

static void test_rollback_refused_while_pending(void **state)
{
    struct fx *fx = *state;

    two_images(fx);
    set_state(fx, 0, 1, 3, 0, 1);        /* B installed, pending, not tried yet */
    fota_flash_sim_reset_stats(fx->sim);
    assert_int_equal(fota_boot_rollback(&fx->dev), FOTA_E_STATE);
    assert_int_equal(flash_ops(fx), 0);
    assert_state(fx, 0, 1, 3, 0, 1);
}

static void test_rollback_refused_bad_image(void **state)
{
    struct fx *fx = *state;

    good_image(&fx->img[0], 1, 0);
    place(fx, 0, &fx->img[0]);
    set_state(fx, 0, 0, 0, 0, 1);
    assert_int_equal(fota_boot_rollback(&fx->dev), FOTA_E_PARSE);   /* slot B erased */
    two_images(fx);
    corrupt(fx, 1);
    assert_int_equal(fota_boot_rollback(&fx->dev), FOTA_E_HASH);
    assert_state(fx, 0, 0, 0, 0, 1);
}

/* ---- install -------------------------------------------------------------- */

/* Feed img in pieces of the given sizes (cycled). */
static fota_err feed(struct fota_install *in, const struct image *img, const size_t *sizes,
                     size_t n_sizes)
{
    uint32_t off = 0;
    size_t k = 0;
    fota_err err = FOTA_OK;

    while (off < img->len && err == FOTA_OK) {
        size_t n = sizes[k++ % n_sizes];

        if (n > img->len - off)
            n = img->len - off;
        err = fota_install_write(in, img->buf + off, n);
        off += (uint32_t)n;
    }
    return err;
}

static void sha_of(const struct image *img, uint8_t out[32])
{
    uint8_t d[FOTA_HASH_MAX_LEN];

    assert_int_equal(fota_hash(FOTA_HASH_SHA256, img->buf, img->len, d), FOTA_OK);
    memcpy(out, d, 32);
}

static void test_install_ok(void **state)
{
    static const size_t sizes[] = {1, 7, 13, 4096, 333, 8, 64};
    struct fx *fx = *state;
    struct fota_install in;
    struct fota_image_info info;
    struct fota_boot_decision dec;
    uint8_t sha[32];

    good_image(&fx->img[0], 1, 0);
    good_image(&fx->img[1], 2, 1);
    place(fx, 0, &fx->img[0]);
    /* slot B holds garbage from before: the install erases ahead */
    build_image(&fx->img[2], &key_other, 9, 9, HW, 3 * SEC);
    place(fx, 1, &fx->img[2]);
    sha_of(&fx->img[1], sha);
    assert_int_equal(fota_install_begin(&in, &fx->dev, fx->img[1].len, sha), FOTA_OK);
    assert_int_equal(in.slot, 1);
    assert_int_equal(feed(&in, &fx->img[1], sizes, TU_ARRAY_LEN(sizes)), FOTA_OK);
    assert_int_equal(fota_install_finish(&in, &info), FOTA_OK);
    assert_int_equal(info.header.security_counter, 2);
    assert_int_equal(info.total_len, fx->img[1].len);
    assert_memory_equal(fota_flash_sim_data(fx->sim) + fx->dev.slot[1].off, fx->img[1].buf,
                        fx->img[1].len);
    assert_state(fx, 0, 1, FOTA_BOOT_ATTEMPTS_DEFAULT, 0, 0);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 1);
    assert_int_equal(dec.reason, FOTA_BOOT_TRIAL);
    assert_int_equal(fota_install_write(&in, "x", 1), FOTA_E_STATE);   /* closed */
}

static void test_install_attempts_configured(void **state)
{
    static const size_t sizes[] = {4096};
    struct fx *fx = *state;
    struct fota_install in;
    uint8_t sha[32];

    good_image(&fx->img[1], 2, 1);
    fx->dev.trial_attempts = 5;
    sha_of(&fx->img[1], sha);
    assert_int_equal(fota_install_begin(&in, &fx->dev, fx->img[1].len, sha), FOTA_OK);
    assert_int_equal(feed(&in, &fx->img[1], sizes, 1), FOTA_OK);
    assert_int_equal(fota_install_finish(&in, NULL), FOTA_OK);
    assert_state(fx, 0, 1, 5, 0, 0);
}

static void test_install_refused_during_trial(void **state)
{
    struct fx *fx = *state;
    struct fota_install in;
    uint8_t sha[32] = {0};

    two_images(fx);
    set_state(fx, 0, 1, 2, 1, 1);
    fota_flash_sim_reset_stats(fx->sim);
    assert_int_equal(fota_install_begin(&in, &fx->dev, 1000, sha), FOTA_E_STATE);
    assert_int_equal(flash_ops(fx), 0);
    assert_state(fx, 0, 1, 2, 1, 1);
}

static void test_install_length_checked(void **state)
{
    static const size_t sizes[] = {1000};
    struct fx *fx = *state;
    struct fota_install in;
    struct image *img = &fx->img[1];
    uint8_t sha[32];

    good_image(img, 2, 1);
    sha_of(img, sha);
    assert_int_equal(fota_install_begin(&in, &fx->dev, SLOT_SIZE + 1, sha), FOTA_E_LENGTH);
    assert_int_equal(fota_install_begin(&in, &fx->dev, FOTA_IMAGE_HEADER_LEN - 1, sha),
                     FOTA_E_LENGTH);
    /* more than announced: refused as soon as it arrives */
    assert_int_equal(fota_install_begin(&in, &fx->dev, img->len - 10, sha), FOTA_OK);
    assert_int_equal(feed(&in, img, sizes, 1), FOTA_E_LENGTH);
    assert_int_equal(fota_install_finish(&in, NULL), FOTA_E_STATE);
    assert_state(fx, 0, 0, 0, 0, 0);
    /* fewer than announced */
    assert_int_equal(fota_install_begin(&in, &fx->dev, img->len + 10, sha), FOTA_OK);
    assert_int_equal(feed(&in, img, sizes, 1), FOTA_OK);
    assert_int_equal(fota_install_finish(&in, NULL), FOTA_E_LENGTH);
    assert_state(fx, 0, 0, 0, 0, 0);
}

static void test_install_hash_checked(void **state)
{
    static const size_t sizes[] = {512};
    struct fx *fx = *state;
    struct fota_install in;
    struct image *img = &fx->img[1];
    uint8_t sha[32];

    good_image(img, 2, 1);
    sha_of(img, sha);
    sha[31] ^= 1;
    assert_int_equal(fota_install_begin(&in, &fx->dev, img->len, sha), FOTA_OK);
    assert_int_equal(feed(&in, img, sizes, 1), FOTA_OK);
    assert_int_equal(fota_install_finish(&in, NULL), FOTA_E_HASH);
    assert_state(fx, 0, 0, 0, 0, 0);
}

/* The SHA-256 from metadata matches, but the image itself is not one the
 * device trusts: no pending mark. */
static void install_expect(struct fx *fx, struct image *img, fota_err want)
{
    static const size_t sizes[] = {4096};
    struct fota_install in;
    uint8_t sha[32];

    sha_of(img, sha);
    assert_int_equal(fota_install_begin(&in, &fx->dev, img->len, sha), FOTA_OK);
    assert_int_equal(feed(&in, img, sizes, 1), FOTA_OK);
    assert_int_equal(fota_install_finish(&in, NULL), want);
    assert_int_equal(get_state(fx).pending, want == FOTA_OK);
}

static void test_install_verification_checked(void **state)
{
    struct fx *fx = *state;

    good_image(&fx->img[0], 2, 0);
    place(fx, 0, &fx->img[0]);
    set_state(fx, 0, 0, 0, 0, 2);
    build_image(&fx->img[1], &key_other, 3, 1, HW, PAYLOAD);
    install_expect(fx, &fx->img[1], FOTA_E_THRESHOLD);
    build_image(&fx->img[1], &key_good, 3, 1, "other-board", PAYLOAD);
    install_expect(fx, &fx->img[1], FOTA_E_HARDWARE);
    build_image(&fx->img[1], &key_good, 1, 1, HW, PAYLOAD);
    install_expect(fx, &fx->img[1], FOTA_E_ROLLBACK);
    /* and a good one still goes through afterwards */
    build_image(&fx->img[1], &key_good, 2, 1, HW, PAYLOAD);
    install_expect(fx, &fx->img[1], FOTA_OK);
    assert_int_equal(fota_install_begin(NULL, &fx->dev, 100, fx->img[1].buf), FOTA_E_INVALID);
}

/* A pending image is un-marked before its slot is overwritten. */
static void test_install_unmarks_pending_first(void **state)
{
    static const size_t sizes[] = {4096};
    struct fx *fx = *state;
    struct fota_install in;
    struct fota_boot_decision dec;
    uint8_t sha[32];

    two_images(fx);
    set_state(fx, 0, 1, 3, 0, 1);
    good_image(&fx->img[2], 3, 2);
    sha_of(&fx->img[2], sha);
    assert_int_equal(fota_install_begin(&in, &fx->dev, fx->img[2].len, sha), FOTA_OK);
    assert_state(fx, 0, 0, 0, 0, 1);
    /* half written, then abandoned: the device boots A, not half of B */
    assert_int_equal(fota_install_write(&in, fx->img[2].buf, 3000), FOTA_OK);
    fota_install_abort(&in);
    assert_int_equal(fota_install_finish(&in, NULL), FOTA_E_STATE);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 0);
    assert_int_equal(dec.reason, FOTA_BOOT_CONFIRMED);
    /* a new attempt completes */
    assert_int_equal(fota_install_begin(&in, &fx->dev, fx->img[2].len, sha), FOTA_OK);
    assert_int_equal(feed(&in, &fx->img[2], sizes, 1), FOTA_OK);
    assert_int_equal(fota_install_finish(&in, NULL), FOTA_OK);
    assert_state(fx, 0, 1, 3, 0, 1);
}

/* The flash cost of one update: install, trial boot, confirm. Printed for
 * docs/boot.md; the exact figures are asserted for the 1 MiB case so that a
 * change in the write pattern is noticed. */
static void test_update_cost_1mib(void **state)
{
    static const size_t sizes[] = {4096};
    const uint32_t payload = 1u << 20;
    const uint32_t slot = payload + 4 * SEC;
    struct fota_flash_geometry g = {2 * SEC + 2 * slot, SEC, ALIGN, 0xff};
    struct fota_flash_sim *sim = NULL;
    struct fota_device dev;
    struct fota_install in;
    struct fota_boot_decision dec;
    struct fota_flash_stats s;
    uint32_t img_len = 0;
    uint8_t *buf = malloc(payload + 1024);
    uint8_t scratch[4096];
    uint8_t sha[32];
    uint64_t w_install, e_install, w_boot, e_boot;

    (void)state;
    assert_non_null(buf);
    assert_int_equal(fota_flash_mem_create(&g, &sim), FOTA_OK);
    memset(&dev, 0, sizeof dev);
    assert_int_equal(fota_flash_default_layout(fota_flash_sim_dev(sim), slot, dev.state, dev.slot),
                     FOTA_OK);
    dev.keys = &trusted;
    dev.n_keys = 1;
    dev.threshold = 1;
    dev.hardware_id = HW;
    dev.scratch = scratch;
    dev.scratch_len = sizeof scratch;

    /* a 1 MiB-payload image */
    {
        struct fota_image_header h = {0};
        size_t len = 0;

        h.security_counter = 2;
        h.major = 2;
        h.payload_len = payload;
        snprintf(h.hardware_id, sizeof h.hardware_id, "%s", HW);
        for (uint32_t i = 0; i < payload; i++)
            buf[FOTA_IMAGE_HEADER_LEN + i] = (uint8_t)(i * 13u);
        assert_int_equal(fota_image_build(&h, &key_good, 1, buf, payload + 1024, &len, NULL),
                         FOTA_OK);
        img_len = (uint32_t)len;
    }
    {
        uint8_t d[FOTA_HASH_MAX_LEN];

        assert_int_equal(fota_hash(FOTA_HASH_SHA256, buf, img_len, d), FOTA_OK);
        memcpy(sha, d, 32);
    }
    assert_int_equal(fota_install_begin(&in, &dev, img_len, sha), FOTA_OK);
    for (uint32_t off = 0; off < img_len; off += (uint32_t)sizes[0]) {
        size_t n = img_len - off < sizes[0] ? img_len - off : sizes[0];

        assert_int_equal(fota_install_write(&in, buf + off, n), FOTA_OK);
    }
    assert_int_equal(fota_install_finish(&in, NULL), FOTA_OK);
    fota_flash_sim_stats(sim, &s);
    w_install = s.writes;
    e_install = s.erases;
    assert_int_equal(fota_boot(&dev, &dec), FOTA_OK);
    assert_int_equal(dec.reason, FOTA_BOOT_TRIAL);
    assert_int_equal(fota_boot_confirm(&dev), FOTA_OK);
    fota_flash_sim_stats(sim, &s);
    w_boot = s.writes - w_install;
    e_boot = s.erases - e_install;
    print_message("1 MiB update (image %u bytes): install %llu writes + %llu erases, "
                  "trial boot + confirm %llu writes + %llu erases, total %llu writes + %llu "
                  "erases (%llu sectors erased, %llu bytes written)\n",
                  (unsigned)img_len, (unsigned long long)w_install,
                  (unsigned long long)e_install, (unsigned long long)w_boot,
                  (unsigned long long)e_boot, (unsigned long long)s.writes,
                  (unsigned long long)s.erases, (unsigned long long)s.sectors_erased,
                  (unsigned long long)s.bytes_written);
    /* 257 image sectors: one erase each, one write per sector plus the
     * padded last unit; one state store (1 erase + 1 write) for the pending
     * mark, one for the trial attempt, one for the confirm. */
    assert_int_equal(e_install, 257 + 1);
    assert_int_equal(w_install, 257 + 1 + 1);
    assert_int_equal(w_boot, 2);
    assert_int_equal(e_boot, 2);
    {
        struct fota_boot_state st;

        assert_int_equal(fota_boot_state_load(&dev, &st), FOTA_OK);
        assert_int_equal(st.active, 1);
        assert_int_equal(st.security_counter, 2);
    }
    fota_flash_sim_close(sim);
    free(buf);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_encode_decode),
        cmocka_unit_test(test_record_rejects),
        cmocka_unit_test(test_reason_names),
        T(test_load_factory),
        T(test_load_newest_wins),
        T(test_store_alternates),
        T(test_torn_store_keeps_previous),
        T(test_device_checked),
        T(test_row1_factory_boots_a),
        T(test_row2_attempts_exhausted),
        T(test_row3_trial),
        T(test_attempts_run_out),
        T(test_row4_pending_corrupt),
        T(test_row4_pending_unsigned),
        T(test_row4_pending_lower_counter),
        T(test_row4_pending_wrong_hardware),
        T(test_row4_both_bad),
        T(test_row5_confirmed_no_write),
        T(test_row6_fallback),
        T(test_row6_after_revert),
        T(test_row6_active_below_counter),
        T(test_row7_no_image),
        T(test_boot_cut_during_store),
        T(test_confirm_raises_counter),
        T(test_confirm_never_lowers_counter),
        T(test_confirm_refuses_bad_trial_image),
        T(test_rollback_allowed),
        T(test_rollback_refused_below_counter),
        T(test_rollback_refused_during_trial),
        T(test_rollback_refused_while_pending),
        T(test_rollback_refused_bad_image),
        T(test_install_ok),
        T(test_install_attempts_configured),
        T(test_install_refused_during_trial),
        T(test_install_length_checked),
        T(test_install_hash_checked),
        T(test_install_verification_checked),
        T(test_install_unmarks_pending_first),
        cmocka_unit_test(test_update_cost_1mib),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

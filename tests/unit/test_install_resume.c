/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resuming an install (fota_install_resume_point, fota_install_resume), the
 * health-check reject (fota_boot_reject) and the running slot
 * (fota_boot_running_slot), over the in-memory flash simulator with images
 * made by libfota's builder, as in test_boot.c.
 *
 * The property that matters: a resume point recorded at any moment before a
 * power cut (clean or torn, at any flash operation) lets the install finish
 * with exactly the image, and a byte damaged below the point is caught by
 * the final hash check, never accepted.
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
#define PAYLOAD (2u * SEC + 1001u)  /* the image spans three sectors, ends mid-unit */
#define MAX_POINTS 256u

/* ---- keys and images ------------------------------------------------------ */

static fota_privkey *priv_good;
static struct fota_image_signer key_good;
static struct fota_image_key trusted;

static int group_setup(void **state)
{
    (void)state;
    if (fota_privkey_generate(FOTA_KEY_ED25519, &priv_good) != FOTA_OK ||
        fota_image_signer_init(priv_good, &key_good) != FOTA_OK)
        return -1;
    trusted.key = key_good.pub;
    memcpy(trusted.id, key_good.id, sizeof trusted.id);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fota_image_signer_clear(&key_good);
    fota_privkey_free(priv_good);
    return 0;
}

struct image {
    uint8_t buf[IMG_MAX];
    uint32_t len;
    uint8_t sha[32];
};

static void build_image(struct image *img, uint32_t counter, uint16_t minor, uint32_t payload_len)
{
    struct fota_image_header h;
    uint8_t d[FOTA_HASH_MAX_LEN];
    size_t len = 0;

    memset(&h, 0, sizeof h);
    h.security_counter = counter;
    h.major = 1;
    h.minor = minor;
    h.build = 100u + minor;
    h.payload_len = payload_len;
    snprintf(h.hardware_id, sizeof h.hardware_id, "%s", HW);
    assert_true(FOTA_IMAGE_HEADER_LEN + payload_len <= IMG_MAX);
    for (uint32_t i = 0; i < payload_len; i++)
        img->buf[FOTA_IMAGE_HEADER_LEN + i] = (uint8_t)(i * 31u + minor);
    assert_int_equal(fota_image_build(&h, &key_good, 1, img->buf, IMG_MAX, &len, NULL), FOTA_OK);
    img->len = (uint32_t)len;
    assert_int_equal(fota_hash(FOTA_HASH_SHA256, img->buf, img->len, d), FOTA_OK);
    memcpy(img->sha, d, 32);
}

/* ---- the device ----------------------------------------------------------- */

struct fx {
    struct fota_flash_sim *sim;
    struct fota_device dev;
    uint8_t scratch[1024];
    struct image old_img;       /* slot A, confirmed */
    struct image new_img;       /* the update */
    struct image b_img;         /* an older pending image in slot B */
    uint8_t base[FLASH_SIZE];   /* flash before the update */
    uint8_t cut[FLASH_SIZE];    /* flash right after a cut */
};

static void place(struct fx *fx, int slot, const struct image *img)
{
    static uint8_t erased[SLOT_SIZE];

    memset(erased, 0xff, sizeof erased);
    assert_int_equal(fota_flash_sim_poke(fx->sim, fx->dev.slot[slot].off, erased, SLOT_SIZE),
                     FOTA_OK);
    assert_int_equal(fota_flash_sim_poke(fx->sim, fx->dev.slot[slot].off, img->buf, img->len),
                     FOTA_OK);
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

/* A confirmed 1.0 (counter 1) in slot A, slot B holding leftovers of an
 * older image; the update is 1.1 (counter 2). pending_b: slot B's image is
 * marked pending (install must un-mark it first). */
static void baseline(struct fx *fx, int pending_b)
{
    build_image(&fx->old_img, 1, 0, 3000);
    build_image(&fx->new_img, 2, 1, PAYLOAD);
    build_image(&fx->b_img, 1, 7, 3 * SEC + 100);
    place(fx, 0, &fx->old_img);
    place(fx, 1, &fx->b_img);
    set_state(fx, 0, pending_b, pending_b ? 3 : 0, 0, 1);
    assert_int_equal(fota_flash_sim_snapshot(fx->sim, fx->base, FLASH_SIZE), FOTA_OK);
    fota_flash_sim_reset_stats(fx->sim);
}

/* The update was installed and marked: slot B holds exactly the image and
 * the next boot tries it. */
static void assert_installed(struct fx *fx)
{
    struct fota_boot_decision dec;

    assert_memory_equal(fota_flash_sim_data(fx->sim) + fx->dev.slot[1].off, fx->new_img.buf,
                        fx->new_img.len);
    assert_state(fx, 0, 1, FOTA_BOOT_ATTEMPTS_DEFAULT, 0, 1);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 1);
    assert_int_equal(dec.reason, FOTA_BOOT_TRIAL);
    assert_int_equal(dec.image.header.minor, 1);
}

/* Feed img[from, to) in pieces of the given sizes (cycled). When points is
 * not NULL, the resume point after every accepted piece is appended. */
static fota_err feed_range(struct fota_install *in, const struct image *img, uint32_t from,
                           uint32_t to, const size_t *sizes, size_t n_sizes, uint32_t *points,
                           size_t *n_points)
{
    uint32_t off = from;
    size_t k = 0;

    while (off < to) {
        size_t n = sizes[k++ % n_sizes];
        fota_err err;

        if (n > to - off)
            n = to - off;
        err = fota_install_write(in, img->buf + off, n);
        if (err != FOTA_OK)
            return err;
        off += (uint32_t)n;
        if (points != NULL) {
            assert_true(*n_points < MAX_POINTS);
            points[(*n_points)++] = fota_install_resume_point(in);
        }
    }
    return FOTA_OK;
}

static const size_t piece_sizes[] = {1000, 7, 4096, 333, 1, 64};
/* Pieces that complete a held-back write unit right at a sector's end: a
 * cut while that unit is programmed must not move the resume point past it. */
static const size_t unit_end_sizes[] = {SEC - 3, 3, SEC - 11, 6, 5};

/* Resume from `from` and complete the install with the rest of the image. */
static fota_err resume_and_finish(struct fx *fx, uint32_t from)
{
    struct fota_install in;
    fota_err err;

    err = fota_install_resume(&in, &fx->dev, fx->new_img.len, fx->new_img.sha, from);
    if (err != FOTA_OK)
        return err;
    assert_int_equal(in.written, from - from % SEC);
    assert_int_equal(in.slot, 1);
    err = feed_range(&in, &fx->new_img, in.written, fx->new_img.len, piece_sizes,
                     TU_ARRAY_LEN(piece_sizes), NULL, NULL);
    if (err != FOTA_OK)
        return err;
    return fota_install_finish(&in, NULL);
}

/* ---- resume point --------------------------------------------------------- */

static void test_resume_point_values(void **state)
{
    struct fx *fx = *state;
    struct fota_install in;

    baseline(fx, 0);
    assert_int_equal(fota_install_resume_point(NULL), 0);
    assert_int_equal(fota_install_begin(&in, &fx->dev, fx->new_img.len, fx->new_img.sha),
                     FOTA_OK);
    assert_int_equal(fota_install_resume_point(&in), 0);
    assert_int_equal(fota_install_write(&in, fx->new_img.buf, SEC - 1), FOTA_OK);
    assert_int_equal(fota_install_resume_point(&in), 0);
    /* SEC + 3 given: SEC programmed, 3 bytes pending in the write unit */
    assert_int_equal(fota_install_write(&in, fx->new_img.buf + SEC - 1, 4), FOTA_OK);
    assert_int_equal(fota_install_resume_point(&in), SEC);
    assert_int_equal(fota_install_write(&in, fx->new_img.buf + SEC + 3, SEC), FOTA_OK);
    assert_int_equal(fota_install_resume_point(&in), 2 * SEC);
    /* still meaningful once the install is closed */
    fota_install_abort(&in);
    assert_int_equal(fota_install_resume_point(&in), 2 * SEC);
}

/* ---- resume after an abort ------------------------------------------------ */

static void test_resume_after_abort(void **state)
{
    struct fx *fx = *state;
    uint32_t offsets[10];
    size_t n_off = 0;

    baseline(fx, 0);
    offsets[n_off++] = 0;
    offsets[n_off++] = 1;
    offsets[n_off++] = ALIGN - 1;
    offsets[n_off++] = ALIGN;
    offsets[n_off++] = SEC - 1;
    offsets[n_off++] = SEC;
    offsets[n_off++] = SEC + 1;
    offsets[n_off++] = fx->new_img.len / 2;
    offsets[n_off++] = fx->new_img.len - 1;
    offsets[n_off++] = fx->new_img.len;

    for (size_t i = 0; i < n_off; i++) {
        /* from = bytes given (what a caller counting its own bytes has), and
         * from = the recorded resume point */
        for (int use_point = 0; use_point < 2; use_point++) {
            struct fota_install in;
            uint32_t off = offsets[i];
            uint32_t point;

            assert_int_equal(fota_flash_sim_restore(fx->sim, fx->base, FLASH_SIZE), FOTA_OK);
            assert_int_equal(fota_install_begin(&in, &fx->dev, fx->new_img.len, fx->new_img.sha),
                             FOTA_OK);
            assert_int_equal(feed_range(&in, &fx->new_img, 0, off, piece_sizes,
                                        TU_ARRAY_LEN(piece_sizes), NULL, NULL),
                             FOTA_OK);
            point = fota_install_resume_point(&in);
            assert_int_equal(point % SEC, 0);
            assert_true(point <= off);
            assert_true(off - point < SEC);
            fota_install_abort(&in);
            assert_int_equal(resume_and_finish(fx, use_point ? point : off), FOTA_OK);
            assert_installed(fx);
        }
    }
}

/* from == 0 is begin; from > length is refused before anything is stored;
 * the state rules of begin apply. */
static void test_resume_checks(void **state)
{
    struct fx *fx = *state;
    struct fota_install in;

    baseline(fx, 0);
    assert_int_equal(fota_install_resume(&in, &fx->dev, fx->new_img.len, fx->new_img.sha,
                                         fx->new_img.len + 1),
                     FOTA_E_LENGTH);
    assert_int_equal(fota_install_resume(&in, &fx->dev, fx->new_img.len, fx->new_img.sha,
                                         UINT32_MAX),
                     FOTA_E_LENGTH);
    assert_int_equal(fota_install_resume(&in, &fx->dev, SLOT_SIZE + 1, fx->new_img.sha, 0),
                     FOTA_E_LENGTH);
    assert_int_equal(fota_install_resume(NULL, &fx->dev, fx->new_img.len, fx->new_img.sha, 0),
                     FOTA_E_INVALID);
    assert_int_equal(fota_install_resume(&in, &fx->dev, fx->new_img.len, NULL, 0),
                     FOTA_E_INVALID);
    assert_int_equal(flash_ops(fx), 0);
    assert_int_equal(resume_and_finish(fx, 0), FOTA_OK);
    assert_installed(fx);

    /* During a trial: refused, nothing written. */
    assert_int_equal(fota_flash_sim_restore(fx->sim, fx->base, FLASH_SIZE), FOTA_OK);
    set_state(fx, 0, 1, 2, 1, 1);
    fota_flash_sim_reset_stats(fx->sim);
    assert_int_equal(fota_install_resume(&in, &fx->dev, fx->new_img.len, fx->new_img.sha, SEC),
                     FOTA_E_STATE);
    assert_int_equal(flash_ops(fx), 0);

    /* A pending image is un-marked before the slot is touched, and a pending
     * mark is not kept when from > length. */
    assert_int_equal(fota_flash_sim_restore(fx->sim, fx->base, FLASH_SIZE), FOTA_OK);
    set_state(fx, 0, 1, 3, 0, 1);
    fota_flash_sim_reset_stats(fx->sim);
    assert_int_equal(fota_install_resume(&in, &fx->dev, fx->new_img.len, fx->new_img.sha,
                                         fx->new_img.len + 1),
                     FOTA_E_LENGTH);
    assert_int_equal(flash_ops(fx), 0);
    assert_int_equal(fota_install_resume(&in, &fx->dev, fx->new_img.len, fx->new_img.sha, SEC),
                     FOTA_OK);
    assert_state(fx, 0, 0, 0, 0, 1);
    fota_install_abort(&in);
}

/* The resumed bytes are trusted for nothing: a byte changed below the
 * resume point makes finish fail with FOTA_E_HASH, and nothing is marked. */
static void test_resume_damage_below_point(void **state)
{
    struct fx *fx = *state;
    struct fota_install in;
    uint32_t point;
    uint8_t b;

    baseline(fx, 0);
    assert_int_equal(fota_install_begin(&in, &fx->dev, fx->new_img.len, fx->new_img.sha),
                     FOTA_OK);
    assert_int_equal(fota_install_write(&in, fx->new_img.buf, 2 * SEC + 5), FOTA_OK);
    point = fota_install_resume_point(&in);
    assert_int_equal(point, 2 * SEC);
    fota_install_abort(&in);
    b = (uint8_t)(fota_flash_sim_data(fx->sim)[fx->dev.slot[1].off + SEC + 17] ^ 0x40);
    assert_int_equal(fota_flash_sim_poke(fx->sim, fx->dev.slot[1].off + SEC + 17, &b, 1), FOTA_OK);
    assert_int_equal(resume_and_finish(fx, point), FOTA_E_HASH);
    assert_state(fx, 0, 0, 0, 0, 1);
    /* a resume point beyond what was written: the erased bytes fail too */
    assert_int_equal(fota_flash_sim_restore(fx->sim, fx->base, FLASH_SIZE), FOTA_OK);
    assert_int_equal(fota_install_begin(&in, &fx->dev, fx->new_img.len, fx->new_img.sha),
                     FOTA_OK);
    assert_int_equal(fota_install_write(&in, fx->new_img.buf, 100), FOTA_OK);
    fota_install_abort(&in);
    assert_int_equal(resume_and_finish(fx, 2 * SEC), FOTA_E_HASH);
    assert_state(fx, 0, 0, 0, 0, 1);
    /* and a resume from the true point still completes afterwards */
    assert_int_equal(resume_and_finish(fx, 0), FOTA_OK);
    assert_installed(fx);
}

/* ---- resume after a power cut --------------------------------------------- */

/* One install from scratch with a cut armed at operation `op`. Records every
 * resume point seen before the cut (and the one left in the context after
 * it) into points. Returns the first error (FOTA_E_POWER expected). */
static fota_err install_with_cut(struct fx *fx, uint64_t op, enum fota_flash_cut_mode mode,
                                 const size_t *sizes, size_t n_sizes, uint32_t *points,
                                 size_t *n_points)
{
    struct fota_install in;
    fota_err err;

    *n_points = 0;
    points[(*n_points)++] = 0;
    fota_flash_sim_cut_after(fx->sim, op, mode);
    err = fota_install_begin(&in, &fx->dev, fx->new_img.len, fx->new_img.sha);
    if (err != FOTA_OK)
        return err;
    err = feed_range(&in, &fx->new_img, 0, fx->new_img.len, sizes, n_sizes, points, n_points);
    if (err == FOTA_OK)
        err = fota_install_finish(&in, NULL);
    /* the point the aborted context reports after the failure */
    points[(*n_points)++] = fota_install_resume_point(&in);
    return err;
}

static void cut_everywhere(struct fx *fx, int pending_b, const size_t *sizes, size_t n_sizes)
{
    uint32_t points[MAX_POINTS];
    size_t n_points = 0;
    uint64_t total;
    unsigned resumes = 0;

    baseline(fx, pending_b);
    /* How many flash operations a whole install takes. */
    assert_int_equal(
        install_with_cut(fx, 0, FOTA_FLASH_CUT_CLEAN, sizes, n_sizes, points, &n_points), FOTA_OK);
    assert_installed(fx);
    assert_int_equal(fota_flash_sim_restore(fx->sim, fx->base, FLASH_SIZE), FOTA_OK);
    fota_flash_sim_reset_stats(fx->sim);
    assert_int_equal(
        install_with_cut(fx, 0, FOTA_FLASH_CUT_CLEAN, sizes, n_sizes, points, &n_points), FOTA_OK);
    total = flash_ops(fx);
    assert_true(total > 6);

    for (int mode = 0; mode < 2; mode++) {
        for (uint64_t op = 1; op <= total; op++) {
            for (uint64_t seed = 1; seed <= 5; seed++) {
                fota_err err;
                uint32_t last;

                assert_int_equal(fota_flash_sim_restore(fx->sim, fx->base, FLASH_SIZE), FOTA_OK);
                fota_flash_sim_seed(fx->sim, seed * 7919u + op);
                err = install_with_cut(fx, op, (enum fota_flash_cut_mode)mode, sizes, n_sizes,
                                       points, &n_points);
                assert_int_equal(err, FOTA_E_POWER);
                fota_flash_sim_power_on(fx->sim);
                assert_int_equal(fota_flash_sim_snapshot(fx->sim, fx->cut, FLASH_SIZE), FOTA_OK);
                /* The device never boots a half-written image meanwhile:
                 * a pending mark survives only a cut before the slot was
                 * touched (during begin's un-mark). */
                if (get_state(fx).pending)
                    assert_memory_equal(fota_flash_sim_data(fx->sim) + fx->dev.slot[1].off,
                                        fx->b_img.buf, fx->b_img.len);

                last = 0;
                for (size_t i = 0; i < n_points; i++) {
                    /* points only grow; each is a sector start */
                    assert_true(points[i] >= last);
                    assert_int_equal(points[i] % SEC, 0);
                    last = points[i];
                    if (i > 0 && points[i] == points[i - 1])
                        continue;
                    assert_int_equal(fota_flash_sim_restore(fx->sim, fx->cut, FLASH_SIZE),
                                     FOTA_OK);
                    assert_int_equal(resume_and_finish(fx, points[i]), FOTA_OK);
                    assert_installed(fx);
                    resumes++;
                }
                /* A byte damaged below the last point is caught. */
                if (last > 0) {
                    uint32_t at = fx->dev.slot[1].off + (uint32_t)((seed * 977u + op) % last);
                    uint8_t b;

                    assert_int_equal(fota_flash_sim_restore(fx->sim, fx->cut, FLASH_SIZE),
                                     FOTA_OK);
                    b = (uint8_t)(fota_flash_sim_data(fx->sim)[at] ^ 0x01);
                    assert_int_equal(fota_flash_sim_poke(fx->sim, at, &b, 1), FOTA_OK);
                    assert_int_equal(resume_and_finish(fx, last), FOTA_E_HASH);
                    assert_int_equal(get_state(fx).pending, 0);
                }
            }
        }
    }
    print_message("%llu flash operations per install, %u resumes after cuts checked\n",
                  (unsigned long long)total, resumes);
}

static void test_resume_after_cut(void **state)
{
    cut_everywhere(*state, 0, piece_sizes, TU_ARRAY_LEN(piece_sizes));
    cut_everywhere(*state, 0, unit_end_sizes, TU_ARRAY_LEN(unit_end_sizes));
}

/* The same with an older image pending in the slot: begin's un-mark store
 * is among the operations cut. */
static void test_resume_after_cut_pending(void **state)
{
    cut_everywhere(*state, 1, piece_sizes, TU_ARRAY_LEN(piece_sizes));
}

/* Several cuts in one update, each resumed from the last recorded point,
 * until the install completes. */
static void test_resume_many_cuts(void **state)
{
    struct fx *fx = *state;

    baseline(fx, 0);
    for (uint64_t seed = 1; seed <= 40; seed++) {
        uint64_t rng = seed * 0x9e3779b97f4a7c15ull;
        uint32_t point = 0;
        int cuts = 0;
        fota_err err = FOTA_E_POWER;

        assert_int_equal(fota_flash_sim_restore(fx->sim, fx->base, FLASH_SIZE), FOTA_OK);
        fota_flash_sim_seed(fx->sim, seed);
        while (err == FOTA_E_POWER) {
            struct fota_install in;

            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            /* the last tries run without a cut, so every run ends */
            fota_flash_sim_cut_after(fx->sim, cuts < 12 ? 1 + rng % 6 : 0,
                                     (enum fota_flash_cut_mode)(rng >> 32 & 1));
            err = fota_install_resume(&in, &fx->dev, fx->new_img.len, fx->new_img.sha, point);
            if (err == FOTA_OK) {
                uint32_t p;

                err = feed_range(&in, &fx->new_img, in.written, fx->new_img.len, piece_sizes,
                                 TU_ARRAY_LEN(piece_sizes), NULL, NULL);
                if (err == FOTA_OK)
                    err = fota_install_finish(&in, NULL);
                p = fota_install_resume_point(&in);
                if (p > point)
                    point = p;
            }
            if (err == FOTA_E_POWER) {
                cuts++;
                fota_flash_sim_power_on(fx->sim);
            }
        }
        assert_int_equal(err, FOTA_OK);
        assert_installed(fx);
    }
}

/* ---- reject --------------------------------------------------------------- */

static void test_reject_trial(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;

    baseline(fx, 0);
    assert_int_equal(resume_and_finish(fx, 0), FOTA_OK);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 1);
    assert_int_equal(dec.reason, FOTA_BOOT_TRIAL);
    assert_state(fx, 0, 1, FOTA_BOOT_ATTEMPTS_DEFAULT - 1, 1, 1);
    /* the health check failed */
    fota_flash_sim_reset_stats(fx->sim);
    assert_int_equal(fota_boot_reject(&fx->dev), FOTA_OK);
    assert_int_equal(flash_ops(fx), 2);      /* one store */
    assert_state(fx, 0, 0, 0, 0, 1);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    assert_int_equal(dec.slot, 0);
    assert_int_equal(dec.reason, FOTA_BOOT_CONFIRMED);
    assert_int_equal(dec.image.header.minor, 0);
    assert_int_equal(dec.image.header.security_counter, 1);
    /* a second reject finds nothing on trial */
    assert_int_equal(fota_boot_reject(&fx->dev), FOTA_E_STATE);
}

static void expect_reject_refused(struct fx *fx)
{
    struct fota_boot_state before = get_state(fx);
    struct fota_boot_state after;

    fota_flash_sim_reset_stats(fx->sim);
    assert_int_equal(fota_boot_reject(&fx->dev), FOTA_E_STATE);
    assert_int_equal(flash_ops(fx), 0);
    after = get_state(fx);
    assert_memory_equal(&before, &after, sizeof before);
}

static void test_reject_nothing_on_trial(void **state)
{
    struct fx *fx = *state;

    /* factory state */
    expect_reject_refused(fx);
    baseline(fx, 0);
    /* confirmed, nothing pending */
    expect_reject_refused(fx);
    /* pending but never booted */
    set_state(fx, 0, 1, 3, 0, 1);
    expect_reject_refused(fx);
    /* a bad device */
    assert_int_equal(fota_boot_reject(NULL), FOTA_E_INVALID);
}

/* A cut during the reject's store leaves the trial state; the retry works. */
static void test_reject_cut(void **state)
{
    struct fx *fx = *state;

    baseline(fx, 0);
    for (int mode = 0; mode < 2; mode++) {
        for (uint64_t op = 1; op <= 2; op++) {
            set_state(fx, 0, 1, 2, 1, 1);
            fota_flash_sim_cut_after(fx->sim, op, (enum fota_flash_cut_mode)mode);
            assert_int_equal(fota_boot_reject(&fx->dev), FOTA_E_POWER);
            fota_flash_sim_power_on(fx->sim);
            assert_state(fx, 0, 1, 2, 1, 1);
            assert_int_equal(fota_boot_reject(&fx->dev), FOTA_OK);
            assert_state(fx, 0, 0, 0, 0, 1);
        }
    }
}

/* ---- running slot --------------------------------------------------------- */

static void expect_running(struct fx *fx, int want)
{
    struct fota_boot_state st;
    struct fota_boot_state stored = get_state(fx);
    int slot = -1;

    assert_int_equal(fota_boot_running_slot(&fx->dev, &slot, &st), FOTA_OK);
    assert_int_equal(slot, want);
    assert_memory_equal(&st, &stored, sizeof st);
    slot = -1;
    assert_int_equal(fota_boot_running_slot(&fx->dev, &slot, NULL), FOTA_OK);
    assert_int_equal(slot, want);
}

static void test_running_slot(void **state)
{
    struct fx *fx = *state;
    struct fota_boot_decision dec;
    int slot = 7;

    expect_running(fx, 0);                  /* factory */
    set_state(fx, 1, 0, 0, 0, 0);
    expect_running(fx, 1);                  /* B confirmed */
    set_state(fx, 0, 1, 3, 0, 0);
    expect_running(fx, 0);                  /* B pending, not booted yet */
    set_state(fx, 0, 1, 2, 1, 0);
    expect_running(fx, 1);                  /* B on trial */
    set_state(fx, 1, 1, 0, 1, 0);
    expect_running(fx, 0);                  /* A on trial, attempts used up */

    /* through the real transitions */
    baseline(fx, 0);
    expect_running(fx, 0);
    assert_int_equal(resume_and_finish(fx, 0), FOTA_OK);
    expect_running(fx, 0);
    assert_int_equal(fota_boot(&fx->dev, &dec), FOTA_OK);
    expect_running(fx, 1);
    assert_int_equal(fota_boot_confirm(&fx->dev), FOTA_OK);
    expect_running(fx, 1);

    assert_int_equal(fota_boot_running_slot(&fx->dev, NULL, NULL), FOTA_E_INVALID);
    assert_int_equal(fota_boot_running_slot(NULL, &slot, NULL), FOTA_E_INVALID);
    assert_int_equal(slot, 7);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_resume_point_values),
        T(test_resume_after_abort),
        T(test_resume_checks),
        T(test_resume_damage_below_point),
        T(test_resume_after_cut),
        T(test_resume_after_cut_pending),
        T(test_resume_many_cuts),
        T(test_reject_trial),
        T(test_reject_nothing_on_trial),
        T(test_reject_cut),
        T(test_running_slot),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

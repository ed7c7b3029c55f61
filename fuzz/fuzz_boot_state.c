/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_boot_state: the boot-state records as flash hands them back after any
 * power cut or tampering (lib/boot_state.c), and the boot logic over them
 * (lib/boot.c, lib/install.c).
 *
 * Input: bytes 0..31 are state copy 0, bytes 32..63 state copy 1 (what
 * fota-boot leaves in sectors 0 and 1; a shorter input leaves the rest
 * erased); byte 64, when present, picks what the slots hold (bits 0-1 slot
 * A, bits 2-3 slot B: the v1 image, the v2 image, nothing, or the v1 image
 * with one payload bit flipped); byte 65 the trial attempts.
 *
 * Runs: fota_boot_state_decode of both copies, fota_boot_state_load,
 * fota_boot; then confirm, reject, rollback and a full install of the v2
 * image, each from the same starting flash.
 *
 * Invariants (the device must never be left without a genuine image):
 *  - an image fota_boot chooses verifies again, against the stored counter;
 *  - after a boot and a confirm, the device boots again;
 *  - after an install that finished, the device boots.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flash_file.h"
#include "fota/boot.h"
#include "fota/image_build.h"
#include "fuzz_common.h"

#define SECTOR 4096u
#define SLOT_SIZE (2u * SECTOR)
#define FLASH_SIZE (2u * SECTOR + 2u * SLOT_SIZE)

static struct fota_flash_sim *sim;
static struct fota_device dev;
static struct fota_image_key key;
static struct fota_image_signer signer;
static uint8_t scratch[1024];
static uint8_t *img[2];
static size_t img_len[2];
static uint8_t erased[FLASH_SIZE];

static void setup(void)
{
    struct fota_flash_geometry g = { FLASH_SIZE, SECTOR, 8, 0xff };

    if (sim != NULL)
        return;
    if (fota_flash_mem_create(&g, &sim) != FOTA_OK ||
        fota_flash_default_layout(fota_flash_sim_dev(sim), SLOT_SIZE, dev.state, dev.slot) !=
            FOTA_OK)
        fz_fail("cannot make the flash");
    if (fota_image_signer_init(fz_fixture_key("image"), &signer) != FOTA_OK)
        fz_fail("fixture image key");
    key.key = signer.pub;
    memcpy(key.id, signer.id, 32);
    dev.keys = &key;
    dev.n_keys = 1;
    dev.threshold = 1;
    dev.hardware_id = "board-a";
    dev.scratch = scratch;
    dev.scratch_len = sizeof(scratch);
    img[0] = fz_fixture_read("images/a.img", &img_len[0]);
    img[1] = fz_fixture_read("images/b.img", &img_len[1]);
    if (img_len[0] > SLOT_SIZE || img_len[1] > SLOT_SIZE)
        fz_fail("fixture images larger than a slot");
    memset(erased, 0xff, sizeof(erased));
}

/* The starting flash of this input. */
static void load(const uint8_t *data, size_t size)
{
    unsigned variant = size > 64 ? data[64] : 0;

    if (fota_flash_sim_restore(sim, erased, sizeof(erased)) != FOTA_OK)
        fz_fail("restore");
    fota_flash_sim_power_on(sim);
    for (int s = 0; s < 2; s++) {
        unsigned v = (variant >> (2 * s)) & 3u;
        /* slot A: v1 first; slot B: v2 first */
        int which = v == 0 ? s : v == 1 ? 1 - s : -1;
        uint32_t off = dev.slot[s].off;

        if (v == 2)
            continue;
        if (v == 3)
            which = 0;
        if (fota_flash_sim_poke(sim, off, img[which], img_len[which]) != FOTA_OK)
            fz_fail("poke slot");
        if (v == 3) {
            uint8_t b = img[which][FOTA_IMAGE_HEADER_LEN + 5] ^ 0x10;
            fota_flash_sim_poke(sim, off + FOTA_IMAGE_HEADER_LEN + 5, &b, 1);
        }
    }
    for (int c = 0; c < 2; c++) {
        size_t from = (size_t)c * FOTA_BOOT_STATE_LEN;
        if (size > from) {
            size_t n = size - from < FOTA_BOOT_STATE_LEN ? size - from : FOTA_BOOT_STATE_LEN;
            fota_flash_sim_poke(sim, dev.state[c].off, data + from, n);
        }
    }
    dev.trial_attempts = size > 65 ? data[65] : 0;
}

struct area_src {
    const struct fota_flash_area *a;
};

static fota_err read_area(void *ctx, uint32_t off, void *buf, size_t len)
{
    return fota_flash_area_read(((struct area_src *)ctx)->a, off, buf, len);
}

/* The chosen image must verify on its own against the stored counter. */
static void check_decision(const struct fota_boot_decision *d)
{
    struct fota_image_policy p = {
        .keys = &key, .n_keys = 1, .threshold = 1, .hardware_id = "board-a",
        .min_security_counter = d->state.security_counter, .max_len = SLOT_SIZE,
    };
    struct area_src src;
    uint8_t s2[512];
    fota_err err;

    if (d->slot != 0 && d->slot != 1)
        fz_fail("fota_boot chose slot %d", d->slot);
    src.a = &dev.slot[d->slot];
    err = fota_image_verify(read_area, &src, &p, s2, sizeof(s2), NULL);
    if (err != FOTA_OK)
        fz_fail("fota_boot chose slot %d whose image does not verify (%s)", d->slot,
                fota_strerror(err));
    (void)fota_boot_reason_name(d->reason);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fota_boot_state st;
    struct fota_boot_decision d;
    struct fota_install in;
    uint8_t sha[FOTA_HASH_MAX_LEN];
    int slot;

    setup();
    for (size_t c = 0; c < 2; c++) {
        if (size >= (c + 1) * FOTA_BOOT_STATE_LEN) {
            uint8_t raw[FOTA_BOOT_STATE_LEN];
            if (fota_boot_state_decode(data + c * FOTA_BOOT_STATE_LEN, &st) == FOTA_OK) {
                fota_boot_state_encode(&st, raw);
                if (memcmp(raw, data + c * FOTA_BOOT_STATE_LEN, sizeof(raw)) != 0)
                    fz_fail("a decoded state record does not encode back to its bytes");
            }
        }
    }

    /* Boot, confirm, boot again. */
    load(data, size);
    (void)fota_boot_state_load(&dev, &st);
    (void)fota_boot_running_slot(&dev, &slot, &st);
    if (fota_boot(&dev, &d) == FOTA_OK) {
        check_decision(&d);
        fz_note("boot: slot %d %s", d.slot, fota_boot_reason_name(d.reason));
        if (fota_boot_confirm(&dev) == FOTA_OK) {
            fota_err err = fota_boot(&dev, &d);
            if (err != FOTA_OK)
                fz_fail("a confirmed device does not boot again (%s)", fota_strerror(err));
            check_decision(&d);
        }
    }

    /* Reject, then rollback, from the same flash. */
    load(data, size);
    (void)fota_boot_reject(&dev);
    (void)fota_boot_rollback(&dev);
    if (fota_boot(&dev, &d) == FOTA_OK)
        check_decision(&d);

    /* A full install of the v2 image into the inactive slot. */
    load(data, size);
    if (fota_hash(FOTA_HASH_SHA256, img[1], img_len[1], sha) != FOTA_OK)
        fz_fail("hash");
    if (fota_install_begin(&in, &dev, (uint32_t)img_len[1], sha) == FOTA_OK) {
        fota_err err = fota_install_write(&in, img[1], img_len[1]);
        if (err == FOTA_OK && fota_install_finish(&in, NULL) == FOTA_OK) {
            err = fota_boot(&dev, &d);
            if (err != FOTA_OK)
                fz_fail("no bootable image after a finished install (%s)",
                        fota_strerror(err));
            check_decision(&d);
        } else {
            fota_install_abort(&in);
        }
    }
    return 0;
}

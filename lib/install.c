/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The install side: the agent streams an image into the inactive slot. The
 * slot is un-marked before it is touched and marked pending only after the
 * length, the SHA-256 from signed metadata and the image's own signatures
 * all check out, so a cut or a bad download never leaves a pending mark on a
 * half-written or foreign image.
 */
#include <string.h>

#include "boot_internal.h"

/* Any failure ends the install: the caller starts again with begin. */
static fota_err fail(struct fota_install *in, fota_err err)
{
    fota_install_abort(in);
    return err;
}

/* Write len bytes (a multiple of write_align) at the install position,
 * erasing each sector right before the first write into it. */
static fota_err program(struct fota_install *in, const uint8_t *data, size_t len)
{
    const struct fota_flash_area *area = &in->dev->slot[in->slot];
    uint32_t sec = area->dev->sector_size;
    uint32_t off = in->written - (uint32_t)in->n_pend;   /* where data goes */
    fota_err err;

    while (len > 0) {
        size_t chunk;

        if (off >= in->erased) {
            err = fota_flash_area_erase(area, in->erased, sec);
            if (err != FOTA_OK)
                return err;
            in->erased += sec;
        }
        chunk = in->erased - off;
        if (chunk > len)
            chunk = len;
        err = fota_flash_area_write(area, off, data, chunk);
        if (err != FOTA_OK)
            return err;
        off += (uint32_t)chunk;
        data += chunk;
        len -= chunk;
    }
    return FOTA_OK;
}

/* begin and resume: the state checks, the pending un-mark, a fresh hash.
 * from (<= length, checked here before anything is stored) only takes part
 * in the length check; the caller replays the slot's bytes. */
static fota_err start(struct fota_install *in, const struct fota_device *dev, uint32_t length,
                      const uint8_t sha256[32], uint32_t from)
{
    struct fota_boot_state st;
    struct fota_boot_state next;
    int target;
    fota_err err;

    if (in == NULL || sha256 == NULL || !fota_boot_device_ok(dev))
        return FOTA_E_INVALID;
    memset(in, 0, sizeof *in);
    err = fota_boot_state_load(dev, &st);
    if (err != FOTA_OK)
        return err;
    /* The trial image runs from the inactive slot: overwriting it now would
     * leave nothing to confirm. Confirm or revert first. */
    if (st.trial)
        return FOTA_E_STATE;
    target = 1 - st.active;
    if (length < FOTA_IMAGE_HEADER_LEN || length > dev->slot[target].size || from > length)
        return FOTA_E_LENGTH;
    if (st.pending) {
        next = st;
        next.pending = 0;
        next.attempts_left = 0;
        err = fota_boot_state_store(dev, &next);
        if (err != FOTA_OK)
            return err;
    }
    in->dev = dev;
    in->slot = target;
    in->expected_len = length;
    memcpy(in->expected_sha256, sha256, 32);
    fota_sha256_init(&in->hash);
    in->open = 1;
    return FOTA_OK;
}

fota_err fota_install_begin(struct fota_install *in, const struct fota_device *dev,
                            uint32_t length, const uint8_t sha256[32])
{
    return start(in, dev, length, sha256, 0);
}

fota_err fota_install_write(struct fota_install *in, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t align;
    size_t take;
    size_t direct;
    fota_err err;

    if (in == NULL || !in->open)
        return FOTA_E_STATE;
    if (len == 0)
        return FOTA_OK;
    if (data == NULL)
        return fail(in, FOTA_E_INVALID);
    if (len > (size_t)(in->expected_len - in->written))
        return fail(in, FOTA_E_LENGTH);
    fota_sha256_update(&in->hash, p, len);
    align = in->dev->slot[in->slot].dev->write_align;

    /* Complete a started write unit first. */
    if (in->n_pend > 0) {
        take = align - in->n_pend;
        if (take > len)
            take = len;
        memcpy(in->pend + in->n_pend, p, take);
        in->n_pend += take;
        in->written += (uint32_t)take;
        p += take;
        len -= take;
        if (in->n_pend < align)
            return FOTA_OK;
        err = program(in, in->pend, align);
        if (err != FOTA_OK) {
            /* The unit may be torn: count only what surely reached flash,
             * so that fota_install_resume_point stays below it. */
            in->written -= (uint32_t)align;
            in->n_pend = 0;
            return fail(in, err);
        }
        in->n_pend = 0;
    }
    /* Whole units straight from the caller's buffer, the tail kept back. */
    direct = len / align * align;
    if (direct > 0) {
        err = program(in, p, direct);
        if (err != FOTA_OK)
            return fail(in, err);
        in->written += (uint32_t)direct;
        p += direct;
        len -= direct;
    }
    if (len > 0) {
        memcpy(in->pend, p, len);
        in->n_pend = len;
        in->written += (uint32_t)len;
    }
    return FOTA_OK;
}

fota_err fota_install_finish(struct fota_install *in, struct fota_image_info *ret_info)
{
    struct fota_image_info info;
    struct fota_boot_state st;
    struct fota_boot_state next;
    uint8_t digest[32];
    size_t align;
    fota_err err;

    if (in == NULL || !in->open)
        return FOTA_E_STATE;
    align = in->dev->slot[in->slot].dev->write_align;
    if (in->written != in->expected_len)
        return fail(in, FOTA_E_LENGTH);
    if (in->n_pend > 0) {
        memset(in->pend + in->n_pend, in->dev->slot[in->slot].dev->erased_value,
               align - in->n_pend);
        err = program(in, in->pend, align);
        if (err != FOTA_OK)
            return fail(in, err);
        in->n_pend = 0;
    }
    fota_sha256_final(&in->hash, digest);
    if (!fota_ct_equal(digest, in->expected_sha256, sizeof digest))
        return fail(in, FOTA_E_HASH);

    err = fota_boot_state_load(in->dev, &st);
    if (err != FOTA_OK)
        return fail(in, err);
    /* The state may have moved under us (a rollback, a confirm by another
     * process): never mark the slot that now runs. */
    if (st.trial || st.active == in->slot)
        return fail(in, FOTA_E_STATE);
    err = fota_boot_verify_slot(in->dev, in->slot, st.security_counter, in->expected_len, &info);
    if (err != FOTA_OK)
        return fail(in, err);
    next = st;
    next.pending = 1;
    next.trial = 0;
    next.attempts_left = (uint8_t)(in->dev->trial_attempts != 0 ? in->dev->trial_attempts
                                                                 : FOTA_BOOT_ATTEMPTS_DEFAULT);
    err = fota_boot_state_store(in->dev, &next);
    if (err != FOTA_OK)
        return fail(in, err);
    fota_install_abort(in);
    if (ret_info != NULL)
        *ret_info = info;
    return FOTA_OK;
}

void fota_install_abort(struct fota_install *in)
{
    if (in == NULL)
        return;
    fota_wipe(&in->hash, sizeof in->hash);
    fota_wipe(in->pend, sizeof in->pend);
    in->n_pend = 0;
    in->open = 0;
}

uint32_t fota_install_resume_point(const struct fota_install *in)
{
    uint32_t done;
    uint32_t sec;

    if (in == NULL || in->dev == NULL)
        return 0;
    /* Bytes handed to program() and acknowledged; the tail in pend is not
     * in flash yet. A cut during the erase or a write of the sector holding
     * `done` can leave anything in that sector, never below it: each sector
     * is erased right before its first write, after every earlier one was
     * written. */
    done = in->written - (uint32_t)in->n_pend;
    sec = in->dev->slot[in->slot].dev->sector_size;
    return done - done % sec;
}

fota_err fota_install_resume(struct fota_install *in, const struct fota_device *dev,
                             uint32_t length, const uint8_t sha256[32], uint32_t from)
{
    const struct fota_flash_area *area;
    uint32_t point;
    uint32_t off;
    uint32_t sec;
    fota_err err;

    err = start(in, dev, length, sha256, from);
    if (err != FOTA_OK)
        return err;
    area = &dev->slot[in->slot];
    sec = area->dev->sector_size;
    /* The sector holding `from` may be half written (a cut during its
     * erase or a write): start again at its first byte, which program()
     * erases before writing, as it does for any new sector. */
    point = from - from % sec;
    /* Replay what is already in the slot into the running hash. These
     * bytes are trusted for nothing: finish compares the whole image's
     * SHA-256 with the signed one and verifies its signatures, so a wrong
     * point or damaged flash only makes the install fail. */
    for (off = 0; off < point;) {
        size_t n = point - off;

        if (n > dev->scratch_len)
            n = dev->scratch_len;
        err = fota_flash_area_read(area, off, dev->scratch, n);
        if (err != FOTA_OK)
            return fail(in, err);
        fota_sha256_update(&in->hash, dev->scratch, n);
        off += (uint32_t)n;
    }
    in->written = point;
    in->erased = point;
    return FOTA_OK;
}

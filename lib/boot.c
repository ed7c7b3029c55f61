/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The boot decision, confirm and operator rollback: docs/boot.md holds the
 * table this file implements, row by row. Two rules shape every path:
 *   - an image is verified right before it is chosen, and a slot whose image
 *     failed is never returned;
 *   - a change of state is stored before it is acted on, so a power cut
 *     replays the same decision (or the next one) on the next power-on.
 */
#include <string.h>

#include "boot_internal.h"

static int areas_overlap(const struct fota_flash_area *a, const struct fota_flash_area *b)
{
    if (a->dev != b->dev)
        return 0;
    /* both are valid, so off + size does not wrap */
    return a->off < b->off + b->size && b->off < a->off + a->size;
}

int fota_boot_device_ok(const struct fota_device *dev)
{
    const struct fota_flash_area *areas[4];

    if (dev == NULL)
        return 0;
    areas[0] = &dev->state[0];
    areas[1] = &dev->state[1];
    areas[2] = &dev->slot[0];
    areas[3] = &dev->slot[1];
    for (int i = 0; i < 4; i++) {
        if (!fota_flash_area_valid(areas[i]))
            return 0;
        if (areas[i]->dev->write_align > FOTA_FLASH_MAX_ALIGN)
            return 0;
        for (int j = 0; j < i; j++) {
            if (areas_overlap(areas[i], areas[j]))
                return 0;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (dev->state[i].size < FOTA_BOOT_STATE_LEN)
            return 0;
    }
    if ((dev->keys == NULL && dev->n_keys != 0) || dev->threshold < 1)
        return 0;
    if (dev->hardware_id == NULL || dev->scratch == NULL || dev->scratch_len < FOTA_BOOT_SCRATCH_MIN)
        return 0;
    return dev->trial_attempts <= 255;
}

struct slot_reader {
    const struct fota_flash_area *area;
};

static fota_err slot_read(void *ctx, uint32_t offset, void *buf, size_t len)
{
    const struct slot_reader *r = ctx;

    return fota_flash_area_read(r->area, offset, buf, len);
}

fota_err fota_boot_verify_slot(const struct fota_device *dev, int slot, uint32_t min_counter,
                               uint32_t exact_len, struct fota_image_info *ret_info)
{
    struct slot_reader reader;
    struct fota_image_policy policy;

    if (slot != 0 && slot != 1)
        return FOTA_E_INVALID;
    reader.area = &dev->slot[slot];
    memset(&policy, 0, sizeof policy);
    policy.keys = dev->keys;
    policy.n_keys = dev->n_keys;
    policy.threshold = dev->threshold;
    policy.hardware_id = dev->hardware_id;
    policy.min_security_counter = min_counter;
    policy.max_len = dev->slot[slot].size;
    policy.exact_len = exact_len;
    return fota_image_verify(slot_read, &reader, &policy, dev->scratch, dev->scratch_len, ret_info);
}

int fota_boot_env_error(fota_err err)
{
    /* FOTA_E_CRYPTO is deliberately not here: an image must not be able to
     * stop every boot by provoking a backend error; it counts as a failed
     * image, which can only make the device choose another verified one. */
    return err == FOTA_E_POWER || err == FOTA_E_IO || err == FOTA_E_FLASH ||
           err == FOTA_E_INVALID || err == FOTA_E_NOMEM;
}

const char *fota_boot_reason_name(enum fota_boot_reason r)
{
    switch (r) {
    case FOTA_BOOT_CONFIRMED:
        return "confirmed";
    case FOTA_BOOT_TRIAL:
        return "trial";
    case FOTA_BOOT_REVERTED_ATTEMPTS:
        return "reverted-attempts";
    case FOTA_BOOT_REVERTED_INVALID:
        return "reverted-invalid";
    case FOTA_BOOT_FALLBACK:
        return "fallback";
    }
    return "unknown";
}

/* The state with nothing pending: the revert that rows 2 and 4 store. */
static struct fota_boot_state unmark(const struct fota_boot_state *st)
{
    struct fota_boot_state n = *st;

    n.pending = 0;
    n.trial = 0;
    n.attempts_left = 0;
    return n;
}

fota_err fota_boot(const struct fota_device *dev, struct fota_boot_decision *ret_decision)
{
    struct fota_boot_decision d;
    struct fota_boot_state st;
    struct fota_boot_state next;
    enum fota_boot_reason reason = FOTA_BOOT_CONFIRMED;
    fota_err rejected = FOTA_OK;
    int other_failed = 0;
    int active;
    int other;
    fota_err err;

    if (!fota_boot_device_ok(dev) || ret_decision == NULL)
        return FOTA_E_INVALID;
    memset(&d, 0, sizeof d);
    err = fota_boot_state_load(dev, &st);
    if (err != FOTA_OK)
        return err;
    active = st.active;
    other = 1 - active;

    if (st.pending) {
        if (st.attempts_left == 0) {
            /* Row 2: the trial image never confirmed itself. */
            next = unmark(&st);
            err = fota_boot_state_store(dev, &next);
            if (err != FOTA_OK)
                return err;
            st = next;
            reason = FOTA_BOOT_REVERTED_ATTEMPTS;
        } else {
            err = fota_boot_verify_slot(dev, other, st.security_counter, 0, &d.image);
            if (fota_boot_env_error(err))
                return err;
            if (err == FOTA_OK) {
                /* Row 3: count the attempt before the image runs, so that
                 * an image that hangs or resets still uses one up. */
                next = st;
                next.attempts_left = (uint8_t)(st.attempts_left - 1);
                next.trial = 1;
                err = fota_boot_state_store(dev, &next);
                if (err != FOTA_OK)
                    return err;
                d.slot = other;
                d.reason = FOTA_BOOT_TRIAL;
                d.state = next;
                d.rejected = FOTA_OK;
                *ret_decision = d;
                return FOTA_OK;
            }
            /* Row 4: the pending image does not verify (any more). */
            rejected = err;
            other_failed = 1;
            next = unmark(&st);
            err = fota_boot_state_store(dev, &next);
            if (err != FOTA_OK)
                return err;
            st = next;
            reason = FOTA_BOOT_REVERTED_INVALID;
        }
    }

    /* Nothing pending now: rows 5 to 7. */
    err = fota_boot_verify_slot(dev, active, st.security_counter, 0, &d.image);
    if (fota_boot_env_error(err))
        return err;
    if (err == FOTA_OK) {
        d.slot = active;
        d.reason = reason;
        d.state = st;
        d.rejected = rejected;
        *ret_decision = d;
        return FOTA_OK;
    }
    rejected = err;
    if (other_failed)
        return FOTA_E_NO_IMAGE;
    err = fota_boot_verify_slot(dev, other, st.security_counter, 0, &d.image);
    if (fota_boot_env_error(err))
        return err;
    if (err != FOTA_OK)
        return FOTA_E_NO_IMAGE;
    next = unmark(&st);
    next.active = (uint8_t)other;
    err = fota_boot_state_store(dev, &next);
    if (err != FOTA_OK)
        return err;
    d.slot = other;
    d.reason = FOTA_BOOT_FALLBACK;
    d.state = next;
    d.rejected = rejected;
    *ret_decision = d;
    return FOTA_OK;
}

/* Make slot the active slot with nothing pending, after verifying its image
 * against the stored floor (confirm and rollback). raise_counter: lift the
 * floor to the image's own counter, read from the image just verified, so
 * that it only ever rises to a counter a trusted key signed (confirm only). */
static fota_err activate(const struct fota_device *dev, const struct fota_boot_state *st,
                         int slot, int raise_counter)
{
    struct fota_image_info info;
    struct fota_boot_state next;
    fota_err err;

    err = fota_boot_verify_slot(dev, slot, st->security_counter, 0, &info);
    if (err != FOTA_OK)
        return err;
    next = unmark(st);
    next.active = (uint8_t)slot;
    if (raise_counter && info.header.security_counter > next.security_counter)
        next.security_counter = info.header.security_counter;
    return fota_boot_state_store(dev, &next);
}

/* fota_boot_state_load checks dev: a bad one is FOTA_E_INVALID from there. */
fota_err fota_boot_confirm(const struct fota_device *dev)
{
    struct fota_boot_state st;
    fota_err err;

    err = fota_boot_state_load(dev, &st);
    if (err != FOTA_OK)
        return err;
    if (!st.pending || !st.trial)
        return FOTA_OK;
    return activate(dev, &st, 1 - st.active, 1);
}

fota_err fota_boot_rollback(const struct fota_device *dev)
{
    struct fota_boot_state st;
    fota_err err;

    err = fota_boot_state_load(dev, &st);
    if (err != FOTA_OK)
        return err;
    /* While an image is pending (tried or not) the other slot holds the
     * new image, not the previous one: a "rollback" would make an untried
     * image active. The update must be confirmed or reverted first. */
    if (st.trial || st.pending)
        return FOTA_E_STATE;
    return activate(dev, &st, 1 - st.active, 0);
}

fota_err fota_boot_reject(const struct fota_device *dev)
{
    struct fota_boot_state st;
    struct fota_boot_state next;
    fota_err err;

    err = fota_boot_state_load(dev, &st);
    if (err != FOTA_OK)
        return err;
    /* Only an image that runs on trial can be judged by a health check; a
     * pending image that never ran is not rejected here (install_begin
     * un-marks it when it is replaced). */
    if (!st.pending || !st.trial)
        return FOTA_E_STATE;
    /* The same revert the bootloader stores when the attempts run out
     * (row 2): the next fota_boot runs the active slot's confirmed image. */
    next = unmark(&st);
    return fota_boot_state_store(dev, &next);
}

fota_err fota_boot_running_slot(const struct fota_device *dev, int *ret_slot,
                                struct fota_boot_state *ret_state)
{
    struct fota_boot_state st;
    fota_err err;

    if (ret_slot == NULL)
        return FOTA_E_INVALID;
    err = fota_boot_state_load(dev, &st);
    if (err != FOTA_OK)
        return err;
    /* trial is stored by fota_boot before it hands over to the pending
     * image, so trial = 1 means that image is the one running now. */
    *ret_slot = st.trial ? 1 - st.active : st.active;
    if (ret_state != NULL)
        *ret_state = st;
    return FOTA_OK;
}
